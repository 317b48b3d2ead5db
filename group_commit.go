package kpax

import (
	"context"
	"errors"
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

// Commit commits the positions after every record Poll returned, for the
// partitions the member owns, and waits for the coordinator's answer. Call
// it after processing what Poll returned. Commits are sent in the order
// they were asked for, whatever their kind.
func (g *GroupConsumer) Commit(ctx context.Context) error {
	return g.commitWait(ctx, g.c.positions(), false)
}

// CommitAsync commits like Commit without waiting; cb, if not nil, is
// called with the result on the group's commit goroutine (it must not call
// Commit or CommitOffsets, which would wait for that goroutine).
func (g *GroupConsumer) CommitAsync(cb func(error)) {
	if cb == nil {
		cb = func(err error) {
			if err != nil {
				g.conf.logger.Warn("kpax: group async commit", "group", g.group, "err", err)
			}
		}
	}
	g.enqueue(&commitReq{ctx: g.ctx, offs: g.c.positions(), done: cb})
}

// CommitOffsets commits the given next offsets to consume,
// offsets[topic][partition], whether the member owns the partitions or not,
// and waits for the coordinator's answer.
func (g *GroupConsumer) CommitOffsets(ctx context.Context, offsets map[string]map[int32]int64) error {
	offs := map[topicPartition]position{}
	for t, ps := range offsets {
		for p, o := range ps {
			offs[topicPartition{t, p}] = position{offset: o, epoch: -1}
		}
	}
	return g.commitWait(ctx, offs, true)
}

// autoCommit queues a commit of the positions, if they moved since the
// last commit. While the application may still be processing the last
// Poll's records, it leaves the commit to the next Poll.
func (g *GroupConsumer) autoCommit() {
	offs := g.c.positions()
	n := g.c.pollCount() // read after the positions: covers what they include
	g.mu.Lock()
	if g.done < n {
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
		out, err := g.startOffsets(r.(*OffsetFetchResponse), tps)
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

// startOffsets reads an OffsetFetch response (v0-7 top-level topics, v8+
// per group).
func (g *GroupConsumer) startOffsets(resp *OffsetFetchResponse, tps []topicPartition) (map[topicPartition]Offset, error) {
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
	out := make(map[topicPartition]Offset, len(tps))
	var errs []error
	for _, tp := range tps {
		c, ok := got[tp]
		if err := ErrorForCode(c.code); err != nil {
			errs = append(errs, &PartitionError{Topic: tp.topic, Partition: tp.partition, Err: err})
			continue
		}
		if !ok || c.offset < 0 {
			out[tp] = g.cfg.start
			continue
		}
		out[tp] = Offset{kind: offsetExact, at: c.offset, epoch: max(c.epoch, -1)}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
