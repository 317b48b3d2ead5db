// Command kbench runs the same workloads with kpax, franz-go, sarama and
// segmentio/kafka-go, each run in a process of its own, against a sink broker
// (a separate process that acknowledges without storing and serves synthetic
// fetches) and a real Kafka broker, and writes results.md, results.json and
// chart.svg.
//
//	kbench [flags]          the whole comparison (make bench)
//	kbench sink [-addr A]   the sink broker alone; prints its address
//	kbench child -spec J    one run (used by kbench itself)
//	kbench report DIR       rewrite DIR's results.md, chart.svg, configs.md from its results.json
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

func main() {
	log.SetFlags(0)
	var err error
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "sink":
			err = runSink(os.Args[2:])
		case "child":
			err = runChild(os.Args[2:])
		case "report":
			err = rewriteReport(os.Args[2:])
		default:
			err = orchestrate(os.Args[1:])
		}
	} else {
		err = orchestrate(nil)
	}
	if err != nil {
		log.Fatalf("kbench: %v", err)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// Defaults sized for about 15 minutes on an idle 2-core machine with the
// default matrix; the 5M records per run would take hours (see
// results.md).
const (
	defaultN    = 500_000
	defaultReps = 5
)

type options struct {
	n, reps      int
	clients      []string
	brokers      []string
	kafka        string
	out          string
	only         *regexp.Regexp
	latDur       time.Duration
	txnDur       time.Duration
	matrix       string
	loadNote     string
	runTimeout   time.Duration
	consumeParts int
	kafkaVersion string
}

func orchestrate(args []string) error {
	fs := flag.NewFlagSet("kbench", flag.ExitOnError)
	var o options
	fs.IntVar(&o.n, "n", envInt("BENCH_N", defaultN), "records per produce/consume run (env BENCH_N)")
	fs.IntVar(&o.reps, "reps", envInt("BENCH_REPS", defaultReps), "repetitions of each run (env BENCH_REPS)")
	clientList := fs.String("clients", "kpax,franz-go,sarama,kafka-go", "clients to compare")
	brokerList := fs.String("brokers", "sink,kafka", "brokers: sink, kafka")
	fs.StringVar(&o.kafka, "kafka", firstEnv("BENCH_KAFKA", "KPAX_TEST_KAFKA4"), "real Kafka broker address (env BENCH_KAFKA or KPAX_TEST_KAFKA4)")
	fs.StringVar(&o.out, "out", "results", "output directory")
	only := fs.String("only", "", "run only workloads whose name matches this regexp")
	fs.DurationVar(&o.latDur, "latency-duration", 2*time.Second, "sending time of each latency run")
	fs.DurationVar(&o.txnDur, "txn-duration", envDur("BENCH_TXN_DURATION", 5*time.Second),
		"measured time of each transactional produce run; 0: N records instead (env BENCH_TXN_DURATION)")
	fs.StringVar(&o.matrix, "matrix", envStr("BENCH_MATRIX", "default"), "workload matrix: default or full (env BENCH_MATRIX)")
	fs.StringVar(&o.loadNote, "note", os.Getenv("BENCH_NOTE"), "a note on the machine's state, written to results.md")
	fs.DurationVar(&o.runTimeout, "run-timeout", 3*time.Minute, "timeout of one run")
	fs.StringVar(&o.kafkaVersion, "kafka-version", "4.4.0", "version of the real broker, for the report")
	fs.IntVar(&o.consumeParts, "consume-partitions", 1, "partitions of the consume workload")
	fs.Parse(args)
	o.clients = strings.Split(*clientList, ",")
	o.brokers = strings.Split(*brokerList, ",")
	if *only != "" {
		o.only = regexp.MustCompile(*only)
	}
	for _, b := range o.brokers {
		if b == "kafka" && o.kafka == "" {
			return fmt.Errorf("broker kafka needs -kafka ADDR (or BENCH_KAFKA)")
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(o.out, "run.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	machine := describeMachine()
	started := time.Now()
	var results []Result
	for _, broker := range o.brokers {
		addr := o.kafka
		var stopSink func()
		stamp := time.Now().UTC().Format("150405")
		if broker == "sink" {
			// The sink knows the topics up front: some clients ask for the
			// metadata of all topics before they name one.
			var topics []string
			for _, w := range workloads(broker, &o) {
				w.fill(broker, "", &o, stamp)
				topics = append(topics, w.spec.Topic)
			}
			addr, stopSink, err = startSink(exe, logf, topics)
			if err != nil {
				return err
			}
		}
		rs, err := runBroker(exe, broker, addr, stamp, &o, logf)
		results = append(results, rs...)
		if stopSink != nil {
			stopSink()
		}
		if err != nil {
			return err
		}
	}
	machine.LoadAfter = loadavg()
	rep := &report{Machine: machine, Started: started.UTC(), Elapsed: time.Since(started).Round(time.Second).String(),
		N: o.n, Reps: o.reps, Matrix: o.matrix, KafkaVersion: o.kafkaVersion, Note: o.loadNote, Results: results}
	return rep.write(o.out)
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func envDur(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// startSink starts the sink broker in a child process; stop closes its stdin.
func startSink(exe string, logf *os.File, topics []string) (string, func(), error) {
	cmd := exec.Command(exe, "sink", "-topics", strings.Join(topics, ","))
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return "", nil, fmt.Errorf("sink: %v", err)
	}
	stop := func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	return strings.TrimSpace(line), stop, nil
}

// runOne runs one Spec in a child process and returns its Result.
func runOne(exe string, s Spec, rep int, timeout time.Duration, logf *os.File) Result {
	js, _ := json.Marshal(&s)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "child", "-spec", string(js), "-rep", strconv.Itoa(rep))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = logf
	err := cmd.Run()
	var res Result
	if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
		res = Result{Spec: s, Rep: rep}
		if err == nil {
			err = jerr
		}
		res.Err = fmt.Sprintf("child: %v", err)
	}
	return res
}

// rewriteReport rewrites the report files of a directory from its results.json.
func rewriteReport(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: kbench report DIR")
	}
	b, err := os.ReadFile(filepath.Join(args[0], "results.json"))
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	return r.write(args[0])
}
