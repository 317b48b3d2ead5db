package kpax

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds the consumer group member's API and options: the
// GroupConsumer, Poll, Assigned, Close. Joining, heartbeats and rebalancing
// live in group_join.go, committing and fetching offsets in
// group_commit.go, the balancers and the ConsumerProtocol bytes in
// group_assign.go, and fetching in the Consumer this type wraps.

// GroupProtocol selects the consumer group protocol.
type GroupProtocol int8

const (
	// ClassicGroupProtocol is the JoinGroup/SyncGroup/Heartbeat protocol of
	// every broker since 0.9, with client-side assignment. The default.
	ClassicGroupProtocol GroupProtocol = iota
	// ConsumerGroupProtocol is the next-generation protocol of KIP-848
	// (ConsumerGroupHeartbeat, Kafka 4.0+): the coordinator assigns (its
	// default assignor; the balancers are not used) and rebalances
	// incrementally, with no group-wide barrier. A member whose broker lacks
	// it falls back to the classic protocol. The heartbeat interval is the
	// coordinator's, capped by WithHeartbeatInterval; revoking and starting
	// partitions happen between two heartbeats. Static membership
	// (WithInstanceID) works with it too.
	ConsumerGroupProtocol
)

// groupConfig holds the group options; its defaults are part of
// defaultConfig and its checks part of validate.
type groupConfig struct {
	session    time.Duration
	sessionSet bool // by WithSessionTimeout: no fallback (legacy.go)
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
// group.max.session.timeout.ms, 30s by default before Kafka 0.10.1).
// Default: 45s, or 10s (the Java client's default before Kafka 3.0) with a
// coordinator that refuses 45s, as Kafka 0.9 and 0.10.0 do by default; a
// timeout set here that the coordinator refuses is an error wrapping
// ErrInvalidSessionTimeout. Group option.
func WithSessionTimeout(d time.Duration) Option {
	return func(c *config) {
		c.in(scopeGroup, "WithSessionTimeout")
		c.group.session, c.group.sessionSet = d, true
	}
}

// WithRebalanceTimeout sets how long the coordinator waits, in a
// rebalance, for every member to join again; it is also how long a member
// may take to revoke its partitions. Default: 60s. Group option.
func WithRebalanceTimeout(d time.Duration) Option {
	return func(c *config) { c.in(scopeGroup, "WithRebalanceTimeout"); c.group.rebalance = d }
}

// WithHeartbeatInterval sets how often a member tells the coordinator it is
// alive, which is also how soon it learns of a rebalance. It must be below
// the session timeout (a third of it or less is usual). Default: 3s.
// Group option.
func WithHeartbeatInterval(d time.Duration) Option {
	return func(c *config) { c.in(scopeGroup, "WithHeartbeatInterval"); c.group.heartbeat = d }
}

// WithInstanceID makes the member static (KIP-345, group.instance.id): a
// member that restarts with the same ID within the session timeout gets
// its partitions back without a rebalance, and Close does not leave the
// group. IDs must be unique within the group. Default: "" (dynamic).
// Group option.
func WithInstanceID(id string) Option {
	return func(c *config) { c.in(scopeGroup, "WithInstanceID"); c.group.instanceID = id }
}

// WithBalancers sets the assignment strategies the member supports, most
// preferred first; the coordinator picks the first one every member
// supports. The member rebalances cooperatively (KIP-429) only when every
// balancer is cooperative. Default: RangeBalancer(),
// CooperativeStickyBalancer(), as the Java client 3.x (eager rebalancing,
// and a path to cooperative-sticky by a second rolling restart). Group option.
func WithBalancers(bs ...Balancer) Option {
	return func(c *config) { c.in(scopeGroup, "WithBalancers"); c.group.balancers = append([]Balancer(nil), bs...) }
}

// WithAutoCommit sets how often the group consumer commits, in the
// background, the positions after the records the application is done with
// (those of every Poll but the last). 0 turns automatic commits off; the
// commits on revocation and Close still happen. Default: 5s. Group option.
func WithAutoCommit(interval time.Duration) Option {
	return func(c *config) { c.in(scopeGroup, "WithAutoCommit"); c.group.autoCommit = interval }
}

// WithOnAssigned sets a function called with the partitions the member
// gains in a rebalance, before their committed offsets are fetched. It runs
// on the group's own goroutine (never in Poll) and delays the rebalance, so
// it should be quick. Default: none. Group option.
func WithOnAssigned(f func(ctx context.Context, partitions map[string][]int32)) Option {
	return func(c *config) { c.in(scopeGroup, "WithOnAssigned"); c.group.onAssigned = f }
}

// WithOnRevoked sets a function called with the partitions the member gives
// up in a rebalance (all of them in an eager rebalance and in Close), after
// the application came back to Poll from the records it had (or half the
// rebalance timeout passed) and before their positions are committed. It
// runs on the group's own goroutine (in Close, on Close's). Default: none.
// Group option.
func WithOnRevoked(f func(ctx context.Context, partitions map[string][]int32)) Option {
	return func(c *config) { c.in(scopeGroup, "WithOnRevoked"); c.group.onRevoked = f }
}

// WithOnLost sets a function called with the partitions the member lost
// without revoking them: the coordinator dropped it (session timeout,
// fencing). Another member may already consume them, so nothing is
// committed. It runs on the group's own goroutine. Default: none. Group option.
func WithOnLost(f func(ctx context.Context, partitions map[string][]int32)) Option {
	return func(c *config) { c.in(scopeGroup, "WithOnLost"); c.group.onLost = f }
}

// WithGroupProtocol selects the group protocol. Default:
// ClassicGroupProtocol. Group option.
func WithGroupProtocol(p GroupProtocol) Option {
	return func(c *config) { c.in(scopeGroup, "WithGroupProtocol"); c.group.protocol = p }
}

// WithStartOffset sets where a group member starts consuming a partition
// that has no committed offset. Default: Earliest(), so that nothing
// produced before the group's first commit is skipped. Group option.
func WithStartOffset(o Offset) Option {
	return func(c *config) { c.in(scopeGroup, "WithStartOffset"); c.group.start = o }
}

// GroupError is a failure of a group request, reported by Poll (in
// Fetch.Errors while the member retries, or as Poll's error when it is
// fatal) and returned by the commit methods.
type GroupError struct {
	Group string
	Op    string // the request: "JoinGroup", "SyncGroup", "Heartbeat", "OffsetCommit", ...
	Err   error  // usually an *Error
}

// Error describes the failure: group, request and cause.
func (e *GroupError) Error() string {
	return fmt.Sprintf("kpax: group %q: %s: %v", e.Group, e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *GroupError) Unwrap() error { return e.Err }

// Is reports whether target is ErrAbortable where the cause has no class
// of its own; errors.Is finds a cause's class in the cause.
func (e *GroupError) Is(target error) bool { return defaultClassIs(e, target, e.Err) }

// GroupConsumer is a member of a consumer group: the group's coordinator
// and leader share the partitions of the subscribed topics among the
// members, and each member consumes its share from the committed offsets.
// Joining, heartbeats, rebalancing, offset fetches and automatic commits run
// on the group's own goroutines; Poll only hands over records. Poll is meant
// to be called from one goroutine; the other methods are safe for
// concurrent use. Make one with Client.NewGroupConsumer; Close it to commit
// and leave the group.
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
	revoking   map[topicPartition]bool // owned ones being revoked: OnRevoked ran or runs, not yet deleted from owned
	kip848     bool                    // in the consumer group protocol; written by the manager before it returns
	counts     map[string]int32        // partition counts the leader balanced
	fatal      error
	closed     bool
	done       uint64        // the Consumer's pollCount at the last Poll: batches the application is done with
	idle       chan struct{} // closed when done grows
	commitPoll bool          // an auto commit waits for the next Poll
	committed  map[topicPartition]position
	queue      []*commitReq // group_commit.go
	queueWake  chan struct{}

	// Paused by the application: whole topics and single partitions, kept
	// across rebalances (see Pause).
	pausedTopics map[string]bool
	pausedParts  map[topicPartition]bool
	// marking: the application marks what it processed (MarkRecords,
	// MarkOffsets) and commits cover marks, not positions (group_commit.go).
	marking  bool
	marks    map[topicPartition]position
	noCommit bool // CloseWithoutCommit

	proc atomic.Pointer[processor] // set by Process (group_parallel.go); nil-safe hooks
}

// NewGroupConsumer joins the group and consumes its share of the topics'
// partitions. It is configured by the consumer and group options given to
// New, overridden by opts, which must be consumer or group options (a
// client or producer option is an error, see Option). Close it to leave the
// group and stop its goroutines.
func (cl *Client) NewGroupConsumer(group string, topics []string, opts ...Option) (*GroupConsumer, error) {
	cfg, err := applyOptionsFor(cl.cfg, opts, scopeConsumer|scopeGroup)
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
	c, err := cl.newConsumer(cfg)
	if err != nil {
		return nil, err
	}
	g := &GroupConsumer{
		cl: cl, conf: cfg, cfg: cfg.group, group: group, topics: ts, c: c, cooperative: true,
		generation: -1, owned: map[topicPartition]bool{}, revoking: map[topicPartition]bool{}, committed: map[topicPartition]position{},
		pausedTopics: map[string]bool{}, pausedParts: map[topicPartition]bool{}, marks: map[topicPartition]position{},
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
	if ctx == nil {
		return Fetch{}, errNilContext
	}
	n := g.c.pollCount()
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
	g.setDone(n)
	commit := g.commitPoll
	g.commitPoll = false
	g.mu.Unlock()
	if commit {
		g.autoCommit()
	}
	f, err := g.c.Poll(ctx)
	if len(f.Records) == 0 && err == nil {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.fatal != nil {
			return f, g.fatal
		}
	}
	return f, err
}

// setDone records that the application is done with the batches of the
// first n Polls that returned records; g.mu is held.
func (g *GroupConsumer) setDone(n uint64) {
	if n > g.done {
		g.done = n
		close(g.idle)
		g.idle = make(chan struct{})
	}
}

// waitDone waits until the application is done with every batch Poll
// returned so far (it called Poll again, or Close), up to half the
// rebalance timeout. Records returned before a partition's unassign are
// covered when waitDone is called after it.
func (g *GroupConsumer) waitDone(ctx context.Context) {
	n := g.c.pollCount()
	t := time.NewTimer(g.cfg.rebalance / 2)
	defer t.Stop()
	g.mu.Lock()
	for g.done < n {
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

// Close leaves the group: it calls OnRevoked with the owned partitions,
// commits their positions (after every record Poll returned; with marking,
// exactly what was marked, see MarkRecords), sends LeaveGroup unless the
// member is static, and stops the member's goroutines. It returns within
// ctx; whatever is left undone then is abandoned (the coordinator drops the
// member after the session timeout). CloseWithoutCommit leaves without the
// commit.
func (g *GroupConsumer) Close(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.setDone(^uint64(0)) // the application is done with everything
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
	owned, member, fatal, kip848, noCommit := g.ownedList(), g.memberID, g.fatal, g.kip848, g.noCommit
	g.mu.Unlock()
	if len(owned) > 0 && fatal == nil {
		if f := g.cfg.onRevoked; f != nil {
			f(ctx, partsByTopic(setOf(owned)))
		}
		pos := g.c.unassign(owned)
		g.proc.Load().revoking(ctx, owned) // Process's handlers drain first
		pos = g.toCommit(pos, owned)
		if noCommit {
			pos = nil
		}
		if err := g.commitWait(ctx, pos, true); err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case member == "" || fatal != nil:
	case kip848:
		if err := g.leaveConsumerGroup(ctx, member); err != nil {
			errs = append(errs, err)
		}
	case g.cfg.instanceID == "":
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

// CloseWithoutCommit leaves the group like Close, but commits nothing: the
// next owner of the partitions starts from the last commit (a rollback of
// everything processed since). Use it to stop after a failure the
// application cannot vouch for.
func (g *GroupConsumer) CloseWithoutCommit(ctx context.Context) error {
	g.mu.Lock()
	g.noCommit = true
	g.mu.Unlock()
	return g.Close(ctx)
}

// Pause stops fetching partitions of a topic (all of them, also those the
// member is assigned later, when none is given) and drops what was fetched
// of them and not yet returned: Poll returns none of their records until
// Resume, which goes on from the record after the last one returned.
//
// Unlike Consumer.Pause, pauses outlast rebalances: a paused partition that
// the member keeps (a cooperative rebalance) stays paused at its position,
// and one it loses and gets back later starts paused, at its committed
// offset, until Resume. Pausing a partition the member does not own is
// allowed: it applies when the partition is assigned.
func (g *GroupConsumer) Pause(topic string, partitions ...int32) {
	g.mu.Lock()
	if len(partitions) == 0 {
		g.pausedTopics[topic] = true
	}
	for _, p := range partitions {
		g.pausedParts[topicPartition{topic, p}] = true
	}
	g.mu.Unlock()
	g.c.Pause(topic, partitions...)
}

// Resume fetches paused partitions of a topic again (all of them when none
// is given). Resuming some partitions of a topic paused as a whole leaves
// its other owned partitions paused.
func (g *GroupConsumer) Resume(topic string, partitions ...int32) {
	g.mu.Lock()
	if len(partitions) == 0 {
		delete(g.pausedTopics, topic)
		for tp := range g.pausedParts {
			if tp.topic == topic {
				delete(g.pausedParts, tp)
			}
		}
	} else {
		if g.pausedTopics[topic] {
			delete(g.pausedTopics, topic)
			for tp := range g.owned {
				if tp.topic == topic {
					g.pausedParts[tp] = true
				}
			}
		}
		for _, p := range partitions {
			delete(g.pausedParts, topicPartition{topic, p})
		}
	}
	g.mu.Unlock()
	g.c.Resume(topic, partitions...)
}

// pausedOf returns which of tps the application paused.
func (g *GroupConsumer) pausedOf(tps map[topicPartition]Offset) map[topicPartition]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[topicPartition]bool{}
	for tp := range tps {
		if g.pausedTopics[tp.topic] || g.pausedParts[tp] {
			out[tp] = true
		}
	}
	return out
}

// Position returns the next offset Poll will return of a partition the
// member owns (the offset after the last record returned), and false if it
// does not own it or its start point is not resolved yet. A partition
// starts at its committed offset when it is assigned; one the member keeps
// through a cooperative rebalance keeps its position, and one revoked (all
// of them in an eager rebalance) starts again from what was committed on
// revocation.
func (g *GroupConsumer) Position(topic string, partition int32) (int64, bool) {
	return g.c.Position(topic, partition)
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
