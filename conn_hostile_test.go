package kpax

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// This file holds the hostile-response suite: brokers that announce huge
// responses, stream garbage, send compression bombs in Fetch responses, or
// answer too late. Each case measures the peak heap the client reaches
// while the fault runs (against the heap before it), checks that the client
// does not panic, that the next request to a healthy broker works, and that
// no goroutine outlives Close.

// heapSampler tracks the peak of the heap while a case runs. It reads
// runtime/metrics (no stop-the-world) every millisecond, with the garbage
// collector set to run at 10% growth, so that the peak is close to what the
// client holds rather than garbage not yet collected.
type heapSampler struct {
	base, peak uint64
	gcPercent  int
	stop       chan struct{}
	wg         sync.WaitGroup
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{gcPercent: debug.SetGCPercent(10), stop: make(chan struct{})}
	runtime.GC()
	h.base = heapObjects()
	h.peak = h.base
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				h.peak = max(h.peak, heapObjects())
			}
		}
	}()
	return h
}

// done stops sampling and returns the peak growth over the heap at start.
func (h *heapSampler) done() uint64 {
	close(h.stop)
	h.wg.Wait()
	h.peak = max(h.peak, heapObjects())
	debug.SetGCPercent(h.gcPercent)
	return h.peak - h.base
}

// checkNoLeak closes the client and then the fakes, and fails the test if
// goroutines of the package outlive them for more than a second.
func checkNoLeak(t *testing.T, cl *Client, fakes ...func()) {
	t.Helper()
	cl.Close()
	for _, f := range fakes {
		f()
	}
	if leaked := leakedGoroutines(time.Second); leaked != "" {
		t.Fatalf("goroutines left after Close:\n%s", leaked)
	}
}

// TestHugeResponseRefused: a broker that announces a 1 GiB response and
// streams it is refused at the size prefix (ErrResponseTooLarge), before the
// client allocates for it, and that connection closes; the next request
// dials again and works. The control announces 64 MiB (under the default
// limit) and streams it all: the client reads it (and pays for it), so it is
// the limit that refuses the 1 GiB.
func TestHugeResponseRefused(t *testing.T) {
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = 0xff
	}
	tests := []struct {
		name    string
		size    uint32
		want    error
		maxHeap uint64 // bound on the peak heap growth
		minHeap uint64
	}{
		{name: "1GiB announced and streamed", size: 1 << 30, want: ErrResponseTooLarge, maxHeap: 8 << 20},
		{name: "control: 64MiB streamed", size: 64 << 20, want: ErrMalformed, minHeap: 64 << 20, maxHeap: 256 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := newFakeBroker(t, func(fc *fakeConn, r *fakeRequest) bool {
				if r.key != 3 || r.n != 1 {
					return false
				}
				fc.write(binary.BigEndian.AppendUint32(nil, tt.size))
				fc.write(binary.BigEndian.AppendUint32(nil, uint32(r.corr)))
				for sent := 4; sent < int(tt.size); sent += len(chunk) {
					if _, err := fc.bw.Write(chunk[:min(len(chunk), int(tt.size)-sent)]); err != nil {
						return true // the client hung up
					}
				}
				fc.flush()
				return true
			})
			cl := newTestClient(t, fb.addr)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			h := startHeapSampler()
			start := time.Now()
			_, err := cl.RequestBroker(ctx, -1, metadataFor("t"))
			took := time.Since(start)
			peak := h.done()
			wantBrokerError(t, err, fb.addr, tt.want)
			t.Logf("%s: failed after %v, peak heap +%.1f MiB: %v", tt.name, took.Round(time.Millisecond), float64(peak)/(1<<20), err)
			if peak > tt.maxHeap || peak < tt.minHeap {
				t.Errorf("peak heap growth %d bytes, want %d to %d", peak, tt.minHeap, tt.maxHeap)
			}
			if errors.Is(tt.want, ErrResponseTooLarge) && took > time.Second {
				t.Errorf("refused after %v, want at once", took)
			}
			mustMetadata(t, cl, -1)
			if n := fb.accepts.Load(); n != 2 {
				t.Errorf("broker accepted %d connections, want 2 (the refused one closed)", n)
			}
			checkNoLeak(t, cl, fb.close)
		})
	}
}
