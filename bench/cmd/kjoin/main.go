// Command kjoin measures how long a group consumer takes from nothing to its
// first record: a new client, a group consumer in a fresh group, Poll until
// a record comes. It fills a fresh topic once, then runs each client N times
// (the order rotating between repetitions) and prints the median, p90, min
// and max of each.
//
//	go run ./cmd/kjoin -addr 127.0.0.1:29092 -n 30
//	go run ./cmd/kjoin -trace -n 1 -clients kpax,kpax-848   # where the time goes
//
// With -trace, each kpax run prints its requests (through kpax.Hooks) on a
// timeline from the call of kpax.New; with -slow 50ms, only the runs slower
// than 50ms do.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"h12.me/kpax"
)

// joiner runs one measurement: from a new client to the first record of
// topic in group, returning the time it took.
type joiner func(ctx context.Context, addr, topic, group string, tr *tracer) (time.Duration, error)

var joiners = map[string]joiner{
	"kpax":         kpaxJoin(kpax.ClassicGroupProtocol),
	"kpax-848":     kpaxJoin(kpax.ConsumerGroupProtocol),
	"franz-go":     franzJoin(false),
	"franz-go-848": franzJoin(true),
}

func main() {
	addr := flag.String("addr", "127.0.0.1:29092", "a Kafka 4.x broker")
	n := flag.Int("n", 20, "runs per client")
	parts := flag.Int("partitions", 3, "partitions of the topic")
	records := flag.Int("records", 100, "records produced to each partition before the runs")
	clients := flag.String("clients", "kpax,kpax-848,franz-go,franz-go-848", "clients to run, comma-separated")
	trace := flag.Bool("trace", false, "print each kpax run's requests on a timeline")
	slow := flag.Duration("slow", 0, "if > 0, print the timeline of the kpax runs slower than this")
	flag.Parse()
	names := strings.Split(*clients, ",")
	for _, c := range names {
		if joiners[c] == nil {
			fail(fmt.Errorf("unknown client %q", c))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	topic := fmt.Sprintf("kjoin-%d", time.Now().UnixNano())
	if err := fill(ctx, *addr, topic, *parts, *records); err != nil {
		fail(err)
	}
	defer drop(*addr, topic)
	fmt.Printf("kjoin: topic %s (%d partitions x %d records) on %s; %d runs per client; New to first record\n",
		topic, *parts, *records, *addr, *n)
	times := map[string][]time.Duration{}
	for i := 0; i < *n; i++ {
		for j := range names {
			c := names[(i+j)%len(names)]
			var tr *tracer
			if *trace || *slow > 0 {
				tr = &tracer{}
			}
			group := fmt.Sprintf("%s-%s-%d-%d", topic, c, i, rand.Uint32())
			rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
			d, err := joiners[c](rctx, *addr, topic, group, tr)
			rcancel()
			if err != nil {
				fail(fmt.Errorf("%s run %d: %w", c, i, err))
			}
			times[c] = append(times[c], d)
			if tr != nil && (*trace || d > *slow) {
				tr.print(os.Stdout, c, i, d)
			}
		}
	}
	fmt.Printf("%-14s %5s %9s %9s %9s %9s\n", "client", "runs", "median", "p90", "min", "max")
	for _, c := range names {
		ts := times[c]
		slices.Sort(ts)
		fmt.Printf("%-14s %5d %9s %9s %9s %9s\n", c, len(ts), ms(quantile(ts, 0.5)), ms(quantile(ts, 0.9)), ms(ts[0]), ms(ts[len(ts)-1]))
	}
}

// quantile returns the q-quantile of sorted ts (nearest rank).
func quantile(ts []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(ts))+0.5) - 1
	return ts[min(max(i, 0), len(ts)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kjoin:", err)
	os.Exit(1)
}

// fill creates topic and produces records to each of its partitions with
// kpax, unmeasured.
func fill(ctx context.Context, addr, topic string, parts, records int) error {
	cl, err := kpax.New(kpax.WithSeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Admin().CreateTopics(ctx, kpax.NewTopic{Name: topic, Partitions: int32(parts), ReplicationFactor: 1})
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", topic, err)
	}
	if err := cl.Admin().WaitForLeaders(ctx, topic); err != nil {
		return err
	}
	p, err := cl.NewProducer()
	if err != nil {
		return err
	}
	defer p.Close(ctx)
	var rs []*kpax.Record
	for part := range parts {
		for i := range records {
			rs = append(rs, &kpax.Record{Topic: topic, Partition: int32(part), Value: fmt.Appendf(nil, "record-%d-%d", part, i)})
		}
	}
	return p.ProduceSync(ctx, rs...)
}

// drop deletes the topic.
func drop(addr, topic string) {
	cl, err := kpax.New(kpax.WithSeedBrokers(addr))
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl.Admin().DeleteTopics(ctx, topic)
}

// kpaxJoin measures kpax with the group protocol p and its defaults, but
// the start offset (earliest, to read the records produced before).
func kpaxJoin(p kpax.GroupProtocol) joiner {
	return func(ctx context.Context, addr, topic, group string, tr *tracer) (time.Duration, error) {
		start := time.Now()
		opts := []kpax.Option{kpax.WithSeedBrokers(addr)}
		if tr != nil {
			tr.start = start
			opts = append(opts, kpax.WithHooks(kpax.Hooks{OnRequest: tr.request}))
		}
		cl, err := kpax.New(opts...)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		g, err := cl.NewGroupConsumer(group, []string{topic}, kpax.WithGroupProtocol(p), kpax.WithStartOffset(kpax.Earliest()))
		if err != nil {
			return 0, err
		}
		defer g.Close(context.Background())
		for {
			f, err := g.Poll(ctx)
			if err != nil {
				return 0, err
			}
			if len(f.Records) > 0 {
				return time.Since(start), nil
			}
		}
	}
}

// franzJoin measures franz-go with its defaults, but the start offset;
// with kip848 its group uses the consumer protocol (ServerSideBalancer).
func franzJoin(kip848 bool) joiner {
	return func(ctx context.Context, addr, topic, group string, _ *tracer) (time.Duration, error) {
		start := time.Now()
		opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
		if kip848 {
			opts = append(opts, kgo.ServerSideBalancer())
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			if fs.NumRecords() > 0 {
				return time.Since(start), nil
			}
			if errs := fs.Errors(); len(errs) > 0 {
				return 0, errs[0].Err
			}
		}
	}
}

// tracer keeps a run's requests, as kpax.Hooks reports them.
type tracer struct {
	start time.Time
	mu    sync.Mutex
	reqs  []traced
}

type traced struct {
	begin, end time.Duration // since start
	info       kpax.RequestInfo
}

func (t *tracer) request(ri kpax.RequestInfo) {
	end := time.Since(t.start)
	t.mu.Lock()
	t.reqs = append(t.reqs, traced{begin: end - ri.Latency, end: end, info: ri})
	t.mu.Unlock()
}

// print writes the requests sent until the first record, by start time;
// "idle" is the time since the previous request ended during which none
// was in flight.
func (t *tracer) print(w *os.File, client string, run int, total time.Duration) {
	if t == nil || len(t.reqs) == 0 {
		return
	}
	t.mu.Lock()
	reqs := slices.Clone(t.reqs)
	t.mu.Unlock()
	slices.SortFunc(reqs, func(a, b traced) int { return int(a.begin - b.begin) })
	fmt.Fprintf(w, "%s run %d: first record after %s\n", client, run, ms(total))
	busyUntil := time.Duration(0)
	for _, r := range reqs {
		if r.begin > total {
			break
		}
		idle := ""
		if gap := r.begin - busyUntil; gap > time.Millisecond {
			idle = fmt.Sprintf("  (idle %s)", ms(gap))
		}
		errs := ""
		if r.info.Err != nil {
			errs = " err: " + r.info.Err.Error()
		} else if code := errorCode(reflect.ValueOf(r.info.Response)); code != 0 {
			errs = " " + kpax.ErrorForCode(code).Error()
		}
		fmt.Fprintf(w, "  %8s %8s  %-24s node %-3d%s%s\n", ms(r.begin), ms(r.end-r.begin),
			fmt.Sprintf("%s v%d", kpax.APIName(r.info.APIKey), r.info.Version), r.info.NodeID, errs, idle)
		busyUntil = max(busyUntil, r.end)
	}
	if gap := total - busyUntil; gap > time.Millisecond {
		fmt.Fprintf(w, "  %8s  first record  (idle %s)\n", ms(total), ms(gap))
	}
}

// errorCode returns the first nonzero ErrorCode of a response, at its top
// level or in the first element of its top-level slices (e.g.
// FindCoordinator's Coordinators).
func errorCode(v reflect.Value) int16 {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return 0
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return 0
	}
	if f := v.FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 && f.Int() != 0 {
		return int16(f.Int())
	}
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.Len() > 0 && f.Index(0).Kind() == reflect.Struct {
			if c := errorCode(f.Index(0)); c != 0 {
				return c
			}
		}
	}
	return 0
}
