package kpax

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
	"unsafe"
)

// This file holds the Consumer's per-broker fetchers (see fetch.go for the
// manager that starts them): one Fetch request at a time for every
// partition the broker leads, in a fetch session where the broker supports
// them (KIP-227), decoded into a chunk of records that Poll hands out.

// fetchChunk is one decoded Fetch response: the records Poll returns at
// once, reused after the next Poll.
type fetchChunk struct {
	recs    []Record
	ranges  []chunkRange
	readers []RecordReader // one per partition with data
	bytes   int            // charged to the buffer budget
	frame   []byte         // the response the records alias, back to the frame pool on release
}

// chunkRange is one partition's records in a chunk.
type chunkRange struct {
	part       *fetchPart
	gen        uint64
	start, end int   // recs[start:end]
	next       int64 // position after them
	epoch      int32 // leader epoch of the last batch
}

func (ch *fetchChunk) reset() {
	clear(ch.recs[:cap(ch.recs)])
	ch.recs = ch.recs[:0]
	clear(ch.ranges)
	ch.ranges = ch.ranges[:0]
	for i := range ch.readers {
		ch.readers[i].Reset(nil)
	}
	ch.bytes = 0
	ch.frame = nil
}

// chunk returns a free chunk; c.mu is held.
func (c *Consumer) chunk() *fetchChunk {
	if n := len(c.free); n > 0 {
		ch := c.free[n-1]
		c.free = c.free[:n-1]
		return ch
	}
	return &fetchChunk{}
}

// fetcher fetches the partitions one broker leads.
type fetcher struct {
	c    *Consumer
	node int32
	kick chan struct{} // cap 1

	// Fetch session (KIP-227): sessID 0 is none; sessEpoch 0 asks for a
	// new one. sess is what the broker's session holds.
	sessID, sessEpoch int32
	sess              map[topicPartition]sessEntry

	sent    []sentPart
	results []fetchResult
	index   map[topicPartition]int
	ids     map[UUID]string
	aborted []int64
}

type sessEntry struct {
	offset int64
	epoch  int32
}

// sentPart is a partition of the Fetch in flight.
type sentPart struct {
	fp     *fetchPart
	gen    uint64
	offset int64
	epoch  int32 // fp.fetchEpoch when sent: the fetcher reads it without c.mu
}

// fetchResult is what a response said of a sentPart.
type fetchResult struct {
	found     bool
	code      int16
	rng       chunkRange
	err       error // corrupt data
	leader    *FetchResponseItemPartitionCurrentLeader
	preferred int32
}

func (f *fetcher) wakeUp() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *fetcher) run() {
	c := f.c
	defer c.wg.Done()
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		budget := c.cl.cfg.budget
		var freed <-chan struct{} // the budget is full: closed when it frees bytes
		if budget != nil {
			freed = budget.waitFor(fetchReserveMin(budget))
		}
		if freed != nil || c.buffered >= c.cfg.bufferBytes {
			space := c.space
			c.mu.Unlock()
			select {
			case <-space:
			case <-freed:
			case <-c.done:
				return
			}
			continue
		}
		req, retry := f.build(time.Now())
		if req == nil {
			c.mu.Unlock()
			wait := time.Hour
			if !retry.IsZero() {
				wait = max(time.Until(retry), time.Millisecond)
			}
			idle.Reset(wait)
			select {
			case <-f.kick:
			case <-idle.C:
			case <-c.done:
				return
			}
			continue
		}
		ch := c.chunk()
		c.mu.Unlock()
		reserved := reserveFetch(budget, req)

		r, s, err := c.cl.requestBroker(c.ctx, f.node, req)
		frame := s.frame
		if err != nil {
			if budget != nil {
				budget.release(reserved)
			}
			if c.ctx.Err() != nil {
				return
			}
			f.failed(err)
			continue
		}
		resp := r.(*FetchResponse)
		ch.frame = frame
		f.handle(ch, resp, reserved)
		if resp.ThrottleTimeMs > 0 { // KIP-219: the broker muted us for that long
			idle.Reset(time.Duration(resp.ThrottleTimeMs) * time.Millisecond)
			select {
			case <-idle.C:
			case <-c.done:
				return
			}
		}
	}
}

// build makes the next Fetch request, or returns nil and when a partition
// in backoff may be fetched again; c.mu is held.
func (f *fetcher) build(now time.Time) (*FetchRequest, time.Time) {
	c := f.c
	var retry time.Time
	f.sent = f.sent[:0]
	for _, fp := range c.parts {
		if fp.leader != f.node || fp.state != partReady || fp.paused || fp.inflight {
			continue
		}
		if fp.retryAt.After(now) {
			if retry.IsZero() || fp.retryAt.Before(retry) {
				retry = fp.retryAt
			}
			continue
		}
		f.sent = append(f.sent, sentPart{fp: fp, gen: fp.gen, offset: fp.fetch, epoch: fp.fetchEpoch})
	}
	if len(f.sent) == 0 {
		return nil, retry
	}
	slices.SortFunc(f.sent, func(a, b sentPart) int {
		return cmp.Or(cmp.Compare(a.fp.tp.topic, b.fp.tp.topic), cmp.Compare(a.fp.tp.partition, b.fp.tp.partition))
	})
	if f.index == nil {
		f.index, f.ids, f.sess = map[topicPartition]int{}, map[UUID]string{}, map[topicPartition]sessEntry{}
	}
	clear(f.index)
	clear(f.ids)
	cfg := &c.cfg
	req := &FetchRequest{
		ReplicaID: -1, MaxWaitMs: int32(cfg.maxWait / time.Millisecond), MinBytes: cfg.minBytes,
		MaxBytes:       int32(min(int(cfg.maxBytes), max(cfg.bufferBytes-c.buffered, 1024))),
		IsolationLevel: int8(cfg.isolation), SessionID: f.sessID, SessionEpoch: f.sessEpoch, RackID: c.cl.cfg.rack,
	}
	full := f.sessEpoch == 0
	if full {
		clear(f.sess)
	}
	for i, sp := range f.sent {
		fp := sp.fp
		fp.inflight = true
		f.index[fp.tp] = i
		if fp.topicID != (UUID{}) {
			f.ids[fp.topicID] = fp.tp.topic
		}
		e := sessEntry{offset: sp.offset, epoch: fp.leaderEpoch}
		if old, ok := f.sess[fp.tp]; ok && old == e {
			continue // the session has it
		}
		f.sess[fp.tp] = e
		p := FetchRequestTopicPartition{
			Partition: fp.tp.partition, CurrentLeaderEpoch: fp.leaderEpoch, FetchOffset: sp.offset,
			LastFetchedEpoch: -1, LogStartOffset: -1, PartitionMaxBytes: cfg.maxPartitionBytes,
		}
		if n := len(req.Topics); n > 0 && req.Topics[n-1].Topic == fp.tp.topic {
			req.Topics[n-1].Partitions = append(req.Topics[n-1].Partitions, p)
		} else {
			req.Topics = append(req.Topics, FetchRequestTopic{Topic: fp.tp.topic, TopicID: fp.topicID, Partitions: []FetchRequestTopicPartition{p}})
		}
	}
	if !full {
		for tp := range f.sess {
			if _, ok := f.index[tp]; ok {
				continue
			}
			delete(f.sess, tp)
			var id UUID
			if fp := c.parts[tp]; fp != nil {
				id = fp.topicID
			} else if _, tid, ok := c.cachedLeader(tp); ok {
				id = tid
			}
			if n := len(req.ForgottenTopicsData); n > 0 && req.ForgottenTopicsData[n-1].Topic == tp.topic {
				req.ForgottenTopicsData[n-1].Partitions = append(req.ForgottenTopicsData[n-1].Partitions, tp.partition)
			} else {
				req.ForgottenTopicsData = append(req.ForgottenTopicsData, FetchRequestForgottenTopicsData{Topic: tp.topic, TopicID: id, Partitions: []int32{tp.partition}})
			}
		}
	}
	if req.Topics == nil {
		req.Topics = []FetchRequestTopic{}
	}
	return req, retry
}

// resetSession makes the next request a full one: with closeOld, in the
// same session (closing it and opening a new one), else without one.
func (f *fetcher) resetSession(closeOld bool) {
	if !closeOld {
		f.sessID = 0
	}
	f.sessEpoch = 0
	clear(f.sess)
}

// failed handles a Fetch that got no response.
func (f *fetcher) failed(err error) {
	c := f.c
	c.mu.Lock()
	defer c.mu.Unlock()
	f.resetSession(true)
	for _, sp := range f.sent {
		sp.fp.inflight = false
		if c.live(partRef{sp.fp, sp.gen}) {
			sp.fp.leader, sp.fp.preferred = -1, false
			sp.fp.backoff(&c.cl.cfg)
			c.report(asPartitionError(sp.fp.tp, err))
		}
	}
	c.kickManager()
}

// handle decodes a Fetch response and queues its records for Poll.
func (f *fetcher) handle(ch *fetchChunk, resp *FetchResponse, reserved int) {
	c := f.c
	if cap(f.results) < len(f.sent) {
		f.results = make([]fetchResult, len(f.sent))
	}
	f.results = f.results[:len(f.sent)]
	clear(f.results)
	top := ErrorForCode(resp.ErrorCode)
	if top == nil {
		f.decodeAll(ch, resp, reserved)
	}
	settleFetch(c.cl.cfg.budget, reserved, ch.bytes)

	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case top == nil && resp.SessionID != 0:
		if f.sessEpoch == 0 || f.sessID != resp.SessionID {
			f.sessID = resp.SessionID
			f.sessEpoch = 0
		}
		f.sessEpoch++
		if f.sessEpoch == math.MaxInt32 {
			f.sessEpoch = 1
		}
	case top == nil:
		f.resetSession(false) // the broker keeps no session for us
	case errors.Is(top, ErrFetchSessionIdNotFound) || errors.Is(top, ErrInvalidFetchSessionEpoch) || errors.Is(top, ErrFetchSessionTopicIdError):
		c.cl.cfg.logger.Debug("kpax: fetch session reset", "broker", f.node, "err", top)
		f.resetSession(false)
	default:
		f.resetSession(true)
	}
	kick := false
	for i := range f.sent {
		sp, res := &f.sent[i], &f.results[i]
		fp := sp.fp
		fp.inflight = false
		if !c.live(partRef{fp, sp.gen}) {
			continue
		}
		if top != nil && !errors.Is(top, ErrFetchSessionIdNotFound) && !errors.Is(top, ErrInvalidFetchSessionEpoch) {
			c.partitionFailed(fp, top)
			kick = true
			continue
		}
		if !res.found {
			continue
		}
		err := ErrorForCode(res.code)
		if err == nil {
			r := res.rng
			if r.end > r.start || r.next > sp.offset {
				r.part, r.gen = fp, sp.gen
				fp.fetch, fp.fetchEpoch = r.next, r.epoch
				ch.ranges = append(ch.ranges, r)
			}
			if res.err != nil {
				c.report(&PartitionError{Topic: fp.tp.topic, Partition: fp.tp.partition, Err: res.err})
				fp.backoff(&c.cl.cfg)
			} else {
				fp.failures = 0
			}
			if res.preferred >= 0 && res.preferred != f.node {
				fp.leader, fp.preferred = res.preferred, true
				kick = true
			}
			continue
		}
		if h := res.leader; h != nil && h.LeaderID >= 0 && (errors.Is(err, ErrNotLeaderOrFollower) || errors.Is(err, ErrFencedLeaderEpoch)) {
			c.cl.meta.updateLeader(fp.tp.topic, fp.tp.partition, h.LeaderID, h.LeaderEpoch, endpoints(resp.NodeEndpoints))
			c.partitionFailed(fp, err)
			// KIP-951: the hint is in the cache; no metadata reload needed.
			m := c.cl.meta
			m.mu.Lock()
			m.stale = false
			m.mu.Unlock()
			fp.retryAt = time.Time{}
		} else {
			c.partitionFailed(fp, err)
		}
		kick = true
	}
	if kick {
		c.kickManager()
	}
	if len(ch.ranges) == 0 {
		c.release(ch)
		return
	}
	c.buffered += ch.bytes
	c.ready = append(c.ready, ch)
	c.wakePoll()
}

// decodeAll decodes every partition of a response into the chunk and
// f.results. Decompression is bounded per response, all partitions together
// (fetchDecompressBudget), not only per partition: many partitions of
// compression bombs would multiply the per-partition bound. Once the budget
// is spent, a partition that needs more stops where it is, without an error,
// and is fetched again (the first partition with data always gets a whole
// partition's bound, so every fetch makes progress).
func (f *fetcher) decodeAll(ch *fetchChunk, resp *FetchResponse, reserved int) {
	budget, first := f.c.fetchDecompressBudget(), DefaultMaxDecompressed
	if mb := f.c.cl.cfg.budget; mb != nil {
		// Under the client's memory budget: what the Fetch reserved beyond
		// its frame, and the first partition at least its floor.
		budget, first = max(reserved-len(ch.frame), 0), firstDecompressMax(mb)
	}
	if f.c.cl.cfg.budget == nil {
		// Once, not doubling batch by batch. (Under a budget the records
		// grow as decoded: a partition may stop at its decompression
		// bound, and the hint counts its compressed batches too.)
		ch.recs = slices.Grow(ch.recs, responseRecordsHint(resp))
	}
	nr := 0
	for ti := range resp.Responses {
		t := &resp.Responses[ti]
		name := t.Topic
		if t.TopicID != (UUID{}) {
			name = f.ids[t.TopicID]
		}
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			i, ok := f.index[topicPartition{name, p.PartitionIndex}]
			if !ok {
				continue
			}
			res := &f.results[i]
			res.found, res.code, res.leader, res.preferred = true, p.ErrorCode, p.CurrentLeader, p.PreferredReadReplica
			if p.ErrorCode != 0 {
				continue
			}
			if nr == len(ch.readers) {
				ch.readers = append(ch.readers, RecordReader{})
			}
			rd := &ch.readers[nr]
			nr++
			rd.MaxDecompressed = max(min(first, budget), 1)
			if nr == 1 {
				rd.MaxDecompressed = first
			}
			res.rng, res.err = f.decode(ch, rd, &f.sent[i], p)
			// The response's budget is spent, not the partition's, or the
			// partition's is spent after some batches: fetch the rest again.
			// Only a first batch beyond a whole partition's bound is an error.
			progress := res.rng.next > f.sent[i].offset
			if res.err != nil && (rd.MaxDecompressed < first || progress) && errors.Is(res.err, ErrDecompressedTooLarge) {
				res.err = nil
			}
			budget -= cap(rd.scratch)
			ch.bytes += len(p.Records) + cap(rd.scratch) // what is allocated, not only used
		}
	}
	if f.c.cl.cfg.budget != nil {
		ch.bytes += cap(ch.recs) * int(unsafe.Sizeof(Record{})) // the records themselves
	}
}

// responseRecordsHint is recordsHint over a response's partitions.
func responseRecordsHint(resp *FetchResponse) int {
	n := 0
	for ti := range resp.Responses {
		for pi := range resp.Responses[ti].Partitions {
			n += recordsHint(resp.Responses[ti].Partitions[pi].Records)
		}
	}
	return n
}

// fetchDecompressBudget is how many bytes one Fetch response may decompress,
// all partitions together: the buffer bytes (WithFetchBufferBytes), or one
// partition's bound (DefaultMaxDecompressed) if that is more.
func (c *Consumer) fetchDecompressBudget() int { return max(c.cfg.bufferBytes, DefaultMaxDecompressed) }

func endpoints(eps []FetchResponseNodeEndpoint) []Broker {
	var bs []Broker
	for _, e := range eps {
		bs = append(bs, Broker{NodeID: e.NodeID, Host: e.Host, Port: e.Port, Rack: deref(e.Rack)})
	}
	return bs
}

// decode appends the records of one partition's data to ch.recs: records
// from the fetch offset on, without control records and, when reading
// committed, without aborted transactions.
func (f *fetcher) decode(ch *fetchChunk, rd *RecordReader, sp *sentPart, p *FetchResponseItemPartition) (chunkRange, error) {
	rng := chunkRange{start: len(ch.recs), next: sp.offset, epoch: sp.epoch}
	rd.Topic, rd.Partition, rd.KeepControl = sp.fp.tp.topic, sp.fp.tp.partition, true
	rd.Reset(p.Records)
	committed := f.c.cfg.isolation == ReadCommitted
	txns := p.AbortedTransactions
	if committed && len(txns) > 1 {
		slices.SortFunc(txns, func(a, b FetchResponseItemPartitionAbortedTransaction) int {
			return cmp.Compare(a.FirstOffset, b.FirstOffset)
		})
	}
	f.aborted = f.aborted[:0]
	recs := ch.recs
	var err error
	for {
		n0 := len(recs)
		var h BatchHeader
		h, recs, err = rd.Next(recs)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			break
		}
		last := h.LastOffset()
		if last < sp.offset {
			clear(recs[n0:])
			recs = recs[:n0]
			continue // a batch before the offset asked for (compaction)
		}
		rng.next = max(rng.next, last+1)
		if h.PartitionLeaderEpoch >= 0 {
			rng.epoch = h.PartitionLeaderEpoch
		}
		drop := h.Attributes.Control()
		if committed {
			for len(txns) > 0 && txns[0].FirstOffset <= last {
				f.aborted = append(f.aborted, txns[0].ProducerID)
				txns = txns[1:]
			}
			if drop && len(recs) > n0 {
				if t, ok := recs[n0].ControlType(); ok && t == ControlAbort {
					if i := slices.Index(f.aborted, h.ProducerID); i >= 0 {
						f.aborted = slices.Delete(f.aborted, i, i+1)
					}
				}
			}
			if h.Attributes.Transactional() && slices.Contains(f.aborted, h.ProducerID) {
				drop = true
			}
		}
		if drop {
			clear(recs[n0:])
			recs = recs[:n0]
			continue
		}
		if len(recs) > n0 && recs[n0].Offset < sp.offset { // inside a batch that starts earlier
			k := n0
			for k < len(recs) && recs[k].Offset < sp.offset {
				k++
			}
			m := copy(recs[n0:], recs[k:])
			clear(recs[n0+m:])
			recs = recs[:n0+m]
		}
	}
	ch.recs = recs
	rng.end = len(recs)
	if err != nil {
		err = fmt.Errorf("fetch at offset %d: %w", rng.next, err)
	}
	return rng, err
}
