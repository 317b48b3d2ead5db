package main

// Two workloads of issue 19 against the real broker, kpax and franz-go
// only:
//
// "budget": one client produces zstd records (the 100-byte values) to a
// 6-partition topic as fast as it can, from one goroutine, and consumes
// the same topic at once from its end at the start (what it produces, not
// an earlier run's records), for Duration; records/s counts
// records produced plus records consumed. kpax runs under
// WithMemoryBudget(64 MiB); franz-go has no such bound, so it gets its
// nearest limits: MaxBufferedBytes(32 MiB) for the producer and
// FetchMaxBytes(32 MiB) with one fetch at a time (MaxConcurrentFetches(1))
// for the consumer, 64 MiB together. The asymmetry: those limits count
// compressed bytes as they come off the wire; franz-go cannot bound what
// they decompress to, nor the records it decodes, while kpax's budget
// counts decompressed batches by their output, before they are allocated.
// Both processes set the same memory limit (debug.SetMemoryLimit, 96 MiB:
// the budget plus 32 MiB, as kpax's WithMemoryBudget asks of the
// application).
//
// "parallel": a group consumer works through a topic of 12 partitions
// filled with records keyed over 1024 keys, with a handler that sleeps
// 1 ms per record (like a call to a service), at most Goroutines handlers
// at once, for Duration from the first record; records/s counts handled
// records. kpax runs GroupConsumer.Process (records of a key in order,
// keys in parallel, commits of contiguous progress only). franz-go runs
// the pattern users write by hand: a goroutine per assigned partition that
// handles its records in order and marks them for commit, with at most
// Goroutines handlers at once across them; its parallelism is therefore at
// most the partitions assigned (12).

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"h12.me/kpax"
)

const (
	budgetBytes    = 64 << 20
	budgetMemLimit = budgetBytes + 32<<20
	parallelKeys   = 1024
	parallelSleep  = time.Millisecond
)

// parallelFill is how many records the parallel workload's topic holds:
// more than 64 handlers sleeping 1 ms get through in its 3 s.
const parallelFill = 250_000

// clientRuns reports whether s's client runs s's workload: only kpax and
// franz-go run this file's, the scaling runs (scale.go) and share.go's.
func clientRuns(s *Spec) bool {
	return s.Kind != "budget" && s.Kind != "parallel" && s.Kind != "scale" && s.Kind != "share" ||
		s.Client == "kpax" || s.Client == "franz-go"
}

// budgetWorkloads are the runs of this file, for the real broker only.
func budgetWorkloads() []workload {
	ws := []workload{{name: "budget zstd p6", reps: 1, spec: Spec{Kind: "budget", Partitions: 6,
		Compression: "zstd", Linger: lingerThroughput, Goroutines: 1, Duration: 5 * time.Second}}}
	for _, c := range []int{1, 8, 64} {
		ws = append(ws, workload{name: fmt.Sprintf("parallel c%d p12", c), reps: 1,
			spec: Spec{Kind: "parallel", Partitions: 12, Goroutines: c, Duration: 3 * time.Second}})
	}
	return ws
}

// runBudget is the "budget" workload.
func runBudget(ctx context.Context, s *Spec, res *Result) error {
	debug.SetMemoryLimit(budgetMemLimit)
	vals := payloads()
	var produced, consumed atomic.Int64
	ctx, cancel := context.WithTimeout(ctx, s.Duration)
	defer cancel()
	var run func(ctx context.Context) (string, error)
	switch s.Client {
	case "kpax":
		run = func(ctx context.Context) (string, error) { return kpaxBudget(ctx, s, vals, &produced, &consumed) }
	case "franz-go":
		run = func(ctx context.Context) (string, error) { return franzBudget(ctx, s, vals, &produced, &consumed) }
	default:
		return fmt.Errorf("%s: not in the budget workload", s.Client)
	}
	runtime.GC()
	a := takeSample()
	cfg, err := run(ctx)
	b := takeSample()
	res.measure(a, b)
	res.Records = int(produced.Load() + consumed.Load())
	res.Config = cfg + fmt.Sprintf("; debug.SetMemoryLimit(%d MiB); produced %d, consumed %d in %v",
		budgetMemLimit>>20, produced.Load(), consumed.Load(), s.Duration)
	return err
}

func kpaxBudget(ctx context.Context, s *Spec, vals [][]byte, produced, consumed *atomic.Int64) (string, error) {
	cfg := fmt.Sprintf("kpax.New(WithSeedBrokers(%q), WithMemoryBudget(%d MiB), WithCompression(CompressionZstd), WithLinger(%v)); "+
		"one producer (Produce with a callback) and one consumer (Assign all partitions at Latest, Poll loop) of the client",
		s.Addr, budgetBytes>>20, s.Linger)
	cl, err := kpax.New(kpax.WithSeedBrokers(s.Addr), kpax.WithMemoryBudget(budgetBytes),
		kpax.WithCompression(kpax.CompressionZstd), kpax.WithLinger(s.Linger))
	if err != nil {
		return cfg, err
	}
	defer cl.Close()
	p, err := cl.NewProducer()
	if err != nil {
		return cfg, err
	}
	defer p.Close(context.Background())
	c, err := cl.NewConsumer()
	if err != nil {
		return cfg, err
	}
	defer c.Close(context.Background())
	parts := map[int32]kpax.Offset{}
	for i := range s.Partitions {
		parts[int32(i)] = kpax.Latest()
	}
	c.Assign(map[string]map[int32]kpax.Offset{s.Topic: parts})
	go func() {
		cb := func(_ *kpax.Record, err error) {
			if err == nil {
				produced.Add(1)
			}
		}
		for i := 0; ctx.Err() == nil; i++ {
			v := append([]byte(nil), vals[i%len(vals)]...) // the application's own record, held until its callback
			p.Produce(ctx, &kpax.Record{Topic: s.Topic, Value: v}, cb)
		}
	}()
	for {
		f, err := c.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return cfg, nil
			}
			return cfg, err
		}
		consumed.Add(int64(len(f.Records)))
	}
}

func franzBudget(ctx context.Context, s *Spec, vals [][]byte, produced, consumed *atomic.Int64) (string, error) {
	cfg := "kgo.NewClient(SeedBrokers, ProducerBatchCompression(ZstdCompression()), ProducerLinger, MaxBufferedBytes(32 MiB), " +
		"FetchMaxBytes(32 MiB), MaxConcurrentFetches(1), ConsumePartitions(all at AtEnd())); Produce with a promise, PollFetches loop"
	parts := map[int32]kgo.Offset{}
	for i := range s.Partitions {
		parts[int32(i)] = kgo.NewOffset().AtEnd()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.ProducerLinger(s.Linger), kgo.MaxBufferedBytes(32<<20), kgo.FetchMaxBytes(32<<20), kgo.MaxConcurrentFetches(1),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.Topic: parts}))
	if err != nil {
		return cfg, err
	}
	defer cl.Close()
	go func() {
		promise := func(_ *kgo.Record, err error) {
			if err == nil {
				produced.Add(1)
			}
		}
		for i := 0; ctx.Err() == nil; i++ {
			v := append([]byte(nil), vals[i%len(vals)]...)
			cl.Produce(ctx, &kgo.Record{Topic: s.Topic, Value: v}, promise)
		}
	}()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		consumed.Add(int64(fs.NumRecords()))
	}
	return cfg, nil
}

// runParallel is the "parallel" workload.
func runParallel(ctx context.Context, s *Spec, res *Result) error {
	var handled atomic.Int64
	first := make(chan struct{})
	var once sync.Once
	handle := func() {
		once.Do(func() { close(first) })
		time.Sleep(parallelSleep)
		handled.Add(1)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cfg string
	errc := make(chan error, 1)
	switch s.Client {
	case "kpax":
		cfg = fmt.Sprintf("GroupConsumer.Process(ctx, handler, WithProcessConcurrency(%d), WithProcessMaxInFlight(%d)); "+
			"default order: by key", s.Goroutines, max(1024, 4*s.Goroutines))
		go func() { errc <- kpaxParallel(ctx, s, handle) }()
	case "franz-go":
		cfg = fmt.Sprintf("a goroutine per assigned partition (OnPartitionsAssigned/Revoked), fed from a PollFetches loop, "+
			"handling in offset order with at most %d handlers at once (a semaphore), MarkCommitRecords after each; "+
			"AutoCommitMarks, BlockRebalanceOnPoll", s.Goroutines)
		go func() { errc <- franzParallel(ctx, s, handle) }()
	default:
		return fmt.Errorf("%s: not in the parallel workload", s.Client)
	}
	res.Config = cfg + fmt.Sprintf("; handler sleeps %v per record; %d keys; measured for %v from the first record", parallelSleep, parallelKeys, s.Duration)
	select {
	case <-first:
	case err := <-errc:
		return err
	}
	a := takeSample()
	n0 := handled.Load()
	time.Sleep(s.Duration)
	n1 := handled.Load()
	b := takeSample()
	res.measure(a, b)
	res.Records = int(n1 - n0)
	cancel()
	<-errc
	return nil
}

func kpaxParallel(ctx context.Context, s *Spec, handle func()) error {
	cl, err := kpax.New(kpax.WithSeedBrokers(s.Addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	g, err := cl.NewGroupConsumer(s.Group, []string{s.Topic}, kpax.WithStartOffset(kpax.Earliest()))
	if err != nil {
		return err
	}
	defer g.Close(context.Background())
	return g.Process(ctx, func(context.Context, *kpax.Record) error { handle(); return nil },
		kpax.WithProcessConcurrency(s.Goroutines), kpax.WithProcessMaxInFlight(max(1024, 4*s.Goroutines)))
}

// franzParallel is the goroutine-per-partition pattern: the poll loop hands
// each partition's records to that partition's goroutine (started on
// assignment, stopped and waited for on revocation), which handles them in
// order under a semaphore of s.Goroutines and marks them for commit.
func franzParallel(ctx context.Context, s *Spec, handle func()) error {
	type worker struct {
		recs chan []*kgo.Record
		done chan struct{}
	}
	var mu sync.Mutex
	workers := map[int32]*worker{}
	sem := make(chan struct{}, s.Goroutines)
	var cl *kgo.Client
	stop := func(parts map[string][]int32) {
		mu.Lock()
		defer mu.Unlock()
		for _, ps := range parts {
			for _, p := range ps {
				if w := workers[p]; w != nil {
					close(w.recs)
					<-w.done
					delete(workers, p)
				}
			}
		}
	}
	start := func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
		mu.Lock()
		defer mu.Unlock()
		for _, ps := range parts {
			for _, p := range ps {
				w := &worker{recs: make(chan []*kgo.Record, 4), done: make(chan struct{})}
				workers[p] = w
				go func() {
					defer close(w.done)
					for rs := range w.recs {
						for _, r := range rs {
							sem <- struct{}{}
							handle()
							<-sem
							cl.MarkCommitRecords(r)
						}
					}
				}()
			}
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr), kgo.ConsumerGroup(s.Group), kgo.ConsumeTopics(s.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AutoCommitMarks(), kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(start),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, p map[string][]int32) { stop(p) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, p map[string][]int32) { stop(p) }))
	if err != nil {
		return err
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			mu.Lock()
			w := workers[p.Partition]
			mu.Unlock()
			if w != nil && len(p.Records) > 0 {
				select { // blocks the poll loop when a partition is behind: backpressure
				case w.recs <- p.Records:
				case <-ctx.Done():
				}
			}
		})
		cl.AllowRebalance()
	}
	mu.Lock()
	for p, w := range workers {
		close(w.recs)
		delete(workers, p)
	}
	mu.Unlock()
	return nil
}
