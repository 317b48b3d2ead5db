package kpax

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// This file is the Consumer's engine. A manager goroutine does the slow
// path: it finds partition leaders, resolves start points (ListOffsets),
// validates positions after leader epoch changes (OffsetForLeaderEpoch,
// KIP-320) and starts one fetcher goroutine per broker. A fetcher sends one
// Fetch request at a time for all the partitions the broker leads, in a
// fetch session where the broker supports them (KIP-227), decodes the
// response into a chunk of records and queues it for Poll, then fetches
// again at once (ahead of the application) while the buffered bytes stay
// within the budget.

// Partition states.
const (
	partNeedOffset   int8 = iota // resolve from with ListOffsets
	partNeedValidate             // check pos with OffsetForLeaderEpoch
	partReady                    // fetch from fetch
	partFailed                   // stopped until assigned again
)

// fetchPart is the consumer's state of one assigned partition; guarded by
// Consumer.mu.
type fetchPart struct {
	tp          topicPartition
	gen         uint64 // bumped when the fetch position resets: older data is dropped
	state       int8
	from        Offset   // start point to resolve, in partNeedOffset
	pos         position // next offset Poll returns
	fetch       int64    // next offset to fetch (past pos while data is buffered)
	leader      int32    // broker to fetch from, -1 while unknown
	leaderEpoch int32    // from metadata; sent as CurrentLeaderEpoch
	preferred   bool     // leader is a preferred read replica (KIP-392)
	topicID     UUID
	paused      bool
	inflight    bool // in a Fetch request
	returned    bool // Poll returned a record of it
	exact       bool // started at an exact offset
	retryAt     time.Time
	failures    int
}

// start makes the partition start over from o.
func (fp *fetchPart) start(o Offset) {
	fp.gen++
	fp.returned, fp.exact = false, false
	fp.retryAt, fp.failures = time.Time{}, 0
	if fp.state == partFailed {
		fp.state = partNeedOffset
	}
	if o.kind != offsetExact {
		fp.from, fp.state = o, partNeedOffset
		return
	}
	fp.pos = position{offset: o.at, epoch: o.epoch}
	fp.fetch, fp.exact, fp.state = o.at, true, partReady
	if o.epoch >= 0 {
		fp.state = partNeedValidate
	}
}

// restart drops what was fetched beyond pos.
func (fp *fetchPart) restart() {
	fp.gen++
	fp.fetch = fp.pos.offset
}

func (fp *fetchPart) hasPosition() bool {
	return fp.state != partNeedOffset && (fp.returned || fp.exact)
}

// backoff delays the partition's next attempt, doubling per failure.
func (fp *fetchPart) backoff(cfg *config) {
	d := min(cfg.retryBackoff<<min(fp.failures, 16), cfg.retryBackoffMax)
	fp.retryAt = time.Now().Add(d)
	fp.failures++
}

// setLeader records where the partition is led; c.mu is held. A higher
// leader epoch makes a position that came from records be validated first.
func (c *Consumer) setLeader(fp *fetchPart, leader, epoch int32, id UUID) {
	old := fp.leaderEpoch
	fp.leader, fp.preferred = leader, false
	if id != (UUID{}) {
		fp.topicID = id
	}
	if epoch >= 0 || old < 0 {
		fp.leaderEpoch = epoch
	}
	if old >= 0 && epoch > old && fp.state == partReady && fp.pos.epoch >= 0 {
		fp.state = partNeedValidate
		fp.restart()
	}
	if f := c.fetchers[leader]; f != nil {
		f.wakeUp()
	}
}

// cachedLeader reads the client's metadata cache without loading anything.
func (c *Consumer) cachedLeader(tp topicPartition) (PartitionMetadata, UUID, bool) {
	m := c.cl.meta
	m.mu.Lock()
	t := m.topics[tp.topic]
	m.mu.Unlock()
	if t == nil || tp.partition < 0 || int(tp.partition) >= len(t.Partitions) {
		return PartitionMetadata{}, UUID{}, false
	}
	return t.Partitions[tp.partition], t.ID, true
}

type partRef struct {
	fp  *fetchPart
	gen uint64
}

// live reports whether r still designates the partition as it was; c.mu is
// held.
func (c *Consumer) live(r partRef) bool { return c.parts[r.fp.tp] == r.fp && r.fp.gen == r.gen }

// manage runs the slow path until Close.
func (c *Consumer) manage() {
	defer c.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-c.kick:
		case <-t.C:
		case <-c.done:
			return
		}
		if c.ctx.Err() != nil {
			return
		}
		t.Reset(c.manageOnce())
	}
}

// manageOnce does what partitions need before they can be fetched and
// returns when to look again.
func (c *Consumer) manageOnce() time.Duration {
	ctx, cancel := context.WithTimeout(c.ctx, c.cl.cfg.requestTimeout)
	defer cancel()
	now := time.Now()

	var lookup []partRef
	c.mu.Lock()
	for _, fp := range c.parts {
		if fp.state == partFailed || fp.paused || fp.retryAt.After(now) {
			continue
		}
		if fp.leader < 0 {
			lookup = append(lookup, partRef{fp, fp.gen})
			continue
		}
		pm, id, ok := c.cachedLeader(fp.tp)
		if ok && pm.Leader >= 0 && (pm.LeaderEpoch > fp.leaderEpoch || (pm.Leader != fp.leader && !fp.preferred)) {
			c.setLeader(fp, pm.Leader, pm.LeaderEpoch, id)
		}
	}
	c.mu.Unlock()

	for _, r := range lookup {
		pm, err := c.cl.meta.leader(ctx, r.fp.tp.topic, r.fp.tp.partition)
		_, id, _ := c.cachedLeader(r.fp.tp)
		c.mu.Lock()
		if c.parts[r.fp.tp] == r.fp {
			if err != nil {
				if ctx.Err() == nil {
					r.fp.backoff(&c.cl.cfg)
					c.report(asPartitionError(r.fp.tp, err))
				}
			} else {
				c.setLeader(r.fp, pm.Leader, pm.LeaderEpoch, id)
			}
		}
		c.mu.Unlock()
		if ctx.Err() != nil {
			break
		}
	}

	offsets, validate := map[int32][]partRef{}, map[int32][]partRef{}
	c.mu.Lock()
	for _, fp := range c.parts {
		if fp.leader < 0 || fp.paused || fp.retryAt.After(now) {
			continue
		}
		switch fp.state {
		case partNeedOffset:
			offsets[fp.leader] = append(offsets[fp.leader], partRef{fp, fp.gen})
		case partNeedValidate:
			validate[fp.leader] = append(validate[fp.leader], partRef{fp, fp.gen})
		}
	}
	c.mu.Unlock()
	for node, refs := range offsets {
		c.listOffsets(ctx, node, refs)
	}
	for node, refs := range validate {
		c.validate(ctx, node, refs)
	}

	wait := time.Second // how soon cached metadata is looked at again
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return wait
	}
	now = time.Now()
	for _, fp := range c.parts {
		if fp.state == partFailed || fp.paused {
			continue
		}
		if fp.leader >= 0 && fp.state == partReady {
			f := c.fetchers[fp.leader]
			if f == nil {
				f = &fetcher{c: c, node: fp.leader, kick: make(chan struct{}, 1)}
				c.fetchers[fp.leader] = f
				c.wg.Add(1)
				go f.run()
			}
			f.wakeUp()
			continue
		}
		wait = min(wait, max(fp.retryAt.Sub(now), 10*time.Millisecond))
	}
	return wait
}

// asPartitionError returns err as a *PartitionError of tp.
func asPartitionError(tp topicPartition, err error) error {
	var pe *PartitionError
	if errors.As(err, &pe) {
		return err
	}
	return &PartitionError{Topic: tp.topic, Partition: tp.partition, Err: err}
}

// partitionFailed handles an error code for a partition outside a Fetch;
// c.mu is held.
func (c *Consumer) partitionFailed(fp *fetchPart, err error) {
	if errors.Is(err, ErrOffsetOutOfRange) {
		// The reset policy handles it; with ResetNone, resetOffset reports
		// it (once).
		c.resetOffset(fp, err)
		return
	}
	c.report(&PartitionError{Topic: fp.tp.topic, Partition: fp.tp.partition, Err: err})
	switch {
	case errors.Is(err, ErrUnknownLeaderEpoch):
		// The broker lags behind the metadata we have: ask again later.
	case IsRetriable(err):
		fp.leader, fp.preferred = -1, false
		c.cl.meta.invalidate()
	default:
		fp.state = partFailed
	}
	fp.backoff(&c.cl.cfg)
}

// resetOffset applies the reset policy to a partition whose position is out
// of range; c.mu is held.
func (c *Consumer) resetOffset(fp *fetchPart, err error) {
	c.cl.cfg.logger.Warn("kpax: consumer position out of range", "topic", fp.tp.topic, "partition", fp.tp.partition, "offset", fp.fetch, "reset", c.cfg.reset)
	switch c.cfg.reset {
	case ResetEarliest:
		fp.start(Earliest())
	case ResetLatest:
		fp.start(Latest())
	default:
		fp.state = partFailed
		fp.restart()
		c.report(&PartitionError{Topic: fp.tp.topic, Partition: fp.tp.partition, Err: fmt.Errorf("%w (offset %d, no reset policy)", err, fp.fetch)})
	}
	c.kickManager()
}

// listOffsets resolves the start points of partitions led by node.
func (c *Consumer) listOffsets(ctx context.Context, node int32, refs []partRef) {
	req := &ListOffsetsRequest{ReplicaID: -1, IsolationLevel: int8(c.cfg.isolation)}
	c.mu.Lock()
	for _, r := range refs {
		if !c.live(r) {
			continue
		}
		ts := int64(-2)
		switch r.fp.from.kind {
		case offsetLatest:
			ts = -1
		case offsetTime:
			ts = r.fp.from.ts.UnixMilli()
		}
		p := ListOffsetsRequestTopicPartition{PartitionIndex: r.fp.tp.partition, CurrentLeaderEpoch: r.fp.leaderEpoch, Timestamp: ts, MaxNumOffsets: 1}
		if i := slices.IndexFunc(req.Topics, func(t ListOffsetsRequestTopic) bool { return t.Name == r.fp.tp.topic }); i >= 0 {
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
		} else {
			req.Topics = append(req.Topics, ListOffsetsRequestTopic{Name: r.fp.tp.topic, Partitions: []ListOffsetsRequestTopicPartition{p}})
		}
	}
	c.mu.Unlock()
	if len(req.Topics) == 0 {
		return
	}
	r, err := c.cl.RequestBroker(ctx, node, req)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.requestFailed(ctx, refs, err)
		return
	}
	resp := r.(*ListOffsetsResponse)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			i := slices.IndexFunc(refs, func(r partRef) bool { return r.fp.tp == topicPartition{t.Name, p.PartitionIndex} })
			if i < 0 || !c.live(refs[i]) {
				continue
			}
			fp := refs[i].fp
			if err := ErrorForCode(p.ErrorCode); err != nil {
				c.partitionFailed(fp, err)
				continue
			}
			off, epoch := p.Offset, p.LeaderEpoch
			if p.OldStyleOffsets != nil { // v0
				off, epoch = -1, -1
				if len(p.OldStyleOffsets) > 0 {
					off = p.OldStyleOffsets[0]
				}
			}
			if off < 0 {
				if fp.from.kind == offsetTime { // no record at or after the time
					fp.from = Latest()
					c.kickManager()
					continue
				}
				c.partitionFailed(fp, fmt.Errorf("%w: ListOffsets returned offset %d for %s", ErrOffsetNotAvailable, off, fp.from))
				continue
			}
			if epoch == 0 && len(p.OldStyleOffsets) == 0 && p.Timestamp == 0 {
				epoch = -1 // a version before 4 left it unset
			}
			fp.pos = position{offset: off, epoch: epoch}
			fp.state, fp.failures = partReady, 0
			fp.restart()
		}
	}
}

// requestFailed handles a failed request for partitions; c.mu is held.
func (c *Consumer) requestFailed(ctx context.Context, refs []partRef, err error) {
	if ctx.Err() != nil {
		return
	}
	for _, r := range refs {
		if c.live(r) {
			r.fp.leader, r.fp.preferred = -1, false
			r.fp.backoff(&c.cl.cfg)
			c.report(asPartitionError(r.fp.tp, err))
		}
	}
}

// validate checks, after a leader epoch change, that the log still holds
// the positions of partitions led by node (KIP-320).
func (c *Consumer) validate(ctx context.Context, node int32, refs []partRef) {
	req := &OffsetForLeaderEpochRequest{ReplicaID: -1}
	c.mu.Lock()
	for _, r := range refs {
		if !c.live(r) {
			continue
		}
		p := OffsetForLeaderEpochRequestTopicPartition{Partition: r.fp.tp.partition, CurrentLeaderEpoch: r.fp.leaderEpoch, LeaderEpoch: r.fp.pos.epoch}
		if i := slices.IndexFunc(req.Topics, func(t OffsetForLeaderEpochRequestTopic) bool { return t.Topic == r.fp.tp.topic }); i >= 0 {
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
		} else {
			req.Topics = append(req.Topics, OffsetForLeaderEpochRequestTopic{Topic: r.fp.tp.topic, Partitions: []OffsetForLeaderEpochRequestTopicPartition{p}})
		}
	}
	c.mu.Unlock()
	if len(req.Topics) == 0 {
		return
	}
	r, err := c.cl.RequestBroker(ctx, node, req)
	c.mu.Lock()
	defer c.mu.Unlock()
	if errors.Is(err, ErrUnsupportedVersion) {
		for _, r := range refs { // a broker before KIP-320: nothing to check with
			if c.live(r) {
				r.fp.state = partReady
			}
		}
		return
	}
	if err != nil {
		c.requestFailed(ctx, refs, err)
		return
	}
	for _, t := range r.(*OffsetForLeaderEpochResponse).Topics {
		for _, p := range t.Partitions {
			i := slices.IndexFunc(refs, func(r partRef) bool { return r.fp.tp == topicPartition{t.Topic, p.Partition} })
			if i < 0 || !c.live(refs[i]) {
				continue
			}
			fp := refs[i].fp
			if err := ErrorForCode(p.ErrorCode); err != nil {
				c.partitionFailed(fp, err)
				continue
			}
			fp.state, fp.failures = partReady, 0
			switch {
			case p.EndOffset < 0 || p.LeaderEpoch < 0:
				// The log no longer knows the epoch: the position cannot
				// be checked, as if it were out of range.
				c.resetOffset(fp, fmt.Errorf("%w: leader epoch %d of offset %d is unknown to the log", ErrLogTruncated, fp.pos.epoch, fp.pos.offset))
			case p.EndOffset < fp.pos.offset:
				c.report(&PartitionError{Topic: fp.tp.topic, Partition: fp.tp.partition, Err: fmt.Errorf(
					"%w: position %d (leader epoch %d), but the log of epoch %d ends at %d; consuming from there",
					ErrLogTruncated, fp.pos.offset, fp.pos.epoch, p.LeaderEpoch, p.EndOffset)})
				fp.pos = position{offset: p.EndOffset, epoch: p.LeaderEpoch}
				fp.restart()
			default:
				fp.restart()
			}
		}
	}
}

// fetchChunk is one decoded Fetch response: the records Poll returns at
// once, reused after the next Poll.
type fetchChunk struct {
	recs    []Record
	ranges  []chunkRange
	readers []RecordReader // one per partition with data
	bytes   int            // charged to the buffer budget
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
}

// fetchResult is what a response said of a sentPart.
type fetchResult struct {
	found     bool
	code      int16
	rng       chunkRange
	err       error // corrupt data
	leader    *FetchResponseResponsePartitionCurrentLeader
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
		if c.buffered >= c.cfg.bufferBytes {
			space := c.space
			c.mu.Unlock()
			select {
			case <-space:
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

		r, err := c.cl.RequestBroker(c.ctx, f.node, req)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			f.failed(err)
			continue
		}
		resp := r.(*FetchResponse)
		f.handle(ch, resp)
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
		f.sent = append(f.sent, sentPart{fp: fp, gen: fp.gen, offset: fp.fetch})
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
func (f *fetcher) handle(ch *fetchChunk, resp *FetchResponse) {
	c := f.c
	if cap(f.results) < len(f.sent) {
		f.results = make([]fetchResult, len(f.sent))
	}
	f.results = f.results[:len(f.sent)]
	clear(f.results)
	top := ErrorForCode(resp.ErrorCode)
	if top == nil {
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
				res.rng, res.err = f.decode(ch, rd, &f.sent[i], p)
				ch.bytes += len(p.Records) + len(rd.scratch)
			}
		}
	}

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
				fp.fetch = r.next
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
func (f *fetcher) decode(ch *fetchChunk, rd *RecordReader, sp *sentPart, p *FetchResponseResponsePartition) (chunkRange, error) {
	rng := chunkRange{start: len(ch.recs), next: sp.offset, epoch: sp.fp.pos.epoch}
	rd.Topic, rd.Partition, rd.KeepControl = sp.fp.tp.topic, sp.fp.tp.partition, true
	rd.Reset(p.Records)
	committed := f.c.cfg.isolation == ReadCommitted
	txns := p.AbortedTransactions
	if committed && len(txns) > 1 {
		slices.SortFunc(txns, func(a, b FetchResponseResponsePartitionAbortedTransaction) int {
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
