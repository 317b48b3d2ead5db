package main

// The workload matrix and the loop that runs it against one broker.

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"h12.me/kpax"
)

// Settings that every client gets, set explicitly.
const (
	lingerThroughput = 5 * time.Millisecond
	lingerLatency    = 1 * time.Millisecond
	maxBatchBytes    = 1_000_000
	maxBuffered      = 100_000
	maxInFlight      = 5 // produce requests in flight per broker (sarama: 1 with idempotence, its limit)
	producers        = 4 // producing goroutines
	fetchMaxBytes    = 50 << 20
	fetchPartMax     = 1 << 20
	fetchMaxWait     = 500 * time.Millisecond
)

type workload struct {
	name string
	reps int // repetitions, if not o.reps (budget.go's short runs)
	spec Spec
}

func produceSpec(acks int, comp string, parts int) workload {
	mode := "acks=1"
	if acks == -1 {
		mode = "acks=all+idem"
	}
	return workload{
		name: fmt.Sprintf("produce %s %s p%d", mode, comp, parts),
		spec: Spec{Kind: "produce", Partitions: parts, Acks: acks, Idempotent: acks == -1,
			Compression: comp, Linger: lingerThroughput, Goroutines: producers},
	}
}

// workloads lists the runs for a broker. The default matrix runs every
// produce combination against the sink and a subset against Kafka (whose
// disk and CPU dominate there); "full" runs all of them against both.
func workloads(broker string, o *options) []workload {
	var ws []workload
	for _, acks := range []int{1, -1} {
		for _, comp := range []string{"none", "lz4", "zstd"} {
			for _, parts := range []int{1, 6} {
				if broker == "kafka" && o.matrix != "full" && !(parts == 6 && comp != "zstd") {
					continue
				}
				ws = append(ws, produceSpec(acks, comp, parts))
			}
		}
	}
	ws = append(ws, workload{name: fmt.Sprintf("consume p%d", o.consumeParts),
		spec: Spec{Kind: "consume", Partitions: o.consumeParts}})
	ws = append(ws, workload{name: fmt.Sprintf("group consume p%d", o.consumeParts),
		spec: Spec{Kind: "group", Partitions: o.consumeParts}})
	for _, rate := range []int{10_000, 100_000} {
		ws = append(ws, workload{name: fmt.Sprintf("latency %dk/s", rate/1000),
			spec: Spec{Kind: "latency", Partitions: 1, Acks: -1, Idempotent: true, Compression: "none",
				Linger: lingerLatency, Goroutines: 1, Rate: rate, Duration: o.latDur}})
	}
	if broker == "kafka" { // the sink has no transaction coordinator
		for _, d := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond} {
			ws = append(ws, workload{name: fmt.Sprintf("txn produce %v p6", d),
				spec: Spec{Kind: "txnproduce", Partitions: 6, Acks: -1, Idempotent: true, Compression: "none",
					Linger: lingerThroughput, Goroutines: 1, TxnInterval: d, Duration: o.txnDur}})
		}
	}
	if broker == "kafka" {
		ws = append(ws, budgetWorkloads()...)
		ws = append(ws, shareWorkloads()...) // share.go
	}
	if broker == "sink" {
		ws = append(ws, scaleWorkloads()...) // scale.go
	}
	var out []workload
	for _, w := range ws {
		if o.only == nil || o.only.MatchString(w.name) {
			out = append(out, w)
		}
	}
	return out
}

func (w *workload) fill(broker, addr string, o *options, stamp string) {
	s := &w.spec
	s.Broker, s.Addr, s.N = broker, addr, o.n
	s.MaxBatchBytes, s.MaxBuffered = maxBatchBytes, maxBuffered
	s.FetchMaxBytes, s.FetchPartMax, s.FetchMaxWait = fetchMaxBytes, fetchPartMax, fetchMaxWait
	slug := strings.NewReplacer(" ", "-", "=", "", "+", "-", "/", "").Replace(w.name)
	s.Topic = fmt.Sprintf("kbench-%s-%s", slug, stamp)
	if !strings.Contains(slug, "-p") {
		s.Topic = fmt.Sprintf("kbench-%s-p%d-%s", slug, s.Partitions, stamp)
	}
	switch s.Kind {
	case "produce", "txnproduce":
		s.Warmup = min(max(o.n/100, 1000), 10_000)
	case "latency":
		s.Warmup = 1000
		s.N = 0
	case "parallel":
		s.N = parallelFill
	case "share":
		s.N = min(o.n, shareRecords) // share.go
	case "scale":
		s.Warmup = min(max(o.n/100, 1000), 10_000)
		fillScale(s)
	}
}

func runBroker(exe, broker, addr, stamp string, o *options, logf *os.File) ([]Result, error) {
	ws := workloads(broker, o)
	total := 0
	for _, w := range ws {
		reps := o.reps
		if w.reps > 0 {
			reps = min(reps, w.reps)
		}
		for _, c := range o.clients {
			if s := (Spec{Kind: w.spec.Kind, Client: c}); clientRuns(&s) {
				total += reps
			}
		}
	}
	fmt.Printf("== %s broker at %s: %d workloads, up to %d reps, %d clients: %d runs (N=%d)\n",
		broker, addr, len(ws), o.reps, len(o.clients), total, o.n)
	var admin *kpax.Client
	if broker == "kafka" {
		var err error
		if admin, err = kpax.New(kpax.WithSeedBrokers(addr)); err != nil {
			return nil, err
		}
		defer admin.Close()
	}
	var results []Result
	done := 0
	for _, w := range ws {
		w.fill(broker, addr, o, stamp)
		if admin != nil {
			if err := createTopic(admin, w.spec.Topic, w.spec.Partitions); err != nil {
				return results, err
			}
			if k := w.spec.Kind; k == "consume" || k == "group" || k == "parallel" || k == "share" {
				if err := fillTopic(admin, &w.spec, w.spec.N); err != nil {
					return results, fmt.Errorf("filling %s: %v", w.spec.Topic, err)
				}
			}
		}
		reps := o.reps
		if w.reps > 0 {
			reps = min(reps, w.reps)
		}
		for rep := 0; rep < reps; rep++ {
			for i := range o.clients {
				// Rotate the order so that no client always runs first.
				client := o.clients[(i+rep)%len(o.clients)]
				s := w.spec
				s.Client = client
				if !clientRuns(&s) {
					continue
				}
				if s.Kind == "group" || s.Kind == "parallel" || s.Kind == "share" {
					s.Group = fmt.Sprintf("%s-%s-%d", s.Topic, client, rep)
				}
				t0 := time.Now()
				r := runOne(exe, s, rep, o.runTimeout, logf)
				done++
				fmt.Printf("[%d/%d] %-6s %-28s %-9s rep %d: %s (%.1fs)\n", done, total, broker, w.name, client, rep,
					r.summary(), time.Since(t0).Seconds())
				results = append(results, r)
			}
		}
		if admin != nil {
			deleteTopic(admin, w.spec.Topic)
		}
	}
	return results, nil
}

func (r *Result) summary() string {
	if r.Err != "" && r.WallNs == 0 {
		return "ERROR " + r.Err
	}
	s := fmt.Sprintf("%.0f rec/s, %.0f cpu-ns/rec, %.2f allocs/rec, %.0f B/rec, rss %d MiB",
		r.RecPerSec(), r.CPUPerRec(), r.AllocsPerRec(), r.BytesPerRec(), r.MaxRSSKB>>10)
	if r.Kind == "latency" {
		s += fmt.Sprintf(", p50 %.0fus p99 %.0fus p99.9 %.0fus", r.P50us, r.P99us, r.P999us)
	}
	if r.Err != "" {
		s += " ERROR " + r.Err
	}
	return s
}

func createTopic(cl *kpax.Client, name string, parts int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cl.Request(ctx, &kpax.CreateTopicsRequest{TimeoutMs: 20000, Topics: []kpax.CreateTopicsRequestTopic{{
		Name: name, NumPartitions: int32(parts), ReplicationFactor: 1,
	}}})
	if err != nil {
		return fmt.Errorf("create topic %s: %v", name, err)
	}
	for _, t := range resp.(*kpax.CreateTopicsResponse).Topics {
		if t.ErrorCode != 0 && t.ErrorCode != 36 { // 36: TOPIC_ALREADY_EXISTS
			return fmt.Errorf("create topic %s: %v", name, kpax.ErrorForCode(t.ErrorCode))
		}
	}
	// Wait until the metadata shows a leader for every partition.
	time.Sleep(time.Second)
	return nil
}

func deleteTopic(cl *kpax.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := name
	_, err := cl.Request(ctx, &kpax.DeleteTopicsRequest{TimeoutMs: 20000,
		Topics: []kpax.DeleteTopicsRequestTopic{{Name: &n}}, TopicNames: []string{name}})
	if err != nil {
		fmt.Printf("delete topic %s: %v\n", name, err)
	}
}

// fillTopic writes the records that the consume runs read from a real broker
// (not measured), round robin over the partitions.
func fillTopic(cl *kpax.Client, s *Spec, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := cl.NewProducer(kpax.WithAcks(1), kpax.WithIdempotence(false), kpax.WithLinger(lingerThroughput),
		kpax.WithMaxBatchBytes(maxBatchBytes), kpax.WithPartitioner(kpax.RoundRobinPartitioner()))
	if err != nil {
		return err
	}
	vals := payloads()
	var c counter
	ch := c.expect(int64(n))
	cb := func(_ *kpax.Record, err error) { c.add(1, err) }
	for i := 0; i < n; i++ {
		r := &kpax.Record{Topic: s.Topic, Value: vals[i%len(vals)]}
		if s.Kind == "parallel" {
			r.Key = strconv.AppendInt(nil, int64(i%parallelKeys), 10)
		}
		if err := p.Produce(ctx, r, cb); err != nil {
			return err
		}
	}
	if err := waitDone(ctx, ch, &c); err != nil {
		return err
	}
	if e := c.errs.Load(); e > 0 {
		return fmt.Errorf("%d produce errors, last: %v", e, c.lastErr.Load())
	}
	return p.Close(ctx)
}

type machineInfo struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
}

func describeMachine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					m.CPUModel = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
