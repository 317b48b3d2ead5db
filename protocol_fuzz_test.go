package kpax

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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

// requestFor picks a request type and version from two selector bytes.
func requestFor(sel0, sel1 byte) (Request, int16) {
	keys := apiKeys()
	req := NewRequest(keys[int(sel0)%len(keys)])
	span := int(req.MaxVersion()-req.MinVersion()) + 1
	return req, req.MinVersion() + int16(int(sel1)%span)
}

// addMessageSeeds adds, for every API and version, the selector bytes and a
// random message of the kind that pick returns, after the prefix that head
// writes for the request of that version.
func addMessageSeeds(f *testing.F, seed uint64, pick func(Request) Message, head func(Request, int16) []byte) {
	r := rand.New(rand.NewPCG(seed, seed+1))
	for i, key := range apiKeys() {
		req := NewRequest(key)
		msg := pick(req)
		for v := msg.MinVersion(); v <= msg.MaxVersion(); v++ {
			x := reflect.New(reflect.TypeOf(msg).Elem())
			(&filler{r: r, v: v}).fillStruct(x.Elem(), 0)
			b := append([]byte{byte(i), byte(v - msg.MinVersion())}, head(req, v)...)
			f.Add(x.Interface().(Message).AppendTo(b, v))
		}
	}
}

// checkDecoded is what every message decoder promises: allocation bounded
// by the input, errors that wrap ErrMalformed, and a decoded message that
// encodes and decodes again to the same value.
func checkDecoded(t *testing.T, m Message, v int16, n int, alloc uint64, err error) {
	t.Helper()
	if alloc > maxAlloc(n) {
		t.Fatalf("%T v%d: decoding %d bytes allocated %d bytes (err %v)", m, v, n, alloc, err)
	}
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("%T v%d: error %v does not wrap ErrMalformed", m, v, err)
		}
		return
	}
	again := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
	if err := again.Decode(m.AppendTo(nil, v), v); err != nil {
		t.Fatalf("%T v%d: decoded, re-encoded, does not decode: %v", m, v, err)
	}
	// A null array read for a field that is not nullable at v comes back empty.
	if d := cmp.Diff(m, again, cmpopts.EquateEmpty(), cmpopts.EquateNaNs()); d != "" {
		t.Fatalf("%T v%d: decode(encode(decoded)) differs (-decoded +again):\n%s", m, v, d)
	}
}

// FuzzDecodeResponseFrame decodes arbitrary bytes as the whole response
// frame (correlation ID, header tagged fields, body) to any request at any
// version, as the connection does.
func FuzzDecodeResponseFrame(f *testing.F) {
	addMessageSeeds(f, 7, func(r Request) Message { return r.NewResponse() }, func(r Request, v int16) []byte {
		if responseHeaderVersion(r, v) >= 1 {
			return []byte{0, 0, 0, 42, 1, 9, 2, 'h', 'i'} // correlation ID, one unknown header tag
		}
		return []byte{0, 0, 0, 42}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		req, v := requestFor(data[0], data[1])
		resp := req.NewResponse()
		frame := data[2:]
		var err error
		n := allocatedBy(func() { err = decodeResponse(frame, req, v, resp) })
		checkDecoded(t, resp, v, len(frame), n, err)
	})
}

// FuzzDecodeRequest decodes arbitrary bytes as any request body at any
// version (what a fake broker or a proxy reads).
func FuzzDecodeRequest(f *testing.F) {
	addMessageSeeds(f, 9, func(r Request) Message { return r }, func(Request, int16) []byte { return nil })
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		req, v := requestFor(data[0], data[1])
		body := data[2:]
		var err error
		n := allocatedBy(func() { err = req.Decode(body, v) })
		checkDecoded(t, req, v, len(body), n, err)
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
