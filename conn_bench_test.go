package kpax

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRoundTrip measures request round trips through Client.RequestBroker
// over one connection: a small Metadata request (no topics) and its answer
// (one broker), one caller at a time ("sequential") and many callers at
// once sharing the connection ("pipelined-N": N goroutines; the connection
// coalesces their writes and matches answers by correlation ID).
//
// The broker is an in-process fake that answers from prepared bytes, and
// coalesces its own writes while requests are queued, so the client's cost
// dominates; with KPAX_TEST_KAFKA4 set, the same runs go to the real broker
// too ("kafka4/..."). Reported: ns/op and allocs/op (both sides, the fake's
// share is ~0 allocations), rt/s (round trips per second) and cpu-ns/op (the
// process's CPU per round trip, fake included).
func BenchmarkRoundTrip(b *testing.B) {
	f := newRTBroker(b)
	targets := []struct{ name, addr string }{{"fake", f.addr}}
	if addr := os.Getenv("KPAX_TEST_KAFKA4"); addr != "" {
		targets = append(targets, struct{ name, addr string }{"kafka4", addr})
	}
	for _, target := range targets {
		for _, callers := range []int{1, 8, 64} {
			name := target.name + "/sequential"
			if callers > 1 {
				name = target.name + "/pipelined-" + strconv.Itoa(callers)
			}
			b.Run(name, func(b *testing.B) { benchRoundTrip(b, target.addr, callers) })
		}
	}
}

func benchRoundTrip(b *testing.B, addr string, callers int) {
	cl, err := New(WithSeedBrokers(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	req := metadataFor() // read-only: shared by the callers
	if _, err := cl.RequestBroker(ctx, -1, req); err != nil {
		b.Fatal(err) // dials and negotiates outside the measurement
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := cl.RequestBroker(ctx, -1, req); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rt/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// rtBroker is a minimal fake broker for round-trip benchmarks: it reads
// only each request's header, answers ApiVersions and Metadata from bytes
// prepared once per version, and flushes when no request is waiting.
type rtBroker struct {
	tb   testing.TB
	addr string
}

func newRTBroker(tb testing.TB) *rtBroker {
	f := &rtBroker{tb: tb}
	f.addr = serveFake(tb, nil, f.serve).addr()
	return f
}

// template returns the whole response frame for an API key and version,
// with correlation ID 0, or nil for an API the fake does not answer.
func (f *rtBroker) template(key, version int16) []byte {
	req := NewRequest(key)
	var resp Response
	switch key {
	case apiKeyApiVersions:
		ar := &ApiVersionsResponse{}
		for _, k := range apiKeys() {
			m := NewRequest(k)
			ar.ApiKeys = append(ar.ApiKeys, ApiVersionsResponseApiKey{ApiKey: k, MinVersion: m.MinVersion(), MaxVersion: m.MaxVersion()})
		}
		resp = ar
	case 3: // Metadata
		host, port, _ := net.SplitHostPort(f.addr)
		p, _ := strconv.Atoi(port)
		resp = &MetadataResponse{ClusterID: ptr("bench"), ControllerID: 1,
			Brokers: []MetadataResponseBroker{{NodeID: 1, Host: host, Port: int32(p)}}}
	default:
		return nil
	}
	return appendResponse(nil, req, version, 0, resp)
}

func (f *rtBroker) serve(c net.Conn) {
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 64<<10)
	templates := map[[2]int16][]byte{}
	var hdr [12]byte // size, key, version, correlation ID
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		size := int(binary.BigEndian.Uint32(hdr[:]))
		key, version := int16(binary.BigEndian.Uint16(hdr[4:])), int16(binary.BigEndian.Uint16(hdr[6:]))
		if size < 8 || size > 1<<20 {
			return
		}
		if _, err := br.Discard(size - 8); err != nil {
			return
		}
		t, ok := templates[[2]int16{key, version}]
		if !ok {
			t = f.template(key, version)
			templates[[2]int16{key, version}] = t
		}
		if t == nil {
			f.tb.Errorf("rtBroker: no answer for %s v%d", APIName(key), version)
			return
		}
		bw.Write(t[:4])
		bw.Write(hdr[8:12])
		bw.Write(t[8:])
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

// TestRTBroker checks the benchmark's fake: it answers what the client
// sends, with the right correlation IDs, from many callers at once.
func TestRTBroker(t *testing.T) {
	f := newRTBroker(t)
	cl := newTestClient(t, f.addr)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				r, err := cl.RequestBroker(context.Background(), -1, metadataFor())
				if err == nil && len(r.(*MetadataResponse).Brokers) != 1 {
					err = fmt.Errorf("metadata %+v", r)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
