package kpax

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Producer fault tests on the shared 3-node cluster (kafka_test.go): a
// SIGKILLed leader, and a leader the client cannot reach (through the TCP
// fault proxy). The ledger and the checks are in produce_fault_test.go.

// leaders returns the leader of each partition of a topic.
func leaders(t *testing.T, cl *Client, topic string) map[int32]int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		// A broker that has not caught up with the controller yet may not
		// know the topic (KRaft metadata propagates asynchronously): ask
		// until every partition has a leader.
		md, err := cl.Metadata(ctx, topic)
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Err == nil && len(md.Topics[0].Partitions) > 0 {
			out := map[int32]int32{}
			for _, p := range md.Topics[0].Partitions {
				if p.Leader >= 0 {
					out[p.Partition] = p.Leader
				}
			}
			if len(out) == len(md.Topics[0].Partitions) {
				return out
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("leaders of %s: %v", topic, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProduceFaultLeaderKill: a 3-node cluster, acks=all, idempotence on;
// the leader of partition 0 is SIGKILLed mid-stream. A clean read finds
// every acknowledged record exactly once and in order. Recovery time is
// from the kill to the first ack of a record of a partition it led.
func TestProduceFaultLeaderKill(t *testing.T) {
	c := sharedCluster(t)
	defer c.Heal(t)
	logs := &syncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("client log:\n%s", logs.String())
		}
	}()
	cl := newTestClient(t, c.Bootstrap()[0], WithSeedBrokers(c.Bootstrap()...), WithRequestTimeout(3*time.Second),
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))),
		WithDialTimeout(time.Second), WithRetryBackoff(20*time.Millisecond, 250*time.Millisecond))
	const parts = 3
	topic := createFaultTopic(t, cl, parts, 3)
	lead := leaders(t, cl, topic)
	victim := lead[0]
	var victimParts []int32
	for part, id := range lead {
		if id == victim {
			victimParts = append(victimParts, part)
		}
	}
	p, err := cl.NewProducer(WithAcks(-1), WithIdempotence(true), WithLinger(2*time.Millisecond),
		WithProduceTimeout(2*time.Second), WithDeliveryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l := newLedger()
	var killedAt time.Time
	var killOnce sync.Once
	n := paced(1000, 10*time.Second, nil, func(i int) {
		if i == 2000 {
			killOnce.Do(func() {
				c.Node(victim).Signal(t, "KILL")
				killedAt = time.Now()
			})
		}
		if err := l.produce(ctx, p, topic, []byte(fmt.Sprintf("k%02d", i%24)), 50); err != nil {
			t.Errorf("Produce: %v", err)
		}
	})
	if err := flushOrDump(t, p, ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	p.Close(ctx)
	f := l.check(consumeAll(t, cl, topic, parts))

	// Recovery: from the kill to the first ack of a record produced after
	// it to a partition the killed node led (keyed records wait for the new
	// leader); the stall is the longest time without any ack.
	l.mu.Lock()
	var recovered time.Time
	maxGap := time.Duration(0)
	var lastAck time.Time
	for i, r := range l.recs {
		if l.errs[i] != nil || l.ackAt[i].IsZero() || !containsInt32(victimParts, r.Partition) || l.sentAt[i].Before(killedAt) {
			continue
		}
		if recovered.IsZero() || l.ackAt[i].Before(recovered) {
			recovered = l.ackAt[i]
		}
	}
	acks := make([]time.Time, 0, len(l.recs))
	for i := range l.recs {
		if l.errs[i] == nil && !l.ackAt[i].IsZero() {
			acks = append(acks, l.ackAt[i])
		}
	}
	l.mu.Unlock()
	slicesSortTimes(acks)
	for _, a := range acks {
		if !lastAck.IsZero() && a.Sub(lastAck) > maxGap {
			maxGap = a.Sub(lastAck)
		}
		lastAck = a
	}
	t.Logf("figures: killed node %d (leader of %v) at record 2000 of %d; %v; recovery %v (longest time without an ack %v)",
		victim, victimParts, n, f, recovered.Sub(killedAt).Round(time.Millisecond), maxGap.Round(time.Millisecond))
	if f.lost > 0 || f.dups > 0 || f.reorders > 0 || f.wrongOffset > 0 || f.plainButPersisted > 0 || f.noOutcome > 0 || l.multi > 0 {
		t.Fatalf("after the leader's death: %v, %d with several outcomes", f, l.multi)
	}
	if f.maybe+f.failed > 0 {
		t.Fatalf("%d records failed (first: %v)", f.maybe+f.failed, l.firstErr())
	}
	if recovered.IsZero() {
		t.Fatalf("no record of partitions %v was acked after the kill", victimParts)
	}
	if maxGap < 500*time.Millisecond {
		t.Fatalf("acks never stopped for more than %v: the kill did not bite", maxGap)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers, for logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tail is the last n lines written, with a line saying how many came
// before (a failing test's report stays readable after a long outage).
func (b *syncBuffer) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return fmt.Sprintf("[%d lines before]\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
}

func slicesSortTimes(ts []time.Time) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Before(ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// TestProduceFaultUnreachableLeader refuses connections to one broker of the
// 3-node cluster: unkeyed records move to the partitions of the others, and
// come back to the broker's partitions once it is reachable and the
// avoidance period has passed.
func TestProduceFaultUnreachableLeader(t *testing.T) {
	for _, mode := range []string{"refuse", "blackhole"} {
		t.Run(mode, func(t *testing.T) { testUnreachableLeader(t, mode) })
	}
}

// testUnreachableLeader runs TestProduceFaultUnreachableLeader with new
// connections to the broker refused (closed at once) or blackholed (stalled,
// as are the live ones).
func testUnreachableLeader(t *testing.T, mode string) {
	c := sharedCluster(t)
	fn := newFaultNet(t)
	logs := &syncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("client log:\n%s", logs.String())
		}
	}()
	cl := newTestClient(t, c.Bootstrap()[0], WithSeedBrokers(c.Bootstrap()...), fn.Option(),
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithRequestTimeout(time.Second), WithDialTimeout(300*time.Millisecond),
		WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond), WithMetadataMaxAge(time.Second))
	const parts = 6
	topic := createFaultTopic(t, cl, parts, 1)
	lead := leaders(t, cl, topic)
	victim := lead[0]
	victimAddr := c.Node(victim).Addr
	isVictim := func(part int32) bool { return lead[part] == victim }
	const avoid = time.Second
	p, err := cl.NewProducer(WithPartitionAvoidance(avoid), WithLinger(time.Millisecond), WithDeliveryTimeout(30*time.Second),
		WithProduceTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer closeWithin(t, p, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := newLedger()
	produce := func(i int) {
		if err := l.produce(ctx, p, topic, nil, 20); err != nil {
			t.Errorf("Produce: %v", err)
		}
	}
	paced(1000, time.Second, nil, produce)
	if mode == "refuse" {
		fn.Refuse(victimAddr, true)
		fn.Kill(victimAddr)
	} else {
		fn.Blackhole(victimAddr, true)
	}
	faultAt := time.Now()
	paced(1000, 3*time.Second, nil, produce)
	fn.Refuse(victimAddr, false)
	fn.Blackhole(victimAddr, false)
	healedAt := time.Now()
	paced(1000, 4*time.Second, nil, produce)
	if err := flushOrDump(t, p, ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	p.Close(ctx)

	// Where records produced in each phase landed.
	var before, during, after [2]int // [other, victim] partitions
	var back time.Time
	l.mu.Lock()
	for i, r := range l.recs {
		if l.errs[i] != nil || l.outcomes[i] != 1 {
			continue
		}
		v := 0
		if isVictim(r.Partition) {
			v = 1
		}
		switch at := l.sentAt[i]; {
		case at.Before(faultAt):
			before[v]++
		case at.After(faultAt.Add(500*time.Millisecond)) && at.Before(healedAt):
			during[v]++
		case at.After(healedAt):
			after[v]++
			if v == 1 && (back.IsZero() || l.ackAt[i].Before(back)) {
				back = l.ackAt[i]
			}
		}
	}
	l.mu.Unlock()
	f := l.check(consumeAll(t, cl, topic, parts))
	backIn := "never"
	if !back.IsZero() {
		backIn = back.Sub(healedAt).Round(time.Millisecond).String()
	}
	t.Logf("figures (%s): node %d (partitions led %v) unreachable for 3s; records on its partitions/others: before %d/%d, during %d/%d, after %d/%d; back %s after the heal (avoidance %v); %v",
		mode, victim, lead, before[1], before[0], during[1], during[0], after[1], after[0], backIn, avoid, f)
	if f.lost > 0 || f.dups > 0 || f.failed+f.maybe > 0 || f.noOutcome > 0 {
		t.Fatalf("unreachable leader: %v (first error %v)", f, l.firstErr())
	}
	if before[1] == 0 {
		t.Fatalf("no record went to node %d's partitions before the fault", victim)
	}
	// Each avoidance period ends with one probe batch to each of the node's
	// partitions; all else goes to the others.
	if during[0] == 0 || during[1]*50 > during[0] {
		t.Fatalf("while node %d was unreachable, %d records still went to its partitions, %d to others", victim, during[1], during[0])
	}
	if after[1] == 0 {
		t.Fatalf("no record went back to node %d's partitions after it came back", victim)
	}
}
