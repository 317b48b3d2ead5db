package kpax

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestGroupOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"session", []Option{WithSessionTimeout(0)}, "session timeout"},
		{"heartbeat", []Option{WithSessionTimeout(time.Second), WithHeartbeatInterval(time.Second)}, "heartbeat interval"},
		{"no balancers", []Option{WithBalancers()}, "no balancers"},
		{"nil balancer", []Option{WithBalancers(nil)}, "nil balancer"},
		{"repeated", []Option{WithBalancers(RangeBalancer(), RangeBalancer())}, "repeated"},
		{"auto commit", []Option{WithAutoCommit(-time.Second)}, "auto commit"},
		{"protocol", []Option{WithGroupProtocol(7)}, "unknown group protocol"},
	}
	cl, err := New(WithSeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := cl.NewGroupConsumer("g", []string{"t"}, tt.opts...)
			if err == nil {
				g.Close(context.Background())
				t.Fatal("NewGroupConsumer succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	for _, args := range []struct {
		group  string
		topics []string
	}{{"", []string{"t"}}, {"g", nil}, {"g", []string{""}}} {
		if g, err := cl.NewGroupConsumer(args.group, args.topics); err == nil {
			g.Close(context.Background())
			t.Fatalf("NewGroupConsumer(%q, %q) succeeded", args.group, args.topics)
		}
	}
}

// groupBroker returns the broker group tests use: the 4.x one if set.
func groupBroker(t *testing.T) string {
	bs := testBrokers(t)
	if a, ok := bs["4.x"]; ok {
		return a
	}
	return bs["3.9"]
}

// fastGroup are options for short tests: the broker's minimum session
// timeout, quick heartbeats, no auto commit.
func fastGroup(extra ...Option) []Option {
	return append([]Option{WithSessionTimeout(6 * time.Second), WithHeartbeatInterval(300 * time.Millisecond),
		WithRebalanceTimeout(15 * time.Second), WithAutoCommit(0), WithFetchMaxWait(100 * time.Millisecond)}, extra...)
}

// newGroupTestClient is newTestClient with the short retry backoff the
// group tests use.
func newGroupTestClient(t *testing.T, addr string, opts ...Option) *Client {
	t.Helper()
	return newTestClient(t, addr, append([]Option{WithRetryBackoff(50*time.Millisecond, time.Second)}, opts...)...)
}

// seenSet counts how often each record was processed, by member.
type seenSet struct {
	mu    sync.Mutex
	count map[[2]int64]int
	by    map[string]map[int32]bool // member → partitions it processed records of
}

func newSeenSet() *seenSet {
	return &seenSet{count: map[[2]int64]int{}, by: map[string]map[int32]bool{}}
}

func (s *seenSet) add(member string, p int32, off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[[2]int64{int64(p), off}]++
	if s.by[member] == nil {
		s.by[member] = map[int32]bool{}
	}
	s.by[member][p] = true
}

func (s *seenSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

func (s *seenSet) dups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k, n := range s.count {
		if n > 1 {
			out = append(out, fmt.Sprintf("%d@%d x%d", k[0], k[1], n))
		}
	}
	slices.Sort(out)
	return out
}

// groupMember is a GroupConsumer driven like an application that commits
// after processing every Poll.
type testMember struct {
	name string
	cl   *Client
	g    *GroupConsumer
	stop atomic.Bool
	done chan struct{}
}

func startMember(t *testing.T, addr, name, group, topic string, seen *seenSet, opts ...Option) *testMember {
	t.Helper()
	return startMemberCommitting(t, addr, name, group, topic, seen, true, opts...)
}

// startMemberCommitting starts a member that commits after processing, or,
// with commit false, never commits itself.
func startMemberCommitting(t *testing.T, addr, name, group, topic string, seen *seenSet, commit bool, opts ...Option) *testMember {
	t.Helper()
	// New takes every option (the group's as the defaults of its members),
	// so client options (WithMetadataMaxAge) can come with the group's.
	cl := newGroupTestClient(t, addr, append([]Option{WithClientID(name)}, opts...)...)
	g, err := cl.NewGroupConsumer(group, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	m := &testMember{name: name, cl: cl, g: g, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for !m.stop.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			f, err := g.Poll(ctx)
			cancel()
			if err != nil {
				if errors.Is(err, ErrConsumerClosed) || errors.Is(err, ErrClientClosed) {
					return
				}
				continue
			}
			for _, e := range f.Errors {
				t.Logf("%s: %v", name, e)
			}
			if seen != nil {
				for _, r := range f.Records {
					seen.add(name, r.Partition, r.Offset)
				}
			}
			if commit && len(f.Records) > 0 {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := g.Commit(cctx); err != nil {
					t.Logf("%s: commit: %v", name, err)
				}
				cancel()
			}
		}
	}()
	t.Cleanup(func() { m.close(t) })
	return m
}

func (m *testMember) stopLoop() {
	m.stop.Store(true)
	<-m.done
}

func (m *testMember) close(t *testing.T) {
	m.stopLoop()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := m.g.Close(ctx); err != nil && !errors.Is(err, ErrClientClosed) {
		t.Errorf("%s: Close: %v", m.name, err)
	}
}

// kill makes the member vanish without leaving: its heartbeats stop with
// its client.
func (m *testMember) kill(t *testing.T) {
	m.stopLoop()
	m.cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.g.Close(ctx)
}

func (m *testMember) count() int {
	n := 0
	for _, ps := range m.g.Assigned() {
		n += len(ps)
	}
	return n
}

// dumpMembers logs the consumer state of members, for failures.
func dumpMembers(t *testing.T, ms ...*testMember) {
	for _, m := range ms {
		m.g.c.mu.Lock()
		for tp, fp := range m.g.c.parts {
			t.Logf("%s: %d: state %d leader %d pos %v fetch %d inflight %v", m.name, tp.partition, fp.state, fp.leader, fp.pos, fp.fetch, fp.inflight)
		}
		m.g.c.mu.Unlock()
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func produceSpread(t *testing.T, cl *Client, topic string, partitions int32, perPartition int, tag string) {
	t.Helper()
	var recs []*Record
	for i := range perPartition {
		for p := range partitions {
			recs = append(recs, &Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("%s-%d-%d", tag, p, i))})
		}
	}
	produceKpax(t, cl, recs, WithPartitioner(ManualPartitioner()))
}

// TestIntegrationGroupSplit: two members split six partitions evenly, a
// third joins and gets its share, then it is killed (no LeaveGroup): its
// partitions move after the session timeout and the others go on from its
// committed offsets. Every record is processed exactly once.
func TestIntegrationGroupSplit(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) { testGroupSplit(t, addr) })
	}
}

func testGroupSplit(t *testing.T, addr string) {
	cl := newGroupTestClient(t, addr)
	const parts = 6
	topic := createTestTopic(t, cl, parts)
	group := "g-" + topic
	seen := newSeenSet()
	produceSpread(t, cl, topic, parts, 50, "a")
	t0 := time.Now()
	a := startMember(t, addr, "a", group, topic, seen, fastGroup()...)
	b := startMember(t, addr, "b", group, topic, seen, fastGroup()...)
	waitUntil(t, 30*time.Second, "a 3+3 split", func() bool { return a.count() == 3 && b.count() == 3 })
	t.Logf("two members split in %v", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	c := startMember(t, addr, "c", group, topic, seen, fastGroup()...)
	waitUntil(t, 30*time.Second, "a 2+2+2 split", func() bool { return a.count() == 2 && b.count() == 2 && c.count() == 2 })
	t.Logf("three members split in %v", time.Since(t0).Round(time.Millisecond))
	produceSpread(t, cl, topic, parts, 50, "b")
	waitUntil(t, 30*time.Second, "600 records", func() bool { return seen.len() == 600 })
	if len(seen.by["c"]) == 0 {
		t.Fatalf("c processed nothing: %v", seen.by)
	}

	t0 = time.Now()
	cParts := c.g.Assigned()
	c.kill(t)
	produceSpread(t, cl, topic, parts, 50, "c")
	waitUntil(t, 40*time.Second, "c's partitions to move", func() bool { return a.count()+b.count() == parts })
	t.Logf("killed member's partitions %v moved in %v", cParts, time.Since(t0).Round(time.Millisecond))
	waitUntil(t, 30*time.Second, "900 records", func() bool { return seen.len() == 900 })
	time.Sleep(300 * time.Millisecond)
	if d := seen.dups(); len(d) > 0 {
		t.Fatalf("records processed more than once: %v", d)
	}
	if n := seen.len(); n != 900 {
		t.Fatalf("%d records processed, want 900", n)
	}
}

// TestIntegrationGroupCooperative: with cooperative-sticky only, a joining
// member takes partitions without the others losing what they keep.
func TestIntegrationGroupCooperative(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 4)
	group := "g-" + topic
	var mu sync.Mutex
	revoked := map[string][]int32{}
	opts := fastGroup(WithBalancers(CooperativeStickyBalancer()), WithOnRevoked(func(_ context.Context, ps map[string][]int32) {
		mu.Lock()
		defer mu.Unlock()
		revoked[topic] = append(revoked[topic], ps[topic]...)
	}))
	seen := newSeenSet()
	produceSpread(t, cl, topic, 4, 20, "a")
	a := startMember(t, addr, "a", group, topic, seen, opts...)
	waitUntil(t, 30*time.Second, "a owns all", func() bool { return a.count() == 4 })
	before := a.g.Assigned()[topic]
	b := startMember(t, addr, "b", group, topic, seen, opts...)
	waitUntil(t, 30*time.Second, "a 2+2 split", func() bool { return a.count() == 2 && b.count() == 2 })
	after := a.g.Assigned()[topic]
	mu.Lock()
	rv := slices.Clone(revoked[topic])
	mu.Unlock()
	slices.Sort(rv)
	for _, p := range after {
		if slices.Contains(rv, p) || !slices.Contains(before, p) {
			t.Fatalf("a kept %v but revoked %v (owned %v)", after, rv, before)
		}
	}
	if len(rv) != 2 {
		t.Fatalf("a revoked %v, want 2 partitions", rv)
	}
	waitUntil(t, 30*time.Second, "80 records", func() bool { return seen.len() == 80 })
	if d := seen.dups(); len(d) > 0 {
		t.Fatalf("records processed more than once: %v", d)
	}
}

// describeGroup returns the members of a group and their assignments as
// the coordinator holds them, once it is stable with n members.
func describeGroup(t *testing.T, cl *Client, group string, n int) map[string]map[string][]int32 {
	t.Helper()
	var out map[string]map[string][]int32
	waitUntil(t, 40*time.Second, fmt.Sprintf("group %s stable with %d members", group, n), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := cl.Request(ctx, &DescribeGroupsRequest{Groups: []string{group}})
		if err != nil || len(r.(*DescribeGroupsResponse).Groups) != 1 {
			return false
		}
		d := r.(*DescribeGroupsResponse).Groups[0]
		if d.GroupState != "Stable" || len(d.Members) != n {
			return false
		}
		out = map[string]map[string][]int32{}
		for _, m := range d.Members {
			a, err := decodeGroupAssignment(m.MemberAssignment)
			if err != nil {
				t.Fatalf("member %s (%s) assignment: %v", m.MemberID, m.ClientID, err)
			}
			for _, ps := range a.parts {
				slices.Sort(ps) // librdkafka does not sort them
			}
			out[m.ClientID] = a.parts
		}
		return true
	})
	return out
}

// TestIntegrationGroupKcat: a kpax member and a kcat (librdkafka) member
// share a group with range and cooperative-sticky, each leading in turn
// (the first to join leads), splitting the partitions with no overlap.
func TestIntegrationGroupKcat(t *testing.T) {
	addr := groupBroker(t)
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is needed for the interop tests: %v", err)
	}
	cl := newGroupTestClient(t, addr)
	for _, tc := range []struct {
		strategy  string
		b         Balancer
		kcatFirst bool
	}{
		{"range", RangeBalancer(), true}, {"range", RangeBalancer(), false},
		{"cooperative-sticky", CooperativeStickyBalancer(), true}, {"cooperative-sticky", CooperativeStickyBalancer(), false},
	} {
		leader := "kpax leads"
		if tc.kcatFirst {
			leader = "kcat leads"
		}
		t.Run(tc.strategy+"/"+leader, func(t *testing.T) {
			const parts = 5
			topic := createTestTopic(t, cl, parts)
			group := "g-" + topic
			startKcat := func() {
				cmd := exec.Command(kcat, "-b", addr, "-G", group, "-q", "-X", "client.id=kcat",
					"-X", "partition.assignment.strategy="+tc.strategy, "-X", "session.timeout.ms=6000",
					"-X", "heartbeat.interval.ms=300", "-X", "auto.offset.reset=earliest", topic)
				var out strings.Builder
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					cmd.Process.Signal(syscall.SIGTERM)
					ended := make(chan struct{})
					go func() { cmd.Wait(); close(ended) }()
					select {
					case <-ended:
					case <-time.After(10 * time.Second):
						cmd.Process.Kill()
						<-ended
					}
					if t.Failed() {
						t.Logf("kcat output:\n%s", out.String())
					}
				})
			}
			if tc.kcatFirst {
				startKcat()
				describeGroup(t, cl, group, 1)
			}
			m := startMember(t, addr, "kpax", group, topic, nil, fastGroup(WithBalancers(tc.b))...)
			if !tc.kcatFirst {
				waitUntil(t, 30*time.Second, "kpax owns all", func() bool { return m.count() == parts })
				startKcat()
			}
			var d map[string]map[string][]int32
			waitUntil(t, 40*time.Second, "both members own partitions", func() bool {
				d = describeGroup(t, cl, group, 2)
				return len(d["kcat"][topic]) > 0 && len(d["kpax"][topic]) > 0
			})
			all := append(slices.Clone(d["kcat"][topic]), d["kpax"][topic]...)
			slices.Sort(all)
			if !slices.Equal(all, []int32{0, 1, 2, 3, 4}) {
				t.Fatalf("assignments overlap or miss partitions: %v", d)
			}
			waitUntil(t, 10*time.Second, "kpax to own what the coordinator says", func() bool {
				if !slices.Equal(m.g.Assigned()[topic], d["kpax"][topic]) {
					t.Logf("kpax owns %v, the coordinator says %v", m.g.Assigned()[topic], d["kpax"])
					return false
				}
				return true
			})
			t.Logf("%s: kcat %v, kpax %v", tc.strategy, d["kcat"][topic], d["kpax"][topic])
		})
	}
}

// TestIntegrationGroupStatic: a static member that restarts within the
// session timeout gets its partitions back with no rebalance.
func TestIntegrationGroupStatic(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 4)
	group := "g-" + topic
	var rebalances atomic.Int32
	count := WithOnAssigned(func(context.Context, map[string][]int32) { rebalances.Add(1) })
	opts := fastGroup(WithSessionTimeout(20*time.Second), count)
	// b joins first and leads: its restart goes through the leader's path
	// (JoinGroup v9+ tells it to skip the assignment, KIP-814).
	b := startMember(t, addr, "b", group, topic, nil, append(opts, WithInstanceID("b"))...)
	waitUntil(t, 30*time.Second, "b to own all", func() bool { return b.count() == 4 })
	a := startMember(t, addr, "a", group, topic, nil, append(opts, WithInstanceID("a"))...)
	waitUntil(t, 30*time.Second, "a 2+2 split", func() bool { return a.count() == 2 && b.count() == 2 })
	b.g.mu.Lock()
	if !b.g.leader {
		t.Errorf("b does not lead")
	}
	b.g.mu.Unlock()
	time.Sleep(time.Second) // let a late rebalance settle
	a.g.mu.Lock()
	gen := a.g.generation
	a.g.mu.Unlock()
	bParts := b.g.Assigned()
	n := rebalances.Load()

	t0 := time.Now()
	b.close(t) // static: no LeaveGroup
	b2 := startMember(t, addr, "b2", group, topic, nil, append(opts, WithInstanceID("b"))...)
	waitUntil(t, 15*time.Second, "b's restart to get its partitions", func() bool { return b2.count() == 2 })
	t.Logf("static member back in %v", time.Since(t0).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // heartbeats would see a rebalance by now
	a.g.mu.Lock()
	gen2 := a.g.generation
	a.g.mu.Unlock()
	b2.g.mu.Lock()
	genB := b2.g.generation
	b2.g.mu.Unlock()
	if gen2 != gen || genB != gen {
		t.Fatalf("generation %d before, %d (a) and %d (restarted b) after", gen, gen2, genB)
	}
	if got := rebalances.Load(); got != n+1 { // only b2's own OnAssigned
		t.Fatalf("%d OnAssigned calls after the restart, want 1", got-n)
	}
	b2.g.mu.Lock()
	t.Logf("restarted member leads: %v", b2.g.leader)
	b2.g.mu.Unlock()
	if got := b2.g.Assigned(); !slices.Equal(got[topic], bParts[topic]) {
		t.Fatalf("restarted member got %v, had %v", got, bParts)
	}
}

// TestIntegrationGroupClose: Close commits, leaves at once (the other
// member takes over without waiting for the session timeout), returns
// within its context even when the coordinator is unreachable, and leaves
// no goroutine behind.
func TestIntegrationGroupClose(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 2)
	group := "g-" + topic
	produceSpread(t, cl, topic, 2, 10, "a")
	seen := newSeenSet()
	a := startMember(t, addr, "a", group, topic, seen, fastGroup(WithSessionTimeout(30*time.Second))...)
	waitUntil(t, 30*time.Second, "a owns both", func() bool { return a.count() == 2 })
	waitUntil(t, 30*time.Second, "20 records", func() bool { return seen.len() == 20 })
	b := startMember(t, addr, "b", group, topic, seen, fastGroup(WithSessionTimeout(30*time.Second))...)
	waitUntil(t, 30*time.Second, "a 1+1 split", func() bool { return a.count() == 1 && b.count() == 1 })
	t0 := time.Now()
	a.close(t)
	waitUntil(t, 10*time.Second, "b to own both", func() bool { return b.count() == 2 })
	t.Logf("Close and takeover in %v (session timeout 30s)", time.Since(t0).Round(time.Millisecond))
	produceSpread(t, cl, topic, 2, 10, "b")
	waitUntil(t, 30*time.Second, "40 records", func() bool { return seen.len() == 40 })
	if d := seen.dups(); len(d) > 0 {
		t.Fatalf("records processed more than once: %v", d)
	}

	// An unreachable coordinator: Close gives up at its deadline.
	fn := newFaultNet(t)
	ccl := newGroupTestClient(t, addr, fn.Option())
	g, err := ccl.NewGroupConsumer(group, []string{topic}, fastGroup()...)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "c to join", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.generation > 0
	})
	fn.Blackhole(addr, true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	t0 = time.Now()
	g.Close(ctx)
	if d := time.Since(t0); d > 1500*time.Millisecond {
		t.Fatalf("Close took %v with a 1s context", d)
	}
	fn.Blackhole(addr, false)
	b.close(t)
	waitUntil(t, 10*time.Second, "group goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*GroupConsumer)")
	})
}

// TestIntegrationConsumerReassignOrder: a partition assigned again in the
// same fetch session comes back in the broker's order, not the request's;
// its records must keep their partition.
func TestIntegrationConsumerReassignOrder(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 4)
	produceSpread(t, cl, topic, 4, 50, "a")
	c := newTestConsumer(t, cl)
	c.Assign(map[string]map[int32]Offset{topic: {3: AtOffset(0), 1: AtOffset(0)}})
	pollN(t, c, 100, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	c.Unassign(topic, 3, 1)
	c.Assign(map[string]map[int32]Offset{topic: {2: AtOffset(50), 3: AtOffset(50)}})
	time.Sleep(300 * time.Millisecond)
	produceSpread(t, cl, topic, 4, 50, "b")
	got, _ := pollN(t, c, 100, 10*time.Second)
	for _, g := range got {
		if want := fmt.Sprintf("b-%d-%d", g.partition, g.offset-50); g.val != want {
			t.Fatalf("partition %d offset %d holds %q, want %q", g.partition, g.offset, g.val, want)
		}
	}
}

// TestIntegrationGroupKcatOffsets: offsets committed by kcat (librdkafka)
// are where a kpax member of the group starts, and the other way round.
func TestIntegrationGroupKcatOffsets(t *testing.T) {
	addr := groupBroker(t)
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is needed for the interop tests: %v", err)
	}
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 1)
	group := "g-" + topic
	// runKcat consumes in the group until it printed n offsets, then stops
	// (committing on close) and returns them.
	runKcat := func(n int) []string {
		t.Helper()
		cmd := exec.Command(kcat, "-b", addr, "-G", group, "-q", "-u", "-f", "%o\n", "-X", "auto.offset.reset=earliest",
			"-X", "auto.commit.interval.ms=100", "-X", "session.timeout.ms=6000", topic)
		var out, errOut syncBuf
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(out.String(), "\n") < n && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // an auto commit
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		got := strings.Fields(out.String())
		if len(got) != n {
			t.Fatalf("kcat printed %d offsets %q, want %d\n%s", len(got), got, n, errOut.String())
		}
		return got
	}
	produceSpread(t, cl, topic, 1, 10, "a")
	if got := runKcat(10); got[0] != "0" || got[9] != "9" {
		t.Fatalf("kcat consumed offsets %v", got)
	}
	if o := committedOffsets(t, cl, group, topic, 1); o[0] != 10 {
		t.Fatalf("kcat committed %v, want 10", o)
	}
	produceSpread(t, cl, topic, 1, 5, "b")
	seen := newSeenSet()
	m := startMember(t, addr, "kpax", group, topic, seen, fastGroup()...)
	waitUntil(t, 30*time.Second, "5 records", func() bool { return seen.len() == 5 })
	time.Sleep(200 * time.Millisecond)
	m.close(t)
	for o := int64(10); o < 15; o++ {
		if seen.count[[2]int64{0, o}] != 1 {
			t.Fatalf("kpax did not start at kcat's commit: %v", seen.count)
		}
	}
	produceSpread(t, cl, topic, 1, 3, "c")
	if got := runKcat(3); got[0] != "15" {
		t.Fatalf("kcat resumed at %v, want kpax's commit 15", got)
	}
}

// syncBuf is a strings.Builder safe to read while a command writes to it.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
