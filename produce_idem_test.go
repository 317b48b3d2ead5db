package kpax

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The idempotent producer against fake brokers that answer exactly what a
// real leader answers in a fault: a retriable InitProducerId error, a
// Produce that timed out after the leader appended the batch, a lost
// producer state. The log is checked with the ledger (produce_fault_test.go).

// idemBroker is one fake broker leading one partition, with the broker's
// sequence rules (seqPartition) and injected faults.
type idemBroker struct {
	sp *seqPartition

	mu        sync.Mutex
	inits     int // InitProducerId requests
	pids      []int64
	loadErrs  int // the first InitProducerId requests answer COORDINATOR_LOAD_IN_PROGRESS
	timeouts  int // the first Produce requests append, then answer REQUEST_TIMED_OUT
	produces  int
	unknownAt int // the Produce request (1-based) answered UNKNOWN_PRODUCER_ID with the state dropped
	nextPID   int64
	// notReady: the first Produce request is answered NOT_LEADER_OR_FOLLOWER
	// after notReadyFor, as a just-created partition's leader may answer;
	// and, as Kafka does, a producer ID without state may start at any
	// sequence. notReadyAt is closed when that first request arrives.
	notReady    bool
	notReadyFor time.Duration
	notReadyAt  chan struct{}
}

func newIdemBroker() *idemBroker {
	return &idemBroker{sp: &seqPartition{leader: 1, next: map[int64]int32{}}, nextPID: 1000}
}

func (ib *idemBroker) handle(req Request, _ int16) Response {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	switch r := req.(type) {
	case *InitProducerIdRequest:
		ib.inits++
		if ib.inits <= ib.loadErrs {
			return &InitProducerIdResponse{ErrorCode: ErrCoordinatorLoadInProgress.Code(), ProducerID: -1, ProducerEpoch: -1}
		}
		ib.nextPID++
		ib.pids = append(ib.pids, ib.nextPID)
		return &InitProducerIdResponse{ProducerID: ib.nextPID}
	case *ProduceRequest:
		ib.produces++
		resp := &ProduceResponse{}
		for _, td := range r.TopicData {
			rt := ProduceResponseItem{Name: td.Name, TopicID: td.TopicID}
			for _, pd := range td.PartitionData {
				rt.PartitionResponses = append(rt.PartitionResponses, ib.append(pd))
			}
			resp.Responses = append(resp.Responses, rt)
		}
		return resp
	}
	return nil
}

// append applies a batch: one without a producer ID is always appended (no
// deduplication without idempotence). ib.mu is held.
func (ib *idemBroker) append(pd ProduceRequestTopicDataPartitionData) ProduceResponseItemPartitionResponse {
	sp := ib.sp
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if len(pd.Records) >= 61 && int64(binary.BigEndian.Uint64(pd.Records[43:51])) < 0 {
		var rr RecordReader
		rr.Reset(pd.Records)
		recs, _ := rr.ReadAll(nil)
		base := int64(len(sp.log))
		for _, r := range recs {
			sp.log = append(sp.log, seqOf(r.Value))
		}
		if ib.produces <= ib.timeouts {
			return ProduceResponseItemPartitionResponse{Index: pd.Index, ErrorCode: ErrRequestTimedOut.Code(), BaseOffset: -1}
		}
		return ProduceResponseItemPartitionResponse{Index: pd.Index, BaseOffset: base, LogAppendTimeMs: -1}
	}
	if ib.notReady {
		if ib.produces == 1 {
			close(ib.notReadyAt)
			time.Sleep(ib.notReadyFor) // later requests queue behind this one
			return ProduceResponseItemPartitionResponse{Index: pd.Index, ErrorCode: ErrNotLeaderOrFollower.Code(), BaseOffset: -1}
		}
		if pid := int64(binary.BigEndian.Uint64(pd.Records[43:51])); len(pd.Records) >= 61 {
			if _, ok := sp.next[pid]; !ok {
				sp.next[pid] = int32(binary.BigEndian.Uint32(pd.Records[53:57])) // any first sequence
			}
		}
	}
	if ib.produces == ib.unknownAt {
		// The producer's state is gone (retention removed its batches):
		// the log start is past everything it wrote.
		clear(sp.next)
		return ProduceResponseItemPartitionResponse{Index: pd.Index, ErrorCode: ErrUnknownProducerId.Code(),
			BaseOffset: -1, LogStartOffset: int64(len(sp.log))}
	}
	out := sp.append(1, pd)
	if out.ErrorCode == 0 && ib.produces <= ib.timeouts {
		// Appended, but the replication did not finish in time.
		out = ProduceResponseItemPartitionResponse{Index: pd.Index, ErrorCode: ErrRequestTimedOut.Code(), BaseOffset: -1}
	}
	return out
}

func (ib *idemBroker) log() map[int32][]Record {
	ib.sp.mu.Lock()
	defer ib.sp.mu.Unlock()
	log := make([]Record, len(ib.sp.log))
	for i, n := range ib.sp.log {
		log[i] = Record{Partition: 0, Offset: int64(i), Key: []byte("k"), Value: []byte(fmt.Sprintf("seq-%d-", n))}
	}
	return map[int32][]Record{0: log}
}

// TestProduceIdempotentInDoubt: the first InitProducerId answers
// COORDINATOR_LOAD_IN_PROGRESS and the first Produce REQUEST_TIMED_OUT after
// the broker appended the batch. The batch is in doubt: it must be retried
// under the same producer ID and sequence numbers (the broker answers
// DUPLICATE_SEQUENCE_NUMBER), so the log holds each record once; one
// producer ID only. The control without idempotence writes the batch twice.
func TestProduceIdempotentInDoubt(t *testing.T) {
	for _, idem := range []bool{true, false} {
		name := "idempotent"
		if !idem {
			name = "control"
		}
		t.Run(name, func(t *testing.T) {
			before := kpaxGoroutines()
			ib := newIdemBroker()
			ib.loadErrs, ib.timeouts = 1, 1
			f := newFakeCluster(t, 1, ib.handle)
			cl := newTestClient(t, f.addr(), WithRetryBackoff(300*time.Millisecond, time.Second), WithRequestTimeout(2*time.Second))
			p, err := cl.NewProducer(WithIdempotence(idem), WithLinger(time.Millisecond), WithDeliveryTimeout(20*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			l := newLedger()
			for i := 0; i < 10; i++ {
				if err := l.produce(ctx, p, "t", []byte("k"), 10); err != nil {
					t.Fatal(err)
				}
			}
			if err := flushOrDump(t, p, ctx); err != nil {
				t.Fatal(err)
			}
			closeWithin(t, p, 5*time.Second)
			cl.Close()
			f.close()
			fig := l.check(ib.log())
			ib.mu.Lock()
			inits, pids, produces := ib.inits, ib.pids, ib.produces
			ib.mu.Unlock()
			t.Logf("figures (%s): %v; %d InitProducerId (IDs %v), %d Produce requests", name, fig, inits, pids, produces)
			if fig.lost > 0 || fig.noOutcome > 0 || l.multi > 0 || fig.strangers > 0 {
				t.Fatalf("%v, %d with several outcomes", fig, l.multi)
			}
			if idem {
				if fig.dups > 0 || fig.reorders > 0 || fig.maybe+fig.failed > 0 || len(pids) != 1 {
					t.Fatalf("idempotent: %v, producer IDs %v (want one), first error %v", fig, pids, l.firstErr())
				}
			} else if fig.dups == 0 {
				t.Fatalf("control without idempotence: no duplicates: the fault did not bite")
			}
			if leaked := newGoroutines(before, 3*time.Second); leaked != "" {
				t.Fatalf("goroutines left after Close:\n%s", leaked)
			}
		})
	}
}

// TestProduceIdempotentReset: the leader loses the producer's state
// (UNKNOWN_PRODUCER_ID with the log start past everything written, as when
// retention removed its batches). That proves the refused batch is not in
// the log: the producer takes a new producer ID and the batch goes in once.
func TestProduceIdempotentReset(t *testing.T) {
	before := kpaxGoroutines()
	ib := newIdemBroker()
	ib.unknownAt = 2
	f := newFakeCluster(t, 1, ib.handle)
	cl := newTestClient(t, f.addr(), WithRetryBackoff(20*time.Millisecond, 100*time.Millisecond))
	p, err := cl.NewProducer(WithLinger(time.Millisecond), WithDeliveryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := newLedger()
	for round := 0; round < 3; round++ {
		for i := 0; i < 5; i++ {
			if err := l.produce(ctx, p, "t", []byte("k"), 10); err != nil {
				t.Fatal(err)
			}
		}
		if err := flushOrDump(t, p, ctx); err != nil {
			t.Fatal(err)
		}
	}
	closeWithin(t, p, 5*time.Second)
	cl.Close()
	f.close()
	fig := l.check(ib.log())
	ib.mu.Lock()
	pids := ib.pids
	ib.mu.Unlock()
	t.Logf("figures: %v; producer IDs %v", fig, pids)
	if fig.lost > 0 || fig.dups > 0 || fig.reorders > 0 || fig.maybe+fig.failed+fig.noOutcome > 0 || l.multi > 0 {
		t.Fatalf("%v (first error %v)", fig, l.firstErr())
	}
	if len(pids) != 2 {
		t.Fatalf("producer IDs %v: want a second one after UNKNOWN_PRODUCER_ID", pids)
	}
	if leaked := newGoroutines(before, 3*time.Second); leaked != "" {
		t.Fatalf("goroutines left after Close:\n%s", leaked)
	}
}

// TestProduceIdempotentNewPartition: a just-created partition's leader
// answers the first Produce NOT_LEADER_OR_FOLLOWER, and, as Kafka does,
// takes any first sequence from a producer ID it has no state for. Had the
// producer pipelined a partition's next batches behind its first, the
// leader would take them first and the first batch would never fit again
// (lost, or reordered): a partition has one batch in flight until its first
// is acknowledged. Without that limit this test fails (one acknowledged
// record lost: the first batch's retry is answered as a duplicate), which
// shows the fake's fault bites.
func TestProduceIdempotentNewPartition(t *testing.T) {
	ib := newIdemBroker()
	ib.notReady, ib.notReadyFor, ib.notReadyAt = true, 300*time.Millisecond, make(chan struct{})
	f := newFakeCluster(t, 1, ib.handle)
	cl := newTestClient(t, f.addr(), WithRetryBackoff(20*time.Millisecond, 100*time.Millisecond))
	p, err := cl.NewProducer(WithLinger(time.Millisecond), WithDeliveryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := newLedger()
	for i := 0; i < 20; i++ { // the first batch, then a batch or so every 5ms while it waits
		if err := l.produce(ctx, p, "t", []byte("k"), 10); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-ib.notReadyAt
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := flushOrDump(t, p, ctx); err != nil {
		t.Fatal(err)
	}
	closeWithin(t, p, 5*time.Second)
	cl.Close()
	f.close()
	fig := l.check(ib.log())
	ib.mu.Lock()
	produces := ib.produces
	ib.mu.Unlock()
	t.Logf("figures: %v; %d Produce requests", fig, produces)
	if fig.lost > 0 || fig.dups > 0 || fig.reorders > 0 || fig.maybe+fig.failed+fig.noOutcome > 0 || l.multi > 0 {
		t.Fatalf("%v (first error %v)", fig, l.firstErr())
	}
}

// TestProduceCallbackReenters: a record's callback produces another record
// and flushes. Callbacks run outside the producer's locks, so neither
// deadlocks; callbacks of one partition keep their order.
func TestProduceCallbackReenters(t *testing.T) {
	before := kpaxGoroutines()
	f := newFakeCluster(t, 1, nil)
	cl := newTestClient(t, f.addr())
	p, err := cl.NewProducer(WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var order []string
	var inner []error
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	done := make(chan struct{})
	for i := 0; i < 3; i++ {
		name := fmt.Sprint("outer", i)
		err := p.Produce(ctx, &Record{Topic: "t", Key: []byte("k"), Value: []byte(name)}, func(_ *Record, err error) {
			note(name)
			ierr := p.Produce(ctx, &Record{Topic: "t", Key: []byte("k"), Value: []byte("inner")}, func(_ *Record, err error) { note("inner") })
			if ierr == nil {
				ierr = p.Flush(ctx)
			}
			mu.Lock()
			inner = append(inner, ierr)
			mu.Unlock()
			if name == "outer2" {
				close(done)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("a callback that produces and flushes did not return in 5s (deadlock)\n%s", newGoroutines(before, 0))
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	closeWithin(t, p, 5*time.Second)
	cl.Close()
	f.close()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("figures: callbacks in order %v; inner Produce+Flush errors %v", order, inner)
	if len(order) != 6 || order[0] != "outer0" || order[1] != "outer1" || order[2] != "outer2" {
		t.Fatalf("callbacks %v: want outer0-2 first, in order, then 3 inner", order)
	}
	for _, e := range inner {
		if e != nil {
			t.Fatalf("Produce or Flush in a callback: %v", e)
		}
	}
	if leaked := newGoroutines(before, 3*time.Second); leaked != "" {
		t.Fatalf("goroutines left after Close:\n%s", leaked)
	}
}

// TestProduceBrokersAway: an idempotent producer whose seed broker refuses
// every connection, holding one record with a 5s delivery timeout. Over 10s
// its goroutines do not grow, the record fails when its delivery timeout
// passes, and Close with a 5s deadline returns in time and leaves nothing.
func TestProduceBrokersAway(t *testing.T) {
	before := kpaxGoroutines()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused
	cl, err := New(WithSeedBrokers(addr), WithDialTimeout(500*time.Millisecond), WithRequestTimeout(time.Second),
		WithRetryBackoff(50*time.Millisecond, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p, err := cl.NewProducer(WithIdempotence(true), WithDeliveryTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		err error
		at  time.Duration
	}
	res := make(chan result, 1)
	start := time.Now()
	if err := p.Produce(context.Background(), &Record{Topic: "t", Value: []byte("v")}, func(_ *Record, err error) {
		res <- result{err, time.Since(start)}
	}); err != nil {
		t.Fatal(err)
	}
	var counts []int
	var got *result
	for i := 0; i < 10; i++ {
		time.Sleep(time.Second)
		counts = append(counts, len(kpaxGoroutines())-len(before))
		select {
		case r := <-res:
			got = &r
		default:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cstart := time.Now()
	cerr := p.Close(ctx)
	took := time.Since(cstart)
	cl.Close()
	outcome := "none"
	if got != nil {
		outcome = fmt.Sprintf("%v after %v", got.err, got.at.Round(time.Millisecond))
	}
	t.Logf("figures: goroutines each second %v; record outcome: %s; Close(5s) took %v: %v", counts, outcome, took.Round(time.Millisecond), cerr)
	if got == nil {
		t.Errorf("the record had no outcome 10s after Produce (delivery timeout 5s)")
	} else if got.err == nil || got.at > 7*time.Second {
		t.Errorf("the record's outcome %v came after %v: want a failure at about 5s", got.err, got.at)
	}
	if growth := counts[len(counts)-1] - counts[1]; growth > 3 {
		t.Errorf("goroutines grew by %d from 2s to 10s: %v", growth, counts)
	}
	if took > 5500*time.Millisecond || cerr != nil {
		t.Errorf("Close(5s) took %v: %v", took, cerr)
	}
	if leaked := newGoroutines(before, 3*time.Second); leaked != "" {
		t.Fatalf("goroutines left after Close:\n%s", leaked)
	}
}

// flakyLeader is two fake brokers, each leading one partition. Node 1
// (partition 0) appends its first Produce and drops the connection without
// an answer, and closes the next dials on ApiVersions: its batch is in
// doubt while its retries cannot even be written. Node 2 (partition 1, the
// seed) stays healthy.
type flakyLeader struct {
	mu       sync.Mutex
	flaky    *fakeCluster   // node 1
	healthy  *fakeCluster   // node 2
	parts    [2][]int       // record numbers (ledger) by offset
	next     [2]int32       // next expected sequence (one producer ID)
	produced int            // Produce requests to node 1
	refuse   int            // node 1's connections still to close at once
	pids     map[int64]bool // producer IDs seen in batches
}

func newFlakyLeader(t *testing.T) *flakyLeader {
	fl := &flakyLeader{pids: map[int64]bool{}}
	fl.healthy = newFakeCluster(t, 2, fl.handler(2))
	fl.flaky = &fakeCluster{partitions: 2, handle: fl.handler(1)}
	fl.flaky.srv = serveFake(t, nil, fl.serveFlaky)
	return fl
}

func (fl *flakyLeader) close() {
	fl.healthy.close()
	fl.flaky.close()
}

// serveFlaky answers one connection to node 1.
func (fl *flakyLeader) serveFlaky(c net.Conn) {
	fl.mu.Lock()
	refuse := fl.refuse > 0
	if refuse {
		fl.refuse--
	}
	fl.mu.Unlock()
	if refuse {
		return
	}
	var in, out []byte
	for {
		req, v, corr, buf, err := readRequest(c, in)
		in = buf
		if err != nil {
			return
		}
		resp := fl.flaky.respond(req, v)
		fl.mu.Lock()
		drop := false
		if _, ok := req.(*ProduceRequest); ok {
			fl.produced++
			if drop = fl.produced == 1; drop {
				fl.refuse = 5
			}
		}
		fl.mu.Unlock()
		if drop || resp == nil {
			return
		}
		if _, err := c.Write(appendResponse(out[:0], req, v, corr, resp)); err != nil {
			return
		}
	}
}

// handler answers Metadata (partition p led by node p+1) and Produce, with
// the broker's sequence rules, for the node.
func (fl *flakyLeader) handler(node int32) func(Request, int16) Response {
	return func(req Request, _ int16) Response {
		fl.mu.Lock()
		defer fl.mu.Unlock()
		switch r := req.(type) {
		case *MetadataRequest:
			resp := &MetadataResponse{ControllerID: 2}
			for i, f := range []*fakeCluster{fl.flaky, fl.healthy} {
				host, port, _ := net.SplitHostPort(f.addr())
				n, _ := strconv.Atoi(port)
				resp.Brokers = append(resp.Brokers, MetadataResponseBroker{NodeID: int32(i + 1), Host: host, Port: int32(n)})
			}
			for _, t := range r.Topics {
				mt := MetadataResponseTopic{Name: t.Name, TopicID: UUID{1}}
				for p := int32(0); p < 2; p++ {
					mt.Partitions = append(mt.Partitions, MetadataResponseTopicPartition{PartitionIndex: p, LeaderID: p + 1,
						ReplicaNodes: []int32{p + 1}, ISRNodes: []int32{p + 1}})
				}
				resp.Topics = append(resp.Topics, mt)
			}
			return resp
		case *ProduceRequest:
			resp := &ProduceResponse{}
			for _, td := range r.TopicData {
				rt := ProduceResponseItem{Name: td.Name, TopicID: td.TopicID}
				for _, pd := range td.PartitionData {
					rt.PartitionResponses = append(rt.PartitionResponses, fl.append(node, pd))
				}
				resp.Responses = append(resp.Responses, rt)
			}
			return resp
		}
		return nil
	}
}

// append applies one batch on node; fl.mu is held.
func (fl *flakyLeader) append(node int32, pd ProduceRequestTopicDataPartitionData) ProduceResponseItemPartitionResponse {
	out := ProduceResponseItemPartitionResponse{Index: pd.Index, BaseOffset: -1, LogAppendTimeMs: -1}
	if pd.Index != node-1 {
		out.ErrorCode = ErrNotLeaderOrFollower.Code()
		return out
	}
	b := pd.Records
	var rr RecordReader
	rr.Reset(b)
	recs, err := rr.ReadAll(nil)
	if len(b) < 61 || err != nil {
		out.ErrorCode = ErrCorruptMessage.Code()
		return out
	}
	pid, seq := int64(binary.BigEndian.Uint64(b[43:51])), int32(binary.BigEndian.Uint32(b[53:57]))
	if pid >= 0 {
		fl.pids[pid] = true
		switch want := fl.next[pd.Index]; {
		case seq < want:
			out.ErrorCode = ErrDuplicateSequenceNumber.Code()
			return out
		case seq > want:
			out.ErrorCode = ErrOutOfOrderSequenceNumber.Code()
			return out
		}
		fl.next[pd.Index] = seq + int32(len(recs))
	}
	out.BaseOffset = int64(len(fl.parts[pd.Index]))
	for _, r := range recs {
		fl.parts[pd.Index] = append(fl.parts[pd.Index], seqOf(r.Value))
	}
	return out
}

func (fl *flakyLeader) log() map[int32][]Record {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	out := map[int32][]Record{}
	for p, nums := range fl.parts {
		for i, n := range nums {
			out[int32(p)] = append(out[int32(p)], Record{Partition: int32(p), Offset: int64(i), Value: []byte(fmt.Sprintf("seq-%d-", n))})
		}
	}
	return out
}

// TestProduceIdempotentInDoubtAfterFailedDial: unkeyed records; a batch
// appended by its leader whose answer is lost with the connection, then
// retries that fail before a byte is written (the leader refuses the next
// dials) while the other partition's leader is healthy. The batch stays in
// doubt: it is retried on its partition under its producer ID and sequence
// (the leader calls it a duplicate), never moved to the other partition,
// where it would be in the log twice. The control without idempotence
// shows the fault bites (the retry is appended again).
func TestProduceIdempotentInDoubtAfterFailedDial(t *testing.T) {
	for _, idem := range []bool{true, false} {
		name := "idempotent"
		if !idem {
			name = "control"
		}
		t.Run(name, func(t *testing.T) {
			before := kpaxGoroutines()
			fl := newFlakyLeader(t)
			cl := newTestClient(t, fl.healthy.addr(), WithRetryBackoff(20*time.Millisecond, 100*time.Millisecond),
				WithRequestTimeout(2*time.Second))
			p, err := cl.NewProducer(WithIdempotence(idem), WithLinger(time.Millisecond), WithDeliveryTimeout(20*time.Second),
				WithPartitionAvoidance(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// Batches go to either partition (sticky, random): produce until
			// one reached node 1 and a little more.
			l := newLedger()
			for i := 0; i < 500; i++ {
				if err := l.produce(ctx, p, "t", nil, 10); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Millisecond)
				fl.mu.Lock()
				hit := fl.produced > 0
				fl.mu.Unlock()
				if hit && i >= 40 {
					break
				}
			}
			if err := flushOrDump(t, p, ctx); err != nil {
				t.Fatal(err)
			}
			closeWithin(t, p, 5*time.Second)
			cl.Close()
			fl.close()
			fig := l.check(fl.log())
			fl.mu.Lock()
			produced, pids := fl.produced, len(fl.pids)
			fl.mu.Unlock()
			t.Logf("figures (%s): %v; %d Produce requests to the flaky leader, %d producer IDs", name, fig, produced, pids)
			if fig.lost > 0 || fig.noOutcome > 0 || l.multi > 0 || fig.strangers > 0 || produced == 0 {
				t.Fatalf("%v, %d with several outcomes, %d Produce requests to the flaky leader", fig, l.multi, produced)
			}
			if idem {
				if fig.dups > 0 || fig.maybe+fig.failed > 0 || pids != 1 {
					t.Fatalf("idempotent: %v, %d producer IDs (want 1), first error %v", fig, pids, l.firstErr())
				}
			} else if fig.dups == 0 {
				t.Fatalf("control without idempotence: no duplicates: the fault did not bite")
			}
			if leaked := newGoroutines(before, 3*time.Second); leaked != "" {
				t.Fatalf("goroutines left after Close:\n%s", leaked)
			}
		})
	}
}
