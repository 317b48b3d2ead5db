package kpax

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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

// TestFakeLateResponse: a broker answers a Metadata request late, after the
// client gave up on it, on the connection the request went out on.
//   - timeout: the request timed out, so the client closed that connection;
//     the next requests go over a new one and get their own answers, not
//     the late one.
//   - canceled: the caller's context ended first, which leaves the
//     connection up; the next request is pipelined behind the abandoned
//     one on the same connection (and waits for the broker, which answers
//     in order), and the late answer is matched to the abandoned call, not
//     to it.
//
// Each answer must name the topic its request asked for.
func TestFakeLateResponse(t *testing.T) {
	const late = 700 * time.Millisecond
	for _, mode := range []string{"timeout", "canceled"} {
		t.Run(mode, func(t *testing.T) {
			timeout := 300 * time.Millisecond
			if mode == "canceled" {
				timeout = 3 * time.Second // the next request waits behind the late one
			}
			fb := newFakeBroker(t, func(fc *fakeConn, r *fakeRequest) bool {
				if m, ok := r.req.(*MetadataRequest); ok && len(m.Topics) == 1 && deref(m.Topics[0].Name) == "late" {
					time.Sleep(late)
					fc.reply(r, fc.fb.metadata(m))
					return true
				}
				return false
			})
			cl := newTestClient(t, fb.addr, WithRequestTimeout(timeout), WithRetryBackoff(time.Millisecond, 10*time.Millisecond))
			ask := func(ctx context.Context, topic string) (string, error) {
				r, err := cl.RequestBroker(ctx, -1, metadataFor(topic))
				if err != nil {
					return "", err
				}
				md := r.(*MetadataResponse)
				if len(md.Topics) != 1 {
					return "", fmt.Errorf("answer with %d topics", len(md.Topics))
				}
				return deref(md.Topics[0].Name), nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if got, err := ask(ctx, "first"); err != nil || got != "first" {
				t.Fatalf("first request: %q, %v", got, err)
			}
			lctx := ctx
			if mode == "canceled" {
				var lcancel context.CancelFunc
				lctx, lcancel = context.WithTimeout(ctx, 100*time.Millisecond)
				defer lcancel()
			}
			start := time.Now()
			_, err := ask(lctx, "late")
			gaveUp := time.Since(start)
			want := ErrResponseTimeout
			if mode == "canceled" {
				want = context.DeadlineExceeded
			}
			if !errors.Is(err, want) {
				t.Fatalf("late request: %v, want %v", err, want)
			}
			for _, topic := range []string{"next", "after-the-late-answer"} {
				got, err := ask(ctx, topic)
				if err != nil || got != topic {
					t.Fatalf("request for %q after the late one: answer for %q, %v", topic, got, err)
				}
				if topic == "next" {
					time.Sleep(late) // the late answer has been written by now
				}
			}
			conns := fb.accepts.Load()
			t.Logf("figures (%s): gave up after %v; answers matched; %d connection(s)", mode, gaveUp.Round(time.Millisecond), conns)
			if mode == "timeout" && conns != 2 || mode == "canceled" && conns != 1 {
				t.Errorf("%d connections: want 2 after a timeout (the connection is closed), 1 after a cancel", conns)
			}
			checkNoLeak(t, cl, fb.close)
		})
	}
}
