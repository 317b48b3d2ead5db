package kpax

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProcessOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts []ProcessOption
		want string
	}{
		{"concurrency", []ProcessOption{WithProcessConcurrency(0)}, "concurrency"},
		{"in flight", []ProcessOption{WithProcessMaxInFlight(0)}, "max in flight"},
		{"order", []ProcessOption{WithProcessOrder(9)}, "unknown process order"},
		{"policy", []ProcessOption{WithProcessErrorPolicy(nil)}, "nil error policy"},
		{"drain", []ProcessOption{WithProcessDrainTimeout(-time.Second)}, "negative drain timeout"},
		{"nil option", []ProcessOption{nil}, "nil ProcessOption"},
	}
	g := offlineGroup(t)
	h := func(context.Context, *Record) error { return nil }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := g.Process(context.Background(), h, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Process error %v does not mention %q", err, tt.want)
			}
		})
	}
	if err := g.Process(context.Background(), nil); err == nil {
		t.Fatal("Process with a nil handler succeeded")
	}
}

func TestRetryPolicy(t *testing.T) {
	deadLetter := func(context.Context, *Record, error, int) ErrorAction { return SkipRecord() }
	tests := []struct {
		name    string
		policy  ErrorPolicy
		attempt int
		want    ErrorAction
	}{
		{"first retry", RetryPolicy(3, 10*time.Millisecond, time.Second, nil), 1, RetryAfter(10 * time.Millisecond)},
		{"doubles", RetryPolicy(3, 10*time.Millisecond, time.Second, nil), 3, RetryAfter(40 * time.Millisecond)},
		{"capped", RetryPolicy(0, 10*time.Millisecond, 25*time.Millisecond, nil), 40, RetryAfter(25 * time.Millisecond)},
		{"then stop", RetryPolicy(3, 10*time.Millisecond, time.Second, nil), 4, StopProcessing()},
		{"then dead letter", RetryPolicy(1, 10*time.Millisecond, time.Second, deadLetter), 2, SkipRecord()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy(context.Background(), &Record{}, errors.New("x"), tt.attempt); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDeadLetterRecord(t *testing.T) {
	r := &Record{Topic: "orders", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v"),
		Headers: []Header{{Key: "trace", Value: []byte("t1")}}}
	d := DeadLetterRecord("orders.dlq", r, errors.New("boom"), 4)
	r.Key[0], r.Value[0] = 'X', 'X' // a copy: the consumer's buffers may be reused
	got := map[string]string{}
	for _, h := range d.Headers {
		got[h.Key] = string(h.Value)
	}
	want := map[string]string{"trace": "t1", DeadLetterErrorHeader: "boom", DeadLetterTopicHeader: "orders",
		DeadLetterPartitionHeader: "3", DeadLetterOffsetHeader: "42", DeadLetterAttemptsHeader: "4"}
	if d.Topic != "orders.dlq" || string(d.Key) != "k" || string(d.Value) != "v" || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %s %q=%q %v", d.Topic, d.Key, d.Value, got)
	}
	if d := DeadLetterRecord("x", &Record{}, nil, 1); d.Key != nil || d.Value != nil {
		t.Fatalf("nil key or value not kept nil: %q %q", d.Key, d.Value)
	}
}

// procLog is what the handlers of a test did, checked as it happens:
// mutual exclusion and offset order per key in each member, and, against
// committed offsets sampled from the broker, that no commit ever passed a
// record not yet processed.
type procLog struct {
	mu         sync.Mutex
	firstDone  map[int32][]time.Time // partition → offset → first completion (zero: not yet)
	by         map[[2]int64][]string // (partition, offset) → members that completed it
	running    map[string]bool       // member/partition/key → in a handler
	last       map[string][2]int64   // member/partition/key → assignment epoch, last completed offset
	epoch      map[string]int64      // member/partition → assignments seen
	checked    map[int32]int64       // partition → offsets below it checked against commits
	violations []string
	done       int            // distinct records completed
	perMember  map[string]int // completions by member
}

func newProcLog() *procLog {
	return &procLog{firstDone: map[int32][]time.Time{}, by: map[[2]int64][]string{}, running: map[string]bool{},
		last: map[string][2]int64{}, epoch: map[string]int64{}, checked: map[int32]int64{}, perMember: map[string]int{}}
}

func (l *procLog) violate(format string, args ...any) {
	if len(l.violations) < 20 {
		l.violations = append(l.violations, fmt.Sprintf(format, args...))
	}
}

// assigned is an OnAssigned callback for member.
func (l *procLog) assigned(member string) func(context.Context, map[string][]int32) {
	return func(_ context.Context, parts map[string][]int32) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, ps := range parts {
			for _, p := range ps {
				l.epoch[member+"/"+strconv.Itoa(int(p))]++
			}
		}
	}
}

// handler returns member's handler: it sleeps up to maxSleep and fails
// (once) the records fail says.
func (l *procLog) handler(member string, maxSleep time.Duration, fail func(*Record, int) bool) func(context.Context, *Record) error {
	var attempts sync.Map
	return func(ctx context.Context, r *Record) error {
		part := member + "/" + strconv.Itoa(int(r.Partition))
		lane := part + "/" + string(r.Key)
		l.mu.Lock()
		if l.running[lane] {
			l.violate("%s: two records of key %s at once (offset %d)", member, lane, r.Offset)
		}
		l.running[lane] = true
		epoch := l.epoch[part]
		l.mu.Unlock()
		if maxSleep > 0 {
			time.Sleep(rand.N(maxSleep))
		}
		n, _ := attempts.LoadOrStore([2]int64{int64(r.Partition), r.Offset}, new(int))
		*n.(*int)++
		failed := fail != nil && fail(r, *n.(*int))
		l.mu.Lock()
		defer l.mu.Unlock()
		l.running[lane] = false
		if failed {
			return errors.New("injected failure")
		}
		if prev, ok := l.last[lane]; ok && prev[0] == epoch && r.Offset <= prev[1] {
			l.violate("%s: key %s: offset %d after %d", member, lane, r.Offset, prev[1])
		}
		l.last[lane] = [2]int64{epoch, r.Offset}
		k := [2]int64{int64(r.Partition), r.Offset}
		l.by[k] = append(l.by[k], member)
		l.perMember[member]++
		fd := l.firstDone[r.Partition]
		for int64(len(fd)) <= r.Offset {
			fd = append(fd, time.Time{})
		}
		if fd[r.Offset].IsZero() {
			fd[r.Offset] = time.Now()
			l.done++
		}
		l.firstDone[r.Partition] = fd
		return nil
	}
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d processed, by member %v", l.done, l.perMember)
}

func (l *procLog) doneCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done
}

// checkCommits checks committed offsets read at time at: every record
// below them was processed before at.
func (l *procLog) checkCommits(committed map[int32]int64, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, c := range committed {
		fd := l.firstDone[p]
		for off := l.checked[p]; off < c; off++ {
			if off >= int64(len(fd)) || fd[off].IsZero() || fd[off].After(at) {
				l.violate("partition %d: commit %d passed offset %d, not processed at %v", p, c, off, at.Format("15:04:05.000"))
				break
			}
			l.checked[p] = off + 1
		}
	}
}

// sampleCommits checks the group's committed offsets every few
// milliseconds until stop is closed.
func (l *procLog) sampleCommits(cl *Client, group, topic string, parts int32, stop chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := fetchCommitted(ctx, cl, group, topic, parts)
			cancel()
			if err == nil {
				l.checkCommits(c, time.Now())
			}
		}
	}()
	return &wg
}

// fetchCommitted returns the group's committed offsets of the topic (those
// set), once.
func fetchCommitted(ctx context.Context, cl *Client, group, topic string, parts int32) (map[int32]int64, error) {
	var ps []int32
	for p := range parts {
		ps = append(ps, p)
	}
	r, err := cl.Request(ctx, &OffsetFetchRequest{GroupID: group, Topics: []OffsetFetchRequestTopic{{Name: topic, PartitionIndexes: ps}},
		Groups: []OffsetFetchRequestGroup{{GroupID: group, MemberEpoch: -1, Topics: []OffsetFetchRequestGroupTopic{{Name: topic, PartitionIndexes: ps}}}}})
	if err != nil {
		return nil, err
	}
	resp := r.(*OffsetFetchResponse)
	out := map[int32]int64{}
	for _, g := range resp.Groups {
		if err := ErrorForCode(g.ErrorCode); err != nil {
			return nil, err
		}
		for _, tr := range g.Topics {
			for _, p := range tr.Partitions {
				if p.CommittedOffset >= 0 {
					out[p.PartitionIndex] = p.CommittedOffset
				}
			}
		}
	}
	return out, nil
}

// produceKeyed writes n records over keys k00..k(keys-1), value the
// record's index.
func produceKeyed(t *testing.T, cl *Client, topic string, n, keys int) {
	t.Helper()
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = &Record{Topic: topic, Key: fmt.Appendf(nil, "k%02d", i%keys), Value: strconv.AppendInt(nil, int64(i), 10)}
	}
	produceKpax(t, cl, recs, WithLinger(5*time.Millisecond))
}

// procMember is a group member running Process on its own client.
type procMember struct {
	name string
	cl   *Client
	g    *GroupConsumer
	stop context.CancelFunc
	err  chan error
}

func startProcMember(t *testing.T, addrs []string, name, group, topic string, h func(context.Context, *Record) error,
	popts []ProcessOption, opts ...Option) *procMember {
	t.Helper()
	copts := []Option{WithSeedBrokers(addrs...), WithRequestTimeout(10 * time.Second), WithClientID(name)}
	if path := os.Getenv("KPAX_TEST_PROCESS_LOG"); path != "" { // the members' debug logs, to find out why
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		copts = append(copts, WithLogger(slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})).With("member", name)))
	}
	cl, err := New(copts...)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cl.NewGroupConsumer(group, []string{topic}, opts...)
	if err != nil {
		cl.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &procMember{name: name, cl: cl, g: g, stop: cancel, err: make(chan error, 1)}
	go func() { m.err <- g.Process(ctx, h, popts...) }()
	t.Cleanup(func() { m.close(t) })
	return m
}

// close stops Process and closes the member; it returns Process's error.
func (m *procMember) close(t *testing.T) error {
	if m.stop == nil {
		return nil
	}
	m.stop()
	m.stop = nil
	var err error
	select {
	case err = <-m.err:
	case <-time.After(30 * time.Second):
		t.Errorf("%s: Process did not return", m.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if cerr := m.g.Close(ctx); cerr != nil && !errors.Is(cerr, ErrClientClosed) {
		t.Errorf("%s: Close: %v", m.name, cerr)
	}
	m.cl.Close()
	return err
}

// kill makes the member vanish: its client closes under it, so nothing is
// committed or left; its handlers finish what they had started.
func (m *procMember) kill(t *testing.T) {
	m.cl.Close()
	m.close(t)
}

func (l *procLog) report(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.violations {
		t.Error(v)
	}
}

// TestIntegrationProcess: one member processes keyed records with
// concurrency; every record once, per-key order, and the final commit at
// the end of every partition.
func TestIntegrationProcess(t *testing.T) {
	addr := groupBroker(t)
	cl := newTestClient(t, addr)
	const parts, n, keys = 4, 4000, 16
	topic := createTestTopic(t, cl, parts)
	group := "g-" + topic
	produceKeyed(t, cl, topic, n, keys)
	l := newProcLog()
	stop := make(chan struct{})
	sampler := l.sampleCommits(cl, group, topic, parts, stop)
	m := startProcMember(t, []string{addr}, "a", group, topic, l.handler("a", time.Millisecond, nil),
		[]ProcessOption{WithProcessConcurrency(8), WithProcessMaxInFlight(64)},
		fastGroup(WithAutoCommit(100*time.Millisecond), WithOnAssigned(l.assigned("a")))...)
	waitUntil(t, 60*time.Second, "every record processed", func() bool { return l.doneCount() == n })
	if err := m.close(t); err != nil {
		t.Fatalf("Process: %v", err)
	}
	close(stop)
	sampler.Wait()
	end := endOffsets(context.Background(), t, cl, topic, parts)
	c, err := fetchCommitted(context.Background(), cl, group, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	l.checkCommits(c, time.Now())
	if fmt.Sprint(c) != fmt.Sprint(end) {
		t.Errorf("committed %v, want the end offsets %v", c, end)
	}
	l.mu.Lock()
	for k, by := range l.by {
		if len(by) != 1 {
			t.Errorf("record %v processed %d times", k, len(by))
		}
	}
	l.mu.Unlock()
	l.report(t)
}

// TestIntegrationProcessErrors: a retried record keeps its key waiting and
// then succeeds; a record that keeps failing goes to the dead-letter topic
// with its error in headers and is committed past; with the stop policy,
// Process returns a *ProcessError and the commit stops at the record.
func TestIntegrationProcessErrors(t *testing.T) {
	addr := groupBroker(t)
	cl := newTestClient(t, addr)
	const parts, n, keys = 2, 400, 4
	topic := createTestTopic(t, cl, parts)
	dlq := createTestTopic(t, cl, 1)
	produceKeyed(t, cl, topic, n, keys)
	prod, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close(context.Background())
	isPoison := func(r *Record) bool { return string(r.Value) == "100" }
	isFlaky := func(r *Record) bool { return string(r.Value) == "50" }
	fail := func(r *Record, attempt int) bool { return isPoison(r) || (isFlaky(r) && attempt <= 2) }

	t.Run("dead letter", func(t *testing.T) {
		group := "g-dlq-" + topic
		l := newProcLog()
		m := startProcMember(t, []string{addr}, "a", group, topic, l.handler("a", 0, fail),
			[]ProcessOption{WithProcessConcurrency(4), WithProcessErrorPolicy(
				RetryPolicy(2, time.Millisecond, 10*time.Millisecond, DeadLetterPolicy(prod, dlq)))},
			fastGroup(WithOnAssigned(l.assigned("a")))...)
		waitUntil(t, 60*time.Second, "every other record processed", func() bool { return l.doneCount() == n-1 })
		if err := m.close(t); err != nil {
			t.Fatalf("Process: %v", err)
		}
		l.report(t)
		c, err := fetchCommitted(context.Background(), cl, group, topic, parts)
		if err != nil {
			t.Fatal(err)
		}
		if end := endOffsets(context.Background(), t, cl, topic, parts); fmt.Sprint(c) != fmt.Sprint(end) {
			t.Errorf("committed %v, want the end offsets %v", c, end)
		}
		got := consumeHeaders(t, cl, dlq)
		if got[DeadLetterErrorHeader] != "injected failure" || got[DeadLetterAttemptsHeader] != "3" || got[DeadLetterTopicHeader] != topic {
			t.Errorf("dead letter headers %v", got)
		}
	})

	t.Run("stop", func(t *testing.T) {
		group := "g-stop-" + topic
		l := newProcLog()
		var poison *Record
		h := l.handler("a", 0, fail)
		m := startProcMember(t, []string{addr}, "a", group, topic, func(ctx context.Context, r *Record) error {
			if isPoison(r) {
				poison = &Record{Partition: r.Partition, Offset: r.Offset}
			}
			return h(ctx, r)
		}, []ProcessOption{WithProcessConcurrency(4), WithProcessErrorPolicy(RetryPolicy(2, time.Millisecond, time.Millisecond, nil))},
			fastGroup(WithOnAssigned(l.assigned("a")))...)
		var err error
		select {
		case err = <-m.err:
			m.err <- err
		case <-time.After(60 * time.Second):
			t.Fatal("Process did not stop")
		}
		m.close(t)
		var pe *ProcessError
		if !errors.As(err, &pe) || pe.Attempts != 3 || pe.Offset != poison.Offset || pe.Partition != poison.Partition {
			t.Fatalf("Process returned %v, want a *ProcessError for %d@%d after 3 attempts", err, poison.Partition, poison.Offset)
		}
		l.report(t)
		c, err := fetchCommitted(context.Background(), cl, group, topic, parts)
		if err != nil {
			t.Fatal(err)
		}
		l.checkCommits(c, time.Now())
		if got, ok := c[poison.Partition]; ok && got > poison.Offset {
			t.Errorf("committed %d past the failed record %d", got, poison.Offset)
		}
		t.Logf("committed %v; failed record %d@%d", c, poison.Partition, poison.Offset)
	})
}

// consumeHeaders reads the single record of a topic and returns its
// headers.
func consumeHeaders(t *testing.T, cl *Client, topic string) map[string]string {
	t.Helper()
	c := newTestConsumer(t, cl)
	c.Assign(map[string]map[int32]Offset{topic: {0: Earliest()}})
	got, _ := pollN(t, c, 1, 30*time.Second)
	out := map[string]string{}
	if len(got) != 1 {
		t.Fatalf("dead letter topic holds %d records", len(got))
	}
	for _, h := range got[0].headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

// TestIntegrationProcessMembersChange is the scenario, scaled
// down (KPAX_TEST_PROCESS_RECORDS sets the count; the issue asks for 1M,
// which takes minutes here): records over 64 keys and 12 partitions of the
// 3-node cluster, handlers sleeping 0-5 ms, 3 members; one is killed (its
// client closes under it) and one added mid-run. Every record is
// processed, per-key order holds in every member, no commit sampled from
// the broker ever passed a record not yet processed, and the only
// duplicates are records of the killed member at or after its partitions'
// committed offsets at the kill.
func TestIntegrationProcessMembersChange(t *testing.T) {
	c := sharedCluster(t)
	addrs := c.Bootstrap()
	cl, err := New(WithSeedBrokers(addrs...), WithRequestTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const parts, keys = 12, 64
	n := 30000
	if s := os.Getenv("KPAX_TEST_PROCESS_RECORDS"); s != "" {
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	topic := createFaultTopic(t, cl, parts, 3)
	group := "g-" + topic
	t0 := time.Now()
	produceKeyed(t, cl, topic, n, keys)
	t.Logf("%d records produced in %v", n, time.Since(t0).Round(time.Millisecond))
	l := newProcLog()
	stop := make(chan struct{})
	sampler := l.sampleCommits(cl, group, topic, parts, stop)
	popts := []ProcessOption{WithProcessConcurrency(16), WithProcessMaxInFlight(256)}
	start := func(name string) *procMember {
		return startProcMember(t, addrs, name, group, topic, l.handler(name, 5*time.Millisecond, nil), popts,
			fastGroup(WithAutoCommit(100*time.Millisecond), WithOnAssigned(l.assigned(name)))...)
	}
	t0 = time.Now()
	a, b, x := start("a"), start("b"), start("x")
	members := []*procMember{a, b, x}
	// The progress log reads its own copies of the first members: members
	// grows below while it runs.
	logDone, logStop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(logDone)
		for range 10 {
			select {
			case <-logStop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			t.Logf("%v: %v; assigned a %v b %v x %v", time.Since(t0).Round(time.Millisecond), l,
				a.g.Assigned(), b.g.Assigned(), x.g.Assigned())
		}
	}()
	defer func() { close(logStop); <-logDone }()
	// x must own partitions when it is killed: the first member to join
	// may own all of them for a while.
	// The waits grow with n: at 0-5 ms a record the handlers take about
	// 4-5k records/s on this machine's 2 cores.
	slack := time.Duration(n) * time.Millisecond / 2
	waitUntil(t, 60*time.Second+slack/4, "a quarter processed, x assigned", func() bool {
		return l.doneCount() >= n/4 && len(x.g.Assigned()) > 0
	})
	x.cl.Close()
	killed, err := fetchCommitted(context.Background(), cl, group, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	x.kill(t)
	t.Logf("x killed after %v: %v; committed then: %v", time.Since(t0).Round(time.Millisecond), l, killed)
	waitUntil(t, 60*time.Second+slack/4, "half processed", func() bool { return l.doneCount() >= n/2 })
	members = append(members, start("d"))
	t.Logf("d added after %v: %v", time.Since(t0).Round(time.Millisecond), l)
	waitUntil(t, 90*time.Second+slack/2, "every record processed", func() bool { return l.doneCount() == n })
	t.Logf("all processed after %v: %v", time.Since(t0).Round(time.Millisecond), l)
	for _, m := range members {
		if err := m.close(t); err != nil && m.name != "x" {
			t.Errorf("%s: Process: %v", m.name, err)
		}
	}
	close(stop)
	sampler.Wait()
	final, err := fetchCommitted(context.Background(), cl, group, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	l.checkCommits(final, time.Now())
	if end := endOffsets(context.Background(), t, cl, topic, parts); fmt.Sprint(final) != fmt.Sprint(end) {
		t.Errorf("committed %v, want the end offsets %v", final, end)
	}
	l.mu.Lock()
	dups, allowed := 0, 0
	for k, by := range l.by {
		if len(by) < 2 {
			continue
		}
		dups++
		if slices.Contains(by, "x") && k[1] >= killed[int32(k[0])] {
			allowed++
			continue
		}
		l.violate("record %d@%d processed by %v: not in flight at the kill", k[0], k[1], by)
	}
	l.mu.Unlock()
	t.Logf("%d duplicates, %d of them in flight in x at the kill", dups, allowed)
	l.report(t)
}
