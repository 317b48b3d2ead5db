package kpax

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rssChildEnv, when set, makes TestMemoryBudgetRSSChild the child process
// of TestMemoryBudgetRSS: "addr topic budget seconds".
const rssChildEnv = "KPAX_TEST_BUDGET_RSS_CHILD"

// rssReport is what the child prints on its last line.
type rssReport struct {
	HWMKiB, Produced, Consumed            int64
	BudgetPeak, HeapPeak, LivePeak, SysMB int64
}

// TestMemoryBudgetRSS: one client producing and consuming zstd data at full
// speed with a 64 MiB budget (GOMEMLIMIT set as WithMemoryBudget's godoc
// says) keeps its process's peak RSS (VmHWM) within the budget plus
// MemoryBudgetOverhead. The control, the same workload without a budget (each
// producer and consumer with its default bounds), goes above it: the test
// can fail. Each run is a child process (this test binary re-executed), so
// that its VmHWM is its own.
func TestMemoryBudgetRSS(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("short, or the race detector on (it multiplies RSS)")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc: VmHWM unknown")
	}
	addr := groupBroker(t)
	cl := newTestClient(t, addr)
	const budget = 64 << 20
	limit := int64(budget + MemoryBudgetOverhead)
	for _, tc := range []struct {
		name   string
		budget int
	}{{"budget", budget}, {"control", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			topic := createTestTopic(t, cl, 6)
			r := runRSSChild(t, addr, topic, tc.budget, 8)
			hwm := r.HWMKiB << 10
			t.Logf("%s: VmHWM %d MiB (limit %d MiB), heap peak %d MiB, live heap peak %d MiB, budget peak %d MiB, produced %d, consumed %d",
				tc.name, hwm>>20, limit>>20, r.HeapPeak>>20, r.LivePeak>>20, r.BudgetPeak>>20, r.Produced, r.Consumed)
			if r.Produced < 100_000 || r.Consumed < 100_000 {
				t.Fatalf("moved too little to prove anything: produced %d, consumed %d", r.Produced, r.Consumed)
			}
			switch {
			case tc.budget > 0 && hwm > limit:
				t.Errorf("peak RSS %d MiB over the budget + MemoryBudgetOverhead, %d MiB", hwm>>20, limit>>20)
			case tc.budget == 0 && hwm <= limit:
				t.Errorf("control: peak RSS %d MiB without a budget, within %d MiB: the test cannot fail", hwm>>20, limit>>20)
			}
		})
	}
}

// runRSSChild runs TestMemoryBudgetRSSChild in a child process and returns
// its report.
func runRSSChild(t *testing.T, addr, topic string, budget, seconds int) rssReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMemoryBudgetRSSChild$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %d", rssChildEnv, addr, topic, budget, seconds))
	if budget > 0 {
		limit := strconv.Itoa(budget + 32<<20)
		if v := os.Getenv("KPAX_TEST_BUDGET_RSS_MEMLIMIT"); v != "" { // to explore
			limit = v
		}
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+limit)
	}
	out, err := cmd.CombinedOutput()
	var r rssReport
	for sc := bufio.NewScanner(strings.NewReader(string(out))); sc.Scan(); {
		if s, ok := strings.CutPrefix(sc.Text(), "RSSREPORT "); ok {
			if jerr := json.Unmarshal([]byte(s), &r); jerr != nil {
				t.Fatal(jerr)
			}
			return r
		}
	}
	t.Fatalf("child: %v\n%s", err, out)
	return r
}

// TestMemoryBudgetRSSChild is TestMemoryBudgetRSS's child process: it
// produces zstd data to a topic and consumes it back at once, both at full
// speed, for some seconds, and prints its peak RSS.
func TestMemoryBudgetRSSChild(t *testing.T) {
	env := os.Getenv(rssChildEnv)
	if env == "" {
		t.Skip("run by TestMemoryBudgetRSS")
	}
	var addr, topic string
	var budget, seconds int
	if _, err := fmt.Sscan(env, &addr, &topic, &budget, &seconds); err != nil {
		t.Fatal(err)
	}
	cl, err := New(WithSeedBrokers(addr), WithMemoryBudget(budget), WithCompression(CompressionZstd))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second)
	defer cancel()
	var produced, consumed, heapPeak, livePeak atomic.Int64
	go sampleHeap(ctx, &heapPeak, &livePeak, os.Getenv("KPAX_TEST_BUDGET_RSS_HEAP"))
	done := make(chan error, 1)
	go func() { done <- produceRSS(ctx, cl, topic, &produced) }()
	if err := consumeRSS(ctx, cl, topic, &consumed); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var r rssReport
	r.HWMKiB, r.Produced, r.Consumed, r.HeapPeak, r.LivePeak = vmHWMKiB(t), produced.Load(), consumed.Load(), heapPeak.Load(), livePeak.Load()
	if b := cl.cfg.budget; b != nil {
		_, peak := b.usage()
		r.BudgetPeak = int64(peak)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.SysMB = int64(ms.Sys >> 20)
	js, _ := json.Marshal(r)
	fmt.Printf("RSSREPORT %s\n", js)
}

// rssCorpus is text zstd compresses about 3:1, from which the records'
// values are cut.
var rssCorpus = func() []byte {
	words := strings.Fields("kafka record batch offset partition leader epoch fetch produce budget memory zstd consumer producer broker topic")
	rng := rand.New(rand.NewPCG(1, 2))
	var b []byte
	for len(b) < 1<<20 {
		b = append(b, words[rng.IntN(len(words))]...)
		b = strconv.AppendInt(append(b, ' '), rng.Int64N(1e6), 10)
		b = append(b, ' ')
	}
	return b
}()

// produceRSS produces 1 KiB values, each freshly allocated, until ctx ends.
func produceRSS(ctx context.Context, cl *Client, topic string, n *atomic.Int64) error {
	p, err := cl.NewProducer()
	if err != nil {
		return err
	}
	defer p.Close(context.Background())
	cb := func(_ *Record, err error) {
		if err == nil {
			n.Add(1)
		}
	}
	for i := 0; ctx.Err() == nil; i++ {
		at := (i * 997) % (len(rssCorpus) - 1024)
		v := append([]byte(nil), rssCorpus[at:at+1024]...)
		if err := p.Produce(ctx, &Record{Topic: topic, Key: strconv.AppendInt(nil, int64(i), 10), Value: v}, cb); err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// consumeRSS consumes topic from its start until ctx ends.
func consumeRSS(ctx context.Context, cl *Client, topic string, n *atomic.Int64) error {
	c, err := cl.NewConsumer()
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	md, err := cl.Metadata(ctx, topic)
	if err != nil {
		return err
	}
	parts := map[int32]Offset{}
	for _, p := range md.Topics[0].Partitions {
		parts[p.Partition] = Earliest()
	}
	c.Assign(map[string]map[int32]Offset{topic: parts})
	for {
		f, err := c.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		n.Add(int64(len(f.Records)))
	}
}

// sampleHeap records the peaks of the heap in use and of the live heap (as
// the last GC marked it) until ctx ends.
// With a profile path, it writes a heap profile there at the live heap's peak.
func sampleHeap(ctx context.Context, inuse, live *atomic.Int64, profile string) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	ss := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(ss)
		for i, p := range []*atomic.Int64{inuse, live} {
			if v := int64(ss[i].Value.Uint64()); v > p.Load() {
				if i == 1 && profile != "" && v > p.Load()*21/20 {
					writeHeapProfile(profile)
				}
				p.Store(v)
			}
		}
	}
}

func writeHeapProfile(path string) {
	if f, err := os.Create(path); err == nil {
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
}

// vmHWMKiB is the process's peak resident set in KiB.
func vmHWMKiB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
