// Command kchaos produces the same keyed, idempotent, acks=all workload with
// kpax and franz-go, one after the other on one running multi-node Kafka
// cluster, under the same seeded fault schedule as kpax's
// TestProduceChaosCluster: every 50-300ms the connections of one broker (or
// of all) are killed by the dialer both clients get, and every 0.5-1.5s the
// leader of a partition is moved (kpax's Admin: a replica reordering and a
// preferred leader election). Each run gets a fresh topic; the log is read
// back with a kpax consumer and checked by record value against what each
// producer reported.
//
//	kchaos -brokers 127.0.0.1:31600,127.0.0.1:31601,127.0.0.1:31602 [-seeds 1,2,3] [-rate 2000] [-dur 8s]
//
// It prints a markdown table per client and seed (acked, lost, duplicated,
// reordered per key, ack latency p50/p99/p99.9/max, produce errors) and the
// settings and asymmetries of the comparison. It exits 1 if a run loses,
// duplicates or reorders a record.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"h12.me/kpax"
)

type options struct {
	brokers  []string
	seeds    []uint64
	clients  []string
	rate     int
	dur      time.Duration
	parts    int32
	keys     int
	pad      int
	verbose  bool
	noFaults bool
	failures int
}

func main() {
	log.SetFlags(0)
	var o options
	brokers := flag.String("brokers", "", "the cluster's brokers, comma-separated (required; at least 2 for leader moves)")
	seeds := flag.String("seeds", "1,2,3", "fault schedule seeds, comma-separated")
	clients := flag.String("clients", "kpax,franz-go", "clients, in the order of the first seed (then rotating)")
	flag.IntVar(&o.rate, "rate", 2000, "records per second")
	flag.DurationVar(&o.dur, "dur", 8*time.Second, "how long each run produces")
	parts := flag.Int("partitions", 6, "partitions of each run's topic (replication factor 3)")
	flag.IntVar(&o.keys, "keys", 32, "distinct keys (record i has key k%02d of i mod keys)")
	flag.IntVar(&o.pad, "pad", 20, "bytes of padding after each value's sequence number")
	flag.BoolVar(&o.verbose, "v", false, "log failed leader moves and each run's progress")
	flag.BoolVar(&o.noFaults, "no-faults", false, "no kills and no leader moves: the baseline")
	flag.Parse()
	o.parts = int32(*parts)
	o.brokers = strings.Split(*brokers, ",")
	o.clients = strings.Split(*clients, ",")
	for _, s := range strings.Split(*seeds, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			log.Fatalf("kchaos: seed %q: %v", s, err)
		}
		o.seeds = append(o.seeds, n)
	}
	if *brokers == "" || len(o.brokers) < 2 {
		log.Fatal("kchaos: -brokers needs the addresses of at least 2 brokers")
	}
	if err := run(&o); err != nil {
		log.Fatalf("kchaos: %v", err)
	}
	if o.failures > 0 {
		os.Exit(1)
	}
}

type result struct {
	client string
	seed   uint64
	f      figures
	kills  int   // kill rounds
	killed int64 // connections killed
	dials  int64
	moves  int
	sent   int
}

func run(o *options) error {
	admin, err := kpax.New(kpax.WithSeedBrokers(o.brokers...)) // creates topics, moves leaders, reads back: no proxy
	if err != nil {
		return err
	}
	defer admin.Close()
	var results []result
	for si, seed := range o.seeds {
		for ci := range o.clients {
			name := o.clients[(ci+si)%len(o.clients)]
			r, err := runOne(o, admin, name, seed)
			if err != nil {
				return fmt.Errorf("%s, seed %d: %w", name, seed, err)
			}
			results = append(results, r)
			if o.verbose {
				log.Printf("%s seed %d: %+v", name, seed, r.f)
			}
		}
	}
	report(o, results)
	for _, r := range results {
		if r.f.lost+r.f.dups+r.f.reorders+r.f.badOffset+r.f.multi+r.f.silent+r.f.failedInLog+r.f.strangers > 0 {
			o.failures++
		}
	}
	return nil
}

// runOne produces for o.dur under the seed's faults with one client and
// checks the topic's log.
func runOne(o *options, admin *kpax.Client, name string, seed uint64) (result, error) {
	res := result{client: name, seed: seed}
	ctx, cancel := context.WithTimeout(context.Background(), o.dur+3*time.Minute)
	defer cancel()
	topic := fmt.Sprintf("kchaos-%s-s%d-%d", name, seed, time.Now().UnixNano())
	if err := createTopic(ctx, admin, topic, o.parts); err != nil {
		return res, err
	}
	defer admin.Admin().DeleteTopics(context.Background(), topic)
	fn := newFaultNet()
	defer fn.Close()
	p, err := newProducer(name, o.brokers, fn, topic)
	if err != nil {
		return res, err
	}
	l := &ledger{}
	logf := func(string, ...any) {}
	if o.verbose {
		logf = log.Printf
	}
	stopKills, stopMoves := func() int { return 0 }, func() int { return 0 }
	if !o.noFaults {
		stopKills, stopMoves = killLoop(fn, seed, o.brokers), moveLoop(admin, topic, o.parts, seed, logf)
	}
	res.sent = paced(o.rate, o.dur, func(i int) { l.produce(ctx, p, fmt.Appendf(nil, "k%02d", i%o.keys), o.pad) })
	res.kills, res.moves = stopKills(), stopMoves()
	if err := p.flush(ctx); err != nil {
		p.close()
		return res, fmt.Errorf("flush: %w", err)
	}
	p.close()
	res.killed, res.dials = fn.kills.Load(), fn.dials.Load()
	recs, err := readBack(ctx, admin, topic)
	if err != nil {
		return res, fmt.Errorf("reading %s back: %w", topic, err)
	}
	res.f = l.check(recs)
	return res, nil
}

// paced calls f about rate times a second for d and returns the calls made.
func paced(rate int, d time.Duration, f func(i int)) int {
	start := time.Now()
	i := 0
	for time.Since(start) < d {
		for want := int(time.Since(start).Seconds() * float64(rate)); i < want; i++ {
			f(i)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return i
}

// createTopic creates topic with replication factor 3 and waits until every
// partition has a leader and 3 replicas in sync.
func createTopic(ctx context.Context, cl *kpax.Client, topic string, parts int32) error {
	res, err := cl.Admin().CreateTopics(ctx, kpax.NewTopic{Name: topic, Partitions: parts, ReplicationFactor: 3})
	if err != nil {
		return err
	}
	if len(res) == 1 && res[0].Err != nil {
		return res[0].Err
	}
	for {
		md, err := cl.Metadata(ctx, topic)
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Err == nil && len(md.Topics[0].Partitions) == int(parts) {
			ok := true
			for _, pm := range md.Topics[0].Partitions {
				ok = ok && pm.Leader >= 0 && len(pm.ISR) == 3
			}
			if ok {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("topic %s not ready: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

func report(o *options, rs []result) {
	faults := "connections killed every 50-300ms, a leader moved every 0.5-1.5s"
	if o.noFaults {
		faults = "no faults"
	}
	fmt.Printf("## kchaos: %d records/s for %v per run, %d partitions (RF 3), %d keys, %s; brokers %s\n\n",
		o.rate, o.dur, o.parts, o.keys, faults, strings.Join(o.brokers, ","))
	fmt.Println("| client | seed | sent | acked | errors | lost | dup | reorder | bad offset | p50 ms | p99 ms | p99.9 ms | max ms | kill rounds (conns) | dials | leader moves |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		f := r.f
		fmt.Printf("| %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s | %d (%d) | %d | %d |\n",
			r.client, r.seed, r.sent, f.acked, f.errors, f.lost, f.dups, f.reorders, f.badOffset,
			ms(f.p50), ms(f.p99), ms(f.p999), ms(f.max), r.kills, r.killed, r.dials, r.moves)
	}
	fmt.Println()
	for _, r := range rs {
		f := r.f
		if f.multi+f.silent+f.failedInLog+f.strangers > 0 || len(f.firstErrs) > 0 {
			fmt.Printf("- %s seed %d: %d records with several outcomes, %d with none, %d failed but in the log, %d unknown values in the log; errors: %s\n",
				r.client, r.seed, f.multi, f.silent, f.failedInLog, f.strangers, strings.Join(f.firstErrs, "; "))
		}
	}
	fmt.Println("\nSettings:")
	for _, c := range o.clients {
		fmt.Printf("- %s: %s\n", c, configs[c])
	}
	fmt.Println("\nAsymmetries:")
	for _, a := range asymmetries {
		fmt.Println("- " + a)
	}
}
