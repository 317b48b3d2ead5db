package main

// One measured run of one client, in a process of its own (kbench child):
// the workloads, the payloads and the metrics.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Spec is what a child process runs: the same settings for every client.
type Spec struct {
	Kind          string        `json:"kind"` // produce, consume, group or latency
	Client        string        `json:"client"`
	Broker        string        `json:"broker"` // sink or kafka
	Addr          string        `json:"addr"`
	Topic         string        `json:"topic"`
	Group         string        `json:"group,omitempty"`
	Partitions    int           `json:"partitions"`
	N             int           `json:"n"` // records (produce, consume)
	Acks          int           `json:"acks"`
	Idempotent    bool          `json:"idempotent"`
	Compression   string        `json:"compression"`
	Linger        time.Duration `json:"linger"`
	MaxBatchBytes int           `json:"max_batch_bytes"`
	MaxBuffered   int           `json:"max_buffered_records"`
	Goroutines    int           `json:"goroutines"`
	Rate          int           `json:"rate,omitempty"`     // latency: records/s
	Duration      time.Duration `json:"duration,omitempty"` // latency, txnproduce: how long to send
	Warmup        int           `json:"warmup"`             // records before measuring
	FetchMaxBytes int           `json:"fetch_max_bytes"`
	FetchPartMax  int           `json:"fetch_max_partition_bytes"`
	FetchMaxWait  time.Duration `json:"fetch_max_wait"`
	TxnInterval   time.Duration `json:"txn_interval,omitempty"` // txnproduce: how long each transaction takes records
	ValueSize     int           `json:"value_size,omitempty"`   // scale: bytes per value (0: 100)
	Name          string        `json:"name,omitempty"`         // scale: the workload's name
}

// Result is what a child reports.
type Result struct {
	Spec
	Rep        int     `json:"rep"`
	Records    int     `json:"records"`
	Errors     int64   `json:"errors"`
	WallNs     int64   `json:"wall_ns"`
	CPUNs      int64   `json:"cpu_ns"` // user + system time of the client process
	Mallocs    uint64  `json:"mallocs"`
	AllocBytes uint64  `json:"alloc_bytes"`
	MaxRSSKB   int64   `json:"max_rss_kb"`
	P50us      float64 `json:"p50_us,omitempty"`
	P99us      float64 `json:"p99_us,omitempty"`
	P999us     float64 `json:"p999_us,omitempty"`
	Txns       int     `json:"txns,omitempty"` // txnproduce: transactions committed while measured
	Config     string  `json:"config,omitempty"`
	Note       string  `json:"note,omitempty"`
	Err        string  `json:"error,omitempty"`
}

func (r *Result) RecPerSec() float64 { return float64(r.Records) / (float64(r.WallNs) / 1e9) }
func (r *Result) CPUPerRec() float64 { return float64(r.CPUNs) / float64(r.Records) }
func (r *Result) AllocsPerRec() float64 {
	return float64(r.Mallocs) / float64(r.Records)
}
func (r *Result) BytesPerRec() float64 { return float64(r.AllocBytes) / float64(r.Records) }

// payloads returns the 4096 distinct 100-byte values every client sends: 30
// random bytes and 70 bytes of repeated text, from a fixed seed.
func payloads() [][]byte { return payloadsOf(100) }

// producer is one client's producer. send queues one record per value,
// values[k] having sequence number first+k; each record's outcome calls the
// done hook given to the constructor, with the sequence number when the
// producer was made with track (latency runs), -1 otherwise.
type producer interface {
	send(ctx context.Context, first int, values [][]byte)
	close() error
	config() string
}

// consumer is one client's consumer of all partitions of s.Topic from the
// earliest offset. consume returns once at least total records arrived since
// the consumer started, with the number that did.
type consumer interface {
	consume(ctx context.Context, total int64) (int64, error)
	close() error
	config() string
}

type doneFunc func(seq int, err error)

type clientImpl struct {
	newProducer func(s *Spec, done doneFunc, track bool) (producer, error)
	newConsumer func(s *Spec) (consumer, error)
	note        func(s *Spec) string // deviations from the spec, if any
}

var clients = map[string]clientImpl{}

// counter counts outcomes and signals when a target is reached.
type counter struct {
	n, errs atomic.Int64
	mu      sync.Mutex
	target  int64
	reached chan struct{}
	lastErr atomic.Value
}

func (c *counter) expect(target int64) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.target = target
	c.reached = make(chan struct{})
	if c.n.Load() >= target {
		close(c.reached)
		c.reached = nil
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return c.reached
}

func (c *counter) add(k int64, err error) {
	if err != nil {
		c.errs.Add(k)
		c.lastErr.Store(err.Error())
	}
	if c.n.Add(k) >= c.target {
		c.mu.Lock()
		if c.reached != nil && c.n.Load() >= c.target {
			close(c.reached)
			c.reached = nil
		}
		c.mu.Unlock()
	}
}

type sample struct {
	t   time.Time
	ru  syscall.Rusage
	mem runtime.MemStats
}

func takeSample() sample {
	var s sample
	runtime.ReadMemStats(&s.mem)
	syscall.Getrusage(syscall.RUSAGE_SELF, &s.ru)
	s.t = time.Now()
	return s
}

func cpuNs(ru *syscall.Rusage) int64 {
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func (r *Result) measure(a, b sample) {
	r.WallNs = b.t.Sub(a.t).Nanoseconds()
	r.CPUNs = cpuNs(&b.ru) - cpuNs(&a.ru)
	r.Mallocs = b.mem.Mallocs - a.mem.Mallocs
	r.AllocBytes = b.mem.TotalAlloc - a.mem.TotalAlloc
	r.MaxRSSKB = peakRSSKB()
}

// peakRSSKB is the process's peak resident set (VmHWM). Unlike ru_maxrss,
// which Linux carries over an exec from the forking parent, it starts afresh
// with the process image.
func peakRSSKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// runChild runs one Spec and prints its Result as JSON on stdout.
func runChild(args []string) error {
	fs := flag.NewFlagSet("child", flag.ExitOnError)
	specJSON := fs.String("spec", "", "the run, as JSON")
	rep := fs.Int("rep", 0, "repetition number")
	fs.Parse(args)
	var s Spec
	if err := json.Unmarshal([]byte(*specJSON), &s); err != nil {
		return err
	}
	res := Result{Spec: s, Rep: *rep}
	impl, ok := clients[s.Client]
	if !ok {
		return fmt.Errorf("unknown client %q", s.Client)
	}
	if impl.note != nil {
		res.Note = impl.note(&s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	if path := os.Getenv("KBENCH_CPUPROFILE"); path != "" { // for profiling one run by hand
		f, err := os.Create(fmt.Sprintf("%s.%s.%d", path, s.Client, *rep))
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if path := os.Getenv("KBENCH_MEMPROFILE"); path != "" { // allocations, for profiling one run by hand
		runtime.MemProfileRate = 64 << 10
		defer func() {
			runtime.GC() // the profile holds allocations up to the last collection: all of them
			if f, err := os.Create(fmt.Sprintf("%s.%s.%d", path, s.Client, *rep)); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	var err error
	switch s.Kind {
	case "produce", "scale":
		err = runProduce(ctx, impl, &s, &res)
	case "latency":
		err = runLatency(ctx, impl, &s, &res)
	case "txnproduce":
		err = runTxnProduce(ctx, &s, &res)
	case "consume":
		err = runConsume(ctx, impl.newConsumer, &s, &res)
	case "group":
		err = runConsume(ctx, groups[s.Client], &s, &res)
	case "budget":
		err = runBudget(ctx, &s, &res)
	case "parallel":
		err = runParallel(ctx, &s, &res)
	case "share":
		err = runShare(ctx, &s, &res) // share.go
	default:
		err = fmt.Errorf("unknown kind %q", s.Kind)
	}
	if err != nil {
		res.Err = err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(&res)
}

func waitDone(ctx context.Context, ch <-chan struct{}, c *counter) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d of %d outcomes before timeout", c.n.Load(), c.target)
	}
}

// warmup sends n records numbered from first (connections, metadata,
// producer ID) and waits for their outcomes before the measuring starts.
func warmup(ctx context.Context, p producer, c *counter, vals [][]byte, n, first int) error {
	if n <= 0 {
		return nil
	}
	ch := c.expect(int64(n))
	p.send(ctx, first, chunk(vals, 0, n))
	if err := waitDone(ctx, ch, c); err != nil {
		return fmt.Errorf("warmup: %v", err)
	}
	return nil
}

func runProduce(ctx context.Context, impl clientImpl, s *Spec, res *Result) error {
	vals := payloadsOf(s.ValueSize)
	var c counter
	p, err := impl.newProducer(s, func(_ int, err error) { c.add(1, err) }, false)
	if err != nil {
		return err
	}
	defer p.close()
	res.Config = p.config()
	if err := warmup(ctx, p, &c, vals, s.Warmup, 0); err != nil {
		return err
	}
	base := c.n.Load()
	ch := c.expect(base + int64(s.N))
	g := max(s.Goroutines, 1)
	const step = 1000 // values per send call (kafka-go: per WriteMessages)
	runtime.GC()
	a := takeSample()
	var wg sync.WaitGroup
	for w := 0; w < g; w++ {
		lo, hi := s.N*w/g, s.N*(w+1)/g
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([][]byte, 0, step)
			for i := lo; i < hi; i += step {
				buf = buf[:0]
				for j := i; j < min(i+step, hi); j++ {
					buf = append(buf, vals[j%len(vals)])
				}
				p.send(ctx, i, buf)
			}
		}()
	}
	wg.Wait()
	err = waitDone(ctx, ch, &c)
	b := takeSample()
	res.measure(a, b)
	res.Records = s.N
	res.Errors = c.errs.Load()
	if e, ok := c.lastErr.Load().(string); ok {
		res.Err = "last produce error: " + e
	}
	return err
}

func chunk(vals [][]byte, first, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = vals[(first+i)%len(vals)]
	}
	return out
}

// runLatency sends at a fixed rate, open loop: record i is due at start +
// i/rate, is sent as soon as it is due whatever the acknowledgements do, and
// its latency runs from when it was due to its acknowledgement.
func runLatency(ctx context.Context, impl clientImpl, s *Spec, res *Result) error {
	vals := payloads()
	total := int(int64(s.Rate) * int64(s.Duration) / int64(time.Second))
	lat := make([]int64, total)
	var c counter
	var start time.Time
	interval := time.Second / time.Duration(s.Rate)
	p, err := impl.newProducer(s, func(seq int, err error) {
		if seq >= 0 && seq < total {
			due := start.Add(time.Duration(seq) * interval)
			lat[seq] = time.Since(due).Nanoseconds()
		}
		c.add(1, err)
	}, true)
	if err != nil {
		return err
	}
	defer p.close()
	res.Config = p.config()
	if err := warmup(ctx, p, &c, vals, s.Warmup, -1<<40); err != nil {
		return err
	}
	base := c.n.Load()
	ch := c.expect(base + int64(total))
	runtime.GC()
	a := takeSample()
	start = a.t
	one := make([][]byte, 1)
	for i := 0; i < total; {
		now := time.Now()
		due := int(now.Sub(start) / interval)
		for ; i < total && i <= due; i++ {
			one[0] = vals[i%len(vals)]
			p.send(ctx, i, one)
		}
		if i < total {
			next := start.Add(time.Duration(i) * interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	}
	err = waitDone(ctx, ch, &c)
	b := takeSample()
	res.measure(a, b)
	res.Records = total
	res.Errors = c.errs.Load()
	slices.Sort(lat)
	pct := func(q float64) float64 { return float64(lat[int(q*float64(total-1))]) / 1e3 }
	res.P50us, res.P99us, res.P999us = pct(0.50), pct(0.99), pct(0.999)
	return err
}

// runConsume measures from the consumer's creation to the arrival of the
// N-th record: a warm-up would let the background fetching run ahead of the
// measured interval.
func runConsume(ctx context.Context, newConsumer func(*Spec) (consumer, error), s *Spec, res *Result) error {
	if newConsumer == nil {
		return errors.New("no consumer")
	}
	runtime.GC()
	a := takeSample()
	c, err := newConsumer(s)
	if err != nil {
		return err
	}
	defer c.close()
	got, err := c.consume(ctx, int64(s.N))
	b := takeSample()
	res.measure(a, b)
	res.Records = int(got)
	res.Config = c.config()
	return err
}
