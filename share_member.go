package kpax

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

// This file is the share consumer's membership: one ShareGroupHeartbeat
// loop joins the share group with the subscription, keeps the member alive
// and brings back, by topic ID, the partitions the coordinator's assignor
// gives it. Unlike a consumer group, nothing is revoked: several members
// may read one partition, and the assignment only says where to fetch.

// shareHeartbeatDefault is the interval until the coordinator says its own
// (group.share.heartbeat.interval.ms, 5s by default).
const shareHeartbeatDefault = 5 * time.Second

// errNoShareGroups explains an UNSUPPORTED_VERSION answer to a share
// heartbeat.
const errNoShareGroups = "share groups (KIP-932) need Kafka 4.1 or later with the share.version feature enabled (the default from 4.2)"

// run heartbeats until the consumer closes or a fatal error.
func (s *ShareConsumer) run() {
	defer s.wg.Done()
	wait, failures := time.Duration(0), 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.ctx.Done():
			return
		}
		resp, err := s.heartbeat(s.ctx)
		if s.ctx.Err() != nil {
			return
		}
		switch {
		case err == nil:
			failures = 0
		case errors.Is(err, ErrUnknownMemberId), errors.Is(err, ErrFencedMemberEpoch):
			s.conf.logger.Info("kpax: share group member lost, joining again", "group", s.group, "err", err)
			s.mu.Lock()
			s.epoch = 0
			s.mu.Unlock()
			wait = 0
			continue
		case shareFatal(err):
			s.mu.Lock()
			s.fatal = err
			s.wakeLocked()
			s.mu.Unlock()
			return
		default:
			s.cl.meta.invalidateCoordinator(0, s.group)
			failures++
			s.mu.Lock()
			if failures > 1 {
				s.report(err)
			}
			s.mu.Unlock()
			wait = min(s.conf.retryBackoff<<min(failures, 10), s.conf.retryBackoffMax)
			continue
		}
		wait = shareHeartbeatDefault
		if resp.HeartbeatIntervalMs > 0 {
			wait = time.Duration(resp.HeartbeatIntervalMs) * time.Millisecond
		}
		if resp.Assignment != nil {
			if err := s.applyAssignment(s.ctx, resp.MemberEpoch, resp.Assignment); err != nil {
				s.mu.Lock()
				s.report(&GroupError{Group: s.group, Op: "ShareGroupHeartbeat", Err: err})
				s.epoch = 0 // the coordinator sends the whole assignment to a joining member
				s.mu.Unlock()
				wait = s.conf.retryBackoff
			}
		}
	}
}

// shareFatal reports a heartbeat error the member cannot get over.
func shareFatal(err error) bool {
	for _, e := range []error{ErrUnsupportedVersion, ErrGroupAuthorizationFailed, ErrTopicAuthorizationFailed,
		ErrInvalidRequest, ErrGroupMaxSizeReached, ErrInconsistentGroupProtocol, ErrGroupIdNotFound, ErrClientClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// heartbeat sends one ShareGroupHeartbeat: the subscription when joining.
func (s *ShareConsumer) heartbeat(ctx context.Context) (*ShareGroupHeartbeatResponse, error) {
	s.mu.Lock()
	epoch := s.epoch
	s.mu.Unlock()
	req := &ShareGroupHeartbeatRequest{GroupID: s.group, MemberID: s.member, MemberEpoch: epoch}
	if epoch == 0 {
		req.SubscribedTopicNames = s.topics
		if r := s.conf.rack; r != "" {
			req.RackID = &r
		}
	}
	resp, err := s.groupRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	r := resp.(*ShareGroupHeartbeatResponse)
	if err := ErrorForCode(r.ErrorCode); err != nil {
		if msg := deref(r.ErrorMessage); msg != "" {
			err = fmt.Errorf("%w (%s)", err, msg)
		}
		if errors.Is(err, ErrUnsupportedVersion) {
			err = fmt.Errorf("%w: %s", err, errNoShareGroups)
		}
		return nil, &GroupError{Group: s.group, Op: "ShareGroupHeartbeat", Err: err}
	}
	s.mu.Lock()
	s.epoch = r.MemberEpoch
	s.mu.Unlock()
	return r, nil
}

// groupRequest sends req to the group's coordinator, within the request
// timeout.
func (s *ShareConsumer) groupRequest(ctx context.Context, req Request) (Response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.conf.requestTimeout)
	defer cancel()
	op := APIName(req.APIKey())
	coord, err := s.cl.meta.coordinator(ctx, 0, s.group)
	if err != nil {
		return nil, &GroupError{Group: s.group, Op: op, Err: err}
	}
	resp, err := s.cl.RequestBroker(ctx, coord, req)
	if err != nil {
		s.cl.meta.invalidateCoordinator(0, s.group)
		if errors.Is(err, ErrUnsupportedVersion) {
			err = fmt.Errorf("%w; %s", err, errNoShareGroups)
		}
		return nil, &GroupError{Group: s.group, Op: op, Err: err}
	}
	if coordinatorMoved(resp) {
		s.cl.meta.invalidateCoordinator(0, s.group)
	}
	return resp, nil
}

// applyAssignment makes the coordinator's assignment the member's.
func (s *ShareConsumer) applyAssignment(ctx context.Context, epoch int32, a *ShareGroupHeartbeatResponseAssignment) error {
	for _, t := range s.topics { // topic IDs of the subscription into the cache
		s.cl.meta.topic(ctx, t)
	}
	next := map[topicPartition]UUID{}
	for _, tp := range a.TopicPartitions {
		name, err := s.cl.meta.topicName(ctx, tp.TopicID)
		if err != nil {
			return err
		}
		for _, p := range tp.Partitions {
			next[topicPartition{name, p}] = tp.TopicID
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !maps.Equal(s.assigned, next) {
		s.conf.logger.Info("kpax: share group assignment", "group", s.group, "epoch", epoch, "partitions", len(next))
		s.assigned = next
		s.wakeLocked()
	}
	return nil
}

// leave tells the coordinator the member leaves (epoch -1).
func (s *ShareConsumer) leave(ctx context.Context) error {
	s.mu.Lock()
	epoch := s.epoch
	s.mu.Unlock()
	if epoch <= 0 {
		return nil // never joined, or lost: nothing to leave
	}
	resp, err := s.groupRequest(ctx, &ShareGroupHeartbeatRequest{GroupID: s.group, MemberID: s.member, MemberEpoch: -1})
	if err != nil {
		return err
	}
	err = ErrorForCode(resp.(*ShareGroupHeartbeatResponse).ErrorCode)
	if err != nil && !errors.Is(err, ErrUnknownMemberId) && !errors.Is(err, ErrFencedMemberEpoch) {
		return &GroupError{Group: s.group, Op: "ShareGroupHeartbeat", Err: err}
	}
	return nil
}
