package kpax

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// This file is the group member's machinery: the manager goroutine that
// joins (JoinGroup, SyncGroup), balances as the leader, applies
// assignments (eagerly or cooperatively, KIP-429), and the heartbeat
// goroutine of each generation.

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff is the wait before the n-th retry in a row (n >= 1): the
// client's retry backoff, doubled per failure up to its maximum.
func (g *GroupConsumer) backoff(n int) time.Duration {
	return min(g.conf.retryBackoff<<min(n-1, 16), g.conf.retryBackoffMax)
}

// Why the stable phase ended.
const (
	rejoinRebalance = iota
	rejoinLost
	rejoinResetMember
	rejoinFatal
)

// run is the manager: it joins, applies assignments and rejoins, until
// Close or a fatal error.
func (g *GroupConsumer) run() {
	defer g.wg.Done()
	defer close(g.ran)
	ctx := g.runCtx
	if g.cfg.protocol == ConsumerGroupProtocol {
		g.mu.Lock()
		g.kip848 = true
		g.mu.Unlock()
		if !g.runConsumerProtocol(ctx) {
			return
		}
		g.mu.Lock()
		g.kip848 = false
		g.mu.Unlock()
	}
	failures := 0
	for ctx.Err() == nil {
		res, err := g.joinSync(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			why, wait := g.joinFailed(err)
			switch why {
			case rejoinFatal:
				g.setFatal(ctx, err)
				return
			case rejoinLost, rejoinResetMember:
				g.lose(ctx, err, why == rejoinResetMember)
			}
			failures++
			if wait || failures > 3 { // immediate retries only a few times in a row
				g.report(err)
				if !sleep(ctx, g.backoff(failures)) {
					return
				}
			}
			continue
		}
		failures = 0
		hb := g.startHeartbeat(res.generation, res.memberID)
		why, err := rejoinRebalance, error(nil)
		if !g.apply(ctx, res) {
			why, err = g.stable(ctx, hb)
		}
		switch {
		case ctx.Err() != nil:
		case why == rejoinFatal:
			hb.stop()
			g.setFatal(ctx, err)
			return
		case why == rejoinLost || why == rejoinResetMember:
			hb.stop()
			g.lose(ctx, err, why == rejoinResetMember)
		case !g.cooperative:
			g.revoke(ctx, g.ownedList()) // eager: give up everything before joining again
		}
		hb.stop()
	}
}

// joinFailed classifies a JoinGroup/SyncGroup error: what it means for the
// membership and whether to back off before the next attempt.
func (g *GroupConsumer) joinFailed(err error) (why int, wait bool) {
	switch {
	case errors.Is(err, ErrUnknownMemberId):
		return rejoinResetMember, false
	case errors.Is(err, ErrIllegalGeneration):
		return rejoinLost, false
	case errors.Is(err, ErrRebalanceInProgress):
		return rejoinRebalance, false
	case errors.Is(err, ErrFencedInstanceId), errors.Is(err, ErrGroupMaxSizeReached),
		errors.Is(err, ErrInvalidSessionTimeout), errors.Is(err, ErrInvalidGroupId),
		errors.Is(err, ErrUnsupportedVersion): // e.g. Kafka 0.8 has no groups
		return rejoinFatal, false
	}
	g.coordinatorFailed(err)
	return rejoinRebalance, true
}

// setFatal stops the membership for good: Poll returns err from now on.
func (g *GroupConsumer) setFatal(ctx context.Context, err error) {
	g.conf.logger.Error("kpax: group member stopped", "group", g.group, "err", err)
	g.lose(ctx, err, true)
	g.mu.Lock()
	g.fatal = err
	g.mu.Unlock()
	g.report(err) // wakes Poll
}

// lose drops every owned partition without committing (another member may
// own them already) and forgets the generation, and the member ID too
// with resetMember.
func (g *GroupConsumer) lose(ctx context.Context, err error, resetMember bool) {
	g.mu.Lock()
	lost := g.ownedList()
	g.generation = -1
	if resetMember {
		g.memberID = ""
	}
	for _, tp := range lost {
		delete(g.owned, tp)
		delete(g.revoking, tp)
		delete(g.marks, tp)
	}
	g.mu.Unlock()
	if len(lost) == 0 {
		return
	}
	g.conf.logger.Warn("kpax: group partitions lost", "group", g.group, "partitions", len(lost), "err", err)
	g.c.unassign(lost)
	g.proc.Load().lost(lost)
	if f := g.cfg.onLost; f != nil {
		f(ctx, partsByTopic(setOf(lost)))
	}
}

func setOf(tps []topicPartition) map[topicPartition]bool {
	m := make(map[topicPartition]bool, len(tps))
	for _, tp := range tps {
		m[tp] = true
	}
	return m
}

// ownedList returns the owned partitions, sorted. Safe with or without g.mu
// held by the manager goroutine, the only writer besides Close.
func (g *GroupConsumer) ownedList() []topicPartition {
	tps := slices.Collect(maps.Keys(g.owned))
	slices.SortFunc(tps, compareTP)
	return tps
}

func compareTP(a, b topicPartition) int {
	if a.topic != b.topic {
		if a.topic < b.topic {
			return -1
		}
		return 1
	}
	return int(a.partition) - int(b.partition)
}

// revoke gives up partitions: it waits for the application to be done with
// its last Poll, calls OnRevoked, stops fetching them and commits their
// positions.
func (g *GroupConsumer) revoke(ctx context.Context, tps []topicPartition) {
	if len(tps) == 0 {
		return
	}
	g.waitDone(ctx)
	if ctx.Err() != nil {
		return // Close revokes them
	}
	g.mu.Lock()
	for _, tp := range tps {
		g.revoking[tp] = true
	}
	g.mu.Unlock()
	if f := g.cfg.onRevoked; f != nil {
		f(ctx, partsByTopic(setOf(tps)))
	}
	pos := g.c.unassign(tps)
	g.waitDone(ctx) // a Poll that returned their records before unassign
	g.proc.Load().revoking(ctx, tps)
	pos = g.toCommit(pos, tps) // after the application's last marks
	g.conf.logger.Debug("kpax: group partitions revoked", "group", g.group, "positions", fmt.Sprint(pos))
	g.mu.Lock()
	for _, tp := range tps {
		delete(g.owned, tp)
		delete(g.revoking, tp)
	}
	g.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, g.cfg.rebalance/2)
	defer cancel()
	if err := g.commitWait(cctx, pos, true); err != nil && ctx.Err() == nil { // explicit: no longer owned
		g.conf.logger.Warn("kpax: group commit on revoke", "group", g.group, "err", err)
		g.report(err)
	}
}

// joinResult is what a JoinGroup and SyncGroup round gave.
type joinResult struct {
	generation int32
	memberID   string
	assigned   map[topicPartition]bool
}

// subscription returns the member's JoinGroup protocols.
func (g *GroupConsumer) subscription() []JoinGroupRequestProtocol {
	g.mu.Lock()
	gen := g.generation
	owned := map[string][]int32{}
	if g.cooperative {
		owned = partsByTopic(g.owned)
	}
	g.mu.Unlock()
	var rack *string
	if r := g.conf.rack; r != "" {
		rack = &r
	}
	out := make([]JoinGroupRequestProtocol, 0, len(g.cfg.balancers))
	for _, b := range g.cfg.balancers {
		s := groupSubscription{version: consumerProtocolVersion, topics: g.topics, owned: owned, generation: gen, rack: rack}
		if _, ok := b.(stickyBalancer); ok {
			s.userData = appendStickyUserData(nil, gen)
		}
		out = append(out, JoinGroupRequestProtocol{Name: b.Protocol(), Metadata: s.appendTo(nil)})
	}
	return out
}

// joinSync joins the group (JoinGroup, again with the member ID the
// coordinator requires, KIP-394), balances if elected leader and gets the
// member's assignment (SyncGroup).
func (g *GroupConsumer) joinSync(ctx context.Context) (joinResult, error) {
	var instance *string
	if g.cfg.instanceID != "" {
		instance = &g.cfg.instanceID
	}
	for {
		g.mu.Lock()
		member := g.memberID
		g.mu.Unlock()
		req := &JoinGroupRequest{
			GroupID: g.group, SessionTimeoutMs: int32(g.cfg.session / time.Millisecond),
			RebalanceTimeoutMs: int32(g.cfg.rebalance / time.Millisecond), MemberID: member,
			GroupInstanceID: instance, ProtocolType: "consumer", Protocols: g.subscription(),
			Reason: ptr("kpax: joining"),
		}
		r, err := g.request(ctx, "JoinGroup", req)
		if err != nil {
			return joinResult{}, err
		}
		resp := r.(*JoinGroupResponse)
		if err := ErrorForCode(resp.ErrorCode); err != nil {
			if errors.Is(err, ErrMemberIdRequired) && resp.MemberID != "" && member == "" {
				g.mu.Lock()
				g.memberID = resp.MemberID
				g.mu.Unlock()
				continue
			}
			if errors.Is(err, ErrInvalidSessionTimeout) {
				if err = g.sessionRefused(err); err == nil { // legacy.go
					continue
				}
			}
			return joinResult{}, g.groupErr("JoinGroup", err)
		}
		protocol := deref(resp.ProtocolName)
		leader := resp.Leader == resp.MemberID
		g.mu.Lock()
		g.memberID, g.generation, g.protocol, g.leader = resp.MemberID, resp.GenerationID, protocol, leader
		g.mu.Unlock()
		g.conf.logger.Info("kpax: joined group", "group", g.group, "generation", resp.GenerationID,
			"member", resp.MemberID, "protocol", protocol, "leader", leader, "skipAssignment", resp.SkipAssignment)
		var plan []SyncGroupRequestAssignment
		if leader && !resp.SkipAssignment {
			if plan, err = g.balance(ctx, protocol, resp.Members); err != nil {
				return joinResult{}, err
			}
		}
		sreq := &SyncGroupRequest{
			GroupID: g.group, GenerationID: resp.GenerationID, MemberID: resp.MemberID, GroupInstanceID: instance,
			ProtocolType: ptr("consumer"), ProtocolName: resp.ProtocolName, Assignments: plan,
		}
		r, err = g.request(ctx, "SyncGroup", sreq)
		if err != nil {
			return joinResult{}, err
		}
		sresp := r.(*SyncGroupResponse)
		if err := ErrorForCode(sresp.ErrorCode); err != nil {
			return joinResult{}, g.groupErr("SyncGroup", err)
		}
		a, err := decodeGroupAssignment(sresp.Assignment)
		if err != nil {
			return joinResult{}, g.groupErr("SyncGroup", err)
		}
		res := joinResult{generation: resp.GenerationID, memberID: resp.MemberID, assigned: map[topicPartition]bool{}}
		for t, ps := range a.parts {
			for _, p := range ps {
				res.assigned[topicPartition{t, p}] = true
			}
		}
		return res, nil
	}
}

// balance runs the group's balancer on the members' subscriptions and
// encodes each member's assignment. In a cooperative group a partition that
// moves is left out until its owner has revoked it (KIP-429).
func (g *GroupConsumer) balance(ctx context.Context, protocol string, ms []JoinGroupResponseMember) ([]SyncGroupRequestAssignment, error) {
	i := slices.IndexFunc(g.cfg.balancers, func(b Balancer) bool { return b.Protocol() == protocol })
	if i < 0 {
		return nil, g.groupErr("JoinGroup", fmt.Errorf("%w: the coordinator chose protocol %q, which this member did not offer", ErrInconsistentGroupProtocol, protocol))
	}
	b := g.cfg.balancers[i]
	var members []GroupMember
	versions := map[string]int16{}
	topics := map[string]bool{}
	for _, m := range ms {
		gm, err := groupMember(m.MemberID, m.GroupInstanceID, m.Metadata)
		if err != nil {
			g.conf.logger.Warn("kpax: group member's subscription unreadable; it gets nothing", "group", g.group, "member", m.MemberID, "err", err)
			continue
		}
		members = append(members, gm)
		if len(m.Metadata) >= 2 {
			versions[m.MemberID] = min(int16(m.Metadata[0])<<8|int16(m.Metadata[1]), consumerProtocolVersion)
		}
		for _, t := range gm.Topics {
			topics[t] = true
		}
	}
	slices.SortFunc(members, func(a, b GroupMember) int { return memberCompare(&a, &b) })
	counts := map[string]int32{}
	for t := range topics {
		tm, err := g.cl.meta.topic(ctx, t)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			g.conf.logger.Warn("kpax: group leader: topic skipped", "group", g.group, "topic", t, "err", err)
			counts[t] = 0 // watched: the group rebalances when it appears
			continue
		}
		counts[t] = int32(len(tm.Partitions))
	}
	plan := b.Balance(members, counts)
	if g.cooperative {
		owner := map[topicPartition]string{}
		gen := map[topicPartition]int32{}
		for _, m := range members {
			for t, ps := range m.Owned {
				for _, p := range ps {
					k := topicPartition{t, p}
					if _, ok := owner[k]; !ok || m.Generation > gen[k] {
						owner[k], gen[k] = m.ID, m.Generation
					}
				}
			}
		}
		for id, ts := range plan {
			for t, ps := range ts {
				ts[t] = slices.DeleteFunc(ps, func(p int32) bool {
					o, ok := owner[topicPartition{t, p}]
					return ok && o != id
				})
			}
		}
	}
	g.mu.Lock()
	g.counts = counts
	g.mu.Unlock()
	out := make([]SyncGroupRequestAssignment, 0, len(ms))
	for _, m := range ms {
		a := groupAssignment{version: versions[m.MemberID], parts: plan[m.MemberID]}
		out = append(out, SyncGroupRequestAssignment{MemberID: m.MemberID, Assignment: a.appendTo(nil)})
	}
	return out, nil
}

// apply makes an assignment current: in a cooperative group it first
// revokes what the member lost; it calls OnAssigned with what it gained,
// fetches the committed offsets and starts consuming. It reports whether
// the member must join again at once (it revoked partitions).
func (g *GroupConsumer) apply(ctx context.Context, res joinResult) bool {
	g.mu.Lock()
	var revoked, added []topicPartition
	for tp := range g.owned {
		if !res.assigned[tp] {
			revoked = append(revoked, tp)
		}
	}
	for tp := range res.assigned {
		if !g.owned[tp] {
			added = append(added, tp)
		}
	}
	g.mu.Unlock()
	slices.SortFunc(revoked, compareTP)
	slices.SortFunc(added, compareTP)
	g.revoke(ctx, revoked)
	if len(added) == 0 {
		return len(revoked) > 0
	}
	g.mu.Lock()
	for _, tp := range added {
		g.owned[tp] = true
	}
	g.mu.Unlock()
	g.proc.Load().assigned(added)
	if f := g.cfg.onAssigned; f != nil {
		f(ctx, partsByTopic(setOf(added)))
	}
	offs, err := g.fetchOffsets(ctx, added)
	if err != nil {
		// Without committed offsets the partitions cannot start: give them
		// up (nothing was consumed) and join again for a new chance.
		g.mu.Lock()
		for _, tp := range added {
			delete(g.owned, tp)
		}
		g.mu.Unlock()
		if ctx.Err() == nil {
			g.report(err)
		}
		return true
	}
	g.conf.logger.Debug("kpax: group partitions assigned", "group", g.group, "offsets", fmt.Sprint(offs))
	g.c.assignPaused(offs, g.pausedOf(offs))
	// A Pause between pausedOf and assignPaused found the partitions not
	// yet assigned: apply the pauses again.
	for tp := range g.pausedOf(offs) {
		g.c.Pause(tp.topic, tp.partition)
	}
	return len(revoked) > 0
}

// heartbeater sends heartbeats for one generation.
type heartbeater struct {
	cancel context.CancelFunc
	done   chan struct{}
	errc   chan error // cap 1: the error that ends the generation
}

// tell reports the error that ends the generation, once: later ones find
// errc full and are dropped.
func (h *heartbeater) tell(err error) {
	select {
	case h.errc <- err:
	default:
	}
}

func (h *heartbeater) stop() {
	h.cancel()
	<-h.done
}

func (g *GroupConsumer) startHeartbeat(gen int32, member string) *heartbeater {
	ctx, cancel := context.WithCancel(g.runCtx)
	h := &heartbeater{cancel: cancel, done: make(chan struct{}), errc: make(chan error, 1)}
	var instance *string
	if g.cfg.instanceID != "" {
		instance = &g.cfg.instanceID
	}
	session := g.cfg.session // the manager may lower it (sessionRefused) for a later generation
	go func() {
		defer close(h.done)
		t := time.NewTicker(g.cfg.heartbeat)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			rctx, rcancel := context.WithTimeout(ctx, min(session, g.conf.requestTimeout))
			r, err := g.request(rctx, "Heartbeat", &HeartbeatRequest{GroupID: g.group, GenerationID: gen, MemberID: member, GroupInstanceID: instance})
			rcancel()
			if err == nil {
				err = ErrorForCode(r.(*HeartbeatResponse).ErrorCode)
			}
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.Is(err, ErrRebalanceInProgress):
				// Heartbeats go on until the member joins again: the
				// revocation before it (an eager member's, with Process's
				// drain) may outlast the session timeout, and a member
				// that goes quiet is expelled and cannot commit.
				h.tell(g.groupErr("Heartbeat", err))
			case errors.Is(err, ErrUnknownMemberId) || errors.Is(err, ErrIllegalGeneration) || errors.Is(err, ErrFencedInstanceId):
				h.tell(g.groupErr("Heartbeat", err))
				return
			default: // coordinator moved or unreachable: try again at the next tick
				g.coordinatorFailed(err)
				g.conf.logger.Debug("kpax: group heartbeat failed", "group", g.group, "err", err)
			}
		}
	}()
	return h
}

// stable runs while the member's assignment holds: it commits at the
// auto-commit interval and, on the leader, watches the topics' partition
// counts. It returns why the member must join again.
func (g *GroupConsumer) stable(ctx context.Context, hb *heartbeater) (int, error) {
	var tick <-chan time.Time
	if g.cfg.autoCommit > 0 {
		t := time.NewTicker(g.cfg.autoCommit)
		defer t.Stop()
		tick = t.C
	}
	meta := time.NewTicker(min(g.conf.metadataMaxAge, 30*time.Second))
	defer meta.Stop()
	for {
		select {
		case err := <-hb.errc:
			switch {
			case errors.Is(err, ErrRebalanceInProgress):
				return rejoinRebalance, err
			case errors.Is(err, ErrFencedInstanceId):
				return rejoinFatal, err
			case errors.Is(err, ErrUnknownMemberId):
				return rejoinResetMember, err
			}
			return rejoinLost, err
		case <-tick:
			g.autoCommit()
		case <-meta.C:
			if g.partitionsChanged(ctx) {
				g.conf.logger.Info("kpax: group leader: partition counts changed; rebalancing", "group", g.group)
				return rejoinRebalance, nil
			}
		case <-ctx.Done():
			return rejoinRebalance, ctx.Err()
		}
	}
}

// partitionsChanged reports, on the leader, whether a balanced topic's
// partition count changed since the last balance.
func (g *GroupConsumer) partitionsChanged(ctx context.Context) bool {
	g.mu.Lock()
	leader, counts := g.leader, g.counts
	g.mu.Unlock()
	if !leader || len(counts) == 0 {
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, g.conf.requestTimeout)
	defer cancel()
	if err := g.cl.meta.refresh(rctx, slices.Collect(maps.Keys(counts))...); err != nil {
		return false
	}
	m := g.cl.meta
	m.mu.Lock()
	defer m.mu.Unlock()
	for t, n := range counts {
		if tm := m.topics[t]; tm != nil && tm.Err == nil && int32(len(tm.Partitions)) != n {
			return true
		}
	}
	return false
}
