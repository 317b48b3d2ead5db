package kpax

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkProcess measures Process's throughput on a real broker
// (KPAX_TEST_KAFKA4 or KPAX_TEST_KAFKA39; skipped without one) with a
// handler that waits 1 ms, like one that calls a service, and with one that
// returns at once (Process's own cost): records of 100 bytes over 1024
// keys and 12 partitions, one member, concurrency 1, 8 and 64. The
// clock runs from the release of the first handler to the last record;
// group join and producing are outside it.
func BenchmarkProcess(b *testing.B) {
	addr := os.Getenv("KPAX_TEST_KAFKA4")
	if addr == "" {
		addr = os.Getenv("KPAX_TEST_KAFKA39")
	}
	if addr == "" {
		b.Skip("no broker: set KPAX_TEST_KAFKA4 or KPAX_TEST_KAFKA39")
	}
	for _, lat := range []time.Duration{time.Millisecond, 0} {
		for _, conc := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("latency=%v/concurrency=%d", lat, conc), func(b *testing.B) { benchProcess(b, addr, conc, lat) })
		}
	}
}

func benchProcess(b *testing.B, addr string, conc int, latency time.Duration) {
	b.StopTimer()
	cl, err := New(WithSeedBrokers(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	const parts, keys = 12, 1024
	topic := fmt.Sprintf("kpax-bench-process-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := cl.Request(ctx, &CreateTopicsRequest{TimeoutMs: 20000, Topics: []CreateTopicsRequestTopic{{Name: topic, NumPartitions: parts, ReplicationFactor: 1}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := ErrorForCode(r.(*CreateTopicsResponse).Topics[0].ErrorCode); err != nil {
		b.Fatal(err)
	}
	p, err := cl.NewProducer(WithLinger(5 * time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		rec := &Record{Topic: topic, Key: strconv.AppendInt(nil, int64(i%keys), 10), Value: make([]byte, 100)}
		if err := p.Produce(ctx, rec, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	g, err := cl.NewGroupConsumer("g-"+topic, []string{topic}, WithFetchMaxWait(50*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close(context.Background())
	release := make(chan struct{})
	allDone := make(chan struct{})
	var done atomic.Int64
	first := make(chan struct{}, 1)
	pctx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- g.Process(pctx, func(ctx context.Context, r *Record) error {
			select {
			case first <- struct{}{}:
			default:
			}
			<-release
			if latency > 0 {
				time.Sleep(latency)
			}
			if done.Add(1) == int64(b.N) {
				close(allDone)
			}
			return nil
		}, WithProcessConcurrency(conc), WithProcessMaxInFlight(max(1024, 4*conc)))
	}()
	<-first
	b.StartTimer()
	t0 := time.Now()
	close(release)
	select {
	case <-allDone:
	case err := <-errc:
		b.Fatalf("Process: %v", err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "records/s")
	stop()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}
