package kpax

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestMemoryBudgetProduceBlocks: with the client's budget spent elsewhere
// (as a consumer's read-ahead would), a producer that holds a record blocks
// the next Produce until its ctx ends, and goes on once bytes are released;
// a producer holding nothing always takes one record. The control, the
// same without a budget, queues both at once.
func TestMemoryBudgetProduceBlocks(t *testing.T) {
	for _, budget := range []int{0, 1 << 20} {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			// An unreachable broker: records wait for metadata, buffered.
			cl, err := New(WithSeedBrokers("127.0.0.1:1"), WithMemoryBudget(budget), WithRetryBackoff(time.Second, time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			p, err := cl.NewProducer(WithDeliveryTimeout(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				p.Close(ctx) // the records never leave: give up on them
			}()
			if b := cl.cfg.budget; b != nil {
				b.take(b.max) // all of it held elsewhere
				defer b.release(b.max)
			}
			rec := func() *Record { return &Record{Topic: "t", Value: make([]byte, 100)} }
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if err := p.Produce(ctx, rec(), func(*Record, error) {}); err != nil {
				t.Fatalf("first record, producer holding nothing: %v", err)
			}
			err = p.Produce(ctx, rec(), func(*Record, error) {})
			if budget == 0 {
				if err != nil {
					t.Fatalf("control without a budget: %v", err)
				}
				return
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("second record with the budget full: %v, want the ctx's deadline", err)
			}
			b := cl.cfg.budget
			go func() {
				time.Sleep(100 * time.Millisecond)
				b.release(1 << 10)
			}()
			ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel2()
			if err := p.Produce(ctx2, rec(), func(*Record, error) {}); err != nil {
				t.Fatalf("after 1 KiB was released: %v", err)
			}
			b.take(1 << 10) // for the deferred release
		})
	}
}

// TestMemoryBudgetFetchPauses: a consumer under a spent budget fetches
// nothing and resumes when bytes are released; the control (the budget
// not spent) reads at once.
func TestMemoryBudgetFetchPauses(t *testing.T) {
	addr := groupBroker(t)
	cl := newTestClient(t, addr, WithMemoryBudget(4<<20))
	topic := createTestTopic(t, cl, 1)
	var recs []*Record
	for i := range 50 {
		recs = append(recs, &Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i)})
	}
	produceKpax(t, cl, recs)
	b := cl.cfg.budget
	if used, _ := b.usage(); used != 0 {
		t.Fatalf("%d bytes of the budget held after the producer closed", used)
	}
	for _, spent := range []bool{false, true} {
		t.Run(fmt.Sprintf("spent=%v", spent), func(t *testing.T) {
			c := newTestConsumer(t, cl)
			if spent {
				b.take(b.max)
			}
			c.Assign(map[string]map[int32]Offset{topic: {0: Earliest()}})
			got, _ := pollQuiet(t, c, time.Second)
			switch {
			case !spent && len(got) == 0:
				t.Fatal("control: nothing fetched under a free budget")
			case !spent:
				return
			case len(got) > 0:
				t.Fatalf("%d records fetched with the budget spent", len(got))
			}
			b.release(b.max)
			got, _ = pollN(t, c, 50, 10*time.Second)
			if len(got) != 50 {
				t.Fatalf("%d records after the budget was released", len(got))
			}
		})
	}
}

// TestMemoryBudgetPipeline: an application that holds its polled records
// while it produces each to another topic, under a budget smaller than
// what it moves, neither deadlocks nor passes the budget by more than the
// documented allowance (one record per producer, one batch beyond a
// Fetch's max bytes, the first partition's decompression); zstd on both
// sides. The control is the budget's own count: it must have been full.
func TestMemoryBudgetPipeline(t *testing.T) {
	addr := groupBroker(t)
	const budget = 2 << 20
	cl := newTestClient(t, addr, WithMemoryBudget(budget), WithCompression(CompressionZstd))
	in, out := createTestTopic(t, cl, 3), createTestTopic(t, cl, 3)
	const n, size = 2000, 8 << 10
	val := bytes.Repeat([]byte("kpax memory budget "), size/19+1)[:size]
	var recs []*Record
	for i := range n {
		recs = append(recs, &Record{Topic: in, Key: fmt.Appendf(nil, "k%d", i), Value: val})
	}
	produceKpax(t, cl, recs, WithMaxBatchBytes(256<<10))
	p, err := cl.NewProducer(WithMaxBatchBytes(256 << 10))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	c := newTestConsumer(t, cl, WithFetchMaxPartitionBytes(512<<10))
	c.Assign(map[string]map[int32]Offset{in: {0: Earliest(), 1: Earliest(), 2: Earliest()}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var w ProduceWaiter
	for moved := 0; moved < n; {
		f, err := c.Poll(ctx)
		if err != nil {
			used, peak := cl.cfg.budget.usage()
			p.mu.Lock()
			pr, pb := p.bufRecords, p.bufBytes
			p.mu.Unlock()
			c.mu.Lock()
			cb, cr := c.buffered, len(c.ready)
			c.mu.Unlock()
			t.Fatalf("Poll after %d records: %v (budget used %d peak %d; producer %d records %d bytes; consumer %d bytes, %d ready)", moved, err, used, peak, pr, pb, cb, cr)
		}
		for _, e := range f.Errors {
			t.Errorf("Poll: %v", e)
		}
		for i := range f.Records { // the polled records stay held meanwhile
			r := &f.Records[i]
			w.Produce(ctx, p, &Record{Topic: out, Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value)})
			moved++
		}
	}
	if err := w.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	_, peak := cl.cfg.budget.usage()
	allow := size + 2*(512<<10) + firstDecompressMax(cl.cfg.budget)
	t.Logf("moved %d records of %d KiB through a %d MiB budget; peak %d KiB (allowance %d KiB)", n, size>>10, budget>>20, peak>>10, allow>>10)
	if peak < budget-fetchReserveMin(cl.cfg.budget)-size {
		t.Fatalf("peak %d: the budget of %d was never full, the test proves nothing", peak, budget)
	}
	if peak > budget+allow {
		t.Fatalf("peak %d passed the budget %d by more than %d", peak, budget, allow)
	}
}

// TestMemoryBudgetProduceInCallback: a Produce called from a record
// callback (here the test's goroutine posing as the callbacks' one) does not
// wait for a spent budget, since the records of the callbacks queued with
// it are what would free it; the control, the same from another
// goroutine, waits until its ctx ends.
func TestMemoryBudgetProduceInCallback(t *testing.T) {
	for _, inCallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("inCallback=%v", inCallback), func(t *testing.T) {
			cl, err := New(WithSeedBrokers("127.0.0.1:1"), WithMemoryBudget(1<<20), WithRetryBackoff(time.Second, time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			p, err := cl.NewProducer(WithDeliveryTimeout(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				p.Close(ctx)
			}()
			b := cl.cfg.budget
			b.take(b.max)
			defer b.release(b.max)
			if inCallback {
				for p.cbG.Load() == 0 { // deliver has started and said who it is
					time.Sleep(time.Millisecond)
				}
				saved := p.cbG.Load()
				p.cbG.Store(goid())
				defer p.cbG.Store(saved)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			for i := range 2 {
				err := p.Produce(ctx, &Record{Topic: "t", Value: make([]byte, 100)}, func(*Record, error) {})
				switch {
				case i == 0 && err != nil:
					t.Fatalf("first record: %v", err)
				case i == 1 && inCallback && err != nil:
					t.Fatalf("second record from a callback: %v", err)
				case i == 1 && !inCallback && !errors.Is(err, context.DeadlineExceeded):
					t.Fatalf("control, second record: %v, want the ctx's deadline", err)
				}
			}
		})
	}
}
