package kpax

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Group tests of offsets, faults and the KIP-848 protocol; the members'
// harness is in group_test.go.

// committedOffsets asks the group's coordinator for its committed offsets.
func committedOffsets(t *testing.T, cl *Client, group, topic string, parts int32) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ps []int32
	for p := range parts {
		ps = append(ps, p)
	}
	req := &OffsetFetchRequest{GroupID: group, Topics: []OffsetFetchRequestTopic{{Name: topic, PartitionIndexes: ps}},
		Groups: []OffsetFetchRequestGroup{{GroupID: group, MemberEpoch: -1, Topics: []OffsetFetchRequestGroupTopic{{Name: topic, PartitionIndexes: ps}}}}}
	for {
		r, err := cl.Request(ctx, req)
		if err == nil {
			resp := r.(*OffsetFetchResponse)
			out := map[int32]int64{}
			code := resp.ErrorCode
			if len(resp.Groups) > 0 {
				code = resp.Groups[0].ErrorCode
				for _, tr := range resp.Groups[0].Topics {
					for _, p := range tr.Partitions {
						out[p.PartitionIndex] = p.CommittedOffset
					}
				}
			}
			if code == 0 {
				return out
			}
			err = ErrorForCode(code)
		}
		cl.meta.invalidateCoordinator(0, group)
		if ctx.Err() != nil {
			t.Fatalf("OffsetFetch: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestIntegrationGroupCoordinatorFailover: on the 3-node cluster (offsets
// topic replicated 3 times), the group coordinator is killed; the member
// finds the new coordinator, keeps its partitions, consumes what is
// produced meanwhile, and the committed offsets survive.
func TestIntegrationGroupCoordinatorFailover(t *testing.T) {
	c := sharedCluster(t)
	t.Cleanup(func() { c.Heal(t) })
	cl, err := New(WithSeedBrokers(c.Bootstrap()...), WithRequestTimeout(10*time.Second), WithRetryBackoff(50*time.Millisecond, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const parts = 3
	topic := fmt.Sprintf("kpax-failover-%d", time.Now().UnixNano())
	r, err := cl.Request(ctx, &CreateTopicsRequest{TimeoutMs: 30000, Topics: []CreateTopicsRequestTopic{{Name: topic, NumPartitions: parts, ReplicationFactor: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ErrorForCode(r.(*CreateTopicsResponse).Topics[0].ErrorCode); err != nil {
		t.Fatal(err)
	}
	group := "g-" + topic
	coord, err := cl.meta.coordinator(ctx, 0, group)
	if err != nil {
		t.Fatal(err)
	}
	seed := c.Node(coord%3 + 1).Addr // a live node
	seen := newSeenSet()
	produceSpread(t, cl, topic, parts, 20, "a")
	m := startMember(t, seed, "a", group, topic, seen, fastGroup(WithSessionTimeout(30*time.Second))...)
	waitUntil(t, 60*time.Second, "60 records", func() bool { return seen.len() == 60 })
	waitUntil(t, 10*time.Second, "the commits", func() bool {
		for _, o := range committedOffsets(t, cl, group, topic, parts) {
			if o != 20 {
				return false
			}
		}
		return true
	})
	m.g.mu.Lock()
	gen := m.g.generation
	m.g.mu.Unlock()

	t0 := time.Now()
	c.Node(coord).Signal(t, "KILL")
	t.Logf("killed node %d, the coordinator of %s", coord, group)
	produceSpread(t, cl, topic, parts, 20, "b")
	waitUntil(t, 90*time.Second, "120 records", func() bool { return seen.len() == 120 })
	waitUntil(t, 30*time.Second, "the commits after the failover", func() bool {
		for _, o := range committedOffsets(t, cl, group, topic, parts) {
			if o != 40 {
				return false
			}
		}
		return true
	})
	newCoord, err := cl.meta.coordinator(ctx, 0, group)
	t.Logf("recovered in %v: coordinator %d (was %d), err %v", time.Since(t0).Round(time.Millisecond), newCoord, coord, err)
	if newCoord == coord {
		t.Fatalf("the coordinator is still the killed node %d", coord)
	}
	if d := seen.dups(); len(d) > 0 {
		m.g.mu.Lock()
		t.Logf("generation %d before, %d after", gen, m.g.generation)
		m.g.mu.Unlock()
		t.Fatalf("records processed more than once: %v", d)
	}
}

// TestIntegrationGroupConsumerProtocol: members on the consumer group
// protocol (KIP-848) share the partitions the coordinator assigns, each
// record is processed once, and a member that leaves hands its partitions
// over; a broker without the protocol (3.9 by default) makes the member
// fall back to the classic protocol.
func TestIntegrationGroupConsumerProtocol(t *testing.T) {
	bs := testBrokers(t)
	if addr, ok := bs["4.x"]; ok {
		t.Run("4.x", func(t *testing.T) {
			cl := newGroupTestClient(t, addr)
			topic := createTestTopic(t, cl, 4)
			group := "g-" + topic
			opts := fastGroup(WithGroupProtocol(ConsumerGroupProtocol))
			seen := newSeenSet()
			produceSpread(t, cl, topic, 4, 20, "a")
			t0 := time.Now()
			a := startMember(t, addr, "a", group, topic, seen, opts...)
			waitUntil(t, 30*time.Second, "a owns all", func() bool { return a.count() == 4 })
			b := startMember(t, addr, "b", group, topic, seen, opts...)
			waitUntil(t, 30*time.Second, "a 2+2 split", func() bool { return a.count() == 2 && b.count() == 2 })
			t.Logf("two members split in %v", time.Since(t0).Round(time.Millisecond))
			produceSpread(t, cl, topic, 4, 20, "b")
			waitUntil(t, 30*time.Second, "160 records", func() bool { return seen.len() == 160 })
			a.g.mu.Lock()
			kip848, epoch := a.g.kip848, a.g.generation
			a.g.mu.Unlock()
			if !kip848 || epoch <= 0 {
				t.Fatalf("a: consumer protocol %v, member epoch %d", kip848, epoch)
			}
			t0 = time.Now()
			a.close(t)
			waitUntil(t, 30*time.Second, "b owns all", func() bool { return b.count() == 4 })
			t.Logf("takeover after Close in %v", time.Since(t0).Round(time.Millisecond))
			produceSpread(t, cl, topic, 4, 20, "c")
			waitUntil(t, 30*time.Second, "240 records", func() bool { return seen.len() == 240 })
			if d := seen.dups(); len(d) > 0 {
				t.Fatalf("records processed more than once: %v", d)
			}
		})
	}
	if addr, ok := bs["3.9"]; ok {
		t.Run("3.9 fallback", func(t *testing.T) {
			cl := newGroupTestClient(t, addr)
			topic := createTestTopic(t, cl, 2)
			seen := newSeenSet()
			produceSpread(t, cl, topic, 2, 10, "a")
			a := startMember(t, addr, "a", "g-"+topic, topic, seen, fastGroup(WithGroupProtocol(ConsumerGroupProtocol))...)
			waitUntil(t, 30*time.Second, "20 records", func() bool { return seen.len() == 20 })
			a.g.mu.Lock()
			defer a.g.mu.Unlock()
			if a.g.kip848 {
				t.Fatal("still on the consumer protocol")
			}
		})
	}
}

// TestIntegrationGroupCommits: automatic commits cover what the
// application is done with, CommitAsync reports through its callback, and
// CommitOffsets commits explicit offsets.
func TestIntegrationGroupCommits(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 2)
	group := "g-" + topic
	produceSpread(t, cl, topic, 2, 10, "a")
	g, err := cl.NewGroupConsumer(group, []string{topic}, fastGroup(WithAutoCommit(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	done, next := map[int32]int64{}, map[int32]int64{} // positions the application is done with, and after the last batch
	for n < 20 {
		maps.Copy(done, next)
		f, err := g.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(f.Records)
		for _, r := range f.Records {
			next[r.Partition] = r.Offset + 1
		}
	}
	// Not done with the last batch: auto commits must not go past done.
	time.Sleep(400 * time.Millisecond)
	for p, o := range committedOffsets(t, cl, group, topic, 2) {
		if o > max(done[p], 0) {
			t.Fatalf("partition %d: committed %d while the application is done up to %d", p, o, done[p])
		}
	}
	pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	g.Poll(pctx) // done with it
	pcancel()
	waitUntil(t, 5*time.Second, "the auto commit", func() bool {
		o := committedOffsets(t, cl, group, topic, 2)
		return o[0] == 10 && o[1] == 10
	})
	res := make(chan error, 1)
	g.CommitAsync(context.Background(), func(err error) { res <- err })
	if err := <-res; err != nil {
		t.Fatalf("CommitAsync: %v", err)
	}
	if err := g.CommitOffsets(ctx, map[string]map[int32]int64{topic: {0: 3}}); err != nil {
		t.Fatalf("CommitOffsets: %v", err)
	}
	if o := committedOffsets(t, cl, group, topic, 2); o[0] != 3 || o[1] != 10 {
		t.Fatalf("committed %v after CommitOffsets", o)
	}
}

// TestIntegrationGroupFenced: a second static member with the same
// instance ID fences the first, whose Poll then fails with
// FENCED_INSTANCE_ID after OnLost.
func TestIntegrationGroupFenced(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 2)
	group := "g-" + topic
	lost := make(chan map[string][]int32, 1)
	g1, err := cl.NewGroupConsumer(group, []string{topic}, fastGroup(WithInstanceID("x"),
		WithOnLost(func(_ context.Context, ps map[string][]int32) { lost <- ps }))...)
	if err != nil {
		t.Fatal(err)
	}
	defer g1.Close(context.Background())
	waitUntil(t, 30*time.Second, "g1 to own both", func() bool { return len(g1.Assigned()[topic]) == 2 })
	startMember(t, addr, "x2", group, topic, nil, fastGroup(WithInstanceID("x"))...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, err := g1.Poll(ctx)
		if errors.Is(err, ErrFencedInstanceId) {
			var ge *GroupError
			if !errors.As(err, &ge) || ge.Group != group {
				t.Fatalf("error %v is not a *GroupError of the group", err)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("g1 not fenced: %v", err)
		}
	}
	select {
	case ps := <-lost:
		if len(ps[topic]) != 2 {
			t.Fatalf("OnLost with %v", ps)
		}
	default:
		t.Fatal("OnLost not called")
	}
	if len(g1.Assigned()) != 0 {
		t.Fatalf("fenced member still owns %v", g1.Assigned())
	}
}

// TestIntegrationGroupNewPartitions: the leader notices partitions added
// to a subscribed topic and rebalances them in.
func TestIntegrationGroupNewPartitions(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 2)
	group := "g-" + topic
	opts := fastGroup(WithMetadataMaxAge(500 * time.Millisecond))
	a := startMember(t, addr, "a", group, topic, nil, opts...)
	b := startMember(t, addr, "b", group, topic, nil, opts...)
	waitUntil(t, 30*time.Second, "a 1+1 split", func() bool { return a.count() == 1 && b.count() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := cl.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	// Explicit replicas: the generated type writes a nil Assignments as an
	// empty array, not null, which the broker rejects.
	node := []int32{md.Brokers[0].NodeID}
	r, err := cl.Request(ctx, &CreatePartitionsRequest{TimeoutMs: 10000, Topics: []CreatePartitionsRequestTopic{{Name: topic, Count: 4,
		Assignments: []CreatePartitionsRequestTopicAssignment{{BrokerIDs: node}, {BrokerIDs: node}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ErrorForCode(r.(*CreatePartitionsResponse).Results[0].ErrorCode); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	waitUntil(t, 30*time.Second, "a 2+2 split", func() bool { return a.count() == 2 && b.count() == 2 })
	t.Logf("new partitions assigned in %v", time.Since(t0).Round(time.Millisecond))
}

// TestGroupFakeCoordinator drives a member against a fake coordinator:
// the member ID it requires (KIP-394), a member whose subscription is
// garbage (the leader gives it nothing), and a malformed assignment (a
// *GroupError wrapping ErrMalformed from Poll, then a retry), never a panic.
func TestGroupFakeCoordinator(t *testing.T) {
	var mu sync.Mutex
	var joins []string
	var syncs [][]SyncGroupRequestAssignment
	var f *fakeCluster
	f = newFakeCluster(t, 2, func(req Request, v int16) Response {
		mu.Lock()
		defer mu.Unlock()
		host, port, _ := net.SplitHostPort(f.addr())
		portN, _ := strconv.Atoi(port)
		switch r := req.(type) {
		case *FindCoordinatorRequest:
			return &FindCoordinatorResponse{NodeID: 1, Host: host, Port: int32(portN),
				Coordinators: []FindCoordinatorResponseCoordinator{{Key: r.Key, NodeID: 1, Host: host, Port: int32(portN)}}}
		case *JoinGroupRequest:
			joins = append(joins, r.MemberID)
			if r.MemberID == "" {
				return &JoinGroupResponse{ErrorCode: ErrMemberIdRequired.Code(), MemberID: "m1", GenerationID: -1}
			}
			return &JoinGroupResponse{GenerationID: 1, ProtocolType: ptr("consumer"), ProtocolName: ptr("range"), Leader: "m1", MemberID: "m1",
				Members: []JoinGroupResponseMember{{MemberID: "m1", Metadata: r.Protocols[0].Metadata}, {MemberID: "evil", Metadata: []byte{0, 1, 0x7f, 0xff, 0xff, 0xff}}}}
		case *SyncGroupRequest:
			syncs = append(syncs, r.Assignments)
			if len(syncs) == 1 {
				return &SyncGroupResponse{Assignment: []byte{0, 3, 0, 0, 0, 9}} // claims 9 topics, has none
			}
			a := groupAssignment{version: 3, parts: map[string][]int32{"t": {0, 1}}}
			return &SyncGroupResponse{ProtocolType: ptr("consumer"), ProtocolName: ptr("range"), Assignment: a.appendTo(nil)}
		case *HeartbeatRequest:
			return &HeartbeatResponse{}
		case *OffsetFetchRequest:
			resp := &OffsetFetchResponse{Groups: []OffsetFetchResponseGroup{{GroupID: "g", Topics: []OffsetFetchResponseGroupTopic{{Name: "t", TopicID: UUID{1},
				Partitions: []OffsetFetchResponseGroupTopicPartition{{PartitionIndex: 0, CommittedOffset: -1}, {PartitionIndex: 1, CommittedOffset: -1}}}}}}}
			resp.Topics = []OffsetFetchResponseTopic{{Name: "t", Partitions: []OffsetFetchResponseTopicPartition{{PartitionIndex: 0, CommittedOffset: -1}, {PartitionIndex: 1, CommittedOffset: -1}}}}
			return resp
		case *LeaveGroupRequest:
			return &LeaveGroupResponse{}
		}
		return nil
	})
	cl := newGroupTestClient(t, f.addr())
	g, err := cl.NewGroupConsumer("g", []string{"t"}, fastGroup(WithStartOffset(Latest()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var malformed bool
	for !malformed || len(g.Assigned()["t"]) != 2 {
		f, err := g.Poll(ctx)
		if err != nil {
			t.Fatalf("Poll: %v (malformed reported: %v, assigned %v)", err, malformed, g.Assigned())
		}
		for _, e := range f.Errors {
			var ge *GroupError
			if errors.Is(e, ErrMalformed) && errors.As(e, &ge) && ge.Op == "SyncGroup" {
				malformed = true
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(joins) < 2 || joins[0] != "" || joins[1] != "m1" {
		t.Fatalf("JoinGroup member IDs %q, want \"\" then the required m1", joins)
	}
	for _, a := range syncs[0] {
		ga, err := decodeGroupAssignment(a.Assignment)
		if err != nil {
			t.Fatalf("assignment of %s: %v", a.MemberID, err)
		}
		switch a.MemberID {
		case "evil":
			if len(ga.parts) != 0 {
				t.Fatalf("the unreadable member got %v", ga.parts)
			}
		case "m1":
			if !slices.Equal(ga.parts["t"], []int32{0, 1}) {
				t.Fatalf("the leader got %v", ga.parts)
			}
		}
	}
}

// TestIntegrationGroupTopicAppears: a subscribed topic created after the
// group formed is rebalanced in by the leader.
func TestIntegrationGroupTopicAppears(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr, WithMetadataMaxAge(500*time.Millisecond))
	topic := createTestTopic(t, cl, 1)
	later := topic + "-later"
	group := "g-" + topic
	g, err := cl.NewGroupConsumer(group, []string{topic, later}, fastGroup()...)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	waitUntil(t, 30*time.Second, "the first topic", func() bool { return len(g.Assigned()[topic]) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := cl.Request(ctx, &CreateTopicsRequest{TimeoutMs: 10000, Topics: []CreateTopicsRequestTopic{{Name: later, NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ErrorForCode(r.(*CreateTopicsResponse).Topics[0].ErrorCode); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	waitUntil(t, 30*time.Second, "the new topic", func() bool { return len(g.Assigned()[later]) == 2 })
	t.Logf("new topic assigned in %v", time.Since(t0).Round(time.Millisecond))
}

// TestIntegrationGroupCommitOnRevoke: members that never commit themselves
// (no auto commit either) still hand partitions over at the positions they
// reached: the commit on revocation, eager and cooperative.
func TestIntegrationGroupCommitOnRevoke(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	for _, b := range []Balancer{RangeBalancer(), CooperativeStickyBalancer()} {
		t.Run(b.Protocol(), func(t *testing.T) {
			topic := createTestTopic(t, cl, 2)
			group := "g-" + topic
			opts := fastGroup(WithBalancers(b))
			seen := newSeenSet()
			produceSpread(t, cl, topic, 2, 10, "a")
			a := startMemberCommitting(t, addr, "a", group, topic, seen, false, opts...)
			waitUntil(t, 30*time.Second, "20 records", func() bool { return seen.len() == 20 })
			m := startMemberCommitting(t, addr, "b", group, topic, seen, false, opts...)
			waitUntil(t, 30*time.Second, "a 1+1 split", func() bool { return a.count() == 1 && m.count() == 1 })
			produceSpread(t, cl, topic, 2, 10, "b")
			waitUntil(t, 30*time.Second, "40 records", func() bool { return seen.len() == 40 })
			if d := seen.dups(); len(d) > 0 {
				t.Fatalf("records processed more than once: %v", d)
			}
		})
	}
}

// TestIntegrationGroupCommitOnClose: a member that never commits itself
// commits what it consumed when it closes; the next member goes on from
// there.
func TestIntegrationGroupCommitOnClose(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 2)
	group := "g-" + topic
	seen := newSeenSet()
	produceSpread(t, cl, topic, 2, 10, "a")
	a := startMemberCommitting(t, addr, "a", group, topic, seen, false, fastGroup()...)
	waitUntil(t, 30*time.Second, "20 records", func() bool { return seen.len() == 20 })
	a.close(t)
	produceSpread(t, cl, topic, 2, 10, "b")
	startMemberCommitting(t, addr, "b", group, topic, seen, false, fastGroup()...)
	waitUntil(t, 30*time.Second, "40 records", func() bool { return seen.len() == 40 })
	if d := seen.dups(); len(d) > 0 {
		t.Fatalf("records processed more than once: %v", d)
	}
}

// TestIntegrationGroupSlowRevoke: an eager member whose OnRevoked takes
// longer than the session timeout (8 s against 6 s; Process's drain can
// too) still commits on revoke: it heartbeats through the revocation, so
// the broker does not expel it before it joins again. Before the
// heartbeats went on, the commit failed with UNKNOWN_MEMBER_ID and the
// next owner read the records again.
func TestIntegrationGroupSlowRevoke(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 2)
	group := "g-" + topic
	produceSpread(t, cl, topic, 2, 10, "a")
	var revokes sync.WaitGroup
	revokes.Add(1)
	var once sync.Once
	opts := fastGroup(WithBalancers(RangeBalancer()), WithOnRevoked(func(context.Context, map[string][]int32) {
		once.Do(func() { time.Sleep(8 * time.Second); revokes.Done() })
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var errs []error
	poll := func(g *GroupConsumer, n *int) {
		for ctx.Err() == nil {
			f, err := g.Poll(ctx)
			if errors.Is(err, ErrConsumerClosed) {
				return
			}
			mu.Lock()
			*n += len(f.Records)
			errs = append(errs, f.Errors...)
			if err != nil && ctx.Err() == nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		}
	}
	count := func(n *int) int { mu.Lock(); defer mu.Unlock(); return *n }
	var na, nb int
	a, err := newGroupTestClient(t, addr).NewGroupConsumer(group, []string{topic}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	go poll(a, &na)
	waitUntil(t, 30*time.Second, "a reads 20 records", func() bool { return count(&na) == 20 })
	b, err := newGroupTestClient(t, addr).NewGroupConsumer(group, []string{topic}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	go poll(b, &nb)
	revokes.Wait()
	waitUntil(t, 30*time.Second, "a 1+1 split", func() bool {
		return len(a.Assigned()[topic]) == 1 && len(b.Assigned()[topic]) == 1
	})
	if got := committedOffsets(t, cl, group, topic, 2); got[0] != 10 || got[1] != 10 {
		t.Errorf("committed %v after the slow revocation, want 10 and 10", got)
	}
	time.Sleep(time.Second) // b would read a partition again from an old commit
	mu.Lock()
	defer mu.Unlock()
	for _, e := range errs {
		if errors.Is(e, ErrUnknownMemberId) {
			t.Errorf("a member was expelled: %v", e)
		}
	}
	if nb != 0 {
		t.Errorf("b read %d records again", nb)
	}
}
