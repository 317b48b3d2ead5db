package kpax

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// This file holds the share consumer's share sessions: one per broker that
// leads an assigned partition. A ShareFetch at epoch 0 opens the session
// with its partitions; later ones (epoch 1, 2, ...) add partitions, forget
// others and carry the acknowledgements of the partitions they fetch;
// ShareAcknowledge carries the others', and at epoch -1 closes the session,
// which makes the broker give back what the member still holds. A session
// that fails is opened again; the acknowledgements it carried are reported
// as failed (the records come back to the group, nothing is lost).

// shareSession is the state of the share session with one broker.
type shareSession struct {
	epoch int32
	in    map[topicPartition]UUID // the partitions in the broker's session
	batch []Record                // a decoded batch's records, reused by the session's fetches
}

// defaultShareLock is the acquisition lock assumed when the broker does
// not say (ShareFetch v0): group.share.record.lock.duration.ms's default.
const defaultShareLock = 30 * time.Second

// maxShareSpan bounds the offsets of one partition's acquired records, so
// that a hostile response cannot make the consumer allocate without bound.
const maxShareSpan = 1 << 20

func nextShareEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}

// reset forgets the session after a failure: the next request opens one.
func (ss *shareSession) reset() { ss.epoch, ss.in = 0, map[topicPartition]UUID{} }

func (s *ShareConsumer) session(node int32) *shareSession {
	ss := s.sessions[node]
	if ss == nil {
		ss = &shareSession{in: map[topicPartition]UUID{}}
		s.sessions[node] = ss
	}
	return ss
}

// ackRun is a run of consecutive offsets settled alike, or one by one.
type ackRun struct {
	first, last int64
	types       []int8
}

// tpAcks are the acknowledgements of one partition, about to be sent.
type tpAcks struct {
	id   UUID
	runs []ackRun
}

// takeAcks collects the settled, unsent acknowledgements of node whose
// partitions pass keep, marks them sent and drops the parts with nothing
// left; s.mu is held.
func (s *ShareConsumer) takeAcks(node int32, keep func(topicPartition) bool) map[topicPartition]*tpAcks {
	out := map[topicPartition]*tpAcks{}
	for _, p := range s.parts {
		if p.node != node || !keep(p.tp) {
			continue
		}
		a := out[p.tp]
		if a == nil {
			a = &tpAcks{id: p.id}
		}
		var run *ackRun
		for i, st := range p.acks {
			if st < ackGap || st >= ackSent {
				run = nil
				continue
			}
			p.acks[i] = ackSent + st
			off := p.first + int64(i)
			if run == nil {
				a.runs = append(a.runs, ackRun{first: off, last: off, types: []int8{st}})
				run = &a.runs[len(a.runs)-1]
				continue
			}
			run.last = off
			run.types = append(run.types, st)
		}
		if len(a.runs) > 0 {
			out[p.tp] = a
		}
	}
	for _, a := range out {
		for i := range a.runs {
			if t := a.runs[i].types; !slices.ContainsFunc(t, func(x int8) bool { return x != t[0] }) {
				a.runs[i].types = t[:1] // one type for the whole run
			}
		}
	}
	s.parts = slices.DeleteFunc(s.parts, func(p *sharePart) bool {
		return !slices.ContainsFunc(p.acks, func(st int8) bool { return st >= ackPending && st < ackSent })
	})
	return out
}

// maybeApplied marks the error of a request that carried acknowledgements
// and got no answer, when sv says it was sent: the broker may have applied
// them.
func maybeApplied(err error, sv sent) error {
	if sv.version < 0 {
		return err
	}
	return fmt.Errorf("%w: %w", ErrMaybePersisted, err)
}

// ackFailures reports the acknowledgements of acks as failed with err.
func ackFailures(acks map[topicPartition]*tpAcks, err error) []error {
	var errs []error
	for tp := range acks {
		errs = append(errs, &PartitionError{Topic: tp.topic, Partition: tp.partition, Err: fmt.Errorf("%w: %w", ErrShareAckFailed, err)})
	}
	return errs
}

// fetchRound sends one ShareFetch to each leader of the assigned
// partitions, at once, and returns what they bring. Acknowledgements for
// partitions that are not fetched go first, in ShareAcknowledge.
func (s *ShareConsumer) fetchRound() ShareFetch {
	s.mu.Lock()
	assigned := make(map[topicPartition]UUID, len(s.assigned))
	for tp, id := range s.assigned {
		assigned[tp] = id
	}
	s.mu.Unlock()
	var f ShareFetch
	byNode := map[int32]map[topicPartition]UUID{}
	lctx, cancel := context.WithTimeout(s.ctx, s.conf.requestTimeout)
	for tp, id := range assigned {
		pm, err := s.cl.meta.leader(lctx, tp.topic, tp.partition)
		if err != nil {
			f.Errors = append(f.Errors, &PartitionError{Topic: tp.topic, Partition: tp.partition, Err: err})
			continue
		}
		if byNode[pm.Leader] == nil {
			byNode[pm.Leader] = map[topicPartition]UUID{}
		}
		byNode[pm.Leader][tp] = id
	}
	cancel()
	f.Errors = append(f.Errors, s.acknowledgeAll(s.ctx, false, func(node int32, tp topicPartition) bool {
		_, fetched := byNode[node][tp]
		return !fetched
	})...)
	type result struct {
		recs []ShareRecord
		errs []error
	}
	results := make([]result, 0, len(byNode))
	var wg sync.WaitGroup
	for node, tps := range byNode {
		results = append(results, result{})
		r, ss := &results[len(results)-1], s.session(node)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.recs, r.errs = s.shareFetch(node, ss, tps)
		}()
	}
	wg.Wait()
	if len(results) == 1 {
		f.Records = results[0].recs // the usual case: no copy
	}
	for _, r := range results {
		if len(results) > 1 {
			f.Records = append(f.Records, r.recs...)
		}
		f.Errors = append(f.Errors, r.errs...)
	}
	return f
}

// shareFetch sends one ShareFetch to node for the partitions tps, with
// their acknowledgements.
func (s *ShareConsumer) shareFetch(node int32, ss *shareSession, tps map[topicPartition]UUID) ([]ShareRecord, []error) {
	var errs []error
	s.mu.Lock()
	acks := s.takeAcks(node, func(tp topicPartition) bool { _, ok := tps[tp]; return ok })
	s.mu.Unlock()
	if ss.epoch == 0 && len(acks) > 0 {
		// A new session cannot carry them: the old one's records went back.
		errs = append(errs, ackFailures(acks, ErrShareSessionNotFound)...)
		acks = nil
	}
	cc := s.conf.consumer
	req := &ShareFetchRequest{
		GroupID: &s.group, MemberID: &s.member, ShareSessionEpoch: ss.epoch,
		MaxWaitMs: int32(cc.maxWait / time.Millisecond), MinBytes: cc.minBytes, MaxBytes: cc.maxBytes,
		MaxRecords: s.cfg.maxRecords, BatchSize: s.cfg.maxRecords, ShareAcquireMode: int8(s.cfg.acquireMode),
		Topics: []ShareFetchRequestTopic{}, ForgottenTopicsData: []ShareFetchRequestForgottenTopicsData{},
	}
	byID := map[UUID]int{}
	for tp, id := range tps {
		i, ok := byID[id]
		if !ok {
			i = len(req.Topics)
			byID[id] = i
			req.Topics = append(req.Topics, ShareFetchRequestTopic{TopicID: id})
		}
		fp := ShareFetchRequestTopicPartition{PartitionIndex: tp.partition, PartitionMaxBytes: cc.maxPartitionBytes}
		for _, a := range acks[tp].runsOrNil() {
			fp.AcknowledgementBatches = append(fp.AcknowledgementBatches, ShareFetchRequestTopicPartitionAcknowledgementBatche{FirstOffset: a.first, LastOffset: a.last, AcknowledgeTypes: a.types})
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, fp)
	}
	if ss.epoch > 0 {
		for tp, id := range ss.in {
			if _, ok := tps[tp]; !ok {
				req.ForgottenTopicsData = append(req.ForgottenTopicsData, ShareFetchRequestForgottenTopicsData{TopicID: id, Partitions: []int32{tp.partition}})
			}
		}
	}
	sent := time.Now()
	ctx, cancel := context.WithTimeout(s.ctx, s.conf.requestTimeout+cc.maxWait)
	defer cancel()
	r, sv, err := s.cl.requestBroker(ctx, node, req)
	if err == nil {
		resp := r.(*ShareFetchResponse)
		if err = ErrorForCode(resp.ErrorCode); err != nil {
			if msg := deref(resp.ErrorMessage); msg != "" {
				err = fmt.Errorf("%w (%s)", err, msg)
			}
		} else {
			ss.epoch, ss.in = nextShareEpoch(ss.epoch), tps
			lock := defaultShareLock
			if resp.AcquisitionLockTimeoutMs > 0 {
				lock = time.Duration(resp.AcquisitionLockTimeoutMs) * time.Millisecond
			}
			recs, perrs := s.shareFetched(ss, node, resp, tps, sent.Add(lock))
			return recs, append(errs, perrs...)
		}
	}
	if sv.version >= 0 {
		ss.reset() // else not sent: the broker's session is as it was
	}
	if s.ctx.Err() != nil {
		return nil, errs
	}
	if r == nil { // no answer: the broker may have applied the acknowledgements
		errs = append(errs, ackFailures(acks, maybeApplied(err, sv))...)
	} else {
		errs = append(errs, ackFailures(acks, err)...)
	}
	return nil, append(errs, &GroupError{Group: s.group, Op: "ShareFetch", Err: fmt.Errorf("broker %d: %w", node, err)})
}

// shareFetched turns a ShareFetch response into records, parts and errors.
func (s *ShareConsumer) shareFetched(ss *shareSession, node int32, resp *ShareFetchResponse, tps map[topicPartition]UUID, lockedUntil time.Time) ([]ShareRecord, []error) {
	names := map[UUID]string{}
	for tp, id := range tps {
		names[id] = tp.topic
	}
	recs := make([]ShareRecord, 0, acquiredCap(resp))
	var errs []error
	for i := range resp.Responses {
		t := &resp.Responses[i]
		name, ok := names[t.TopicID]
		if !ok {
			continue // not asked for
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			tp := topicPartition{name, p.PartitionIndex}
			if _, ok := tps[tp]; !ok {
				continue
			}
			if err := ErrorForCode(p.AcknowledgeErrorCode); err != nil {
				errs = append(errs, &PartitionError{Topic: name, Partition: tp.partition, Err: fmt.Errorf("%w: %w", ErrShareAckFailed, err)})
			}
			if err := ErrorForCode(p.ErrorCode); err != nil {
				errs = append(errs, &PartitionError{Topic: name, Partition: tp.partition, Err: err})
				s.leaderMoved(tp, err, p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch, resp.NodeEndpoints)
			}
			var err error
			recs, err = s.acquired(ss, recs, node, tp, t.TopicID, p, lockedUntil)
			if err != nil {
				errs = append(errs, &PartitionError{Topic: name, Partition: tp.partition, Err: err})
			}
		}
	}
	return recs, errs
}

// acquiredCap is how many records resp may deliver, for sizing the slice
// once: the acquired offsets, but no more than one per minimal record's
// bytes received, so a hostile count allocates nothing it did not send.
func acquiredCap(resp *ShareFetchResponse) int {
	var bytes int64
	for i := range resp.Responses {
		for j := range resp.Responses[i].Partitions {
			bytes += int64(len(resp.Responses[i].Partitions[j].Records))
		}
	}
	limit, offsets := bytes/minRecordBytes, int64(0)
	for i := range resp.Responses {
		for j := range resp.Responses[i].Partitions {
			for _, r := range resp.Responses[i].Partitions[j].AcquiredRecords {
				if n := r.LastOffset - r.FirstOffset; n >= 0 && n < limit {
					offsets += n + 1
				} else if n >= limit {
					return int(limit)
				}
				if offsets >= limit {
					return int(limit)
				}
			}
		}
	}
	return int(offsets)
}

// minRecordBytes is the smallest v2 record: a length, attributes, deltas,
// key and value lengths and a header count of one byte each.
const minRecordBytes = 7

// leaderMoved updates the metadata after a partition error that says the
// broker no longer leads it.
func (s *ShareConsumer) leaderMoved(tp topicPartition, err error, leader, epoch int32, eps []ShareFetchResponseNodeEndpoint) {
	if !errors.Is(err, ErrNotLeaderOrFollower) && !errors.Is(err, ErrFencedLeaderEpoch) &&
		!errors.Is(err, ErrUnknownTopicOrPartition) && !errors.Is(err, ErrUnknownTopicId) {
		return
	}
	if leader < 0 {
		s.cl.meta.invalidate()
		return
	}
	bs := make([]Broker, 0, len(eps))
	for _, e := range eps {
		bs = append(bs, Broker{NodeID: e.NodeID, Host: e.Host, Port: e.Port, Rack: deref(e.Rack)})
	}
	s.cl.meta.updateLeader(tp.topic, tp.partition, leader, epoch, bs)
}

// acquired appends to recs the records of p that the broker acquired for
// the member, and keeps their part for the acknowledgements: offsets
// acquired without a record (markers, compacted away) are gaps; after
// corrupt data, the offsets not decoded are released.
func (s *ShareConsumer) acquired(ss *shareSession, recs []ShareRecord, node int32, tp topicPartition, id UUID, p *ShareFetchResponseItemPartition, lockedUntil time.Time) ([]ShareRecord, error) {
	ranges := p.AcquiredRecords
	if len(ranges) == 0 {
		return recs, nil
	}
	slices.SortFunc(ranges, func(a, b ShareFetchResponseItemPartitionAcquiredRecord) int {
		return cmp.Compare(a.FirstOffset, b.FirstOffset)
	})
	first, last := ranges[0].FirstOffset, ranges[0].LastOffset
	for _, r := range ranges {
		if r.LastOffset < r.FirstOffset || r.FirstOffset < 0 {
			return recs, fmt.Errorf("%w: acquired records %d-%d", ErrCorruptRecords, r.FirstOffset, r.LastOffset)
		}
		last = max(last, r.LastOffset)
	}
	if last-first >= maxShareSpan+8*int64(len(p.Records)) {
		return recs, fmt.Errorf("%w: acquired records span %d-%d", ErrCorruptRecords, first, last)
	}
	part := &sharePart{owner: s, tp: tp, id: id, node: node, first: first, acks: make([]int8, last-first+1)}
	for i := range part.acks {
		part.acks[i] = ackNone
	}
	for _, r := range ranges {
		for o := r.FirstOffset; o <= r.LastOffset; o++ {
			part.acks[o-first] = int8(AckRelease) // until a batch shows what is there
		}
	}
	rr := RecordReader{KeepControl: true}
	rr.Reset(p.Records)
	var derr error
	batch := ss.batch
	defer func() { clear(batch); ss.batch = batch[:0] }() // no references into this response's bytes
	for {
		var h BatchHeader
		h, batch, derr = rr.Next(batch[:0])
		if derr != nil {
			break
		}
		// Acquired offsets the batch covers without a record for us are gaps.
		for o := max(h.BaseOffset, first); o <= min(h.LastOffset(), last); o++ {
			if part.acks[o-first] == int8(AckRelease) {
				part.acks[o-first] = ackGap
			}
		}
		recs = s.deliver(recs, part, ranges, batch, lockedUntil)
	}
	if derr == io.EOF {
		derr = nil
	}
	s.mu.Lock()
	s.parts = append(s.parts, part)
	s.mu.Unlock()
	return recs, derr
}

// deliver appends the records of a batch that the broker acquired for the
// member, as pending in part.
func (s *ShareConsumer) deliver(recs []ShareRecord, part *sharePart, ranges []ShareFetchResponseItemPartitionAcquiredRecord, batch []Record, lockedUntil time.Time) []ShareRecord {
	last := part.first + int64(len(part.acks)) - 1
	for _, rec := range batch {
		if _, ctl := rec.ControlType(); ctl || rec.Offset < part.first || rec.Offset > last || part.acks[rec.Offset-part.first] != ackGap {
			continue
		}
		i, _ := slices.BinarySearchFunc(ranges, rec.Offset, func(r ShareFetchResponseItemPartitionAcquiredRecord, o int64) int {
			return cmp.Compare(r.LastOffset, o)
		})
		if i == len(ranges) || ranges[i].FirstOffset > rec.Offset {
			continue // overlapping ranges: the state says acquired, the range search disagrees
		}
		rec.Topic, rec.Partition = part.tp.topic, part.tp.partition
		idx := int32(rec.Offset - part.first)
		part.acks[idx] = ackPending
		recs = append(recs, ShareRecord{Record: rec, DeliveryCount: ranges[i].DeliveryCount, LockedUntil: lockedUntil, part: part, idx: idx})
	}
	return recs
}

// acknowledgeAll sends the settled acknowledgements of the partitions that
// pass keep (nil: all) in ShareAcknowledge, one request per broker, and with
// final closes every session (epoch -1).
func (s *ShareConsumer) acknowledgeAll(ctx context.Context, final bool, keep func(int32, topicPartition) bool) []error {
	s.mu.Lock()
	nodes := map[int32]bool{}
	for _, p := range s.parts {
		nodes[p.node] = true
	}
	s.mu.Unlock()
	if final {
		for node, ss := range s.sessions {
			nodes[node] = nodes[node] || ss.epoch > 0
		}
	}
	var errs []error
	for node := range nodes {
		s.mu.Lock()
		acks := s.takeAcks(node, func(tp topicPartition) bool { return keep == nil || keep(node, tp) })
		s.mu.Unlock()
		if len(acks) == 0 && !final {
			continue
		}
		errs = append(errs, s.acknowledge(ctx, node, s.session(node), acks, final)...)
	}
	return errs
}

// acknowledge sends one ShareAcknowledge to node.
func (s *ShareConsumer) acknowledge(ctx context.Context, node int32, ss *shareSession, acks map[topicPartition]*tpAcks, final bool) []error {
	if ss.epoch == 0 {
		return ackFailures(acks, ErrShareSessionNotFound)
	}
	epoch := nextShareEpoch(ss.epoch)
	if final {
		epoch = -1
	}
	req := &ShareAcknowledgeRequest{GroupID: &s.group, MemberID: &s.member, ShareSessionEpoch: ss.epoch, Topics: shareAckTopics(acks)}
	if final {
		req.ShareSessionEpoch = -1
	}
	rctx, cancel := context.WithTimeout(ctx, s.conf.requestTimeout)
	defer cancel()
	r, sv, err := s.cl.requestBroker(rctx, node, req)
	if err == nil {
		resp := r.(*ShareAcknowledgeResponse)
		if err = ErrorForCode(resp.ErrorCode); err == nil {
			ss.epoch = epoch
			if final {
				ss.reset()
			}
			return shareAckErrors(resp, acks)
		}
	}
	if sv.version >= 0 || final {
		ss.reset() // else not sent: the broker's session is as it was
	}
	err = fmt.Errorf("ShareAcknowledge to broker %d: %w", node, err)
	if r == nil {
		err = maybeApplied(err, sv)
	}
	return ackFailures(acks, err)
}

// shareAckErrors returns the partition errors of a ShareAcknowledge
// response, for the partitions asked.
func shareAckErrors(resp *ShareAcknowledgeResponse, acks map[topicPartition]*tpAcks) []error {
	var errs []error
	for i := range resp.Responses {
		t := &resp.Responses[i]
		for _, p := range t.Partitions {
			err := ErrorForCode(p.ErrorCode)
			if err == nil {
				continue
			}
			for tp, a := range acks {
				if a.id == t.TopicID && tp.partition == p.PartitionIndex {
					errs = append(errs, &PartitionError{Topic: tp.topic, Partition: tp.partition, Err: fmt.Errorf("%w: %w", ErrShareAckFailed, err)})
				}
			}
		}
	}
	return errs
}

// runsOrNil returns the runs of a, which may be nil.
func (a *tpAcks) runsOrNil() []ackRun {
	if a == nil {
		return nil
	}
	return a.runs
}

// shareFits reports a ShareFetch or ShareAcknowledge that needs v2 (Kafka
// 4.2) where the broker takes an older version: the record-limit acquire
// mode (KIP-1206) and lock renewal (KIP-1222). As in Java, it is not sent.
func (v *apiVersions) shareFits(req Request, version int16) error {
	if version >= 2 {
		return nil
	}
	var what string
	switch r := req.(type) {
	case *ShareFetchRequest:
		switch {
		case r.IsRenewAck:
			what = "renewing acquisition locks (KIP-1222)"
		case r.ShareAcquireMode != int8(ShareAcquireBatchOptimized):
			what = fmt.Sprintf("the %v acquire mode (KIP-1206)", ShareAcquireMode(r.ShareAcquireMode))
		}
	case *ShareAcknowledgeRequest:
		if r.IsRenewAck {
			what = "renewing acquisition locks (KIP-1222)"
		}
	}
	if what == "" {
		return nil
	}
	return fmt.Errorf("%w: %s needs %s v2 (Kafka 4.2+); it would go at v%d (the broker: %s; WithMaxVersion may cap it)",
		ErrUnsupportedVersion, what, APIName(req.APIKey()), version, v.describe())
}
