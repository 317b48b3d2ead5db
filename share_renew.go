package kpax

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// This file holds the renewal of acquisition locks (KIP-1222, Kafka 4.2+):
// a ShareAcknowledge with the acknowledge type Renew (4) and IsRenewAck
// set restarts the broker's lock on records the member still holds; they
// stay acquired, to be acknowledged later.

// ackTypeRenew is the wire acknowledge type that renews a lock (KIP-1222).
const ackTypeRenew = 4

// Renew extends the acquisition locks of records that Poll returned and the
// application still processes, so that they do not go to another consumer
// when the lock times out (KIP-1222; Java's AcknowledgeType.RENEW followed
// by commitSync). It sends a ShareAcknowledge to each record's broker at
// once (after a Poll or Commit in progress) and, for the records renewed,
// sets LockedUntil to the broker's new lock from when it was sent. The
// records stay unacknowledged: acknowledge them as before (in
// ShareAckImplicit mode the next Poll accepts them). Renew may be called
// again and again.
//
// Errors, each for the records concerned (the others are renewed): a
// record acknowledged already (ErrShareAcknowledged) or not delivered by
// this consumer (ErrShareForeignRecord); a broker before Kafka 4.2, which
// cannot renew (ErrUnsupportedVersion, nothing sent); a *PartitionError
// matching ErrShareAckFailed where the broker refused, e.g.
// INVALID_RECORD_STATE for a lock already lost or a group whose config
// share.renew.acknowledge.enable is false. A closed consumer is
// ErrConsumerClosed.
func (s *ShareConsumer) Renew(ctx context.Context, recs ...*ShareRecord) error {
	if ctx == nil {
		return errNilContext
	}
	for _, r := range recs {
		if r == nil {
			return errors.New("kpax: Renew: nil record")
		}
		if r.part == nil || r.part.owner != s || r.idx < 0 || int(r.idx) >= len(r.part.acks) {
			return fmt.Errorf("%w: %s/%d offset %d", ErrShareForeignRecord, r.Topic, r.Partition, r.Offset)
		}
	}
	s.io.Lock()
	defer s.io.Unlock()
	byNode, errs, err := s.renewals(recs)
	if err != nil {
		return err
	}
	for node, parts := range byNode {
		errs = append(errs, s.renew(ctx, node, parts)...)
	}
	return errors.Join(errs...)
}

// renewParts are the records to renew at one broker, by partition.
type renewParts map[topicPartition][]*ShareRecord

// renewals sorts recs by broker and partition, leaving out (with an error)
// the ones that are no longer pending.
func (s *ShareConsumer) renewals(recs []*ShareRecord) (map[int32]renewParts, []error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.closing {
		return nil, nil, ErrConsumerClosed
	}
	var errs []error
	byNode := map[int32]renewParts{}
	for _, r := range recs {
		if r.part.acks[r.idx] != ackPending {
			errs = append(errs, fmt.Errorf("kpax: Renew: %w: %s/%d offset %d", ErrShareAcknowledged, r.Topic, r.Partition, r.Offset))
			continue
		}
		if byNode[r.part.node] == nil {
			byNode[r.part.node] = renewParts{}
		}
		byNode[r.part.node][r.part.tp] = append(byNode[r.part.node][r.part.tp], r)
	}
	return byNode, errs, nil
}

// renew sends one ShareAcknowledge renewing the records of parts to node,
// in its share session, and sets their LockedUntil; s.io is held.
func (s *ShareConsumer) renew(ctx context.Context, node int32, parts renewParts) []error {
	acks := map[topicPartition]*tpAcks{}
	for tp, rs := range parts {
		slices.SortFunc(rs, func(a, b *ShareRecord) int { return cmp.Compare(a.Offset, b.Offset) })
		a := &tpAcks{id: rs[0].part.id}
		for _, r := range rs {
			if n := len(a.runs); n > 0 && a.runs[n-1].last >= r.Offset-1 {
				a.runs[n-1].last = r.Offset // the next offset, or the same record again
				continue
			}
			a.runs = append(a.runs, ackRun{first: r.Offset, last: r.Offset, types: []int8{ackTypeRenew}})
		}
		acks[tp] = a
	}
	ss := s.sessions[node]
	if ss == nil || ss.epoch == 0 {
		// The session the records were acquired in is gone, and with it
		// their acquisition: they are delivered again.
		return ackFailures(acks, ErrShareSessionNotFound)
	}
	req := &ShareAcknowledgeRequest{GroupID: &s.group, MemberID: &s.member, ShareSessionEpoch: ss.epoch, IsRenewAck: true}
	req.Topics = shareAckTopics(acks)
	rctx, cancel := context.WithTimeout(ctx, s.conf.requestTimeout)
	defer cancel()
	at := time.Now()
	r, sv, err := s.cl.requestBroker(rctx, node, req)
	if err != nil {
		if sv.version < 0 {
			return []error{fmt.Errorf("kpax: Renew: broker %d: %w", node, err)} // not sent: the session is as it was
		}
		ss.reset()
		return ackFailures(acks, fmt.Errorf("ShareAcknowledge to broker %d: %w", node, err))
	}
	resp := r.(*ShareAcknowledgeResponse)
	if err := ErrorForCode(resp.ErrorCode); err != nil {
		ss.reset()
		return ackFailures(acks, fmt.Errorf("ShareAcknowledge to broker %d: %w", node, err))
	}
	ss.epoch = nextShareEpoch(ss.epoch)
	errs := shareAckErrors(resp, acks)
	lock := defaultShareLock
	if resp.AcquisitionLockTimeoutMs > 0 {
		lock = time.Duration(resp.AcquisitionLockTimeoutMs) * time.Millisecond
	}
	failed := map[topicPartition]bool{}
	for _, e := range errs {
		if pe := (*PartitionError)(nil); errors.As(e, &pe) {
			failed[topicPartition{pe.Topic, pe.Partition}] = true
		}
	}
	for tp, rs := range parts {
		if !failed[tp] {
			for _, r := range rs {
				r.LockedUntil = at.Add(lock)
			}
		}
	}
	return errs
}

// shareAckTopics turns acknowledgements into ShareAcknowledge's topics.
func shareAckTopics(acks map[topicPartition]*tpAcks) []ShareAcknowledgeRequestTopic {
	topics := []ShareAcknowledgeRequestTopic{}
	byID := map[UUID]int{}
	for tp, a := range acks {
		i, ok := byID[a.id]
		if !ok {
			i = len(topics)
			byID[a.id] = i
			topics = append(topics, ShareAcknowledgeRequestTopic{TopicID: a.id})
		}
		ap := ShareAcknowledgeRequestTopicPartition{PartitionIndex: tp.partition}
		for _, run := range a.runs {
			ap.AcknowledgementBatches = append(ap.AcknowledgementBatches, ShareAcknowledgeRequestTopicPartitionAcknowledgementBatche{FirstOffset: run.first, LastOffset: run.last, AcknowledgeTypes: run.types})
		}
		topics[i].Partitions = append(topics[i].Partitions, ap)
	}
	return topics
}
