package kpax

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestKeyStablePartitioner(t *testing.T) {
	s := KeyStablePartitioner()
	key := func(i int) *Record { return &Record{Topic: "t", Key: fmt.Appendf(nil, "k%d", i)} }
	moved := 0
	for i := range 64 {
		at3 := s.Partition(key(i), 3, nil)
		if got := s.Partition(key(i), 6, nil); got != at3 {
			t.Fatalf("key %d: partition %d at 6 partitions, %d at 3", i, got, at3)
		}
		if Murmur2Partitioner().Partition(key(i), 6, nil) != at3 {
			moved++ // the control: the default moves it
		}
	}
	if moved == 0 {
		t.Fatal("control: murmur2 over 6 partitions moved no key")
	}
	if s.Count("t") != 3 {
		t.Fatalf("count %d, want 3", s.Count("t"))
	}
	s.Rebase("t")
	for i := range 64 {
		if got, want := s.Partition(key(i), 6, nil), Murmur2Partitioner().Partition(key(i), 6, nil); got != want {
			t.Fatalf("key %d after Rebase: partition %d, want murmur2's %d", i, got, want)
		}
	}
	if got := s.Partition(key(1), 2, nil); got >= 2 { // fewer partitions than remembered
		t.Fatalf("partition %d of 2", got)
	}
	if p := s.Partition(&Record{Topic: "t"}, 6, []int32{5}); p != 5 {
		t.Fatalf("unkeyed record to %d, want the only available partition 5", p)
	}
}

// TestIntegrationPartitionsAdded: partitions are added to a topic while
// two producers write it: the one with KeyStablePartitioner reports the
// change (WithOnPartitionsChanged) and keeps every key on its partition;
// the control, the default partitioner, moves keys. After Rebase the
// stable one hashes over the new count too.
func TestIntegrationPartitionsAdded(t *testing.T) {
	addr := groupBroker(t)
	cl := newTestClient(t, addr, WithMetadataMaxAge(300*time.Millisecond))
	topic := createTestTopic(t, cl, 3)
	var mu sync.Mutex
	var changes []string
	stable := KeyStablePartitioner()
	sp, err := cl.NewProducer(WithPartitioner(stable),
		WithOnPartitionsChanged(func(topic string, before, after int) {
			mu.Lock()
			changes = append(changes, fmt.Sprintf("%d->%d", before, after))
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close(context.Background())
	dp, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	round := func(p *Producer, tag string) map[string]int32 {
		t.Helper()
		var recs []*Record
		for i := range 64 {
			recs = append(recs, &Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: []byte(tag)})
		}
		if err := p.ProduceSync(ctx, recs...); err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		out := map[string]int32{}
		for _, r := range recs {
			out[string(r.Key)] = r.Partition
		}
		return out
	}
	before, dBefore := round(sp, "stable-1"), round(dp, "default-1")
	if _, err := cl.Admin().AddPartitions(ctx, 3, topic); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the change reported", func() bool {
		sp.ProduceSync(ctx, &Record{Topic: topic, Key: []byte("k0"), Value: []byte("tick")})
		dp.ProduceSync(ctx, &Record{Topic: topic, Value: []byte("tick")})
		mu.Lock()
		defer mu.Unlock()
		return len(changes) > 0
	})
	mu.Lock()
	if fmt.Sprint(changes) != "[3->6]" {
		t.Errorf("changes reported: %v, want [3->6]", changes)
	}
	mu.Unlock()
	// The default producer must see 6 partitions too before its round.
	waitUntil(t, 30*time.Second, "the default producer to use partition 3-5", func() bool {
		for k, p := range round(dp, "probe") {
			if p >= 3 && dBefore[k] != p {
				return true
			}
		}
		return false
	})
	after, dAfter := round(sp, "stable-2"), round(dp, "default-2")
	movedDefault := 0
	for k, p := range before {
		if after[k] != p {
			t.Errorf("key %s moved from partition %d to %d under KeyStablePartitioner", k, p, after[k])
		}
		if dAfter[k] != dBefore[k] {
			movedDefault++
		}
	}
	if movedDefault == 0 {
		t.Fatal("control: the default partitioner moved no key after the expansion")
	}
	stable.Rebase(topic)
	rebased := round(sp, "stable-3")
	for k, p := range rebased {
		if p != dAfter[k] {
			t.Errorf("key %s after Rebase on partition %d, the default's is %d", k, p, dAfter[k])
		}
	}
	t.Logf("after adding 3 partitions to 3: the default partitioner moved %d of 64 keys, KeyStablePartitioner 0", movedDefault)
}
