package kpax

import (
	"context"
	"errors"
	"fmt"
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
	fetchEpoch  int32    // leader epoch of the record before fetch, -1 if unknown
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
	fp.fetch, fp.fetchEpoch, fp.exact, fp.state = o.at, o.epoch, true, partReady
	if o.epoch >= 0 {
		fp.state = partNeedValidate
	}
}

// restart drops what was fetched beyond pos.
func (fp *fetchPart) restart() {
	fp.gen++
	fp.fetch, fp.fetchEpoch = fp.pos.offset, fp.pos.epoch
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
	// TimeoutMs (v10+) bounds the broker's reads of tiered storage; zero
	// would fail them at once. The Java consumer sends its request timeout.
	req := &ListOffsetsRequest{ReplicaID: -1, IsolationLevel: int8(c.cfg.isolation), TimeoutMs: millis32(c.cl.cfg.requestTimeout)}
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
			// Offset and LeaderEpoch decode as -1 in the versions without them;
			// v0 has a list of offsets instead.
			off, epoch := p.Offset, p.LeaderEpoch
			if len(p.OldStyleOffsets) > 0 {
				off = p.OldStyleOffsets[0]
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
