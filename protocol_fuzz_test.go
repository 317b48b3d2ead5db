package kpax

import (
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
)

// responseFor picks a response type and version from two selector bytes.
func responseFor(sel0, sel1 byte) (Response, int16) {
	keys := apiKeys()
	resp := NewRequest(keys[int(sel0)%len(keys)]).NewResponse()
	span := int(resp.MaxVersion()-resp.MinVersion()) + 1
	return resp, resp.MinVersion() + int16(int(sel1)%span)
}

// allocatedBy returns the bytes that f allocated.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// maxAlloc is the allocation allowed for decoding n bytes: a bounded factor of
// the input (Go structs are larger than their encoding) plus a constant.
func maxAlloc(n int) uint64 { return uint64(64*n + 8192) }

// FuzzDecodeResponse decodes arbitrary bytes as any response at any version:
// no panic, and allocation bounded by the input's size.
func FuzzDecodeResponse(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	keys := apiKeys()
	for i, key := range keys {
		resp := NewRequest(key).NewResponse()
		for v := resp.MinVersion(); v <= resp.MaxVersion(); v++ {
			x := reflect.New(reflect.TypeOf(resp).Elem())
			(&filler{r: r, v: v}).fillStruct(x.Elem(), 0)
			body := x.Interface().(Message).AppendTo(nil, v)
			f.Add(append([]byte{byte(i), byte(v - resp.MinVersion())}, body...))
		}
	}
	// A 14-byte Fetch response that claims 2^31-1 topics.
	f.Add([]byte{1, 4, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, 't', 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		resp, v := responseFor(data[0], data[1])
		body := data[2:]
		var err error
		n := allocatedBy(func() { err = resp.Decode(body, v) })
		if n > maxAlloc(len(body)) {
			t.Fatalf("%T v%d: decoding %d bytes allocated %d bytes (err %v)", resp, v, len(body), n, err)
		}
		if err == nil {
			// What decoded must encode again without trouble.
			resp.AppendTo(nil, v)
		}
	})
}

// TestHostileCountsBounded decodes, as every response at every version,
// short inputs whose lengths are all huge: errors, never big allocations.
func TestHostileCountsBounded(t *testing.T) {
	inputs := [][]byte{
		{0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff},
		{0xff, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff, 0xff, 0xff},
		{0, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x07, 0},
	}
	for _, key := range apiKeys() {
		resp := NewRequest(key).NewResponse()
		for v := resp.MinVersion(); v <= resp.MaxVersion(); v++ {
			for _, in := range inputs {
				if n := allocatedBy(func() { _ = resp.Decode(in, v) }); n > maxAlloc(len(in)) {
					t.Errorf("%T v%d: %d bytes allocated for a %d-byte input", resp, v, n, len(in))
				}
			}
		}
	}
}
