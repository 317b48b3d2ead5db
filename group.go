package kpax

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// This file holds the consumer group member: options, JoinGroup/SyncGroup,
// heartbeats and rebalancing. Committing and fetching offsets live in
// group_commit.go, the balancers and the ConsumerProtocol bytes in
// group_assign.go, and fetching in the Consumer this type wraps.

// GroupProtocol selects the consumer group protocol.
type GroupProtocol int8

const (
	// ClassicGroupProtocol is the JoinGroup/SyncGroup/Heartbeat protocol of
	// every broker since 0.9, with client-side assignment. The default.
	ClassicGroupProtocol GroupProtocol = iota
	// ConsumerGroupProtocol is the next-generation protocol of KIP-848
	// (ConsumerGroupHeartbeat, Kafka 4.0+). Not implemented yet: asking for
	// it is an error from NewGroupConsumer.
	ConsumerGroupProtocol
)

// groupConfig holds the group options; its defaults are part of
// defaultConfig and its checks part of validate.
type groupConfig struct {
	session    time.Duration
	rebalance  time.Duration
	heartbeat  time.Duration
	instanceID string
	balancers  []Balancer
	autoCommit time.Duration
	onAssigned func(context.Context, map[string][]int32)
	onRevoked  func(context.Context, map[string][]int32)
	onLost     func(context.Context, map[string][]int32)
	protocol   GroupProtocol
	start      Offset
}

func defaultGroupConfig() groupConfig {
	return groupConfig{
		session:    45 * time.Second,
		rebalance:  60 * time.Second,
		heartbeat:  3 * time.Second,
		balancers:  []Balancer{RangeBalancer(), CooperativeStickyBalancer()},
		autoCommit: 5 * time.Second,
		start:      Earliest(),
	}
}

func (c *groupConfig) validate() []error {
	var errs []error
	const maxMs = time.Duration(1<<31-1) * time.Millisecond
	if c.session < time.Millisecond || c.session > maxMs {
		errs = append(errs, fmt.Errorf("session timeout %v out of range", c.session))
	}
	if c.rebalance < time.Millisecond || c.rebalance > maxMs {
		errs = append(errs, fmt.Errorf("rebalance timeout %v out of range", c.rebalance))
	}
	if c.heartbeat <= 0 || c.heartbeat >= c.session {
		errs = append(errs, fmt.Errorf("heartbeat interval %v must be positive and below the session timeout %v", c.heartbeat, c.session))
	}
	if len(c.instanceID) > 32767 {
		errs = append(errs, errors.New("group instance ID longer than 32767 bytes"))
	}
	if len(c.balancers) == 0 {
		errs = append(errs, errors.New("no balancers"))
	}
	seen := map[string]bool{}
	for _, b := range c.balancers {
		if b == nil {
			errs = append(errs, errors.New("nil balancer"))
			continue
		}
		if p := b.Protocol(); p == "" || seen[p] {
			errs = append(errs, fmt.Errorf("balancer protocol %q empty or repeated", p))
		}
		seen[b.Protocol()] = true
	}
	if c.autoCommit < 0 {
		errs = append(errs, fmt.Errorf("negative auto commit interval %v", c.autoCommit))
	}
	switch c.protocol {
	case ClassicGroupProtocol:
	case ConsumerGroupProtocol:
		errs = append(errs, errors.New("the consumer group protocol (KIP-848) is not implemented; use ClassicGroupProtocol"))
	default:
		errs = append(errs, fmt.Errorf("unknown group protocol %d", c.protocol))
	}
	if c.start.kind > offsetTime {
		errs = append(errs, errors.New("bad start offset"))
	}
	return errs
}

// WithSessionTimeout sets how long the coordinator waits for a heartbeat
// before it drops the member and moves its partitions. The broker bounds it
// (group.min.session.timeout.ms, 6s by default, to
// group.max.session.timeout.ms). Default: 45s.
func WithSessionTimeout(d time.Duration) Option { return func(c *config) { c.group.session = d } }

// WithRebalanceTimeout sets how long the coordinator waits, in a
// rebalance, for every member to join again; it is also how long a member
// may take to revoke its partitions. Default: 60s.
func WithRebalanceTimeout(d time.Duration) Option { return func(c *config) { c.group.rebalance = d } }

// WithHeartbeatInterval sets how often a member tells the coordinator it is
// alive, which is also how soon it learns of a rebalance. It must be below
// the session timeout (a third of it or less is usual). Default: 3s.
func WithHeartbeatInterval(d time.Duration) Option { return func(c *config) { c.group.heartbeat = d } }

// WithInstanceID makes the member static (KIP-345, group.instance.id): a
// member that restarts with the same ID within the session timeout gets
// its partitions back without a rebalance, and Close does not leave the
// group. IDs must be unique within the group. Default: "" (dynamic).
func WithInstanceID(id string) Option { return func(c *config) { c.group.instanceID = id } }

// WithBalancers sets the assignment strategies the member supports, most
// preferred first; the coordinator picks the first one every member
// supports. The member rebalances cooperatively (KIP-429) only when every
// balancer is cooperative. Default: RangeBalancer(),
// CooperativeStickyBalancer(), as the Java client 3.x (eager rebalancing,
// and a path to cooperative-sticky by a second rolling restart).
func WithBalancers(bs ...Balancer) Option {
	return func(c *config) { c.group.balancers = append([]Balancer(nil), bs...) }
}

// WithAutoCommit sets how often the group consumer commits, in the
// background, the positions after the records the application is done with
// (those of every Poll but the last). 0 turns automatic commits off; the
// commits on revocation and Close still happen. Default: 5s.
func WithAutoCommit(interval time.Duration) Option {
	return func(c *config) { c.group.autoCommit = interval }
}

// WithOnAssigned sets a function called with the partitions the member
// gains in a rebalance, before their committed offsets are fetched. It runs
// on the group's own goroutine (never in Poll) and delays the rebalance, so
// it should be quick. Default: none.
func WithOnAssigned(f func(ctx context.Context, partitions map[string][]int32)) Option {
	return func(c *config) { c.group.onAssigned = f }
}

// WithOnRevoked sets a function called with the partitions the member gives
// up in a rebalance (all of them in an eager rebalance and in Close), after
// the application came back to Poll from the records it had (or half the
// rebalance timeout passed) and before their positions are committed. It
// runs on the group's own goroutine (in Close, on Close's). Default: none.
func WithOnRevoked(f func(ctx context.Context, partitions map[string][]int32)) Option {
	return func(c *config) { c.group.onRevoked = f }
}

// WithOnLost sets a function called with the partitions the member lost
// without revoking them: the coordinator dropped it (session timeout,
// fencing). Another member may already consume them, so nothing is
// committed. It runs on the group's own goroutine. Default: none.
func WithOnLost(f func(ctx context.Context, partitions map[string][]int32)) Option {
	return func(c *config) { c.group.onLost = f }
}

// WithGroupProtocol selects the group protocol. Default:
// ClassicGroupProtocol.
func WithGroupProtocol(p GroupProtocol) Option { return func(c *config) { c.group.protocol = p } }

// WithStartOffset sets where a group member starts consuming a partition
// that has no committed offset. Default: Earliest(), so that nothing
// produced before the group's first commit is skipped.
func WithStartOffset(o Offset) Option { return func(c *config) { c.group.start = o } }

// GroupError is a failure of a group request, reported by Poll (in
// Fetch.Errors while the member retries, or as Poll's error when it is
// fatal) and returned by the commit methods.
type GroupError struct {
	Group string
	Op    string // the request: "JoinGroup", "SyncGroup", "Heartbeat", "OffsetCommit", ...
	Err   error  // usually an *Error
}

func (e *GroupError) Error() string {
	return fmt.Sprintf("kpax: group %q: %s: %v", e.Group, e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *GroupError) Unwrap() error { return e.Err }

// GroupConsumer is a member of a consumer group: the group's coordinator
// and leader share the partitions of the subscribed topics among the
// members, and each member consumes its share from the committed offsets.
// Joining, heartbeats, rebalancing, offset fetches and automatic commits run
// on the group's own goroutines; Poll only hands over records. Poll is meant
// to be called from one goroutine; the other methods are safe for
// concurrent use.
//
// Delivery is at least once: automatic commits and the commits on
// revocation cover the records of every Poll but the last one, which the
// application may still be processing (a revocation waits up to half the
// rebalance timeout for the application to come back to Poll, then commits
// what Poll returned).
type GroupConsumer struct {
	cl          *Client
	conf        config // the client's options with the group consumer's
	cfg         groupConfig
	group       string
	topics      []string
	c           *Consumer
	cooperative bool

	ctx    context.Context // canceled at the end of Close
	cancel context.CancelFunc
	runCtx context.Context // the manager's, canceled first by Close
	stop   context.CancelFunc
	ran    chan struct{} // closed when the manager returns
	wg     sync.WaitGroup

	mu         sync.Mutex
	memberID   string
	generation int32
	protocol   string
	leader     bool
	owned      map[topicPartition]bool
	counts     map[string]int32 // partition counts the leader balanced
	fatal      error
	closed     bool
	inBatch    bool          // the last Poll returned records the application may still process
	idle       chan struct{} // closed when inBatch turns false
	commitPoll bool          // an auto commit waits for the next Poll
	committed  map[topicPartition]position
	queue      []*commitReq // commit.go
	queueWake  chan struct{}
}

// NewGroupConsumer joins the group and consumes its share of the topics'
// partitions. It uses the client's consumer and group options, overridden
// by opts. Close it to leave the group and stop its goroutines.
func (cl *Client) NewGroupConsumer(group string, topics []string, opts ...Option) (*GroupConsumer, error) {
	cfg, err := applyOptions(cl.cfg, opts)
	if err != nil {
		return nil, err
	}
	if group == "" || len(group) > 32767 {
		return nil, errors.New("kpax: NewGroupConsumer: the group ID must be 1 to 32767 bytes")
	}
	ts := slices.Clone(topics)
	slices.Sort(ts)
	ts = slices.Compact(ts)
	if len(ts) == 0 || slices.Contains(ts, "") {
		return nil, errors.New("kpax: NewGroupConsumer: no topics, or an empty topic name")
	}
	c, err := cl.NewConsumer(opts...)
	if err != nil {
		return nil, err
	}
	g := &GroupConsumer{
		cl: cl, conf: cfg, cfg: cfg.group, group: group, topics: ts, c: c, cooperative: true,
		generation: -1, owned: map[topicPartition]bool{}, committed: map[topicPartition]position{},
		idle: make(chan struct{}), ran: make(chan struct{}), queueWake: make(chan struct{}, 1),
	}
	for _, b := range g.cfg.balancers {
		g.cooperative = g.cooperative && b.Cooperative()
	}
	g.ctx, g.cancel = context.WithCancel(cl.ctx)
	g.runCtx, g.stop = context.WithCancel(g.ctx)
	g.wg.Add(2)
	go g.run()
	go g.commitLoop()
	return g, nil
}

// Poll waits until records or errors are ready, or ctx ends, and returns
// them, like Consumer.Poll; each call releases the records of the previous
// one and tells the group the application is done with them. Fetch.Errors
// may hold *GroupError values besides *PartitionError ones. After a fatal
// group error (e.g. FENCED_INSTANCE_ID) Poll returns it.
func (g *GroupConsumer) Poll(ctx context.Context) (Fetch, error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return Fetch{}, ErrConsumerClosed
	}
	if g.fatal != nil {
		err := g.fatal
		g.mu.Unlock()
		return Fetch{}, err
	}
	g.setIdle()
	commit := g.commitPoll
	g.commitPoll = false
	g.mu.Unlock()
	if commit {
		g.autoCommit()
	}
	f, err := g.c.Poll(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(f.Records) > 0 {
		g.inBatch = true
	} else if g.fatal != nil && err == nil {
		return f, g.fatal
	}
	return f, err
}

// setIdle marks the application as done with the last Poll; g.mu is held.
func (g *GroupConsumer) setIdle() {
	if g.inBatch {
		g.inBatch = false
		close(g.idle)
		g.idle = make(chan struct{})
	}
}

// waitIdle waits until the application is done with the records of its
// last Poll, up to half the rebalance timeout.
func (g *GroupConsumer) waitIdle(ctx context.Context) {
	t := time.NewTimer(g.cfg.rebalance / 2)
	defer t.Stop()
	g.mu.Lock()
	for g.inBatch {
		ch := g.idle
		g.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			g.conf.logger.Warn("kpax: group: the application did not come back to Poll within half the rebalance timeout; revoking anyway", "group", g.group)
			return
		case <-ctx.Done():
			return
		}
		g.mu.Lock()
	}
	g.mu.Unlock()
}

// Assigned returns the partitions the member owns now, by topic.
func (g *GroupConsumer) Assigned() map[string][]int32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return partsByTopic(g.owned)
}

func partsByTopic[V any](m map[topicPartition]V) map[string][]int32 {
	out := map[string][]int32{}
	for tp := range m {
		out[tp.topic] = append(out[tp.topic], tp.partition)
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}

// report queues a non-fatal group error for Poll.
func (g *GroupConsumer) report(err error) {
	g.c.mu.Lock()
	g.c.report(err)
	g.c.mu.Unlock()
}

func (g *GroupConsumer) groupErr(op string, err error) error {
	var ge *GroupError
	if errors.As(err, &ge) {
		return err
	}
	return &GroupError{Group: g.group, Op: op, Err: err}
}

// coordinatorFailed forgets the coordinator after an error that says it
// moved or is unreachable.
func (g *GroupConsumer) coordinatorFailed(err error) bool {
	var be *BrokerError
	if errors.Is(err, ErrNotCoordinator) || errors.Is(err, ErrCoordinatorNotAvailable) ||
		errors.As(err, &be) || errors.Is(err, ErrResponseTimeout) || errors.Is(err, ErrNoBroker) {
		g.cl.meta.invalidateCoordinator(0, g.group)
		return true
	}
	return false
}

// request sends a group request to the coordinator.
func (g *GroupConsumer) request(ctx context.Context, op string, req Request) (Response, error) {
	coord, err := g.cl.meta.coordinator(ctx, 0, g.group)
	if err != nil {
		g.coordinatorFailed(err)
		return nil, g.groupErr(op, err)
	}
	r, err := g.cl.RequestBroker(ctx, coord, req)
	if err != nil {
		g.coordinatorFailed(err)
		return nil, g.groupErr(op, err)
	}
	return r, nil
}

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
			if wait {
				failures++
				g.report(err)
				if !sleep(ctx, min(g.conf.retryBackoff<<min(failures-1, 16), g.conf.retryBackoffMax)) {
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
		errors.Is(err, ErrInvalidSessionTimeout), errors.Is(err, ErrInvalidGroupId):
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
	}
	g.mu.Unlock()
	if len(lost) == 0 {
		return
	}
	g.conf.logger.Warn("kpax: group partitions lost", "group", g.group, "partitions", len(lost), "err", err)
	g.c.unassign(lost)
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
	g.waitIdle(ctx)
	if ctx.Err() != nil {
		return // Close revokes them
	}
	if f := g.cfg.onRevoked; f != nil {
		f(ctx, partsByTopic(setOf(tps)))
	}
	pos := g.c.unassign(tps)
	g.conf.logger.Debug("kpax: group partitions revoked", "group", g.group, "positions", fmt.Sprint(pos))
	g.mu.Lock()
	for _, tp := range tps {
		delete(g.owned, tp)
	}
	g.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, g.cfg.rebalance/2)
	defer cancel()
	if err := g.commitWait(cctx, pos, false); err != nil && ctx.Err() == nil {
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
	g.c.assign(offs)
	return len(revoked) > 0
}

// heartbeater sends heartbeats for one generation.
type heartbeater struct {
	cancel context.CancelFunc
	done   chan struct{}
	errc   chan error // cap 1: the error that ends the generation
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
			rctx, rcancel := context.WithTimeout(ctx, min(g.cfg.session, g.conf.requestTimeout))
			r, err := g.request(rctx, "Heartbeat", &HeartbeatRequest{GroupID: g.group, GenerationID: gen, MemberID: member, GroupInstanceID: instance})
			rcancel()
			if err == nil {
				err = ErrorForCode(r.(*HeartbeatResponse).ErrorCode)
			}
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.Is(err, ErrRebalanceInProgress) || errors.Is(err, ErrUnknownMemberId) ||
				errors.Is(err, ErrIllegalGeneration) || errors.Is(err, ErrFencedInstanceId):
				h.errc <- g.groupErr("Heartbeat", err)
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
			g.mu.Lock()
			busy := g.inBatch
			g.commitPoll = busy
			g.mu.Unlock()
			if !busy {
				g.autoCommit()
			}
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
	for t, n := range counts {
		if tm, err := g.cl.meta.topic(rctx, t); err == nil && int32(len(tm.Partitions)) != n {
			return true
		}
	}
	return false
}

// Close leaves the group: it calls OnRevoked with the owned partitions,
// commits their positions (after every record Poll returned), sends
// LeaveGroup unless the member is static, and stops the member's
// goroutines. It returns within ctx; whatever is left undone then is
// abandoned (the coordinator drops the member after the session timeout).
func (g *GroupConsumer) Close(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.setIdle()
	g.mu.Unlock()
	defer g.cancel()
	g.stop()
	var errs []error
	select {
	case <-g.ran:
	case <-ctx.Done():
		g.c.Close(ctx)
		return ctx.Err()
	}
	g.mu.Lock()
	owned, member, fatal := g.ownedList(), g.memberID, g.fatal
	g.mu.Unlock()
	if len(owned) > 0 && fatal == nil {
		if f := g.cfg.onRevoked; f != nil {
			f(ctx, partsByTopic(setOf(owned)))
		}
		if err := g.commitWait(ctx, g.c.unassign(owned), false); err != nil {
			errs = append(errs, err)
		}
	}
	if member != "" && g.cfg.instanceID == "" && fatal == nil {
		if err := g.leave(ctx, member); err != nil {
			errs = append(errs, err)
		}
	}
	if err := g.c.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	g.cancel()
	ended := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// leave sends LeaveGroup so that the group rebalances at once.
func (g *GroupConsumer) leave(ctx context.Context, member string) error {
	req := &LeaveGroupRequest{GroupID: g.group, MemberID: member,
		Members: []LeaveGroupRequestMember{{MemberID: member, Reason: ptr("kpax: closing")}}}
	r, err := g.request(ctx, "LeaveGroup", req)
	if err != nil {
		return err
	}
	resp := r.(*LeaveGroupResponse)
	err = ErrorForCode(resp.ErrorCode)
	for _, m := range resp.Members {
		err = errors.Join(err, ErrorForCode(m.ErrorCode))
	}
	if err != nil && !errors.Is(err, ErrUnknownMemberId) {
		return g.groupErr("LeaveGroup", err)
	}
	return nil
}
