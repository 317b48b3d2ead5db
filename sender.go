package kpax

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unsafe"
)

// The producer's sending side. One sender goroutine cuts batches (full, or
// lingered long enough) and groups them into one Produce request per broker;
// per broker, a sink goroutine dials, encodes and writes requests in order
// (so sequence numbers reach the broker in order), and a completion
// goroutine handles the responses in the same order.

// Idempotence. The promise is that a record is in its partition's log at
// most once, in Produce order, whatever is retried. The broker keeps it
// when every batch it may hold is only ever sent under one producer ID,
// epoch and base sequence; so:
//
//   - One InitProducerId at a time (pidAsking). The producer sends nothing
//     until it has an ID, and asks again only when a reset is wanted, no
//     request is in flight and no batch is in doubt (applyProducerID checks
//     it again when the answer comes).
//   - A batch gets its ID and sequence when first dispatched (number) and
//     keeps them until it settles: acknowledged, a duplicate (in the log
//     already), or failed at its delivery timeout; one that may have been
//     written is then reported as ErrMaybePersisted. Only a batch that
//     never reached a broker gives its sequence back (retryBatch), and
//     only a refused one (below) is renumbered.
//   - A batch is in doubt while it may be in the log under its ID: written
//     (maybeSent) and neither settled nor refused. Timeouts, lost
//     connections and leader changes leave it in doubt: it is retried, in
//     order, with the same ID and sequence until the leader acknowledges
//     it or calls it a duplicate.
//   - A reset (new producer ID, every partition at sequence 0) is wanted
//     only when a leader proves that the batches it refused are not in its
//     log (KIP-360, sequenceError): UNKNOWN_PRODUCER_ID with the log start
//     known, OUT_OF_ORDER_SEQUENCE_NUMBER for the batch right after all
//     settled ones, INVALID_PRODUCER_EPOCH. Those batches, and the later
//     ones of their partition, are refused. While a reset waits, batches
//     numbered under the current ID that are not refused keep being retried
//     (so that doubt ends); nothing new is cut.

// sink sends one broker's Produce requests.
type sink struct {
	p        *Producer
	node     int32
	queue    chan []*batch // requests to send
	flights  chan *flight  // sent, waiting for a response
	stopc    chan struct{}
	inflight int // requests queued or in flight; p.mu

	abandoned []*flight // left when the producer closed; p.mu

	enc   BatchEncoder // run's encoder, with its compression scratch
	ends  []int        // run's scratch: where each batch's bytes start and end in buf
	ratio float64      // run's: the last compressed frame's size estimate ratio (sender_frame.go)
	bufs  chan []byte  // request buffers free for reuse
	// out is run's: the frames handed to a connection whose buffers have not come back
	// (sender_frame.go, freeBuf).
	out []outFrame
	// oversized counts the frames in a row that took a free buffer much larger than they
	// needed (frameBuf).
	oversized int
}

type flight struct {
	batches []*batch
	c       *conn
	call    *call
	buf     []byte // the request's frame until it is queued (sender_frame.go)
	charged int    // the frame's size, taken from the client's memory budget until releaseBuf
	kept    bool   // buf is the sink's kept request buffer (frameBuf), outside the budget
}

// releaseBuf keeps the buffer of a flight whose request was never queued
// for another request (a queued one's goes back from the connection's
// writer once written, see conn.sendFrame).
func (s *sink) releaseBuf(f *flight) {
	if f.charged > 0 {
		s.p.budget.release(f.charged)
		f.charged = 0
	}
	if f.buf == nil {
		return
	}
	select {
	case s.bufs <- f.buf[:0]:
	default:
	}
	f.buf = nil
}

// reqBufsKept is how many request buffers a sink keeps for reuse (the
// writer gives a frame back once written): one per frame that may wait for
// the writer (maxUnwritten, or the requests in flight if fewer) and one
// being encoded, since the connection writes several queued frames together
// and gives them back together; one under a memory budget (kept buffers are
// outside it).
func reqBufsKept(p *Producer) int {
	if p.budget != nil {
		return 1
	}
	return min(p.cfg.maxInFlight, maxUnwritten) + 1
}

func (p *Producer) sinkFor(node int32) *sink {
	s := p.brokers[node]
	if s == nil {
		s = &sink{p: p, node: node, queue: make(chan []*batch, p.cfg.maxInFlight+1),
			flights: make(chan *flight, p.cfg.maxInFlight+1), stopc: make(chan struct{}),
			bufs: make(chan []byte, reqBufsKept(p))}
		p.brokers[node] = s
		p.wg.Add(2)
		go s.run()
		go s.complete()
	}
	return s
}

func (s *sink) stop() { close(s.stopc) }

// sender cuts and dispatches batches whenever woken or a linger, backoff or
// delivery deadline passes.
func (p *Producer) sender() {
	defer p.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		p.routeQueued()
		wait := p.collect()
		t.Reset(wait)
		select {
		case <-p.wake:
		case <-t.C:
		case <-p.quit:
			return
		}
	}
}

// collect dispatches every ready batch and returns how long to sleep.
func (p *Producer) collect() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.setClock(now)
	wait := 100 * time.Millisecond
	for _, ps := range p.parts {
		p.expire(ps, now) // whatever else waits: outcomes come at the delivery timeout
	}
	draining := false // a reset waits: only retries under the current ID go
	// A transactional producer's ID comes from txn.go.
	if p.txn == nil && p.cfg.idempotent && (p.pid.id < 0 || p.resetPID) {
		if p.idemErr != nil { // sender_idem.go
			for _, ps := range p.parts {
				p.dropQueued(ps, p.idemErr)
			}
			return wait
		}
		if !p.pidAsking && p.totalInflight() == 0 && !p.inDoubt() {
			p.initProducerID()
		}
		if p.pidAsking || p.pid.id < 0 {
			return wait
		}
		draining = true
	}
	p.reloadTopics(now)
	requests := map[*sink][]*batch{}
	again := false
	for _, ps := range p.parts {
		if ps.tp.partition < 0 {
			if len(ps.pending) > 0 {
				p.loadTopic(ps.tp.topic)
			}
			continue
		}
		if len(ps.pending) == 0 && len(ps.retry) == 0 {
			continue
		}
		if ps.leader < 0 {
			p.loadTopic(ps.tp.topic)
			continue
		}
		if now.Before(ps.retryAt) {
			wait = min(wait, ps.retryAt.Sub(now))
			continue
		}
		if p.txn != nil && !p.txn.writable(ps) { // not yet in the transaction (txn.go)
			continue
		}
		s := p.sinkFor(ps.leader)
		// A partition's batches go to one broker at a time: after a leader
		// change, what is in flight to the former leader ends first, lest
		// the new one get later batches before earlier ones (refused as
		// out of order, or appended out of order without idempotence).
		if s.inflight >= p.cfg.maxInFlight || ps.inflight >= p.partitionLimit(ps) || (ps.inflight > 0 && ps.sentTo != ps.leader) {
			if !ps.congested && len(ps.pending) > 0 && now.Sub(ps.firstAt) > p.cfg.linger+congestionDelay {
				// Its broker does not take requests (full pipeline, no
				// response): unkeyed records go elsewhere until a batch
				// of it leaves.
				ps.congested = true
				p.unavail(ps)
			}
			continue
		}
		var b *batch
		switch {
		case len(ps.retry) > 0:
			if ps.inflight > 0 {
				continue // retries go one at a time, in order, after what is in flight
			}
			if b = ps.retry[0]; draining && (b.seq < 0 || b.pid != p.pid || ps.isRefused(b)) {
				continue
			}
			ps.retry = ps.retry[1:]
		case draining:
			continue
		default:
			if ps.pendBytes < p.cfg.maxBatchBytes && p.flushing == 0 && !p.closing {
				if due := ps.firstAt.Add(p.cfg.linger); now.Before(due) {
					wait = min(wait, due.Sub(now))
					continue
				}
			}
			b = p.cutBatch(ps)
		}
		if p.cfg.idempotent && b.seq < 0 {
			p.number(b)
		}
		ps.inflight++
		ps.sentTo = ps.leader
		requests[s] = append(requests[s], b)
		if len(ps.pending) > 0 || len(ps.retry) > 0 {
			again = true
		}
	}
	for s, bs := range requests {
		s.inflight++
		s.queue <- bs // never blocks: inflight < maxInFlight < cap
	}
	if again {
		p.poke()
	}
	// Not later than the earliest due time: a sender woken by an acknowledgement just before a
	// linger ends sleeps out the rest of it, not a millisecond (the floor only keeps clock
	// rounding from spinning the loop).
	return max(wait, minSenderSleep)
}

// minSenderSleep is the shortest sleep of the sender between passes.
const minSenderSleep = 20 * time.Microsecond

// number gives a batch its producer ID and sequence numbers as it is
// dispatched: in the partition's order, whichever broker and request it goes
// to, so that the broker appends batches in that order or refuses them
// (OUT_OF_ORDER_SEQUENCE_NUMBER). Sequences wrap after MaxInt32, as in
// Kafka. p.mu is held.
func (p *Producer) number(b *batch) {
	b.seq, b.pid = b.ps.seq, p.pid
	b.ps.seq = seqAfter(b)
}

// seqAfter is the sequence number after a numbered batch's.
func seqAfter(b *batch) int32 {
	next := int64(b.seq) + int64(len(b.recs))
	if next > math.MaxInt32 {
		next -= math.MaxInt32 + 1
	}
	return int32(next)
}

// cutBatch takes a batch's worth of pending records. p.mu is held.
func (p *Producer) cutBatch(ps *partState) *batch {
	// The oldest run, whole: a full one, or the one that fills.
	var recs []pending
	if len(ps.full) > 0 {
		recs = ps.full[0]
		ps.full = slices.Delete(ps.full, 0, 1)
		ps.firstAt = time.Now()
	} else {
		recs, ps.pending, ps.runBytes = ps.pending, nil, 0
	}
	bytes := 0
	for i := range recs {
		bytes += recs[i].size
	}
	b := &batch{ps: ps, recs: recs, bytes: bytes, seq: -1, order: ps.cuts}
	ps.cuts++
	ps.pendBytes -= bytes
	if sp, ok := p.part.(interface{ batchSent(string, int32) }); ok { // sticky ones
		sp.batchSent(ps.tp.topic, ps.tp.partition)
	}
	if ps.failures > 0 {
		// A partition that failed is probed with this one batch after its
		// avoidance period; unkeyed records keep away until it succeeds.
		p.avoid(ps, time.Now())
	} else if ps.congested {
		ps.congested = false
		if ts := p.topics[ps.tp.topic]; ts != nil {
			p.reloadBy(ts, time.Time{}) // available again on the next pass
		}
	}
	return b
}

// congestionDelay is how long past its linger a partition's records may
// wait for room in its broker's pipeline before unkeyed records avoid the
// partition (a stalled broker would otherwise gather them all: the sticky
// partitioner moves on only when a batch leaves).
const congestionDelay = 50 * time.Millisecond

// avoid keeps unkeyed records away from a partition for the avoidance
// period, or until a batch of it succeeds. p.mu is held.
func (p *Producer) avoid(ps *partState, now time.Time) {
	ps.avoidUntil = now.Add(p.cfg.avoidPeriod)
	if ts := p.topics[ps.tp.topic]; ts != nil {
		p.reloadBy(ts, ps.avoidUntil)
	}
	p.unavail(ps)
}

// unavail takes a partition out of its topic's available partitions, unless
// it is the last one. p.mu is held.
func (p *Producer) unavail(ps *partState) {
	ts := p.topics[ps.tp.topic]
	if ts == nil || ts.n <= 1 {
		return
	}
	if len(ts.avail) == 0 { // all were available
		avail := make([]int32, 0, ts.n-1)
		for i := 0; i < ts.n; i++ {
			if int32(i) != ps.tp.partition {
				avail = append(avail, int32(i))
			}
		}
		p.setAvail(ts, avail)
		return
	}
	if i := slices.Index(ts.avail, ps.tp.partition); i >= 0 && len(ts.avail) > 1 {
		p.setAvail(ts, slices.Delete(slices.Clone(ts.avail), i, i+1)) // views share the old slice
	}
}

// expire fails records past their delivery timeout. p.mu is held.
func (p *Producer) expire(ps *partState, now time.Time) {
	for len(ps.pending) > 0 {
		run := &ps.pending // the oldest run
		if len(ps.full) > 0 {
			run = &ps.full[0]
		}
		pr := (*run)[0]
		if p.since(now) <= pr.deadline {
			break
		}
		(*run)[0] = pending{}
		*run = (*run)[1:]
		switch {
		case len(ps.full) == 0:
			ps.runBytes -= pr.size
		case len(ps.full[0]) == 0:
			ps.full = slices.Delete(ps.full, 0, 1)
		}
		ps.pendBytes -= pr.size
		p.finish(pr, fmt.Errorf("%w: no leader or no room to send %s/%d within the delivery timeout", ErrRequestTimedOut, ps.tp.topic, ps.tp.partition))
	}
	for len(ps.retry) > 0 && len(ps.retry[0].recs) > 0 && p.since(now) > ps.retry[0].recs[0].deadline {
		b := ps.retry[0]
		ps.retry = ps.retry[1:]
		p.failBatch(b, fmt.Errorf("delivery timeout after %d attempts: %w", b.attempts, b.lastErr))
	}
}

func (p *Producer) totalInflight() int {
	n := 0
	for _, s := range p.brokers {
		n += s.inflight
	}
	return n
}

// run dials, encodes and writes the sink's requests in order.
func (s *sink) run() {
	defer s.p.wg.Done()
	defer close(s.flights)
	p := s.p
	for {
		var bs []*batch
		select {
		case bs = <-s.queue:
		case <-s.stopc:
			p.mu.Lock()
			for {
				select {
				case bs := <-s.queue:
					s.abandoned = append(s.abandoned, &flight{batches: bs})
				default:
					p.mu.Unlock()
					return
				}
			}
		}
		f := &flight{batches: bs}
		if err := s.send(f); err != nil {
			p.mu.Lock()
			if errors.Is(err, errFlightEmpty) { // every batch failed already
				s.inflight--
				p.poke()
			} else {
				p.handle(s, f, nil, err, false)
			}
			p.mu.Unlock()
			s.releaseBuf(f)
			continue
		}
		s.flights <- f
	}
}

// send encodes a request for the broker's Produce version and writes it.
func (s *sink) send(f *flight) error {
	p := s.p
	ctx, cancel := context.WithTimeout(p.ctx, p.cl.cfg.dialTimeout)
	defer cancel()
	pool, err := p.cl.pool(s.node)
	if err != nil {
		return err
	}
	if wait := pool.dialBackoff(laneDefault); wait > 0 {
		// The broker failed its last dial: waiting here would hold the
		// partitions' batches for this broker while their leader may have
		// moved; they go back to retry, with fresh metadata.
		return &BrokerError{NodeID: s.node, Addr: pool.addr, Err: fmt.Errorf("%w: next dial in %v, after a failed one", ErrNoBroker, wait.Round(time.Millisecond))}
	}
	c, err := pool.get(ctx, laneDefault)
	if err != nil {
		return err
	}
	req := &ProduceRequest{Acks: p.cfg.acks, TimeoutMs: int32(p.cfg.produceTimeout / time.Millisecond)}
	v, err := c.versions.pick(req, p.cl.cfg.maxVersions)
	if err != nil {
		return err
	}
	var attrs BatchAttrs
	p.mu.Lock()
	if p.txn != nil { // txn.go
		v, req.TransactionalID, attrs = min(v, p.txn.produceMaxVersion()), &p.txn.id, AttrTransactional
	}
	p.mu.Unlock()
	if f.batches = p.dropUnfit(f.batches, v, &c.versions); len(f.batches) == 0 { // legacy.go
		return errFlightEmpty
	}
	sortByTopic(f.batches)
	p.mu.Lock()
	idempotent := p.cfg.idempotent && v >= 3 // batches are numbered by collect
	for _, b := range f.batches {
		addToProduce(req, b.ps.tp, p.topicID(b.ps.tp.topic))
	}
	p.mu.Unlock()
	if !produceHasIDs(req) {
		v = min(v, 12) // v13 names topics by ID only (KIP-516)
	}
	// Every batch is encoded in place into the request's frame
	// (sender_frame.go), read from the pending records.
	if err := s.encodeProduce(f, req, frameEncoding{version: v, flex: req.IsFlexible(v), attrs: attrs, idempotent: idempotent}); err != nil {
		return err
	}
	if b := p.budget; b != nil {
		// Counted while the request lives (until its response,
		// releaseBuf), beyond the budget if need be: its records are
		// already in, and only its outcome frees them. A new buffer
		// counts whole; the kept one is a fixed cost outside the budget
		// (WithMemoryBudget), so only the frame's bytes in it count.
		f.charged = cap(f.buf)
		if f.kept {
			f.charged = len(f.buf)
		}
		b.take(f.charged)
	}
	call, err := c.sendFrame(ctx, req, v, expectsNoResponse(req), f.buf, s.bufs)
	if err != nil {
		return err
	}
	if cap(f.buf) > 0 {
		s.out = append(s.out, outFrame{call: call, conn: c, data: unsafe.SliceData(f.buf)})
	}
	f.buf = nil // the connection's writer gives it back once written
	p.mu.Lock()
	for _, b := range f.batches {
		b.sentBefore, b.maybeSent = b.maybeSent, true
	}
	p.mu.Unlock()
	f.c, f.call = c, call
	return nil
}

// unwritten reports whether a flight's request is known never to have been
// written: its call ended without a byte of it on the wire (its connection
// closed before the writer took it). Its batches are then only as "maybe
// persisted" as they were before. Calls still running count as written.
func (f *flight) unwritten() bool {
	if f.call == nil {
		return false
	}
	select {
	case <-f.call.done:
		return f.call.written == 0
	default:
		return false
	}
}

// notWritten undoes what sending a flight that was never written marked.
// A flight that failed before its call (no connection, dial backoff) marked
// nothing: its batches keep maybeSent from their earlier requests, which is
// what keeps a batch written before in doubt, on its partition, under its
// sequence numbers. p.mu is held.
func (f *flight) notWritten() {
	if f.call == nil {
		return
	}
	for _, b := range f.batches {
		b.maybeSent = b.sentBefore
	}
}

// batchRecords is a batch's records as the encoders' recordList.
type batchRecords []pending

func (s batchRecords) Len() int         { return len(s) }
func (s batchRecords) At(i int) *Record { return s[i].rec }

// topicID is the topic's ID as last loaded (zero while unknown, or from a
// broker before Kafka 2.8). p.mu is held.
func (p *Producer) topicID(topic string) UUID {
	if ts := p.topics[topic]; ts != nil && ts.meta != nil {
		return ts.meta.ID
	}
	return UUID{}
}

// addToProduce adds a batch's partition to the request, under its topic's
// name and ID (Produce v13 names topics by ID only; older versions by
// name); its Records are set once the frame is encoded.
func addToProduce(req *ProduceRequest, tp topicPartition, id UUID) {
	i := len(req.TopicData) - 1 // batches come sorted by topic (sortByTopic)
	if i < 0 || req.TopicData[i].Name != tp.topic {
		req.TopicData = append(req.TopicData, ProduceRequestTopicData{Name: tp.topic, TopicID: id})
		i = len(req.TopicData) - 1
	}
	req.TopicData[i].PartitionData = append(req.TopicData[i].PartitionData,
		ProduceRequestTopicDataPartitionData{Index: tp.partition})
}

// complete waits for the responses of the sink's requests, in order.
func (s *sink) complete() {
	defer s.p.wg.Done()
	p := s.p
	for f := range s.flights {
		resp, err := f.c.await(p.ctx, f.call, p.cl.cfg.requestTimeout+p.cfg.produceTimeout)
		p.mu.Lock()
		if p.closing && errors.Is(err, context.Canceled) {
			s.abandoned = append(s.abandoned, f)
			s.inflight--
		} else {
			p.handle(s, f, resp, err, !f.unwritten())
		}
		p.mu.Unlock()
		s.releaseBuf(f)
		p.poke()
	}
}

// handle takes the outcome of a request. p.mu is held.
func (p *Producer) handle(s *sink, f *flight, r Response, err error, written bool) {
	s.inflight--
	for _, b := range f.batches {
		b.ps.inflight--
	}
	if err != nil {
		if !written {
			f.notWritten()
		}
		p.cl.meta.invalidate()
		for _, b := range f.batches {
			p.retryBatch(b, err, true)
		}
		return
	}
	if r == nil { // acks=0
		for _, b := range f.batches {
			p.succeed(b, -1)
		}
		return
	}
	resp := r.(*ProduceResponse)
	p.cl.meta.nameTopics(f.call.req, resp) // v13 names topics by ID
	for _, b := range f.batches {
		pr := findPartitionResponse(resp, b.ps.tp)
		if pr == nil {
			p.retryBatch(b, fmt.Errorf("%w: no response for %s/%d", ErrMalformed, b.ps.tp.topic, b.ps.tp.partition), true)
			continue
		}
		hinted := p.leaderHint(b.ps, pr, resp)
		kerr := ErrorForCode(pr.ErrorCode)
		if kerr != nil && p.txn != nil && p.txn.produceFailed(b, kerr) { // txn.go
			continue
		}
		switch {
		case kerr == nil:
			p.succeed(b, pr.BaseOffset)
		case errors.Is(kerr, ErrDuplicateSequenceNumber):
			p.succeed(b, -1) // written before: the broker deduplicated it
		case p.sequenceError(b, kerr, pr.LogStartOffset):
		case IsRetriable(kerr) && hinted && isLeaderError(kerr):
			// KIP-951: the answer names the new leader; go there at once.
			p.retryBatch(b, kerr, false)
			b.ps.retryAt = time.Time{}
		case IsRetriable(kerr):
			p.retryBatch(b, kerr, isLeaderError(kerr))
		default:
			p.failBatch(b, &PartitionError{Topic: b.ps.tp.topic, Partition: b.ps.tp.partition,
				Err: fmt.Errorf("%w (%s)", kerr, deref(pr.ErrorMessage))})
		}
	}
}

// leaderHint applies a partition answer's leader hint (KIP-951: a Produce
// response names the partition's new leader and its endpoint) to the
// metadata cache and the partition, and reports whether it named a newer
// leader than the partition's. p.mu is held.
func (p *Producer) leaderHint(ps *partState, pr *ProduceResponseItemPartitionResponse, resp *ProduceResponse) bool {
	if pr.CurrentLeader == nil || pr.CurrentLeader.LeaderID < 0 {
		return false
	}
	var eps []Broker
	for _, e := range resp.NodeEndpoints {
		eps = append(eps, Broker{NodeID: e.NodeID, Host: e.Host, Port: e.Port, Rack: deref(e.Rack)})
	}
	leader, epoch := pr.CurrentLeader.LeaderID, pr.CurrentLeader.LeaderEpoch
	p.cl.meta.updateLeader(ps.tp.topic, ps.tp.partition, leader, epoch, eps)
	if _, known := p.cl.meta.broker(leader); !known || epoch <= ps.leaderEpoch && leader == ps.leader {
		return false
	}
	ps.leader, ps.leaderEpoch = leader, epoch
	return true
}

func isLeaderError(err error) bool {
	return errors.Is(err, ErrNotLeaderOrFollower) || errors.Is(err, ErrLeaderNotAvailable) ||
		errors.Is(err, ErrUnknownTopicOrPartition) || errors.Is(err, ErrFencedLeaderEpoch) ||
		errors.Is(err, ErrKafkaStorageError) || errors.Is(err, ErrNotEnoughReplicas) ||
		errors.Is(err, ErrUnknownTopicId) // v13: the topic was deleted (and made again?)
}

func findPartitionResponse(resp *ProduceResponse, tp topicPartition) *ProduceResponseItemPartitionResponse {
	for i := range resp.Responses {
		if resp.Responses[i].Name != tp.topic {
			continue
		}
		for j := range resp.Responses[i].PartitionResponses {
			if pr := &resp.Responses[i].PartitionResponses[j]; pr.Index == tp.partition {
				return pr
			}
		}
	}
	return nil
}

// succeed completes a batch written at base. p.mu is held.
func (p *Producer) succeed(b *batch, base int64) {
	ps := b.ps
	p.settle(b)
	if ps.failures > 0 {
		// Available again at once: the next topic reload says so.
		ps.failures = 0
		ps.avoidUntil = time.Time{}
		if ts := p.topics[ps.tp.topic]; ts != nil {
			p.reloadBy(ts, time.Time{})
		}
	}
	ps.backoff = p.cl.cfg.retryBackoff
	// produce_outcome.go: deliver sets the records' partition and offset,
	// outside the lock, runs their callbacks and gives the slice back.
	p.queueBatch(b.recs, ps.tp.partition, base)
	b.recs = nil
}

// retryBatch puts a failed batch back for another try after a backoff. A
// batch that never reached a broker and holds only unkeyed records fails
// over to another partition instead. p.mu is held.
func (p *Producer) retryBatch(b *batch, err error, leaderGone bool) {
	ps := b.ps
	b.attempts++
	b.lastErr = err
	p.cl.cfg.logger.Debug("kpax: produce retry", "topic", ps.tp.topic, "partition", ps.tp.partition, "seq", b.seq,
		"order", b.order, "records", len(b.recs), "pid", b.pid.id, "maybe_sent", b.maybeSent, "attempt", b.attempts,
		"settled", ps.settled, "acked_next", ps.ackedNext, "err", err)
	now := time.Now()
	ps.failures++
	ps.retryAt = now.Add(ps.backoff)
	ps.backoff = min(2*ps.backoff, p.cl.cfg.retryBackoffMax)
	p.avoid(ps, now)
	if leaderGone {
		// The retry waits for fresh metadata (collect loads it while the
		// leader is unknown) and goes at once when it names a new leader
		// (applyTopic); a backoff past leaderBackoffMax would only delay
		// it once the cluster has moved the leader.
		ps.leader = -1
		ps.retryAt = now.Add(min(ps.backoff, max(p.cl.cfg.retryBackoff, leaderBackoffMax)))
		p.cl.meta.invalidate()
	}
	if len(b.recs) > 0 && p.since(now) > b.recs[0].deadline {
		p.failBatch(b, fmt.Errorf("delivery timeout after %d attempts: %w", b.attempts, err))
		return
	}
	if !b.maybeSent && b.seq >= 0 && b.pid == p.pid && seqAfter(b) == ps.seq {
		// Never written and the partition's last numbered batch: its
		// sequence numbers can be given back, and it can move.
		ps.seq, b.seq = b.seq, -1
	}
	if !b.maybeSent && b.seq < 0 && p.canFailOver(b) {
		ts := p.topics[ps.tp.topic]
		avail := slices.DeleteFunc(slices.Clone(ts.avail), func(x int32) bool { return x == ps.tp.partition })
		if len(avail) == 0 && ts.n > 1 {
			for i := 0; i < ts.n; i++ {
				if int32(i) != ps.tp.partition {
					avail = append(avail, int32(i))
				}
			}
		}
		if len(avail) > 0 {
			p.setAvail(ts, avail)
			p.routeLater(b.recs...)
			b.recs = nil
			return
		}
	}
	// Retries go in the order the batches were cut: that of their records
	// and of their sequence numbers.
	i, _ := slices.BinarySearchFunc(ps.retry, b, func(x, y *batch) int { return cmp.Compare(x.order, y.order) })
	ps.retry = slices.Insert(ps.retry, i, b)
}

// leaderBackoffMax caps a partition's retry backoff after its leader failed
// (a leader error, a lost connection): past it, the wait only delays the
// retry after the cluster elected a new leader.
const leaderBackoffMax = time.Second

// canFailOver reports whether a batch may move to another partition: every
// record is unkeyed and the partitioner is not manual.
func (p *Producer) canFailOver(b *batch) bool {
	if _, manual := p.part.(manualPartitioner); manual {
		return false
	}
	for _, pr := range b.recs {
		if pr.rec.Key != nil {
			return false
		}
	}
	return true
}
