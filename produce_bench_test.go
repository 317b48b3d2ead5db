package kpax

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadCPU returns the calling OS thread's user+system CPU time in
// nanoseconds (Linux RUSAGE_THREAD), or 0 where that is not available.
func threadCPU() int64 {
	const rusageThread = 1
	var ru syscall.Rusage
	if runtime.GOOS != "linux" || syscall.Getrusage(rusageThread, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchValues returns 4096 distinct 100-byte values, 30% random bytes.
func benchValues() [][]byte {
	r := rand.New(rand.NewPCG(9, 9))
	vals := make([][]byte, 4096)
	for i := range vals {
		v := make([]byte, 100)
		for j := range v {
			if j < 30 {
				v[j] = byte(r.Uint32())
			} else {
				v[j] = "kpax benchmark value "[j%21]
			}
		}
		vals[i] = v
	}
	return vals
}

// BenchmarkProduce measures the producer's hot path against an in-process
// broker that acknowledges without storing: 100-byte values, acks=1, linger
// 10ms, one partition. It reports records/s, allocations per record and CPU
// per record, three ways: cpu-ns/record is the whole process's (getrusage,
// so it includes the fake broker and the garbage collector);
// broker-cpu-ns/record is the fake broker's own, measured on the OS thread
// that its connection goroutine keeps to itself (reading the request frame,
// decoding the request without touching the record bytes except the count,
// answering); client-cpu-ns/record is the difference. Locking the broker to
// a thread adds thread hand-offs that count on both sides, so the client
// figure is slightly pessimistic, not optimistic.
func BenchmarkProduce(b *testing.B) {
	for _, c := range []Compression{CompressionNone, CompressionLZ4, CompressionZstd} {
		b.Run(c.String(), func(b *testing.B) {
			f := newFakeCluster(b, 1, nil)
			f.measureCPU.Store(true)
			cl, err := New(WithSeedBrokers(f.addr()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			p, err := cl.NewProducer(WithAcks(1), WithLinger(10*time.Millisecond), WithCompression(c))
			if err != nil {
				b.Fatal(err)
			}
			vals := benchValues()
			ctx := context.Background()
			recs := make([]Record, 100000)
			for i := range recs {
				recs[i] = Record{Topic: "bench", Value: vals[i%len(vals)]}
			}
			// Warm up: metadata, connection.
			if err := p.ProduceSync(ctx, &Record{Topic: "bench", Value: vals[0]}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, t0, broker0 := cpuTime(), time.Now(), f.serveCPU.Load()
			for i := 0; i < b.N; i++ {
				r := &recs[i%len(recs)]
				if i >= len(recs) && i%len(recs) == 0 {
					if err := p.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Produce(ctx, r, nil); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu, wall, broker := cpuTime()-cpu0, time.Since(t0), f.serveCPU.Load()-broker0
			b.ReportMetric(float64(b.N)/wall.Seconds(), "records/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
			b.ReportMetric(float64(broker)/float64(b.N), "broker-cpu-ns/record")
			b.ReportMetric(float64(cpu.Nanoseconds()-broker)/float64(b.N), "client-cpu-ns/record")
			p.Close(ctx)
			if got := f.produced.Load(); got < int64(b.N) {
				b.Fatal(fmt.Sprintf("broker acknowledged %d of %d", got, b.N))
			}
		})
	}
}
