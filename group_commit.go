package kpax

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// This file holds the group's offsets: OffsetFetch when partitions are
// assigned, and OffsetCommit, sent in order by one commit goroutine for
// every kind of commit (sync, async, automatic, on revoke and on Close).

// commitReq is a commit waiting for the commit goroutine.
type commitReq struct {
	ctx      context.Context
	offs     map[topicPartition]position
	explicit bool // CommitOffsets: partitions need not be owned
	done     func(error)
}

// Commit commits, for the partitions the member owns, the positions after
// every record Poll returned (with marking: what was marked, see
// MarkRecords), and waits for the coordinator's answer. Call it after
// processing what Poll returned. Commits are sent in the order they were
// asked for, whatever their kind.
func (g *GroupConsumer) Commit(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	return g.commitWait(ctx, g.current(), false)
}

// CommitAsync commits like Commit without waiting: ctx bounds the commit
// (its retries included), as it bounds Commit. cb, if not nil, is called
// with the result on the group's commit goroutine (it must not call Commit
// or CommitOffsets, which would wait for that goroutine); a nil cb logs a
// failure.
func (g *GroupConsumer) CommitAsync(ctx context.Context, cb func(error)) {
	if cb == nil {
		cb = func(err error) {
			if err != nil {
				g.conf.logger.Warn("kpax: group async commit", "group", g.group, "err", err)
			}
		}
	}
	if ctx == nil {
		cb(errNilContext)
		return
	}
	g.enqueue(&commitReq{ctx: ctx, offs: g.current(), done: cb})
}

// CommitOffsets commits the given next offsets to consume,
// offsets[topic][partition], whether the member owns the partitions or not,
// and waits for the coordinator's answer. An empty topic name or a
// negative partition or offset is an error, and nothing is committed.
func (g *GroupConsumer) CommitOffsets(ctx context.Context, offsets map[string]map[int32]int64) error {
	if ctx == nil {
		return errNilContext
	}
	offs, err := positionsOf("CommitOffsets", offsets)
	if err != nil {
		return err
	}
	return g.commitWait(ctx, offs, true)
}

// positionsOf checks and converts offsets[topic][partition].
func positionsOf(op string, offsets map[string]map[int32]int64) (map[topicPartition]position, error) {
	offs := map[topicPartition]position{}
	for t, ps := range offsets {
		for p, o := range ps {
			if t == "" || p < 0 || o < 0 {
				return nil, fmt.Errorf("kpax: %s: bad partition %q/%d or offset %d", op, t, p, o)
			}
			offs[topicPartition{t, p}] = position{offset: o, epoch: -1}
		}
	}
	return offs, nil
}

// MarkRecords marks records as processed: from now on the member's
// commits (automatic ones, Commit, CommitAsync, and those on revocation
// and in Close) cover exactly what was marked, the offset after each
// partition's latest marked record, never the positions Poll reached. Mark
// a record after processing it; the first mark switches the member to
// marking for good. A mark only moves forward, and marks of partitions the
// member does not own (any more) are ignored. Marking is how an
// application that stops in the middle of a Poll's records (a record
// limit, a failure) commits only what it processed.
func (g *GroupConsumer) MarkRecords(rs ...*Record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.marking = true
	for _, r := range rs {
		if r != nil {
			g.markLocked(topicPartition{r.Topic, r.Partition}, position{offset: r.Offset + 1, epoch: r.LeaderEpoch})
		}
	}
}

// MarkOffsets marks the next offsets to consume, offsets[topic][partition],
// as MarkRecords does for records: offset n marks every record before n as
// processed. A bad topic, partition or offset is an error, and nothing is
// marked.
func (g *GroupConsumer) MarkOffsets(offsets map[string]map[int32]int64) error {
	offs, err := positionsOf("MarkOffsets", offsets)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.marking = true
	for tp, p := range offs {
		g.markLocked(tp, p)
	}
	return nil
}

// markLocked moves a partition's mark forward; g.mu is held.
func (g *GroupConsumer) markLocked(tp topicPartition, p position) {
	if !g.owned[tp] {
		return
	}
	if m, ok := g.marks[tp]; !ok || p.offset > m.offset {
		g.marks[tp] = p
	}
}

// current returns what a commit of the owned partitions covers: the
// consumer's positions, or the marks when the application marks.
func (g *GroupConsumer) current() map[topicPartition]position {
	pos := g.c.positions()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.marking {
		return pos
	}
	out := make(map[topicPartition]position, len(g.marks))
	for tp, p := range g.marks {
		out[tp] = p
	}
	return out
}

// toCommit returns what the commit of partitions the member gives up
// covers: their positions pos, or their marks (which it forgets) when the
// application marks.
func (g *GroupConsumer) toCommit(pos map[topicPartition]position, tps []topicPartition) map[topicPartition]position {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.marking {
		return pos
	}
	out := make(map[topicPartition]position, len(tps))
	for _, tp := range tps {
		if m, ok := g.marks[tp]; ok {
			out[tp] = m
			delete(g.marks, tp)
		}
	}
	return out
}

// Committed returns the offsets the group has committed for the partitions
// of the member's topics, offsets[topic][partition] (the next offset to
// consume; partitions without a commit are left out), as the coordinator
// has them now. ctx bounds the request and its retries.
func (g *GroupConsumer) Committed(ctx context.Context) (map[string]map[int32]int64, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	var tps []topicPartition
	for _, t := range g.topics {
		tm, err := g.cl.meta.topic(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, p := range tm.Partitions {
			tps = append(tps, topicPartition{t, p.Partition})
		}
	}
	got, err := g.offsetFetch(ctx, tps)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	for tp, p := range got {
		if p.offset < 0 {
			continue
		}
		if out[tp.topic] == nil {
			out[tp.topic] = map[int32]int64{}
		}
		out[tp.topic][tp.partition] = p.offset
	}
	return out, nil
}

// autoCommit queues a commit of the positions (or the marks), if they
// moved since the last commit. While the application may still be
// processing the last Poll's records, it leaves a commit of positions to
// the next Poll.
func (g *GroupConsumer) autoCommit() {
	offs := g.current()
	n := g.c.pollCount() // read after the positions: covers what they include
	g.mu.Lock()
	if g.done < n && !g.marking {
		g.commitPoll = true
		g.mu.Unlock()
		return
	}
	for tp, p := range offs {
		if c, ok := g.committed[tp]; ok && c == p {
			delete(offs, tp)
		}
	}
	g.mu.Unlock()
	if len(offs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(g.ctx, g.conf.requestTimeout)
	g.enqueue(&commitReq{ctx: ctx, offs: offs, done: func(err error) {
		cancel()
		if err != nil && g.ctx.Err() == nil {
			g.conf.logger.Warn("kpax: group auto commit", "group", g.group, "err", err)
			g.report(err)
		}
	}})
}

// commitWait queues a commit and waits for its result or ctx.
func (g *GroupConsumer) commitWait(ctx context.Context, offs map[topicPartition]position, explicit bool) error {
	if len(offs) == 0 {
		return nil
	}
	res := make(chan error, 1)
	g.enqueue(&commitReq{ctx: ctx, offs: offs, explicit: explicit, done: func(err error) { res <- err }})
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *GroupConsumer) enqueue(r *commitReq) {
	g.mu.Lock()
	if g.ctx.Err() != nil {
		g.mu.Unlock()
		r.done(ErrConsumerClosed)
		return
	}
	g.queue = append(g.queue, r)
	g.mu.Unlock()
	select {
	case g.queueWake <- struct{}{}:
	default:
	}
}

// commitLoop sends the queued commits, one at a time, until the group
// closes; what is still queued then fails with ErrConsumerClosed.
func (g *GroupConsumer) commitLoop() {
	defer g.wg.Done()
	for {
		g.mu.Lock()
		q := g.queue
		g.queue = nil
		g.mu.Unlock()
		for _, r := range q {
			if g.ctx.Err() != nil {
				r.done(ErrConsumerClosed)
				continue
			}
			r.done(g.commitNow(r.ctx, r.offs, r.explicit))
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-g.queueWake:
		case <-g.ctx.Done():
			g.mu.Lock()
			q := g.queue
			g.queue = nil
			g.mu.Unlock()
			for _, r := range q {
				r.done(ErrConsumerClosed)
			}
			return
		}
	}
}

// commitNow sends one OffsetCommit with the current generation and member
// ID, retrying while the coordinator moves or loads, until ctx ends.
func (g *GroupConsumer) commitNow(ctx context.Context, offs map[topicPartition]position, explicit bool) error {
	g.mu.Lock()
	if !explicit {
		for tp := range offs {
			if !g.owned[tp] {
				delete(offs, tp)
			}
		}
	}
	g.mu.Unlock()
	g.proc.Load().limit(offs) // Process: only what is processed
	if len(offs) == 0 {
		return nil
	}
	tps := slices.SortedFunc(maps.Keys(offs), compareTP)
	var instance *string
	if g.cfg.instanceID != "" {
		instance = &g.cfg.instanceID
	}
	req := &OffsetCommitRequest{GroupID: g.group, GroupInstanceID: instance, RetentionTimeMs: -1}
	for _, tp := range tps {
		p := OffsetCommitRequestTopicPartition{PartitionIndex: tp.partition, CommittedOffset: offs[tp].offset,
			CommittedLeaderEpoch: offs[tp].epoch, CommitTimestamp: -1}
		if n := len(req.Topics); n > 0 && req.Topics[n-1].Name == tp.topic {
			req.Topics[n-1].Partitions = append(req.Topics[n-1].Partitions, p)
		} else {
			req.Topics = append(req.Topics, OffsetCommitRequestTopic{Name: tp.topic, Partitions: []OffsetCommitRequestTopicPartition{p}})
		}
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !sleep(ctx, g.backoff(attempt)) {
			return g.groupErr("OffsetCommit", ctx.Err())
		}
		g.mu.Lock()
		req.GenerationIDOrMemberEpoch, req.MemberID = g.generation, g.memberID
		g.mu.Unlock()
		r, err := g.request(ctx, "OffsetCommit", req)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			continue
		}
		var errs []error
		retry := false
		for _, t := range r.(*OffsetCommitResponse).Topics {
			for _, p := range t.Partitions {
				err := ErrorForCode(p.ErrorCode)
				if err == nil {
					continue
				}
				if g.coordinatorFailed(err) || errors.Is(err, ErrCoordinatorLoadInProgress) || errors.Is(err, ErrRequestTimedOut) {
					retry = true
				}
				errs = append(errs, &PartitionError{Topic: t.Name, Partition: p.PartitionIndex, Err: err})
			}
		}
		if retry {
			continue
		}
		if len(errs) > 0 {
			return g.groupErr("OffsetCommit", errors.Join(errs...))
		}
		g.mu.Lock()
		for tp, p := range offs {
			g.committed[tp] = p
		}
		g.mu.Unlock()
		return nil
	}
}

// fetchOffsets returns where to start each partition: its committed offset
// (with its leader epoch, checked by the consumer, KIP-320) or the start
// offset. It retries until the rebalance timeout while offsets are
// unstable (a transaction is pending) or the coordinator moves.
func (g *GroupConsumer) fetchOffsets(ctx context.Context, tps []topicPartition) (map[topicPartition]Offset, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.rebalance)
	defer cancel()
	got, err := g.offsetFetch(ctx, tps)
	if err != nil {
		return nil, err
	}
	out := make(map[topicPartition]Offset, len(tps))
	for _, tp := range tps {
		if c := got[tp]; c.offset >= 0 {
			out[tp] = Offset{kind: offsetExact, at: c.offset, epoch: max(c.epoch, -1)}
		} else {
			out[tp] = g.cfg.start
		}
	}
	return out, nil
}

// offsetFetch returns the committed offsets of tps (offset -1: none),
// retrying until ctx ends while offsets are unstable (a transaction is
// pending) or the coordinator moves.
func (g *GroupConsumer) offsetFetch(ctx context.Context, tps []topicPartition) (map[topicPartition]position, error) {
	req := &OffsetFetchRequest{GroupID: g.group, RequireStable: true}
	grp := OffsetFetchRequestGroup{GroupID: g.group, MemberEpoch: -1}
	for _, tp := range tps {
		if n := len(req.Topics); n > 0 && req.Topics[n-1].Name == tp.topic {
			req.Topics[n-1].PartitionIndexes = append(req.Topics[n-1].PartitionIndexes, tp.partition)
			grp.Topics[n-1].PartitionIndexes = append(grp.Topics[n-1].PartitionIndexes, tp.partition)
			continue
		}
		req.Topics = append(req.Topics, OffsetFetchRequestTopic{Name: tp.topic, PartitionIndexes: []int32{tp.partition}})
		grp.Topics = append(grp.Topics, OffsetFetchRequestGroupTopic{Name: tp.topic, PartitionIndexes: []int32{tp.partition}})
	}
	req.Groups = []OffsetFetchRequestGroup{grp}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !sleep(ctx, g.backoff(attempt)) {
			return nil, g.groupErr("OffsetFetch", ctx.Err())
		}
		r, err := g.request(ctx, "OffsetFetch", req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			continue
		}
		out, err := readCommitted(r.(*OffsetFetchResponse), tps)
		if err == nil {
			return out, nil
		}
		if !IsRetriable(err) {
			return nil, g.groupErr("OffsetFetch", err)
		}
		g.coordinatorFailed(err)
		g.conf.logger.Debug("kpax: group offset fetch retried", "group", g.group, "err", err)
	}
}

// readCommitted reads an OffsetFetch response (v0-7 top-level topics,
// v8+ per group): the committed offset of each of tps, -1 for none.
func readCommitted(resp *OffsetFetchResponse, tps []topicPartition) (map[topicPartition]position, error) {
	type committed struct {
		offset int64
		epoch  int32
		code   int16
	}
	got := map[topicPartition]committed{}
	code := resp.ErrorCode
	if len(resp.Groups) > 0 {
		code = resp.Groups[0].ErrorCode
		for _, t := range resp.Groups[0].Topics {
			for _, p := range t.Partitions {
				got[topicPartition{t.Name, p.PartitionIndex}] = committed{p.CommittedOffset, p.CommittedLeaderEpoch, p.ErrorCode}
			}
		}
	} else {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				got[topicPartition{t.Name, p.PartitionIndex}] = committed{p.CommittedOffset, p.CommittedLeaderEpoch, p.ErrorCode}
			}
		}
	}
	if err := ErrorForCode(code); err != nil {
		return nil, err
	}
	out := make(map[topicPartition]position, len(tps))
	var errs []error
	for _, tp := range tps {
		c, ok := got[tp]
		if err := ErrorForCode(c.code); err != nil {
			errs = append(errs, &PartitionError{Topic: tp.topic, Partition: tp.partition, Err: err})
			continue
		}
		if !ok || c.offset < 0 {
			out[tp] = position{offset: -1, epoch: -1}
			continue
		}
		out[tp] = position{offset: c.offset, epoch: c.epoch}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
