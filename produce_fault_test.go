package kpax

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The producer's fault tolerance against real Kafka: connections killed and
// responses dropped by the TCP fault proxy, partitions added while
// producing, and backpressure with every broker down; the 3-node cluster
// tests (a SIGKILLed leader, an unreachable leader) are in
// produce_fault_cluster_test.go. Each test logs a figure line: acked, lost,
// duplicates, reorders, recovery time.

// ledger records what the producer reported for each record of a test run:
// records are numbered in Produce order and carry the number in their value
// ("seq-N"), so the log can be checked against the outcomes.
type ledger struct {
	mu       sync.Mutex
	recs     []*Record
	sentAt   []time.Time
	outcomes []int   // callbacks per record: must end at exactly 1
	errs     []error // the outcome's error
	ackAt    []time.Time
	started  time.Time
	multi    int // records with more than one outcome
}

func newLedger() *ledger { return &ledger{started: time.Now()} }

// produce queues record number len(recs) with the key (nil for none).
func (l *ledger) produce(ctx context.Context, p *Producer, topic string, key []byte, pad int) error {
	l.mu.Lock()
	i := len(l.recs)
	r := &Record{Topic: topic, Key: key, Value: []byte(fmt.Sprintf("seq-%d-%s", i, strings.Repeat("x", pad)))}
	l.recs = append(l.recs, r)
	l.sentAt = append(l.sentAt, time.Now())
	l.outcomes = append(l.outcomes, 0)
	l.errs = append(l.errs, nil)
	l.ackAt = append(l.ackAt, time.Time{})
	l.mu.Unlock()
	err := p.Produce(ctx, r, func(_ *Record, err error) {
		now := time.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		l.outcomes[i]++
		if l.outcomes[i] > 1 {
			l.multi++
			return
		}
		l.errs[i] = err
		l.ackAt[i] = now
	})
	if err != nil {
		l.mu.Lock()
		l.outcomes[i] = -1 // not queued: no outcome expected
		l.mu.Unlock()
	}
	return err
}

// seqOf parses the record number from a value written by produce.
func seqOf(v []byte) int {
	s, ok := strings.CutPrefix(string(v), "seq-")
	if !ok {
		return -1
	}
	s, _, _ = strings.Cut(s, "-")
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// faultFigures is what a check of the log against the ledger found.
type faultFigures struct {
	produced, queued, acked   int
	maybe, failed, noOutcome  int // failures: maybe persisted, plain; records without an outcome
	lost, dups, reorders      int
	plainButPersisted         int      // plain failures found in the log: must be 0
	wrongOffset               int      // acked records not at the offset they were acked with
	persistedMaybe, strangers int      // maybe-persisted records in the log; values not from the ledger
	examples                  []string // of reorders
	dupExamples               []string // where duplicates are, under which producer ID
}

func (f faultFigures) String() string {
	s := fmt.Sprintf("produced %d, acked %d, maybe-persisted %d (%d in the log), failed %d, no outcome %d; lost %d, dups %d, reorders %d, plain failures in the log %d, wrong offsets %d",
		f.queued, f.acked, f.maybe, f.persistedMaybe, f.failed, f.noOutcome, f.lost, f.dups, f.reorders, f.plainButPersisted, f.wrongOffset)
	if len(f.examples) > 0 {
		s += " (" + strings.Join(f.examples, "; ") + ")"
	}
	if len(f.dupExamples) > 0 {
		s += " (duplicates: " + strings.Join(f.dupExamples, "; ") + ")"
	}
	return s
}

// check compares the log (log order per partition) with the ledger.
// Reorders count, per key (per partition for unkeyed records), each record
// of the log that follows a record produced after it.
func (l *ledger) check(log map[int32][]Record) faultFigures {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := faultFigures{produced: len(l.recs)}
	seen := make([]int, len(l.recs))
	where := make([][]string, len(l.recs)) // partition/offset (producer ID, epoch) of each copy
	at := map[[2]int64]int{}               // partition, offset: record number
	for part, rs := range log {
		last := map[string]int{}
		for _, r := range rs {
			n := seqOf(r.Value)
			if n < 0 || n >= len(l.recs) {
				f.strangers++
				continue
			}
			seen[n]++
			where[n] = append(where[n], fmt.Sprintf("%d/%d (pid %d, epoch %d)", part, r.Offset, r.ProducerID, r.ProducerEpoch))
			k := string(r.Key)
			if r.Key == nil {
				k = "\x00nil" + strconv.Itoa(int(part))
			}
			if prev, ok := last[k]; ok && n < prev {
				f.reorders++
				if len(f.examples) < 5 {
					f.examples = append(f.examples, fmt.Sprintf("key %q: record %d at %d/%d after record %d", k, n, part, r.Offset, prev))
				}
			}
			last[k] = max(last[k], n)
			at[[2]int64{int64(part), r.Offset}] = n
		}
	}
	for i := range l.recs {
		if l.outcomes[i] < 0 {
			continue
		}
		f.queued++
		if seen[i] > 1 {
			f.dups += seen[i] - 1
			if len(f.dupExamples) < 5 {
				f.dupExamples = append(f.dupExamples, fmt.Sprintf("record %d at %s", i, strings.Join(where[i], " and ")))
			}
		}
		switch {
		case l.outcomes[i] == 0:
			f.noOutcome++
		case l.errs[i] == nil:
			f.acked++
			if seen[i] == 0 {
				f.lost++
			} else if r := l.recs[i]; r.Offset >= 0 {
				if n, ok := at[[2]int64{int64(r.Partition), r.Offset}]; !ok || n != i {
					f.wrongOffset++
				}
			}
		case errors.Is(l.errs[i], ErrMaybePersisted):
			f.maybe++
			if seen[i] > 0 {
				f.persistedMaybe++
			}
		default:
			f.failed++
			if seen[i] > 0 {
				f.plainButPersisted++
			}
		}
	}
	return f
}

// firstErr returns an example failure, for messages.
func (l *ledger) firstErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// paced calls f about rate times a second until d has passed or stop is
// closed, and returns how many calls were made.
func paced(rate int, d time.Duration, stop <-chan struct{}, f func(i int)) int {
	start := time.Now()
	i := 0
	for time.Since(start) < d {
		select {
		case <-stop:
			return i
		default:
		}
		want := int(time.Since(start).Seconds() * float64(rate))
		for ; i < want; i++ {
			f(i)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return i
}

// faultLoop injects a fault on every broker every lo-hi: a kill of all
// connections, or responses dropped for lo-hi and then the connections
// killed (so no response is left half-sent). stop ends it and heals.
func faultLoop(fn *faultNet, lo, hi time.Duration) (stop func() (kills, drops int)) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var nk, nd int
	rnd := func() time.Duration { return lo + time.Duration(rand.Int64N(int64(hi-lo)+1)) }
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(rnd()):
			}
			if rand.IntN(2) == 0 {
				fn.Kill("")
				nk++
				continue
			}
			fn.DropResponses("", true)
			nd++
			select {
			case <-done:
			case <-time.After(rnd()):
			}
			fn.Kill("")
			fn.DropResponses("", false)
		}
	}()
	return func() (int, int) {
		close(done)
		wg.Wait()
		fn.DropResponses("", false)
		return nk, nd
	}
}

// TestProduceFaultProxyChaos produces keyed records for a few seconds while
// the proxy kills connections and drops responses every 50-300ms. With
// idempotence: nothing acked is lost, nothing is duplicated or reordered,
// nothing fails. The control run, without idempotence, must show
// duplicates: the faults bite.
func TestProduceFaultProxyChaos(t *testing.T) {
	addr := testBrokers(t)["4.x"]
	if addr == "" {
		t.Skip("no 4.x broker")
	}
	plain := newTestClient(t, addr)
	for _, idem := range []bool{true, false} {
		name := "idempotent"
		if !idem {
			name = "control"
		}
		t.Run(name, func(t *testing.T) {
			const parts = 4
			topic := createTestTopic(t, plain, parts)
			fn := newFaultNet(t)
			cl := newTestClient(t, addr, fn.Option(), WithRequestTimeout(700*time.Millisecond),
				WithDialTimeout(time.Second), WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond))
			p, err := cl.NewProducer(WithIdempotence(idem), WithProduceTimeout(500*time.Millisecond),
				WithLinger(2*time.Millisecond), WithDeliveryTimeout(60*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			l := newLedger()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			stop := faultLoop(fn, 50*time.Millisecond, 300*time.Millisecond)
			n := paced(3000, 4*time.Second, nil, func(i int) {
				if err := l.produce(ctx, p, topic, []byte(fmt.Sprintf("k%02d", i%16)), 20); err != nil {
					t.Errorf("Produce: %v", err)
				}
			})
			kills, drops := stop()
			flushStart := time.Now()
			if err := flushOrDump(t, p, ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			flushed := time.Since(flushStart)
			p.Close(ctx)
			f := l.check(consumeAll(t, plain, topic, parts))
			t.Logf("figures (%s): %d records in 4s, %d kills + %d response drops (%d connections killed, %d dials): %v; flush after the faults %v",
				name, n, kills, drops, fn.Kills.Load(), fn.Dials.Load(), f, flushed.Round(time.Millisecond))
			if l.multi > 0 || f.noOutcome > 0 || f.strangers > 0 {
				t.Fatalf("%d records with several outcomes, %d with none, %d unknown values in the log", l.multi, f.noOutcome, f.strangers)
			}
			if f.lost > 0 || f.plainButPersisted > 0 || f.wrongOffset > 0 {
				t.Fatalf("lost %d acked records, %d plain failures were persisted, %d acked at a wrong offset", f.lost, f.plainButPersisted, f.wrongOffset)
			}
			if idem {
				if f.dups > 0 || f.reorders > 0 || f.maybe+f.failed > 0 {
					t.Fatalf("idempotent producer: %d duplicates, %d reorders, %d failures (first: %v)", f.dups, f.reorders, f.maybe+f.failed, l.firstErr())
				}
			} else if f.dups == 0 {
				t.Fatalf("control run without idempotence shows no duplicates: the faults did not bite")
			}
		})
	}
}

// TestProduceFaultMaybePersisted drops every response: the records reach the
// log but no ack comes back, and each must fail as ErrMaybePersisted when
// its delivery timeout passes, never as a plain failure.
func TestProduceFaultMaybePersisted(t *testing.T) {
	addr := testBrokers(t)["4.x"]
	if addr == "" {
		t.Skip("no 4.x broker")
	}
	plain := newTestClient(t, addr)
	topic := createTestTopic(t, plain, 2)
	fn := newFaultNet(t)
	cl := newTestClient(t, addr, fn.Option(), WithRequestTimeout(300*time.Millisecond),
		WithDialTimeout(300*time.Millisecond), WithRetryBackoff(20*time.Millisecond, 100*time.Millisecond))
	p, err := cl.NewProducer(WithProduceTimeout(200*time.Millisecond), WithDeliveryTimeout(2*time.Second), WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer closeWithin(t, p, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := newLedger()
	if err := l.produce(ctx, p, topic, []byte("k"), 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil || l.firstErr() != nil {
		t.Fatalf("first record: %v %v", err, l.firstErr())
	}
	fn.DropResponses("", true)
	for i := 0; i < 50; i++ {
		if err := l.produce(ctx, p, topic, []byte(fmt.Sprintf("k%d", i%4)), 0); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := flushOrDump(t, p, ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	fn.DropResponses("", false)
	f := l.check(consumeAll(t, plain, topic, 2))
	t.Logf("figures: %v; outcomes after %v; example: %v", f, took.Round(time.Millisecond), l.firstErr())
	if f.persistedMaybe == 0 {
		t.Fatalf("no record reached the log with its response dropped: the fault did not bite")
	}
	if f.plainButPersisted > 0 || f.acked != 1 || f.noOutcome > 0 || l.multi > 0 {
		t.Fatalf("%d plain failures are in the log; %d acked (want 1); %d without, %d with several outcomes",
			f.plainButPersisted, f.acked, f.noOutcome, l.multi)
	}
	if err := l.firstErr(); !errors.Is(err, ErrMaybePersisted) || !errors.Is(err, ErrRequestTimedOut) && !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("failure %v: want ErrMaybePersisted wrapping the cause", err)
	}
}

// TestProduceFaultPartitionExpansion adds partitions to a topic while
// producing: the producer picks them up (metadata max age) and unkeyed and
// keyed records reach them.
func TestProduceFaultPartitionExpansion(t *testing.T) {
	addr := testBrokers(t)["4.x"]
	if addr == "" {
		t.Skip("no 4.x broker")
	}
	const maxAge = 500 * time.Millisecond
	cl := newTestClient(t, addr, WithMetadataMaxAge(maxAge))
	topic := createTestTopic(t, cl, 2)
	p, err := cl.NewProducer(WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer closeWithin(t, p, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := newLedger()
	produce := func(i int) {
		var key []byte
		if i%2 == 0 {
			key = []byte(fmt.Sprintf("k%d", i%50))
		}
		if err := l.produce(ctx, p, topic, key, 10); err != nil {
			t.Errorf("Produce: %v", err)
		}
	}
	paced(500, time.Second, nil, produce)
	// Assignments nil (null): the broker places the new partitions.
	r, err := cl.Request(ctx, &CreatePartitionsRequest{TimeoutMs: 10000, Topics: []CreatePartitionsRequestTopic{{Name: topic, Count: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if e := r.(*CreatePartitionsResponse).Results[0]; ErrorForCode(e.ErrorCode) != nil {
		t.Fatalf("CreatePartitions: %v", ErrorForCode(e.ErrorCode))
	}
	expandedAt := time.Now()
	paced(500, 3*time.Second, nil, produce)
	if err := flushOrDump(t, p, ctx); err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)
	var first time.Time
	newKeyed, newUnkeyed := 0, 0
	l.mu.Lock()
	for i, r := range l.recs {
		if l.errs[i] != nil || r.Partition < 2 {
			continue
		}
		if r.Key != nil {
			newKeyed++
		} else {
			newUnkeyed++
		}
		if first.IsZero() || l.ackAt[i].Before(first) {
			first = l.ackAt[i]
		}
	}
	l.mu.Unlock()
	f := l.check(consumeAll(t, cl, topic, 4))
	firstIn := "never"
	if !first.IsZero() {
		firstIn = first.Sub(expandedAt).Round(time.Millisecond).String()
	}
	t.Logf("figures: 2 -> 4 partitions; records on the new ones: %d keyed, %d unkeyed; first %s after CreatePartitions (metadata max age %v); %v",
		newKeyed, newUnkeyed, firstIn, maxAge, f)
	if f.lost > 0 || f.dups > 0 || f.failed+f.maybe > 0 || f.noOutcome > 0 || f.reorders > 0 {
		t.Fatalf("expansion: %v (first error %v)", f, l.firstErr())
	}
	if newKeyed == 0 || newUnkeyed == 0 {
		t.Fatalf("the new partitions got %d keyed and %d unkeyed records", newKeyed, newUnkeyed)
	}
}

// TestProduceFaultBackpressure takes the broker away (the proxy refuses and
// kills every connection) while producing: the buffer stays within its
// limit, Produce blocks until its context ends, Close with a deadline
// returns in time, every queued record gets exactly one outcome, and no
// goroutine is left.
func TestProduceFaultBackpressure(t *testing.T) {
	addr := testBrokers(t)["4.x"]
	if addr == "" {
		t.Skip("no 4.x broker")
	}
	before := kpaxGoroutines()
	plain := newTestClient(t, addr)
	topic := createTestTopic(t, plain, 3)
	fn := newFaultNet(t)
	cl, err := New(WithSeedBrokers(addr), fn.Option(), WithDialTimeout(200*time.Millisecond),
		WithRequestTimeout(500*time.Millisecond), WithRetryBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const maxBytes, maxRecords, valueSize = 256 << 10, 5000, 1000
	p, err := cl.NewProducer(WithMaxBatchBytes(64<<10), WithMaxBufferedBytes(maxBytes), WithMaxBufferedRecords(maxRecords),
		WithDeliveryTimeout(time.Minute), WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := newLedger()
	for i := 0; i < 100; i++ {
		l.produce(ctx, p, topic, nil, valueSize)
	}
	if err := p.Flush(ctx); err != nil || l.firstErr() != nil {
		t.Fatalf("before the fault: %v %v", err, l.firstErr())
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapAlloc

	fn.Refuse("", true)
	fn.Kill("")
	var queued, blocked atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
				err := l.produce(pctx, p, topic, nil, valueSize)
				pcancel()
				switch {
				case err == nil:
					queued.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					blocked.Add(1)
				default:
					t.Errorf("Produce: %v", err)
					return
				}
			}
		}()
	}
	peakBytes, peakRecords := 0, 0
	var peakHeap uint64
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		p.mu.Lock()
		peakBytes, peakRecords = max(peakBytes, p.bufBytes), max(peakRecords, p.bufRecords)
		p.mu.Unlock()
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapAlloc)
	}
	close(stop)
	wg.Wait()

	cctx, ccancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer ccancel()
	start := time.Now()
	closeErr := p.Close(cctx)
	closeTook := time.Since(start)
	cl.Close()
	fn.close()
	plain.Close()

	f := l.check(nil)
	l.mu.Lock()
	closed, maybe, other := 0, 0, 0
	var otherErr, maybeErr error
	for i, e := range l.errs {
		switch {
		case l.outcomes[i] != 1 || e == nil:
		case errors.Is(e, ErrMaybePersisted):
			maybe++
			maybeErr = e
		case errors.Is(e, ErrProducerClosed):
			closed++
		default:
			other++
			otherErr = e
		}
	}
	l.mu.Unlock()
	t.Logf("figures: broker down for 1.5s: %d queued, %d Produce calls blocked until their deadline; peak buffer %d records, %d bytes (limit %d); heap +%d KiB; Close(500ms) took %v (%v): %d closed, %d maybe persisted (%v), %d other (%v); %d without an outcome, %d with several",
		queued.Load(), blocked.Load(), peakRecords, peakBytes, maxBytes, (int64(peakHeap)-int64(heap0))>>10,
		closeTook.Round(time.Millisecond), closeErr, closed, maybe, maybeErr, other, otherErr, f.noOutcome, l.multi)
	if peakBytes > maxBytes || peakRecords > maxRecords {
		t.Fatalf("buffer reached %d bytes, %d records; limits %d, %d", peakBytes, peakRecords, maxBytes, maxRecords)
	}
	if blocked.Load() == 0 {
		t.Fatal("Produce never blocked with the broker down")
	}
	if heapGrowth := int64(peakHeap) - int64(heap0); heapGrowth > 32<<20 {
		t.Fatalf("heap grew by %d MiB with a %d KiB buffer limit", heapGrowth>>20, maxBytes>>10)
	}
	if closeTook > 2*time.Second {
		t.Fatalf("Close with a 500ms deadline took %v", closeTook)
	}
	if f.noOutcome > 0 || l.multi > 0 {
		t.Fatalf("%d records without an outcome, %d with several", f.noOutcome, l.multi)
	}
	if closed+maybe == 0 || other > 0 {
		t.Fatalf("Close: %d records failed as closed, %d as maybe persisted, %d otherwise (%v)", closed, maybe, other, otherErr)
	}
	if leaked := newGoroutines(before, 3*time.Second); leaked != "" {
		t.Fatalf("goroutines left after Close:\n%s", leaked)
	}
}

// closeWithin closes the producer, waiting at most d: a test that fails
// early must not hang in Close on records that cannot complete.
func closeWithin(t *testing.T, p *Producer, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := p.Close(ctx); err != nil && !t.Failed() {
		t.Errorf("Close: %v", err)
	}
}

// flushOrDump flushes the producer; when ctx ends first it logs what the
// producer still holds and the package's goroutines, to tell a stuck record
// from a slow one.
func flushOrDump(t *testing.T, p *Producer, ctx context.Context) error {
	err := p.Flush(ctx)
	if err == nil {
		return nil
	}
	var b strings.Builder
	locked := false
	for end := time.Now().Add(time.Second); !locked && time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		locked = p.mu.TryLock()
	}
	if !locked { // a deadlock: the stacks say where
		t.Logf("Flush: %v; the producer's lock is held\n%s", err, strings.Join(slices.Collect(maps.Values(kpaxGoroutines())), "\n\n"))
		return err
	}
	fmt.Fprintf(&b, "producer: %d records, %d bytes buffered; pid %v reset %v; %d in flight\n", p.bufRecords, p.bufBytes, p.pid, p.resetPID, p.totalInflight())
	for tp, ps := range p.parts {
		if len(ps.pending)+len(ps.retry)+ps.inflight == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %s/%d: %d pending, %d retry, %d in flight to %d, leader %d, congested %v, failures %d, retry at %v\n",
			tp.topic, tp.partition, len(ps.pending), len(ps.retry), ps.inflight, ps.sentTo, ps.leader, ps.congested, ps.failures, time.Until(ps.retryAt).Round(time.Millisecond))
	}
	for id, s := range p.brokers {
		fmt.Fprintf(&b, "  sink %d: %d requests\n", id, s.inflight)
	}
	p.mu.Unlock()
	for _, g := range kpaxGoroutines() {
		b.WriteString(g)
		b.WriteString("\n\n")
	}
	t.Logf("Flush: %v\n%s", err, b.String())
	return err
}

// kpaxGoroutines returns the stacks of the package's goroutines by ID.
func kpaxGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if id, _, ok := strings.Cut(strings.TrimPrefix(g, "goroutine "), " "); ok &&
			strings.Contains(g, "h12.me/kpax.") && !strings.Contains(g, "testing.tRunner") {
			out[id] = g
		}
	}
	return out
}

// newGoroutines waits up to d for the package's goroutines that were not in
// before to end, and returns the stacks of those left.
func newGoroutines(before map[string]string, d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		var left []string
		for id, g := range kpaxGoroutines() {
			if _, old := before[id]; !old {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return strings.Join(left, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// seqPartition is one partition replicated on two fake brokers, with the
// idempotent producer's rules: a batch is appended only at the sequence
// number its producer is expected to send next, one already appended is a
// duplicate, one further on is out of order. Only the leader appends.
type seqPartition struct {
	mu     sync.Mutex
	leader int32           // node ID answering Produce and named by Metadata
	epoch  int32           // leader epoch
	log    []int           // record numbers (ledger), by offset
	next   map[int64]int32 // producer ID: next expected sequence
	oooErr int             // OUT_OF_ORDER_SEQUENCE_NUMBER answers
}

// handler returns node's Produce and Metadata handler; addrs are the two
// brokers' addresses (node IDs 1 and 2).
func (sp *seqPartition) handler(node int32, addrs func() [2]string) func(Request, int16) Response {
	return func(req Request, _ int16) Response {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		switch r := req.(type) {
		case *MetadataRequest:
			resp := &MetadataResponse{ControllerID: 1}
			for i, a := range addrs() {
				host, port, _ := strings.Cut(a, ":")
				n, _ := strconv.Atoi(port)
				resp.Brokers = append(resp.Brokers, MetadataResponseBroker{NodeID: int32(i + 1), Host: host, Port: int32(n)})
			}
			for _, t := range r.Topics {
				resp.Topics = append(resp.Topics, MetadataResponseTopic{Name: t.Name, TopicID: UUID{1}, Partitions: []MetadataResponseTopicPartition{{
					LeaderID: sp.leader, LeaderEpoch: sp.epoch, ReplicaNodes: []int32{1, 2}, ISRNodes: []int32{1, 2}}}})
			}
			return resp
		case *ProduceRequest:
			resp := &ProduceResponse{}
			for _, td := range r.TopicData {
				rt := ProduceResponseItem{Name: td.Name, TopicID: td.TopicID}
				for _, pd := range td.PartitionData {
					rt.PartitionResponses = append(rt.PartitionResponses, sp.append(node, pd))
				}
				resp.Responses = append(resp.Responses, rt)
			}
			return resp
		}
		return nil
	}
}

// append applies one batch on node; sp.mu is held.
func (sp *seqPartition) append(node int32, pd ProduceRequestTopicDataPartitionData) ProduceResponseItemPartitionResponse {
	out := ProduceResponseItemPartitionResponse{Index: pd.Index, BaseOffset: -1, LogAppendTimeMs: -1}
	if node != sp.leader {
		out.ErrorCode = ErrNotLeaderOrFollower.Code()
		return out
	}
	b := pd.Records
	if len(b) < 61 {
		out.ErrorCode = ErrCorruptMessage.Code()
		return out
	}
	pid, seq := int64(binary.BigEndian.Uint64(b[43:51])), int32(binary.BigEndian.Uint32(b[53:57]))
	var rr RecordReader
	rr.Reset(b)
	recs, err := rr.ReadAll(nil)
	if err != nil {
		out.ErrorCode = ErrCorruptMessage.Code()
		return out
	}
	switch want := sp.next[pid]; {
	case seq < want:
		out.ErrorCode = ErrDuplicateSequenceNumber.Code()
	case seq > want:
		sp.oooErr++
		out.ErrorCode = ErrOutOfOrderSequenceNumber.Code()
	default:
		out.BaseOffset = int64(len(sp.log))
		for _, r := range recs {
			sp.log = append(sp.log, seqOf(r.Value))
		}
		sp.next[pid] = seq + int32(len(recs))
	}
	return out
}

// TestProduceFaultLeaderMoveOrder: the leader of a partition dies (its port
// closes) and, as in Kafka until the dead broker is fenced, metadata still
// names it for a while before naming the other broker. Batches cut for the
// dead leader meanwhile wait in its dial backoff; the idempotent producer
// must still get every record into the log once and in order.
func TestProduceFaultLeaderMoveOrder(t *testing.T) {
	sp := &seqPartition{leader: 1, next: map[int64]int32{}}
	var a, b *fakeCluster
	addrs := func() [2]string { return [2]string{a.addr(), b.addr()} }
	a = newFakeCluster(t, 1, sp.handler(1, addrs))
	b = newFakeCluster(t, 1, sp.handler(2, addrs))
	cl := newTestClient(t, a.addr(), WithSeedBrokers(a.addr(), b.addr()), WithRequestTimeout(time.Second),
		WithRetryBackoff(50*time.Millisecond, 300*time.Millisecond), WithMetadataMinAge(10*time.Millisecond))
	p, err := cl.NewProducer(WithLinger(time.Millisecond), WithDeliveryTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer closeWithin(t, p, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := newLedger()
	produce := func(int) {
		if err := l.produce(ctx, p, "t", []byte("k"), 10); err != nil {
			t.Errorf("Produce: %v", err)
		}
	}
	paced(2000, 300*time.Millisecond, nil, produce)
	a.close() // node 1 dies; metadata still names it
	paced(2000, 400*time.Millisecond, nil, produce)
	sp.mu.Lock()
	sp.leader, sp.epoch = 2, 1 // fenced: node 2 leads
	sp.mu.Unlock()
	paced(2000, 600*time.Millisecond, nil, produce)
	if err := flushOrDump(t, p, ctx); err != nil {
		t.Fatal(err)
	}
	sp.mu.Lock()
	log := make([]Record, len(sp.log))
	for i, n := range sp.log {
		log[i] = Record{Partition: 0, Offset: int64(i), Key: []byte("k"), Value: []byte(fmt.Sprintf("seq-%d-", n))}
	}
	ooo := sp.oooErr
	sp.mu.Unlock()
	f := l.check(map[int32][]Record{0: log})
	t.Logf("figures: %v; %d out-of-order answers", f, ooo)
	if f.lost > 0 || f.dups > 0 || f.reorders > 0 || f.wrongOffset > 0 || f.noOutcome > 0 || f.maybe+f.failed > 0 || l.multi > 0 {
		t.Fatalf("leader move: %v (first error %v)", f, l.firstErr())
	}
}
