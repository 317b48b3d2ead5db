package kpax

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkShareConsume measures share consumption from the Kafka 4.x
// broker (KPAX_TEST_KAFKA4; skipped without it): b.N records of 100 bytes
// on one partition, accepted implicitly by 1 or 3 share consumers, each with
// its own client. It reports records/s; run it alone (make bench-unit).
func BenchmarkShareConsume(b *testing.B) {
	for _, members := range []int{1, 3} {
		b.Run(fmt.Sprintf("consumers=%d", members), func(b *testing.B) { benchShare(b, members) })
	}
}

func benchShare(b *testing.B, members int) {
	addr := shareBenchBroker(b)
	cl, err := New(WithSeedBrokers(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	topic, group := shareSetupB(b, cl, b.N)
	var got atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range members {
		mcl, err := New(WithSeedBrokers(addr))
		if err != nil {
			b.Fatal(err)
		}
		defer mcl.Close()
		s, err := mcl.NewShareConsumer(group, []string{topic})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close(context.Background())
			for ctx.Err() == nil {
				f, err := s.Poll(ctx)
				if err != nil {
					return
				}
				if got.Add(int64(len(f.Records))) >= int64(b.N) {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if n := got.Load(); n < int64(b.N) {
		b.Fatalf("%d of %d records", n, b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

func shareBenchBroker(b *testing.B) string {
	addr := os.Getenv("KPAX_TEST_KAFKA4")
	if addr == "" {
		b.Skip("no Kafka 4.x broker: set KPAX_TEST_KAFKA4")
	}
	return addr
}

// shareSetupB is shareSetup for a benchmark: n records of 100 bytes on one
// partition, a group reading from the earliest offset.
func shareSetupB(b *testing.B, cl *Client, n int) (topic, group string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	topic, group = uniq("share-bench"), uniq("share-bench-g")
	a := cl.Admin()
	if _, err := a.CreateTopics(ctx, NewTopic{Name: topic, Partitions: 1, ReplicationFactor: 1}); err != nil {
		b.Fatal(err)
	}
	if err := a.WaitForLeaders(ctx, topic); err != nil {
		b.Fatal(err)
	}
	res, err := a.AlterConfigs(ctx, AlterConfig{Resource: ConfigResource{Type: ConfigGroup, Name: group},
		Changes: []ConfigChange{{Name: "share.auto.offset.reset", Op: ConfigSet, Value: "earliest"}}})
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		b.Fatal(err)
	}
	p, err := cl.NewProducer()
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	value := make([]byte, 100)
	for range n {
		if err := p.Produce(ctx, &Record{Topic: topic, Value: value}, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	return topic, group
}
