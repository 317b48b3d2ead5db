package kpax

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// Producer chaos on the shared 3-node cluster (kafka_test.go, RF 3,
// min.insync.replicas=2): the TCP fault proxy kills connections every
// 50-300ms, and brokers are SIGKILLed and SIGSTOPped. The ledger and its
// checks are in produce_fault_test.go. Every run logs its figures: lost,
// duplicates, reorders, ack latency, and the time produce takes to resume.

// ackLatency returns the 50th and 99th percentile and the maximum of the
// time from Produce to the ack of the acknowledged records.
func (l *ledger) ackLatency() (p50, p99, worst time.Duration) {
	l.mu.Lock()
	var ds []time.Duration
	for i := range l.recs {
		if l.errs[i] == nil && !l.ackAt[i].IsZero() {
			ds = append(ds, l.ackAt[i].Sub(l.sentAt[i]))
		}
	}
	l.mu.Unlock()
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return at(0.5), at(0.99), ds[len(ds)-1]
}

// killLoop kills connections every lo-hi, on a schedule drawn from seed:
// all of them, or those of one broker of addrs. stop ends it.
func killLoop(fn *faultNet, seed uint64, addrs []string, lo, hi time.Duration) (stop func() int) {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	done := make(chan struct{})
	var wg sync.WaitGroup
	n := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(lo + time.Duration(rnd.Int64N(int64(hi-lo)+1))):
			}
			if i := rnd.IntN(len(addrs) + 1); i < len(addrs) {
				fn.Kill(addrs[i])
			} else {
				fn.Kill("")
			}
			n++
		}
	}()
	return func() int { close(done); wg.Wait(); return n }
}

// moveLoop moves the leader of a partition of topic every lo-hi, on a
// schedule drawn from seed, as a rebalancing tool does: the partition's
// replicas are reordered (a reassignment to the same brokers, another one
// first) and the preferred leader elected. stop ends it and returns how
// many elections moved a leader.
func moveLoop(t *testing.T, cl *Client, topic string, parts int32, seed uint64, lo, hi time.Duration) (stop func() int) {
	rnd := rand.New(rand.NewPCG(seed, seed^0x7f4a7c159e3779b9))
	done := make(chan struct{})
	var wg sync.WaitGroup
	moved := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(lo + time.Duration(rnd.Int64N(int64(hi-lo)+1))):
			}
			part := rnd.Int32N(parts)
			if err := moveLeader(cl, topic, part, 1+rnd.IntN(2)); err != nil {
				t.Logf("moving the leader of %s/%d: %v", topic, part, err)
				continue
			}
			moved++
		}
	}()
	return func() int { close(done); wg.Wait(); return moved }
}

// moveLeader rotates a partition's replica list by k and elects its
// preferred leader, which moves the leadership to another broker.
func moveLeader(cl *Client, topic string, part int32, k int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	md, err := cl.Metadata(ctx, topic)
	if err != nil {
		return err
	}
	if len(md.Topics) != 1 || int(part) >= len(md.Topics[0].Partitions) {
		return fmt.Errorf("no partition %d in the metadata", part)
	}
	rs := md.Topics[0].Partitions[part].Replicas
	if len(rs) < 2 {
		return fmt.Errorf("replicas %v: nowhere to move", rs)
	}
	k %= len(rs)
	rotated := append(slices.Clone(rs[k:]), rs[:k]...)
	a := cl.Admin()
	if _, err := a.AlterPartitionReassignments(ctx, Reassignment{Topic: topic, Partition: part, Replicas: rotated}); err != nil {
		return err
	}
	for {
		_, err := a.ElectLeaders(ctx, false, TopicPartitions{topic: {part}})
		if err == nil || !errors.Is(err, ErrPreferredLeaderNotAvailable) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond) // the reassignment is not applied yet
	}
}

// TestProduceChaosCluster produces keyed records (idempotent, acks=all)
// through the fault proxy in front of the 3-node cluster while connections
// are killed every 50-300ms and partition leaders move every 0.5-1.5s, for
// three fault schedules: nothing lost, duplicated or reordered per key,
// nothing failed. The control run, without idempotence, must show
// duplicates: the faults bite.
func TestProduceChaosCluster(t *testing.T) {
	c := sharedCluster(t)
	defer c.Heal(t)
	plain := newTestClient(t, c.Bootstrap()[0], WithSeedBrokers(c.Bootstrap()...))
	runs := []struct {
		name string
		seed uint64
		idem bool
	}{{"seed1", 1, true}, {"seed2", 2, true}, {"seed3", 3, true}, {"control", 1, false}}
	for _, run := range runs {
		t.Run(run.name, func(t *testing.T) {
			const parts = 6
			topic := createFaultTopic(t, plain, parts, 3)
			before := kpaxGoroutines() // plain's included
			fn := newFaultNet(t)
			cl, err := New(WithSeedBrokers(c.Bootstrap()...), fn.Option(), WithRequestTimeout(5*time.Second),
				WithDialTimeout(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			p, err := cl.NewProducer(WithIdempotence(run.idem), WithAcks(-1), WithLinger(2*time.Millisecond),
				WithDeliveryTimeout(60*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			l := newLedger()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			stop := killLoop(fn, run.seed, c.Bootstrap(), 50*time.Millisecond, 300*time.Millisecond)
			mover, err := New(WithSeedBrokers(c.Bootstrap()...)) // its own connections, closed before the leak check
			if err != nil {
				t.Fatal(err)
			}
			defer mover.Close()
			stopMoves := moveLoop(t, mover, topic, parts, run.seed, 500*time.Millisecond, 1500*time.Millisecond)
			n := paced(2000, 8*time.Second, nil, func(i int) {
				if err := l.produce(ctx, p, topic, []byte(fmt.Sprintf("k%02d", i%32)), 20); err != nil {
					t.Errorf("Produce: %v", err)
				}
			})
			kills, moves := stop(), stopMoves()
			mover.Close()
			if err := flushOrDump(t, p, ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			closeWithin(t, p, 10*time.Second)
			cl.Close()
			fn.close()
			leaked := newGoroutines(before, 5*time.Second)
			f := l.check(consumeAll(t, plain, topic, parts))
			p50, p99, worst := l.ackLatency()
			t.Logf("figures (%s, idempotence %v): %d records in 8s, %d kill rounds (%d connections killed, %d dials), %d leader moves: %v; ack latency p50 %v p99 %v max %v",
				run.name, run.idem, n, kills, fn.Kills.Load(), fn.Dials.Load(), moves, f,
				p50.Round(time.Millisecond), p99.Round(time.Millisecond), worst.Round(time.Millisecond))
			if l.multi > 0 || f.noOutcome > 0 || f.strangers > 0 {
				t.Fatalf("%d records with several outcomes, %d with none, %d unknown values in the log", l.multi, f.noOutcome, f.strangers)
			}
			if f.lost > 0 || f.plainButPersisted > 0 || f.wrongOffset > 0 {
				t.Fatalf("lost %d acked records, %d plain failures were persisted, %d acked at a wrong offset", f.lost, f.plainButPersisted, f.wrongOffset)
			}
			if run.idem {
				if f.dups > 0 || f.reorders > 0 || f.maybe+f.failed > 0 {
					t.Fatalf("idempotent: %d duplicates, %d reorders, %d failures (first: %v)", f.dups, f.reorders, f.maybe+f.failed, l.firstErr())
				}
			} else if f.dups == 0 {
				t.Fatalf("control without idempotence shows no duplicates: the faults did not bite")
			}
			if leaked != "" {
				t.Fatalf("goroutines left after Close:\n%s", leaked)
			}
		})
	}
}

// resumeAfter returns how long after at the first record produced after at
// to the partition was acknowledged, or -1.
func (l *ledger) resumeAfter(at time.Time, part int32) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for i, r := range l.recs {
		if l.errs[i] != nil || l.ackAt[i].IsZero() || r.Partition != part || l.sentAt[i].Before(at) {
			continue
		}
		if first.IsZero() || l.ackAt[i].Before(first) {
			first = l.ackAt[i]
		}
	}
	if first.IsZero() {
		return -1
	}
	return first.Sub(at)
}

// TestProduceFaultKillStop: the 3-node cluster (RF 3, min.insync.replicas
// 2), idempotent keyed records with acks=all. The leader of partition 0 is
// SIGKILLed, restarted, and once back in sync the leader of partition 0
// (another broker) is SIGSTOPped for 15s. Nothing is lost, duplicated or
// reordered, and the time until partition 0 takes records again after each
// fault is reported. The control is the stall itself: acks stop for
// seconds after each fault.
func TestProduceFaultKillStop(t *testing.T) {
	c := sharedCluster(t)
	defer c.Heal(t)
	before := kpaxGoroutines()
	logs := &syncBuffer{}
	cl, err := New(WithSeedBrokers(c.Bootstrap()...), WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const parts = 3
	topic := createFaultTopic(t, cl, parts, 3)
	victim := leaders(t, cl, topic)[0]
	p, err := cl.NewProducer(WithAcks(-1), WithIdempotence(true), WithLinger(2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := newLedger()
	stopProducing := make(chan struct{})
	var produced sync.WaitGroup
	produced.Add(1)
	go func() {
		defer produced.Done()
		paced(500, 2*time.Minute, stopProducing, func(i int) {
			if err := l.produce(ctx, p, topic, []byte(fmt.Sprintf("k%02d", i%24)), 50); err != nil {
				t.Errorf("Produce: %v", err)
			}
		})
	}()
	waitResume := func(at time.Time, what string) time.Duration {
		for time.Since(at) < 60*time.Second {
			if d := l.resumeAfter(at, 0); d >= 0 {
				return d
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("partition 0 took no record within 60s after %s", what)
		return 0
	}
	time.Sleep(2 * time.Second)
	c.Node(victim).Signal(t, "KILL")
	killedAt := time.Now() // the process is gone when Signal returns
	afterKill := waitResume(killedAt, "the kill")
	time.Sleep(time.Second)
	c.Node(victim).Restart(t)
	waitInSync(t, cl, topic, 3)
	stopped := leaders(t, cl, topic)[0]
	if stopped == victim {
		stopped = victim%3 + 1
	}
	c.Node(stopped).Signal(t, "STOP")
	stoppedAt := time.Now()
	time.Sleep(15 * time.Second)
	c.Node(stopped).Signal(t, "CONT")
	afterStop := waitResume(stoppedAt, "the STOP")
	time.Sleep(2 * time.Second)
	close(stopProducing)
	produced.Wait()
	if err := flushOrDump(t, p, ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	closeWithin(t, p, 10*time.Second)
	f := l.check(consumeAll(t, cl, topic, parts))
	p50, p99, worst := l.ackLatency()
	t.Logf("figures: SIGKILL of node %d (leader of partition 0): partition 0 resumed after %v; SIGSTOP of node %d for 15s: resumed after %v; %v; ack latency p50 %v p99 %v max %v",
		victim, afterKill.Round(time.Millisecond), stopped, afterStop.Round(time.Millisecond), f,
		p50.Round(time.Millisecond), p99.Round(time.Millisecond), worst.Round(time.Millisecond))
	if f.lost > 0 || f.dups > 0 || f.reorders > 0 || f.wrongOffset > 0 || f.plainButPersisted > 0 || f.noOutcome > 0 || l.multi > 0 {
		t.Fatalf("%v, %d with several outcomes\nclient log:\n%s", f, l.multi, logs.String())
	}
	if f.maybe+f.failed > 0 {
		t.Fatalf("%d records failed (first: %v)", f.maybe+f.failed, l.firstErr())
	}
	if afterKill < 500*time.Millisecond || afterStop < 500*time.Millisecond {
		t.Fatalf("produce resumed %v after the kill and %v after the STOP: the faults did not bite", afterKill, afterStop)
	}
	cl.Close()
	if leaked := newGoroutines(before, 5*time.Second); leaked != "" {
		t.Fatalf("goroutines left after Close:\n%s", leaked)
	}
}

// waitInSync waits until every partition of the topic has rf replicas in
// sync.
func waitInSync(t *testing.T, cl *Client, topic string, rf int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		md, err := cl.Metadata(ctx, topic)
		if err == nil && len(md.Topics) == 1 && len(md.Topics[0].Partitions) > 0 {
			ok := true
			for _, pm := range md.Topics[0].Partitions {
				ok = ok && len(pm.ISR) == rf
			}
			if ok {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("%s not back in sync: %v", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
