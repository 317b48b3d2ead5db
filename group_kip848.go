package kpax

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"time"
)

// This file is the member's side of the consumer group protocol (KIP-848,
// Kafka 4.0+): no JoinGroup or leader; one ConsumerGroupHeartbeat loop
// carries the subscription and the partitions the member owns, and brings
// back, by topic ID, the partitions the coordinator's assignor wants it to
// own. The member revokes what it must give up (committing first), starts
// what it gains, and acknowledges with its next heartbeat. A broker without
// the protocol makes the member fall back to the classic one.

// runConsumerProtocol heartbeats until ctx ends or a fatal error. It
// returns true when the broker lacks the protocol and the member should use
// the classic one.
func (g *GroupConsumer) runConsumerProtocol(ctx context.Context) (fallback bool) {
	var tick <-chan time.Time
	if g.cfg.autoCommit > 0 {
		t := time.NewTicker(g.cfg.autoCommit)
		defer t.Stop()
		tick = t.C
	}
	interval := g.cfg.heartbeat
	wait := time.Duration(0)
	failures := 0
	joined := false
	var target map[topicPartition]bool // the coordinator's latest assignment
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		timer.Reset(wait)
	waiting:
		for {
			select {
			case <-timer.C:
				break waiting
			case <-tick:
				g.autoCommit()
			case <-ctx.Done():
				return false
			}
		}
		resp, err := g.consumerHeartbeat(ctx)
		if ctx.Err() != nil {
			return false
		}
		switch {
		case err == nil:
			failures = 0
		case errors.Is(err, ErrUnsupportedVersion) && !joined:
			g.conf.logger.Info("kpax: the broker lacks the consumer group protocol (KIP-848); using the classic one", "group", g.group, "err", err)
			g.mu.Lock()
			g.memberID = "" // the classic coordinator names the member
			g.mu.Unlock()
			return true
		case errors.Is(err, ErrUnknownMemberId), errors.Is(err, ErrFencedMemberEpoch):
			g.lose(ctx, err, errors.Is(err, ErrUnknownMemberId))
			target, wait = nil, 0
			continue
		case errors.Is(err, ErrFencedInstanceId), errors.Is(err, ErrUnreleasedInstanceId),
			errors.Is(err, ErrGroupMaxSizeReached), errors.Is(err, ErrUnsupportedAssignor),
			errors.Is(err, ErrInvalidRequest), errors.Is(err, ErrGroupAuthorizationFailed):
			g.setFatal(ctx, err)
			return false
		default:
			g.coordinatorFailed(err)
			failures++
			if failures > 1 {
				g.report(err)
			}
			wait = min(g.backoff(failures), interval)
			continue
		}
		joined = true
		if resp.HeartbeatIntervalMs > 0 {
			interval = min(time.Duration(resp.HeartbeatIntervalMs)*time.Millisecond, g.cfg.heartbeat)
		}
		wait = interval
		g.mu.Lock()
		if id := deref(resp.MemberID); id != "" && id != g.memberID {
			g.memberID = id
		}
		g.generation = resp.MemberEpoch
		g.mu.Unlock()
		if resp.Assignment != nil {
			t, err := g.resolveAssignment(ctx, resp.Assignment)
			if err != nil {
				g.report(g.groupErr("ConsumerGroupHeartbeat", err))
				wait = g.conf.retryBackoff // the coordinator sends it again while unacknowledged
				continue
			}
			target = t
			g.conf.logger.Info("kpax: group assignment", "group", g.group, "epoch", resp.MemberEpoch, "partitions", len(target))
		}
		g.mu.Lock()
		reconciled := maps.Equal(g.owned, target)
		g.mu.Unlock()
		if target != nil && !reconciled {
			// New, or not reached yet (offsets could not be fetched): try
			// again and acknowledge at once.
			g.apply(ctx, joinResult{generation: resp.MemberEpoch, assigned: target})
			wait = 0
		}
	}
}

// consumerHeartbeat sends one ConsumerGroupHeartbeat with the full state of
// the member: subscription and owned partitions.
func (g *GroupConsumer) consumerHeartbeat(ctx context.Context) (*ConsumerGroupHeartbeatResponse, error) {
	g.mu.Lock()
	if g.memberID == "" {
		// KIP-1082: the member names itself, as the Java client does;
		// ConsumerGroupHeartbeat v1 (Kafka 4.0+) refuses an empty ID.
		g.memberID = newMemberID()
	}
	member, epoch := g.memberID, max(g.generation, 0)
	owned := partsByTopic(g.owned)
	g.mu.Unlock()
	req := &ConsumerGroupHeartbeatRequest{
		GroupID: g.group, MemberID: member, MemberEpoch: epoch,
		RebalanceTimeoutMs: int32(g.cfg.rebalance / time.Millisecond), SubscribedTopicNames: g.topics,
		TopicPartitions: []ConsumerGroupHeartbeatRequestTopicPartition{},
	}
	if g.cfg.instanceID != "" {
		req.InstanceID = &g.cfg.instanceID
	}
	if r := g.conf.rack; r != "" {
		req.RackID = &r
	}
	for t, ps := range owned {
		tm, err := g.cl.meta.topic(ctx, t)
		if err != nil {
			return nil, g.groupErr("ConsumerGroupHeartbeat", err)
		}
		req.TopicPartitions = append(req.TopicPartitions, ConsumerGroupHeartbeatRequestTopicPartition{TopicID: tm.ID, Partitions: ps})
	}
	hctx, cancel := context.WithTimeout(ctx, g.conf.requestTimeout)
	defer cancel()
	r, err := g.request(hctx, "ConsumerGroupHeartbeat", req)
	if err != nil {
		return nil, err
	}
	resp := r.(*ConsumerGroupHeartbeatResponse)
	if err := ErrorForCode(resp.ErrorCode); err != nil {
		if msg := deref(resp.ErrorMessage); msg != "" {
			err = fmt.Errorf("%w (%s)", err, msg)
		}
		return nil, g.groupErr("ConsumerGroupHeartbeat", err)
	}
	return resp, nil
}

// resolveAssignment turns topic IDs into names.
func (g *GroupConsumer) resolveAssignment(ctx context.Context, a *ConsumerGroupHeartbeatResponseAssignment) (map[topicPartition]bool, error) {
	for _, t := range g.topics { // topic IDs of the subscription into the cache
		g.cl.meta.topic(ctx, t)
	}
	out := map[topicPartition]bool{}
	for _, tp := range a.TopicPartitions {
		name, err := g.cl.meta.topicName(ctx, tp.TopicID)
		if err != nil {
			return nil, err
		}
		for _, p := range tp.Partitions {
			out[topicPartition{name, p}] = true
		}
	}
	return out, nil
}

// leaveConsumerGroup tells the coordinator the member leaves (epoch -1),
// or, for a static member, that it will be back (epoch -2).
func (g *GroupConsumer) leaveConsumerGroup(ctx context.Context, member string) error {
	epoch := int32(-1)
	var instance *string
	if g.cfg.instanceID != "" {
		epoch, instance = -2, &g.cfg.instanceID
	}
	r, err := g.request(ctx, "ConsumerGroupHeartbeat", &ConsumerGroupHeartbeatRequest{
		GroupID: g.group, MemberID: member, MemberEpoch: epoch, InstanceID: instance, RebalanceTimeoutMs: -1})
	if err != nil {
		return err
	}
	if err := ErrorForCode(r.(*ConsumerGroupHeartbeatResponse).ErrorCode); err != nil && !errors.Is(err, ErrUnknownMemberId) && !errors.Is(err, ErrFencedMemberEpoch) {
		return g.groupErr("ConsumerGroupHeartbeat", err)
	}
	return nil
}

// newMemberID returns a random member ID in the form of Kafka's Uuid
// (16 random bytes, URL-safe base64 without padding).
func newMemberID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
