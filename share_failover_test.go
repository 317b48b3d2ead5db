package kpax

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Share consumer fail-over on the shared 3-node cluster (kafka_test.go):
// the leader of the partition the share group reads is SIGKILLed, then the
// broker that coordinates the group (its ShareGroupHeartbeat coordinator,
// chosen to be also the share coordinator that keeps the partition's share
// state in __share_group_state).

// shareLedger records what a fail-over test produced, delivered and had
// accepted (a Commit without error), by record value.
type shareLedger struct {
	mu         sync.Mutex
	producedAt map[string]time.Time // acknowledged by the producer
	delivered  map[string]int
	accepted   map[string]int
	acceptAt   map[string]time.Time // first acceptance
	maybe      map[string]bool      // a Commit failed with ErrMaybePersisted
	offset     map[string]int64
	errs       []time.Time // when a Poll or Commit reported errors
	lastErr    error
	errLog     []string // the first errors, without repeats
	lastMsg    string
}

func newShareLedger() *shareLedger {
	return &shareLedger{producedAt: map[string]time.Time{}, delivered: map[string]int{}, accepted: map[string]int{}, acceptAt: map[string]time.Time{}, maybe: map[string]bool{}, offset: map[string]int64{}}
}

func (l *shareLedger) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, time.Now())
	l.lastErr = err
	msg := err.Error()
	if len(l.errLog) < 60 && msg != l.lastMsg {
		l.errLog = append(l.errLog, time.Now().Format("15:04:05.000")+" "+msg)
	}
	l.lastMsg = msg
}

// acceptedAfter reports whether a record produced after t was accepted.
func (l *shareLedger) acceptedAfter(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for v := range l.accepted {
		if at, ok := l.producedAt[v]; ok && at.After(t) {
			return true
		}
	}
	return false
}

// errorsAfter counts the error reports since t.
func (l *shareLedger) errorsAfter(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.errs {
		if at.After(t) {
			n++
		}
	}
	return n
}

// firstAcceptAfter is the first acceptance of a record produced after t.
func (l *shareLedger) firstAcceptAfter(t time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for v, at := range l.acceptAt {
		if p, ok := l.producedAt[v]; ok && p.After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first
}

// missing counts the produced records never accepted, and how many of
// them a Commit may have had accepted (ErrMaybePersisted) when the broker
// has settled every record (settled: the group's lag is 0).
func (l *shareLedger) missing(settled bool) (n, maybe int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for v := range l.producedAt {
		if l.accepted[v] == 0 {
			n++
			if l.maybe[v] && settled {
				maybe++
			}
		}
	}
	return n, maybe
}

// maxDelivered is the highest number of deliveries of one record.
func (l *shareLedger) maxDelivered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := 0
	for _, n := range l.delivered {
		m = max(m, n)
	}
	return m
}

func (l *shareLedger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	again, acc2 := 0, 0
	for _, n := range l.delivered {
		if n > 1 {
			again++
		}
	}
	for _, n := range l.accepted {
		if n > 1 {
			acc2++
		}
	}
	return fmt.Sprintf("%d produced, %d delivered (%d more than once), %d accepted (%d more than once), %d error reports",
		len(l.producedAt), len(l.delivered), again, len(l.accepted), acc2, len(l.errs))
}

// produceShareFailover produces records "r-N" in batches of 10, about 200
// a second, until stop is closed; each acknowledged record goes into l.
func produceShareFailover(t *testing.T, cl *Client, topic string, l *shareLedger, stop chan struct{}) {
	p, err := cl.NewProducer(WithAcks(-1), WithIdempotence(true), WithLinger(time.Millisecond),
		WithProduceTimeout(2*time.Second), WithDeliveryTimeout(60*time.Second))
	if err != nil {
		t.Error(err)
		return
	}
	defer p.Close(context.Background())
	for n := 0; ; n += 10 {
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		var recs []*Record
		for i := n; i < n+10; i++ {
			recs = append(recs, &Record{Topic: topic, Value: []byte("r-" + strconv.Itoa(i))})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := p.ProduceSync(ctx, recs...)
		cancel()
		if err != nil {
			t.Logf("produce r-%d..: %v (not expected to be consumed)", n, err)
			continue
		}
		now := time.Now()
		l.mu.Lock()
		for _, r := range recs {
			l.producedAt[string(r.Value)] = now
		}
		l.mu.Unlock()
	}
}

// runShareFailover polls s in explicit mode, accepts every record and
// commits, until stop is closed.
func runShareFailover(s *ShareConsumer, l *shareLedger, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		f, err := s.Poll(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			l.failed(err)
			time.Sleep(100 * time.Millisecond)
		}
		if len(f.Errors) > 0 {
			l.failed(errors.Join(f.Errors...))
		}
		l.mu.Lock()
		for _, r := range f.Records {
			l.delivered[string(r.Value)]++
			l.offset[string(r.Value)] = r.Offset
		}
		l.mu.Unlock()
		for i := range f.Records {
			s.Acknowledge(&f.Records[i], AckAccept)
		}
		if len(f.Records) == 0 {
			continue
		}
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		err = s.Commit(ctx)
		cancel()
		if err != nil {
			l.failed(fmt.Errorf("Commit of %s..%s: %w", f.Records[0].Value, f.Records[len(f.Records)-1].Value, err))
			if errors.Is(err, ErrMaybePersisted) {
				l.mu.Lock()
				for _, r := range f.Records {
					l.maybe[string(r.Value)] = true
				}
				l.mu.Unlock()
			}
			continue
		}
		now := time.Now()
		l.mu.Lock()
		for _, r := range f.Records {
			v := string(r.Value)
			if l.accepted[v] == 0 {
				l.acceptAt[v] = now
			}
			l.accepted[v]++
		}
		l.mu.Unlock()
	}
}

// shareCoordinator asks a live broker for the share coordinator of the
// partition's share state (FindCoordinator key type 2, "group:topicID:partition"),
// again while it is not available (the broker creates __share_group_state
// on first use).
func shareCoordinator(ctx context.Context, cl *Client, group string, id UUID, partition int32) (int32, error) {
	for {
		n, err := findShareCoordinator(ctx, cl, group, id, partition)
		if err == nil || !IsRetriable(err) {
			return n, err
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return -1, err
		}
	}
}

func findShareCoordinator(ctx context.Context, cl *Client, group string, id UUID, partition int32) (int32, error) {
	key := group + ":" + base64.RawURLEncoding.EncodeToString(id[:]) + ":" + strconv.Itoa(int(partition))
	r, err := cl.Request(ctx, &FindCoordinatorRequest{KeyType: 2, Key: key, CoordinatorKeys: []string{key}})
	if err != nil {
		return -1, err
	}
	resp := r.(*FindCoordinatorResponse)
	if len(resp.Coordinators) == 0 {
		return -1, fmt.Errorf("FindCoordinator %q: no coordinator in the response", key)
	}
	c := resp.Coordinators[0]
	if err := ErrorForCode(c.ErrorCode); err != nil {
		return -1, fmt.Errorf("FindCoordinator %q: %w", key, err)
	}
	return c.NodeID, nil
}

// groupCoordinator asks FindCoordinator again for the group's coordinator.
func groupCoordinator(ctx context.Context, cl *Client, group string) (int32, error) {
	cl.meta.invalidateCoordinator(0, group)
	return cl.meta.coordinator(ctx, 0, group)
}

// pickShareGroup returns a group name whose group coordinator is also the
// share coordinator of the topic's partition 0 and is not its leader, so
// that killing the leader and then the coordinator are two faults.
func pickShareGroup(t *testing.T, cl *Client, topic string, leader int32) (group string, coord int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tm, err := cl.meta.topic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		g := fmt.Sprintf("%s-g%d", topic, i)
		gc, err := groupCoordinator(ctx, cl, g)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := shareCoordinator(ctx, cl, g, tm.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if gc == sc && gc != leader {
			return g, gc
		}
	}
	t.Fatalf("no group of 60 has its group and share coordinator together, away from leader %d", leader)
	return "", 0
}

// electPreferred moves the partitions of the topics to their preferred
// leaders once they have 3 in-sync replicas, asking again while a
// restarted preferred leader is not ready (partitions already there answer
// ErrElectionNotNeeded).
func electPreferred(t *testing.T, cl *Client, topics ...string) {
	t.Helper()
	waitFullISR(t, cl, topics...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	md, err := cl.Metadata(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	tp := TopicPartitions{}
	for _, tm := range md.Topics {
		for _, p := range tm.Partitions {
			tp[tm.Name] = append(tp[tm.Name], p.Partition)
		}
	}
	for {
		res, err := cl.Admin().ElectLeaders(ctx, false, tp)
		again := false
		for _, r := range res {
			switch {
			case r.Err == nil || errors.Is(r.Err, ErrElectionNotNeeded):
			case errors.Is(r.Err, ErrPreferredLeaderNotAvailable) && ctx.Err() == nil:
				again = true
			default:
				t.Fatalf("ElectLeaders %s/%d: %v", r.Topic, r.Partition, r.Err)
			}
		}
		if len(res) == 0 && err != nil {
			t.Fatalf("ElectLeaders: %v", err)
		}
		if !again {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// stableShareCoordinator waits (metadata propagates asynchronously) until
// the group's coordinator is want again and returns it; if it has moved for
// good to a broker that is also the share coordinator of the partition's
// state, it returns that broker.
func stableShareCoordinator(ctx context.Context, t *testing.T, cl *Client, topic, group string, want int32) int32 {
	t.Helper()
	var gc int32
	var err error
	for range 50 {
		if gc, err = groupCoordinator(ctx, cl, group); err == nil && gc == want {
			return want
		}
		time.Sleep(200 * time.Millisecond)
	}
	tm, terr := cl.meta.topic(ctx, topic)
	if err != nil || terr != nil {
		t.Fatalf("control: the coordinator of %s: %v %v", group, err, terr)
	}
	sc, err := shareCoordinator(ctx, cl, group, tm.ID, 0)
	if err != nil || sc != gc {
		t.Fatalf("control: the group coordinator moved from %d to %d, the share coordinator is %d (%v)", want, gc, sc, err)
	}
	t.Logf("the coordinator moved from %d to %d (group and share coordinator still together)", want, gc)
	return gc
}

// waitFullISR waits until every partition of the topics has 3 in-sync
// replicas (a node restarted after a kill has caught up).
func waitFullISR(t *testing.T, cl *Client, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		md, err := cl.Metadata(ctx, topics...)
		ok := err == nil && len(md.Topics) == len(topics)
		for i := 0; ok && i < len(md.Topics); i++ {
			tm := md.Topics[i]
			ok = tm.Err == nil && len(tm.Partitions) > 0
			for _, p := range tm.Partitions {
				ok = ok && p.Leader >= 0 && len(p.ISR) == 3
			}
		}
		if ok {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the partitions of %v never got 3 in-sync replicas: %v", topics, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestIntegrationShareFailover: two share consumers (explicit mode, every
// record accepted and committed) read a topic replicated 3 times while a
// producer writes to it. (a) The partition's leader is SIGKILLed; (b) after
// it is back, the broker that is both the group's coordinator and the share
// coordinator of the partition's state is SIGKILLed. After each kill, a
// record produced after it is accepted (consumption goes on); in the end
// every acknowledged record was accepted at least once. Controls: each
// killed node was the leader (coordinator) before and is not after, and the
// consumers saw errors after each kill.
func TestIntegrationShareFailover(t *testing.T) {
	c := sharedCluster(t)
	t.Cleanup(func() { c.Heal(t) })
	logs := &syncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("client log:\n%s", logs.Tail(150))
		}
	}()
	opts := []Option{WithSeedBrokers(c.Bootstrap()...), WithRequestTimeout(3 * time.Second), WithDialTimeout(time.Second),
		WithRetryBackoff(20*time.Millisecond, 500*time.Millisecond),
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))}
	cl := newTestClient(t, c.Bootstrap()[0], opts...)
	topic := createFaultTopic(t, cl, 1, 3)
	// Leaderships moved by earlier kills would move back at the
	// controller's next imbalance check (auto.leader.rebalance.enable),
	// maybe in the middle of this test: put every partition on its
	// preferred replica first.
	pickShareGroup(t, cl, topic, -1) // creates __consumer_offsets and __share_group_state
	electPreferred(t, cl, topic, "__consumer_offsets", "__share_group_state")
	leader := leaders(t, cl, topic)[0]
	group, coord := pickShareGroup(t, cl, topic, leader)
	t.Logf("partition leader %d; group %s: group and share coordinator %d", leader, group, coord)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cl.Admin().AlterConfigs(ctx, AlterConfig{Resource: ConfigResource{Type: ConfigGroup, Name: group},
		Changes: []ConfigChange{{Name: "share.auto.offset.reset", Op: ConfigSet, Value: "earliest"}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("AlterConfigs: %v %+v", err, res)
	}

	l := newShareLedger()
	stopProduce, stopConsume := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); produceShareFailover(t, cl, topic, l, stopProduce) }()
	for range 2 {
		ccl := newTestClient(t, c.Bootstrap()[0], opts...)
		s, err := ccl.NewShareConsumer(group, []string{topic}, WithShareAckMode(ShareAckExplicit),
			WithFetchMaxWait(200*time.Millisecond), WithShareMaxRecords(50))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); runShareFailover(s, l, stopConsume) }()
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.Close(ctx)
		}()
	}
	var produceOnce, consumeOnce sync.Once
	endProduce := func() { produceOnce.Do(func() { close(stopProduce) }) }
	endConsume := func() { consumeOnce.Do(func() { close(stopConsume) }) }
	defer wg.Wait()
	defer endConsume()
	defer endProduce()
	waitUntil(t, 60*time.Second, "the first records accepted", func() bool { return l.acceptedAfter(time.Time{}) })

	// (a) The partition's leader.
	if now := leaders(t, cl, topic)[0]; now != leader {
		t.Fatalf("control: the leader is %d, not %d, before the kill", now, leader)
	}
	// The clock starts once the broker is dead (kafka.sh waits for it): records produced while
	// the script ran were still accepted by the leader, and one of them would pass for a
	// recovery a few ms in, before anything noticed the kill.
	c.Node(leader).Signal(t, "KILL")
	killA := time.Now()
	waitUntil(t, 90*time.Second, "a record produced after the leader's kill accepted", func() bool { return l.acceptedAfter(killA) })
	recA := l.firstAcceptAfter(killA).Sub(killA)
	newLeader := leaders(t, cl, topic)[0]
	errsA := l.errorsAfter(killA)
	t.Logf("figures: (a) killed leader %d: new leader %d, recovered in %v, %d error reports; %v",
		leader, newLeader, recA.Round(time.Millisecond), errsA, l)
	if newLeader == leader || errsA == 0 {
		t.Fatalf("control: the kill of leader %d did not bite (leader now %d, %d error reports)", leader, newLeader, errsA)
	}
	c.Heal(t)

	// (b) The group's coordinator, which is the share coordinator too.
	// The restarted leader gets its preferred leaderships back (once it has
	// caught up) now, not at the controller's next imbalance check during (b).
	electPreferred(t, cl, topic, "__consumer_offsets", "__share_group_state")
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coord = stableShareCoordinator(ctx, t, cl, topic, group, coord)
	leaderB := leaders(t, cl, topic)[0]
	c.Node(coord).Signal(t, "KILL")
	killB := time.Now()
	waitUntil(t, 90*time.Second, "a record produced after the coordinator's kill accepted", func() bool { return l.acceptedAfter(killB) })
	recB := l.firstAcceptAfter(killB).Sub(killB)
	newCoord, err := groupCoordinator(ctx, cl, group)
	errsB := l.errorsAfter(killB)
	t.Logf("figures: (b) killed coordinator %d (leader then %d): new coordinator %d (%v), recovered in %v, %d error reports; %v",
		coord, leaderB, newCoord, err, recB.Round(time.Millisecond), errsB, l)
	if err != nil || newCoord == coord || errsB == 0 {
		t.Fatalf("control: the kill of coordinator %d did not bite (coordinator now %d, %v; %d error reports)", coord, newCoord, err, errsB)
	}
	// Some more time with the coordinator gone, then everything produced
	// must be accepted.
	time.Sleep(3 * time.Second)
	endProduce()
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	deadline := time.Now().Add(120 * time.Second)
	var last ShareGroupOffset
	for time.Now().Before(deadline) {
		offs, err := cl.Admin().ShareGroupOffsets(ctx, group, topic)
		if err == nil && len(offs) == 1 {
			last = offs[0]
		}
		if n, maybe := l.missing(last.Lag == 0 && last.End > 0); n == maybe {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	endConsume()
	wg.Wait()
	l.mu.Lock()
	lastErr := l.lastErr
	l.mu.Unlock()
	n, maybe := l.missing(last.Lag == 0 && last.End > 0)
	t.Logf("figures: end: %v; %d not known accepted, %d of them after a Commit that may have applied (ErrMaybePersisted), "+
		"the group's lag %d (start offset %d, end %d); at most %d deliveries of a record; last error: %v",
		l, n, maybe, last.Lag, last.Offset, last.End, l.maxDelivered(), lastErr)
	if t.Failed() || n > maybe {
		t.Logf("errors:\n%s", strings.Join(l.errLog, "\n"))
	}
	// Records a Commit may have applied that never came back were accepted
	// by the broker when it says the group has settled every record (lag
	// 0): no record was delivered often enough (5 times) for the broker to
	// archive it instead.
	if n > maybe || l.maxDelivered() >= 5 {
		t.Fatalf("%d acknowledged records never accepted: %s; at most %d deliveries", n-maybe, l.missingSample(), l.maxDelivered())
	}
}

// missingSample names a few of the produced records never accepted.
func (l *shareLedger) missingSample() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for v := range l.producedAt {
		if l.accepted[v] == 0 && !l.maybe[v] && len(out) < 10 {
			out = append(out, fmt.Sprintf("%s (delivered %d times)", v, l.delivered[v]))
		}
	}
	return strings.Join(out, ", ")
}
