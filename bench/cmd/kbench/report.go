package main

// results.md, results.json and chart.svg from the runs' results.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type report struct {
	Machine      machineInfo `json:"machine"`
	Started      time.Time   `json:"started"`
	Elapsed      string      `json:"elapsed"`
	N            int         `json:"n"`
	Reps         int         `json:"reps"`
	Matrix       string      `json:"matrix"`
	KafkaVersion string      `json:"kafka_version"`
	Note         string      `json:"note,omitempty"`
	Summary      []row       `json:"summary"`
	Results      []Result    `json:"results"`
}

// stat is the median of a metric over the repetitions, with min and max.
type stat struct {
	Med float64 `json:"median"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

func statOf(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Med: m, Min: s[0], Max: s[len(s)-1]}
}

// row aggregates the repetitions of one client on one workload and broker.
type row struct {
	Broker    string `json:"broker"`
	Workload  string `json:"workload"`
	Kind      string `json:"kind"`
	Client    string `json:"client"`
	Runs      int    `json:"runs"`
	Failed    int    `json:"failed"`
	Errors    int64  `json:"record_errors"`
	RecPerSec stat   `json:"records_per_sec"`
	CPUPerRec stat   `json:"cpu_ns_per_record"`
	Allocs    stat   `json:"allocs_per_record"`
	Bytes     stat   `json:"bytes_per_record"`
	RSSMiB    stat   `json:"peak_rss_mib"`
	P50       stat   `json:"p50_us"`
	P99       stat   `json:"p99_us"`
	P999      stat   `json:"p999_us"`
	Txns      stat   `json:"txns_per_sec"`
	Note      string `json:"note,omitempty"`
	LastErr   string `json:"last_error,omitempty"`
}

func workloadName(s *Spec) string {
	switch s.Kind {
	case "produce":
		mode := "acks=1"
		if s.Acks == -1 {
			mode = "acks=all+idem"
		}
		return fmt.Sprintf("produce %s %s p%d", mode, s.Compression, s.Partitions)
	case "consume":
		return fmt.Sprintf("consume p%d", s.Partitions)
	case "group":
		return fmt.Sprintf("group consume p%d", s.Partitions)
	case "txnproduce":
		return fmt.Sprintf("txn produce %v p%d", s.TxnInterval, s.Partitions) // as runs.go names it
	case "budget":
		return fmt.Sprintf("budget %s p%d", s.Compression, s.Partitions) // as budget.go names it
	case "parallel":
		return fmt.Sprintf("parallel c%d p%d", s.Goroutines, s.Partitions)
	case "scale":
		return s.Name // scale.go
	case "share":
		return fmt.Sprintf("share consume c%d p%d", s.Goroutines, s.Partitions) // as share.go names it
	}
	return fmt.Sprintf("latency %dk/s", s.Rate/1000)
}

func aggregate(rs []Result) []row {
	var rows []row
	idx := map[string]int{}
	vals := map[string]map[string][]float64{}
	for i := range rs {
		r := &rs[i]
		k := r.Broker + "|" + workloadName(&r.Spec) + "|" + r.Client
		j, ok := idx[k]
		if !ok {
			j = len(rows)
			idx[k] = j
			rows = append(rows, row{Broker: r.Broker, Workload: workloadName(&r.Spec), Kind: r.Kind, Client: r.Client, Note: r.Note})
			vals[k] = map[string][]float64{}
		}
		w := &rows[j]
		w.Runs++
		if r.Err != "" {
			w.LastErr = r.Err
		}
		w.Errors += r.Errors
		if r.WallNs == 0 || (r.Err != "" && r.Errors == 0) {
			w.Failed++
			continue
		}
		v := vals[k]
		v["rps"] = append(v["rps"], r.RecPerSec())
		v["cpu"] = append(v["cpu"], r.CPUPerRec())
		v["allocs"] = append(v["allocs"], r.AllocsPerRec())
		v["bytes"] = append(v["bytes"], r.BytesPerRec())
		v["rss"] = append(v["rss"], float64(r.MaxRSSKB)/1024)
		v["p50"] = append(v["p50"], r.P50us)
		v["p99"] = append(v["p99"], r.P99us)
		v["p999"] = append(v["p999"], r.P999us)
		if r.Txns > 0 {
			v["txns"] = append(v["txns"], float64(r.Txns)/(float64(r.WallNs)/1e9))
		}
	}
	for k, j := range idx {
		v, w := vals[k], &rows[j]
		w.RecPerSec, w.CPUPerRec, w.Allocs, w.Bytes = statOf(v["rps"]), statOf(v["cpu"]), statOf(v["allocs"]), statOf(v["bytes"])
		w.RSSMiB, w.P50, w.P99, w.P999 = statOf(v["rss"]), statOf(v["p50"]), statOf(v["p99"]), statOf(v["p999"])
		w.Txns = statOf(v["txns"])
	}
	return rows
}

func (r *report) write(dir string) error {
	r.Summary = aggregate(r.Results)
	// configs.md keeps the first repetition's configurations; the others
	// only repeat them.
	for i := range r.Results {
		if r.Results[i].Rep > 0 {
			r.Results[i].Config = ""
		}
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), js, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(chartSVG(r.Summary)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "configs.md"), []byte(configsMD(r.Results)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "headline.md"), []byte(headlineMD(r.Summary, clientsOf(r.Summary))), 0o644); err != nil {
		return err
	}
	md := r.markdown()
	fmt.Println(md)
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644)
}

func human(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e5:
		return fmt.Sprintf("%.0fk", x/1e3)
	case x >= 1e4:
		return fmt.Sprintf("%.1fk", x/1e3)
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// ms turns a latency stat in µs into ms.
func ms(s stat) stat { return stat{Med: s.Med / 1e3, Min: s.Min / 1e3, Max: s.Max / 1e3} }

// cell prints a median with its min-max range.
func cell(s stat) string {
	if s.Min == s.Max {
		return human(s.Med)
	}
	return fmt.Sprintf("%s (%s–%s)", human(s.Med), human(s.Min), human(s.Max))
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# kbench results\n\n")
	fmt.Fprintf(&b, "Generated by `make bench` (bench/cmd/kbench) on %s, in %s. Each cell is the median of %d "+
		"repetitions, with min–max in brackets; every run is a fresh process of its own.\n\n",
		r.Started.Format("2006-01-02 15:04 UTC"), r.Elapsed, r.Reps)
	m := r.Machine
	fmt.Fprintf(&b, "- Machine: %d CPUs (`nproc`), %s, Linux %s, %s; load average (1/5/15 min) %s before, %s after.\n",
		m.CPUs, m.CPUModel, m.Kernel, m.Go, m.LoadBefore, m.LoadAfter)
	if r.Note != "" {
		fmt.Fprintf(&b, "- **Note:** %s\n", r.Note)
	}
	fmt.Fprintf(&b, "- N = %d records per produce and consume run (produce runs after an unmeasured warm-up of min(max(N/100, 1000), 10k)); "+
		"matrix `%s` (default: the 12 produce combinations on the sink, the 6-partition none/lz4 ones on Kafka; "+
		"`BENCH_MATRIX=full`: all 12 on both).\n", r.N, r.Matrix)
	if r.N < 5_000_000 {
		est := "?"
		if d, err := time.ParseDuration(r.Elapsed); err == nil && r.N > 0 {
			est = (time.Duration(float64(d) * 5e6 / float64(r.N))).Round(time.Minute).String()
		}
		fmt.Fprintf(&b, "- Size: the issue asks for 5M records per run; this run (%d runs per repetition, N = %d × %d "+
			"repetitions) took %s, so at 5M records it would take roughly %s (scaled by N). `make bench` defaults to "+
			"N = %d and %d repetitions to stay within about 15 minutes on a 2-core machine; `BENCH_N` and "+
			"`BENCH_REPS` change them.\n",
			runsPerRep(r.Results, r.Reps), r.N, r.Reps, r.Elapsed, est, defaultN, defaultReps)
	}
	b.WriteString(methodMD)
	for _, broker := range []string{"sink", "kafka"} {
		var rows []row
		for _, w := range r.Summary {
			if w.Broker == broker {
				rows = append(rows, w)
			}
		}
		if len(rows) == 0 {
			continue
		}
		title := "Sink broker (client CPU alone)"
		if broker == "kafka" {
			title = fmt.Sprintf("Real broker (Kafka %s, one KRaft node on the same machine)", r.KafkaVersion)
		}
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		b.WriteString("| workload | client | records/s | CPU ns/record | allocs/record | bytes/record | peak RSS MiB | p50 ms | p99 ms | p99.9 ms |\n")
		b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, w := range rows {
			client := w.Client
			if w.Note != "" {
				client += "*"
			}
			lat := "| | |"
			if w.Kind == "latency" {
				lat = fmt.Sprintf("%s | %s | %s", cell(ms(w.P50)), cell(ms(w.P99)), cell(ms(w.P999)))
			} else {
				lat = "– | – | –"
			}
			if w.Failed == w.Runs {
				fmt.Fprintf(&b, "| %s | %s | failed: %s | | | | | | | |\n", w.Workload, client, mdEscape(w.LastErr))
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", w.Workload, client, cell(w.RecPerSec),
				cell(w.CPUPerRec), cell(w.Allocs), cell(w.Bytes), cell(w.RSSMiB), lat)
		}
	}
	notes := map[string]string{}
	var problems []string
	for _, w := range r.Summary {
		if w.Note != "" {
			notes[w.Client+": "+w.Note] = ""
		}
		if w.Failed > 0 || w.Errors > 0 {
			problems = append(problems, fmt.Sprintf("- %s / %s / %s: %d of %d runs failed, %d record errors; last: %s",
				w.Broker, w.Workload, w.Client, w.Failed, w.Runs, w.Errors, mdEscape(w.LastErr)))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n\\* Deviations from the common settings, which the client cannot do:\n\n")
		keys := make([]string, 0, len(notes))
		for k := range notes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "- %s\n", k)
		}
	}
	var txns []string
	for _, w := range r.Summary {
		if w.Txns.Med > 0 {
			txns = append(txns, fmt.Sprintf("- %s / %s: %s transactions/s, %s records each",
				w.Workload, w.Client, human(w.Txns.Med), human(w.RecPerSec.Med/w.Txns.Med)))
		}
	}
	if len(txns) > 0 {
		b.WriteString("\nTransactions committed (median of the repetitions):\n\n" + strings.Join(txns, "\n") + "\n")
	}
	if len(problems) > 0 {
		b.WriteString("\nFailures and errors:\n\n" + strings.Join(problems, "\n") + "\n")
	}
	b.WriteString("\n## Headline\n\n" + headlineMD(r.Summary, clientsOf(r.Summary)) +
		"\n\\* see the deviations above.\n")
	b.WriteString("\nChart: [chart.svg](chart.svg). Each client's full configuration: [configs.md](configs.md). " +
		"Raw runs: [results.json](results.json).\n")
	return b.String()
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

const methodMD = `
How it is measured (bench/cmd/kbench):

- **Same work, same settings.** Every client gets acks, linger, max batch bytes (1,000,000), compression
  (codec default level), idempotence, the round-robin partitioner and fetch limits (50 MiB per fetch, 1 MiB per
  partition, 500 ms max wait, min 1 byte) set explicitly; [configs.md](configs.md) prints each one's full config.
  Values are 100 bytes, from 4096 pre-built payloads (30 random bytes each, the rest text), with no key.
- **Produce:** 4 goroutines produce N records in total, asynchronously (kpax ` + "`Produce`" + ` with a callback,
  franz-go ` + "`Produce`" + ` with a promise, sarama ` + "`AsyncProducer`" + ` with Successes/Errors drained,
  kafka-go ` + "`Writer{Async: true}`" + ` with 1000 messages per ` + "`WriteMessages`" + ` call and a Completion
  callback); the time runs from the first send to the last acknowledgement. Linger 5 ms.
- **Consume:** N records from all partitions of one topic, from the earliest offset, without groups, measured
  from the consumer's creation (connections included, no warm-up: background fetching would run ahead of it) (kpax
  ` + "`Consumer.Poll`" + `, franz-go ` + "`ConsumePartitions`+`PollFetches`" + `, sarama ` + "`ConsumePartition`" + `,
  kafka-go one ` + "`Reader`" + ` per partition). The sink serves synthetic uncompressed batches of 500 records.
- **Group consume:** each run joins a fresh group (on the sink, a minimal coordinator for one member)
  (classic protocol, range balancer, auto-commit every 5 s, start at the earliest offset) and reads N records,
  measured from the consumer's creation, so joining the group counts (kpax ` + "`GroupConsumer`" + `, franz-go
  ` + "`ConsumerGroup`" + `, sarama ` + "`ConsumerGroup`" + ` marking every message, kafka-go ` + "`Reader{GroupID}`" + `).
- **Latency:** open loop at a fixed rate for the sending time (acks=all, idempotent where the client can, no
  compression, linger 1 ms, 1 partition): record i is due at start + i/rate and is sent when due whatever the
  acknowledgements do; its latency runs from when it was due to its acknowledgement, so a client that falls
  behind is charged for the wait. kafka-go gets one message per ` + "`WriteMessages`" + ` call here.
- **Transactional produce** (real broker only: the sink has no transaction coordinator; kpax and franz-go,
  the clients with transactions): one goroutine produces continuously into transactions, each open for 1, 10
  or 100 ms and then committed (kpax ` + "`BeginTransaction`, `Produce`, `CommitTransaction`" + `; franz-go
  ` + "`BeginTransaction`, `Produce`, `Flush`, `EndTransaction(TryCommit)`" + `), for the measured time
  (` + "`-txn-duration`" + `, 5 s; N records if 0), after a warm-up of the produce runs' size; acks=all,
  idempotent, no compression, linger 5 ms, 6 partitions. The commit's flush and requests count in the time.
- **Memory budget** (real broker, kpax and franz-go, one repetition): one client produces the 100-byte
  values with zstd from one goroutine as fast as it can to 6 partitions and consumes them back at once
  (from the end of the topic at the start), for 5 s; records/s counts records produced plus consumed.
  kpax runs under ` + "`WithMemoryBudget(64 MiB)`" + `; franz-go, which has no such bound, under its nearest
  limits, ` + "`MaxBufferedBytes(32 MiB)`, `FetchMaxBytes(32 MiB)`, `MaxConcurrentFetches(1)`" + `: compressed
  bytes, since franz-go cannot bound what fetched batches decompress to. Both set the same memory limit
  (` + "`debug.SetMemoryLimit`" + `, 96 MiB, the budget plus 32 MiB). Peak RSS is the figure to compare.
- **Parallel processing** (real broker, kpax and franz-go, one repetition): a group consumer works through
  a topic of 12 partitions holding 250,000 records keyed over 1024 keys; the handler sleeps 1 ms per record;
  at most 1, 8 or 64 handlers at once; records/s over 3 s from the first record. kpax runs
  ` + "`GroupConsumer.Process`" + ` (by key); franz-go the pattern users write by hand, a goroutine per assigned
  partition handling its records in order under a semaphore, marking them for commit (` + "`AutoCommitMarks`" + `),
  so its parallelism stops at the partitions it has.
- **Metrics:** records/s; CPU ns per record = user+system time of the client's process (getrusage
  RUSAGE_SELF) over the measured interval divided by N; allocations and bytes per record from
  runtime.MemStats (Mallocs, TotalAlloc), so the benchmark's own record structs count too, as in an
  application; peak RSS of the client process (VmHWM). The sink broker runs in a separate process,
  so its CPU is not counted; the real broker shares the machine's cores with the client.
`

func configsMD(rs []Result) string {
	var b strings.Builder
	b.WriteString("# Client configurations\n\nThe configuration each client ran with, as printed by its adapter in " +
		"bench/cmd/kbench (first repetition of each workload).\n")
	seen := map[string]bool{}
	for i := range rs {
		r := &rs[i]
		k := r.Broker + "|" + workloadName(&r.Spec) + "|" + r.Client
		if seen[k] || r.Config == "" {
			continue
		}
		seen[k] = true
		fmt.Fprintf(&b, "\n## %s / %s / %s\n\n```\n%s\n```\n", r.Broker, workloadName(&r.Spec), r.Client, r.Config)
	}
	return b.String()
}

func runsPerRep(rs []Result, reps int) int {
	if reps <= 0 {
		return len(rs)
	}
	return len(rs) / reps
}

// headlineMD is the short table that the README quotes: a few workloads, one
// metric each, the median per client.
func headlineMD(rows []row, clients []string) string {
	type line struct {
		broker, workload, label string
		metric                  func(*row) stat
	}
	cpu := func(r *row) stat { return r.CPUPerRec }
	rps := func(r *row) stat { return r.RecPerSec }
	p99 := func(r *row) stat { return ms(r.P99) }
	lines := []line{
		{"sink", "produce acks=all+idem none p1", "produce acks=all+idem, none, 1 partition: CPU ns/record (sink)", cpu},
		{"sink", "produce acks=1 lz4 p6", "produce acks=1, lz4, 6 partitions: CPU ns/record (sink)", cpu},
		{"sink", "produce acks=all+idem zstd p6", "produce acks=all+idem, zstd, 6 partitions: CPU ns/record (sink)", cpu},
		{"sink", "produce acks=all+idem none p1", "produce acks=all+idem, none, 1 partition: allocations/record (sink)", func(r *row) stat { return r.Allocs }},
		{"sink", "consume p1", "consume: CPU ns/record (sink)", cpu},
		{"sink", "group consume p1", "group consume: CPU ns/record (sink)", cpu},
		{"kafka", "produce acks=all+idem none p6", "produce acks=all+idem, none, 6 partitions: records/s (Kafka)", rps},
		{"kafka", "consume p1", "consume: records/s (Kafka)", rps},
		{"kafka", "group consume p1", "group consume, join included: records/s (Kafka)", rps},
		{"kafka", "latency 10k/s", "ack latency p99 at 10k records/s: ms (Kafka)", p99},
		{"kafka", "latency 100k/s", "ack latency p99 at 100k records/s: ms (Kafka)", p99},
	}
	var b strings.Builder
	b.WriteString("| median of the repetitions |")
	for _, c := range clients {
		b.WriteString(" " + c + " |")
	}
	b.WriteString("\n| --- |" + strings.Repeat(" ---: |", len(clients)) + "\n")
	for _, l := range lines {
		var cells []string
		found := false
		for _, c := range clients {
			cellText := "–"
			for i := range rows {
				r := &rows[i]
				if r.Broker == l.broker && r.Workload == l.workload && r.Client == c && r.Failed < r.Runs {
					cellText = human(l.metric(r).Med)
					if r.Note != "" {
						cellText += "*"
					}
					found = true
				}
			}
			cells = append(cells, cellText)
		}
		if found {
			fmt.Fprintf(&b, "| %s | %s |\n", l.label, strings.Join(cells, " | "))
		}
	}
	return b.String()
}

func clientsOf(rows []row) []string {
	var clients []string
	for _, w := range rows {
		if !slices.Contains(clients, w.Client) {
			clients = append(clients, w.Client)
		}
	}
	return clients
}
