package kpax

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// White-box tests of Process's progress (group_parallel_run.go): what it
// lets a commit cover, its window and the cut at a revocation.

// offlineGroup is a GroupConsumer whose client reaches no broker, for
// tests that drive Process's machinery by hand; it is closed with the test.
func offlineGroup(t *testing.T) *GroupConsumer {
	t.Helper()
	cl, err := New(WithSeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	g, err := cl.NewGroupConsumer("g", []string{"t"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })
	return g
}

// startProcessor is a processor of an offline group with its
// cfg.concurrency workers running; they stop with the test, or earlier with
// stopWorkers.
func startProcessor(t *testing.T, cfg processConfig, h func(context.Context, *Record) error) *processor {
	t.Helper()
	p := newProcessor(offlineGroup(t), cfg, h)
	p.runCtx, p.cancelRun = context.WithCancel(context.Background())
	for range cfg.concurrency {
		p.wg.Add(1)
		go p.worker()
	}
	t.Cleanup(func() { stopWorkers(p); p.cancelRun() })
	return p
}

// releaseAll closes the channels not yet closed, so that handlers held on
// them return and a failed test's workers can stop.
func releaseAll(chs map[int64]chan struct{}) {
	for _, ch := range chs {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

// stopWorkers makes the processor's workers return once no lane is ready,
// and waits for them.
func stopWorkers(p *processor) {
	p.mu.Lock()
	p.quit = true
	p.work.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

// TestProcessProgress drives the processor without a broker: records
// finish out of order, and the commit limit is the offset after the
// contiguous finished ones, per partition; failed records hold it.
func TestProcessProgress(t *testing.T) {
	release := map[int64]chan struct{}{}
	for i := range int64(6) {
		release[i] = make(chan struct{})
	}
	h := func(ctx context.Context, r *Record) error {
		<-release[r.Offset]
		if string(r.Value) == "fail" {
			return errors.New("fail")
		}
		return nil
	}
	cfg := defaultProcessConfig(time.Second)
	cfg.concurrency = 4
	cfg.onError = func(context.Context, *Record, error, int) ErrorAction { return StopProcessing() }
	p := startProcessor(t, cfg, h)
	t.Cleanup(func() { releaseAll(release) }) // before the workers stop
	tp := topicPartition{"t", 0}
	p.assigned([]topicPartition{tp})
	var recs []Record
	for i := range int64(6) { // offsets 0-5, keys a b a b c c; offset 4 fails
		v := "ok"
		if i == 4 {
			v = "fail"
		}
		recs = append(recs, Record{Topic: "t", Offset: i, LeaderEpoch: 7, Key: []byte{"abacc"[min(i, 4)]}, Value: []byte(v)})
	}
	p.register(recs)
	p.handOver(context.Background())
	limit := func() int64 {
		offs := map[topicPartition]position{tp: {offset: 6}}
		p.limit(offs)
		if pos, ok := offs[tp]; ok {
			return pos.offset
		}
		return -1
	}
	step := func(off int64, want int64) {
		t.Helper()
		close(release[off])
		deadline := time.Now().Add(5 * time.Second)
		for limit() != want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := limit(); got != want {
			t.Fatalf("after offset %d: commit limit %d, want %d", off, got, want)
		}
	}
	if got := limit(); got != -1 {
		t.Fatalf("limit before progress: %d (want the partition left out)", got)
	}
	step(1, -1) // b done, a (0) in flight
	step(0, 2)  // 0 and 1 done; 2 (a) runs now
	step(3, 2)
	step(2, 4)
	step(4, 4) // fails: stops; 5 (c, behind it) is dropped
	close(release[5])
	stopWorkers(p)
	if got := limit(); got != 4 {
		t.Fatalf("limit after the failure: %d, want 4", got)
	}
	var pe *ProcessError
	if !errors.As(p.err, &pe) || pe.Offset != 4 || pe.Attempts != 1 {
		t.Fatalf("stop error %v", p.err)
	}
	offs := map[topicPartition]position{tp: {offset: 6}, {"other", 0}: {offset: 9}}
	p.limit(offs)
	if offs[tp] != (position{4, 7}) || offs[topicPartition{"other", 0}].offset != 9 {
		t.Fatalf("limited commit %v", offs)
	}
	p.lost([]topicPartition{tp})
	if offs := (map[topicPartition]position{tp: {offset: 6}}); true {
		p.limit(offs) // a lost partition is no longer tracked; the group filters it by ownership
		if offs[tp].offset != 6 {
			t.Fatalf("lost partition limited: %v", offs)
		}
	}
}

// TestProcessWindowAndCut: a key whose record is stuck holds its
// partition's other keys to the window past it (what a new owner would
// process again), and a revocation drops the records not handed over past
// the last one handed over, waits only for those, and commits all it
// processed.
func TestProcessWindowAndCut(t *testing.T) {
	hold := map[int64]chan struct{}{0: make(chan struct{}), 20: make(chan struct{})}
	var mu sync.Mutex
	ran := map[int64]int{}
	h := func(ctx context.Context, r *Record) error {
		if ch, ok := hold[r.Offset]; ok {
			<-ch
		}
		mu.Lock()
		ran[r.Offset]++
		mu.Unlock()
		return nil
	}
	cfg := defaultProcessConfig(time.Second)
	cfg.concurrency, cfg.maxInFlight, cfg.drain = 2, 8, 10*time.Second
	p := startProcessor(t, cfg, h)
	t.Cleanup(func() { releaseAll(hold) }) // before the workers stop
	if w := p.partWindow(); w != 8 {
		t.Fatalf("window %d, want 8", w)
	}
	tp := topicPartition{"t", 0}
	p.assigned([]topicPartition{tp})
	var recs []Record
	for i := range int64(40) { // 10 keys in turn
		recs = append(recs, Record{Topic: "t", Offset: i, Key: []byte{byte('a' + i%10)}})
	}
	p.register(recs)
	handed := make(chan struct{})
	go func() { defer close(handed); p.handOver(context.Background()) }()
	ranUpTo := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n, hi := len(ran), int64(-1)
			for o := range ran {
				hi = max(hi, o)
			}
			mu.Unlock()
			if hi == want && n == int(want) { // every offset up to want but the one held
				time.Sleep(50 * time.Millisecond) // and no further
				mu.Lock()
				n = len(ran)
				mu.Unlock()
				if n == int(want) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("ran %d records up to offset %d, want %d up to %d", n, hi, want, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	ranUpTo(7) // 1-7: the window is 8 records past the stuck offset 0
	close(hold[0])
	ranUpTo(27) // 0-27 but 20, stuck: 21-27 in its window
	start := time.Now()
	revoked := make(chan struct{})
	go func() { defer close(revoked); p.revoking(context.Background(), []topicPartition{tp}) }()
	select {
	case <-handed: // the cut left no backlog
	case <-time.After(5 * time.Second):
		t.Fatal("handOver still waits after the cut")
	}
	close(hold[20])
	<-revoked
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("revoking took %v: it waited for records it could drop", d)
	}
	offs := map[topicPartition]position{tp: {offset: 40}}
	p.limit(offs)
	mu.Lock()
	defer mu.Unlock()
	if offs[tp].offset != 28 || len(ran) != 28 {
		t.Fatalf("commit limit %d, %d records run; want 28 and 28", offs[tp].offset, len(ran))
	}
	for o, n := range ran {
		if n != 1 || o >= 28 {
			t.Fatalf("offset %d ran %d times", o, n)
		}
	}
}
