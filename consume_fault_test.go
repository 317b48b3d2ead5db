package kpax

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestIntegrationConsumerLeaderKill consumes a replicated topic on the
// 3-node cluster while records keep coming; the leader of partition 0 is
// SIGKILLed midway. The consumer must follow the new leader and return
// every acknowledged record exactly once, in offset order, with the time
// from the kill to the first record after it logged.
func TestIntegrationConsumerLeaderKill(t *testing.T) {
	c := sharedCluster(t)
	defer c.Heal(t)
	cl := newTestClient(t, c.Bootstrap()[0], WithSeedBrokers(c.Bootstrap()...), WithRequestTimeout(3*time.Second),
		WithDialTimeout(time.Second), WithRetryBackoff(20*time.Millisecond, 250*time.Millisecond))
	topic := createFaultTopic(t, cl, 2, 3)
	victim := leaders(t, cl, topic)[0]

	p, err := cl.NewProducer(WithAcks(-1), WithLinger(5*time.Millisecond), WithPartitioner(ManualPartitioner()),
		WithDeliveryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[int32]map[string]bool{0: {}, 1: {}}
	var failed int
	produce := func(tag string, n int) {
		for i := range n {
			part := int32(i % 2)
			v := fmt.Sprintf("%s-%d", tag, i)
			err := p.Produce(context.Background(), &Record{Topic: topic, Partition: part, Value: []byte(v)}, func(r *Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					return
				}
				acked[r.Partition][string(r.Value)] = true
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	cons := newTestConsumer(t, cl)
	cons.Assign(map[string]map[int32]Offset{topic: {0: Earliest(), 1: Earliest()}})
	produce("before", 400)
	flushCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Flush(flushCtx); err != nil {
		t.Fatal(err)
	}
	got, _ := pollN(t, cons, 400, 30*time.Second)

	killed := time.Now()
	c.Node(victim).Signal(t, "KILL")
	produce("after", 400)
	if err := p.Flush(flushCtx); err != nil {
		t.Fatal(err)
	}
	closeCtx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := p.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	want := len(acked[0]) + len(acked[1])
	mu.Unlock()
	if want < 400 {
		t.Fatalf("only %d records acknowledged (%d failed)", want, failed)
	}

	ctx, cancel3 := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel3()
	var firstAfter time.Duration
	var errs []error
	for len(got) < want {
		f, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("Poll after %d of %d records: %v (errors %v)", len(got), want, err, errs)
		}
		errs = append(errs, f.Errors...)
		for _, r := range f.Records {
			if firstAfter == 0 && r.Partition == 0 {
				firstAfter = time.Since(killed)
			}
			got = append(got, consumed{partition: r.Partition, offset: r.Offset, val: string(r.Value)})
		}
	}
	if extra, _ := pollQuiet(t, cons, 500*time.Millisecond); len(extra) > 0 {
		t.Fatalf("%d records more than acknowledged, first %+v", len(extra), extra[0])
	}
	seen := map[string]bool{}
	last := map[int32]int64{}
	for _, g := range got {
		if o, ok := last[g.partition]; ok && g.offset <= o {
			t.Fatalf("partition %d: offset %d after %d", g.partition, g.offset, o)
		}
		last[g.partition] = g.offset
		if seen[g.val] {
			t.Fatalf("record %s twice", g.val)
		}
		seen[g.val] = true
		if !acked[g.partition][g.val] {
			t.Fatalf("record %s in partition %d was not acknowledged there", g.val, g.partition)
		}
	}
	t.Logf("leader %d of partition 0 killed: %d records read once each in order, first record of partition 0 %v after the kill; %d errors reported on the way (%d produce failures)",
		victim, len(got), firstAfter.Round(time.Millisecond), len(errs), failed)
}
