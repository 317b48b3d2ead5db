package kpax

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// txnAPIs records the versions of the transactional requests a client sent,
// to tell the transaction version in use: EndTxn v0-v4 and AddPartitionsToTxn
// are TV1; EndTxn v5 and Produce v12 without AddPartitionsToTxn are TV2.
type txnAPIs struct {
	mu   sync.Mutex
	vs   map[int16]map[int16]int // API key -> version -> requests
	pids int                     // producer IDs or epochs granted (InitProducerId without error)
}

func (e *txnAPIs) hook() Option {
	return WithHooks(Hooks{OnRequest: func(ri RequestInfo) {
		if ri.Err != nil {
			return
		}
		e.mu.Lock()
		if e.vs == nil {
			e.vs = map[int16]map[int16]int{}
		}
		if e.vs[ri.APIKey] == nil {
			e.vs[ri.APIKey] = map[int16]int{}
		}
		e.vs[ri.APIKey][ri.Version]++
		if r, ok := ri.Response.(*InitProducerIdResponse); ok && r.ErrorCode == 0 {
			e.pids++
		}
		e.mu.Unlock()
	}})
}

// wantTV is the transaction version expected of a test broker: 2 on the
// 4.x one (formatted with transaction.version=2, Kafka 4's default), 1 on
// 3.9.
func wantTV(broker string) int {
	if broker == "4.x" {
		return 2
	}
	return 1
}

// check asserts that the client's transactions were all of version tv.
func (e *txnAPIs) check(t *testing.T, tv int) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	ends, adds, produces := e.vs[26], e.vs[24], e.vs[0]
	only := func(m map[int16]int, lo, hi int16) bool {
		for v := range m {
			if v < lo || v > hi {
				return false
			}
		}
		return len(m) > 0
	}
	addOffs, offs := e.vs[25], e.vs[28]
	switch {
	case tv == 1 && (!only(ends, 0, 4) || len(adds) == 0 || !only(produces, 0, 11) ||
		len(offs) > 0 && (!only(offs, 0, 4) || len(addOffs) == 0)):
		t.Fatalf("transaction version 1: sent EndTxn %v, AddPartitionsToTxn %v, Produce %v, AddOffsetsToTxn %v, TxnOffsetCommit %v; "+
			"want EndTxn v0-4, AddPartitionsToTxn, Produce v0-11 (and TxnOffsetCommit v0-4 after AddOffsetsToTxn)", ends, adds, produces, addOffs, offs)
	case tv == 2 && (!only(ends, 5, 5) || len(adds) != 0 || len(addOffs) != 0 || !only(produces, 12, 13) || len(offs) > 0 && !only(offs, 5, 6)):
		t.Fatalf("transaction version 2: sent EndTxn %v, AddPartitionsToTxn %v, Produce %v, AddOffsetsToTxn %v, TxnOffsetCommit %v; "+
			"want EndTxn v5, Produce v12-13 (and TxnOffsetCommit v5-6: v13 and v6 with topic IDs), neither Add", ends, adds, produces, addOffs, offs)
	}
}

// granted counts the InitProducerId requests that succeeded.
func (e *txnAPIs) granted() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pids
}

// sentOffsets reports whether the client sent TxnOffsetCommit.
func (e *txnAPIs) sentOffsets() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.vs[28]) > 0
}

func newTxnProducer(t *testing.T, cl *Client, id string, opts ...Option) *Producer {
	t.Helper()
	p, err := cl.NewProducer(append([]Option{WithTransactionalID(id), WithLinger(time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// txnProduce produces values to partitions of topic (value i to partition
// i%parts) and returns the first error of their outcomes.
func txnProduce(ctx context.Context, p *Producer, topic string, parts int32, tag string, n int) (map[int32][]string, error) {
	vals := map[int32][]string{}
	var recs []*Record
	for i := range n {
		part := int32(i) % parts
		v := fmt.Sprintf("%s-%d", tag, i)
		vals[part] = append(vals[part], v)
		recs = append(recs, &Record{Topic: topic, Partition: part, Value: []byte(v)})
	}
	return vals, p.ProduceSync(ctx, recs...)
}

// txnCase is a broker and the transaction version a producer with opts
// uses there.
type txnCase struct {
	name, addr string
	opts       []Option
	tv         int
}

// txnCases are the test brokers at their transaction version, and the 4.x
// one with EndTxn capped at v4, which makes the client fall back to TV1.
func txnCases(t *testing.T) []txnCase {
	var cs []txnCase
	for name, addr := range testBrokers(t) {
		cs = append(cs, txnCase{name, addr, nil, wantTV(name)})
		if wantTV(name) == 2 {
			cs = append(cs, txnCase{name + "-tv1", addr, []Option{WithMaxVersion(26, 4)}, 1})
		}
	}
	return cs
}

func (p *Producer) pidNow() producerID {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

func TestIntegrationTxnCommitAbort(t *testing.T) {
	for _, tc := range txnCases(t) {
		name, addr := tc.name, tc.addr
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var ends txnAPIs
			cl := newTestClient(t, addr, append(tc.opts, ends.hook())...)
			topic := createTestTopic(t, cl, 3)
			p := newTxnProducer(t, cl, "kpax-txn-"+topic, WithPartitioner(ManualPartitioner()))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			// Misuse: a clear error of the abortable class, nothing queued.
			rec := &Record{Topic: topic, Value: []byte("outside")}
			if err := p.Produce(ctx, rec, func(*Record, error) { t.Error("callback of a refused record") }); !errors.Is(err, ErrNoTransaction) || ClassOf(err) != ClassAbortable {
				t.Fatalf("Produce outside a transaction: %v (class %v)", err, ClassOf(err))
			}
			if err := p.CommitTransaction(ctx); !errors.Is(err, ErrNoTransaction) {
				t.Fatalf("Commit without a transaction: %v", err)
			}
			if err := p.AbortTransaction(ctx); !errors.Is(err, ErrNoTransaction) {
				t.Fatalf("Abort without a transaction: %v", err)
			}

			var pid0 producerID
			committed, all := map[int32][]string{}, map[int32][]string{}
			add := func(dst, src map[int32][]string) {
				for k, v := range src {
					dst[k] = append(dst[k], v...)
				}
			}
			for i, commit := range []bool{true, false, true, false, false, true} {
				if err := p.BeginTransaction(ctx); err != nil {
					t.Fatalf("txn %d: Begin: %v", i, err)
				}
				if i == 0 {
					pid0 = p.pidNow()
					if err := p.BeginTransaction(ctx); !errors.Is(err, ErrTransactionOpen) || ClassOf(err) != ClassAbortable {
						t.Fatalf("Begin twice: %v", err)
					}
				}
				vals, err := txnProduce(ctx, p, topic, int32(1+i%3), fmt.Sprintf("t%d-%v", i, commit), 10+i)
				if err != nil {
					t.Fatalf("txn %d: produce: %v", i, err)
				}
				add(all, vals)
				if commit {
					err = p.CommitTransaction(ctx)
					add(committed, vals)
				} else {
					err = p.AbortTransaction(ctx)
				}
				if err != nil {
					t.Fatalf("txn %d (commit %v): %v", i, commit, err)
				}
			}
			ends.check(t, tc.tv)
			// TV2 bumps the epoch at the end of every transaction; TV1
			// keeps it (no transaction failed).
			if pid, bumps := p.pidNow(), map[int]int16{1: 0, 2: 6}[tc.tv]; pid.id != pid0.id || pid.epoch != pid0.epoch+bumps {
				t.Fatalf("producer ID and epoch %v after 6 transactions from %v, want the epoch %d higher", pid, pid0, bumps)
			}

			count := func(m map[int32][]string) (n int) {
				for _, v := range m {
					n += len(v)
				}
				return n
			}
			start := map[string]map[int32]Offset{topic: {0: Earliest(), 1: Earliest(), 2: Earliest()}}
			rcl := newTestClient(t, addr) // without the hook (see TestIntegrationTxnRecordFailure)
			rc := newTestConsumer(t, rcl, WithIsolationLevel(ReadCommitted))
			rc.Assign(start)
			got, _ := pollN(t, rc, count(committed), 30*time.Second)
			checkExactly(t, got, committed)
			if extra, _ := pollQuiet(t, rc, 300*time.Millisecond); len(extra) > 0 {
				t.Fatalf("read_committed: %d records more, first %+v", len(extra), extra[0])
			}
			ru := newTestConsumer(t, rcl)
			ru.Assign(start)
			got, _ = pollN(t, ru, count(all), 30*time.Second)
			checkExactly(t, got, all)

			kc := kcatCommitted(t, addr, topic)
			var want []string
			for _, vs := range committed {
				want = append(want, vs...)
			}
			if !sameSet(kc, want) {
				t.Fatalf("kcat read_committed: %d records %v, want the %d committed", len(kc), kc, len(want))
			}
			t.Logf("committed %d, all %d; kcat read_committed %d", count(committed), count(all), len(kc))
		})
	}
}

// kcatCommitted reads a topic's values with kcat and read_committed, to its
// end.
func kcatCommitted(t *testing.T, addr, topic string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kcat", "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%s\n").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	return strings.Fields(string(out))
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		if m[s]--; m[s] < 0 {
			return false
		}
	}
	return true
}

func TestIntegrationTxnFencing(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cl := newTestClient(t, addr)
			topic := createTestTopic(t, cl, 2)
			id := "kpax-fence-" + topic
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			old := newTxnProducer(t, cl, id, WithPartitioner(ManualPartitioner()))
			if err := old.BeginTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := txnProduce(ctx, old, topic, 1, "before", 5); err != nil {
				t.Fatal(err)
			}
			// The new instance fences the old one and aborts its transaction.
			cl2 := newTestClient(t, addr)
			young := newTxnProducer(t, cl2, id, WithPartitioner(ManualPartitioner()))
			if err := young.BeginTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			// The old one writes to a partition already in its transaction
			// (0) and to a new one (1): both must fail, and its commit too.
			_, perr := txnProduce(ctx, old, topic, 2, "zombie", 6)
			cerr := old.CommitTransaction(ctx)
			t.Logf("zombie produce: %v (class %v); commit: %v (class %v)", perr, ClassOf(perr), cerr, ClassOf(cerr))
			if perr == nil {
				t.Fatal("the fenced producer's records were accepted")
			}
			if ClassOf(cerr) != ClassFatal || !errors.Is(cerr, ErrProducerFenced) || !errors.Is(cerr, ErrFatal) || errors.Is(cerr, ErrAbortable) {
				t.Fatalf("fenced commit: %v (class %v), want ErrProducerFenced, fatal", cerr, ClassOf(cerr))
			}
			if err := old.BeginTransaction(ctx); ClassOf(err) != ClassFatal || !errors.Is(err, ErrFatal) {
				t.Fatalf("Begin after fencing: %v", err)
			}
			if err := old.Close(ctx); err != nil {
				t.Fatalf("Close of the fenced producer: %v", err) // nothing to abort
			}
			vals, err := txnProduce(ctx, young, topic, 2, "young", 4)
			if err != nil {
				t.Fatal(err)
			}
			if err := young.CommitTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			rc := newTestConsumer(t, cl, WithIsolationLevel(ReadCommitted))
			rc.Assign(map[string]map[int32]Offset{topic: {0: Earliest(), 1: Earliest()}})
			got, _ := pollN(t, rc, 4, 30*time.Second)
			checkExactly(t, got, vals)
			if extra, _ := pollQuiet(t, rc, 500*time.Millisecond); len(extra) > 0 {
				t.Fatalf("read_committed: the fenced producer's record %+v is visible", extra[0])
			}
		})
	}
}

func TestIntegrationTxnTimeout(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cl := newTestClient(t, addr)
			topic := createTestTopic(t, cl, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			p := newTxnProducer(t, cl, "kpax-timeout-"+topic, WithTransactionTimeout(time.Second))
			if err := p.BeginTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := txnProduce(ctx, p, topic, 1, "late", 3); err != nil {
				t.Fatal(err)
			}
			// The coordinator looks for expired transactions every 10s
			// (transaction.abort.timed.out.transaction.cleanup.interval.ms).
			time.Sleep(12 * time.Second)
			err := p.CommitTransaction(ctx)
			t.Logf("commit after the timeout: %v", err)
			if ClassOf(err) != ClassAbortable || !errors.Is(err, ErrTransactionAborted) || !errors.Is(err, ErrAbortable) {
				t.Fatalf("commit of a timed-out transaction: %v (class %v), want abortable", err, ClassOf(err))
			}
			if err := p.AbortTransaction(ctx); err != nil {
				t.Fatalf("abort: %v", err)
			}
			// The producer goes on.
			if err := p.BeginTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			vals, err := txnProduce(ctx, p, topic, 1, "next", 2)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.CommitTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			rc := newTestConsumer(t, cl, WithIsolationLevel(ReadCommitted))
			rc.Assign(map[string]map[int32]Offset{topic: {0: Earliest()}})
			got, _ := pollN(t, rc, 2, 30*time.Second)
			checkExactly(t, got, vals)
		})
	}
}

// TestIntegrationTxnRecordFailure: a record the broker refuses
// (MESSAGE_TOO_LARGE for the topic's max.message.bytes) makes the commit
// fail abortable and commits nothing; after the abort (which bumps the
// epoch) the next transaction commits.
func TestIntegrationTxnRecordFailure(t *testing.T) {
	for _, tc := range txnCases(t) {
		name, addr := tc.name, tc.addr
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var ends txnAPIs
			cl := newTestClient(t, addr, append(tc.opts, ends.hook())...)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			topic := fmt.Sprintf("kpax-txn-small-%s-%d", name, time.Now().UnixNano())
			r, err := cl.Request(ctx, &CreateTopicsRequest{TimeoutMs: 20000, Topics: []CreateTopicsRequestTopic{{
				Name: topic, NumPartitions: 1, ReplicationFactor: 1,
				Configs: []CreateTopicsRequestTopicConfig{{Name: "max.message.bytes", Value: ptr("2000")}}}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := ErrorForCode(r.(*CreateTopicsResponse).Topics[0].ErrorCode); err != nil {
				t.Fatal(err)
			}
			p := newTxnProducer(t, cl, "kpax-fail-"+topic)
			if err := p.BeginTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := txnProduce(ctx, p, topic, 1, "small", 3); err != nil {
				t.Fatal(err)
			}
			big := &Record{Topic: topic, Value: make([]byte, 5000)}
			if err := p.ProduceSync(ctx, big); !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("oversized record: %v", err)
			}
			if err := p.Produce(ctx, &Record{Topic: topic}, nil); !errors.Is(err, ErrTransactionAborted) || ClassOf(err) != ClassAbortable {
				t.Fatalf("Produce in a failed transaction: %v (class %v)", err, ClassOf(err))
			}
			err = p.CommitTransaction(ctx)
			if !errors.Is(err, ErrTransactionAborted) || ClassOf(err) != ClassAbortable {
				t.Fatalf("commit after a failed record: %v (class %v)", err, ClassOf(err))
			}
			if err := p.AbortTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.BeginTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			vals, err := txnProduce(ctx, p, topic, 1, "after", 4)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.CommitTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			ends.check(t, tc.tv)
			// The abort after the failed record bumps the epoch: TV1 asks
			// InitProducerId again (KIP-360), TV2's EndTxn does it.
			if n, want := ends.granted(), map[int]int{1: 2, 2: 1}[tc.tv]; n != want {
				t.Fatalf("InitProducerId succeeded %d times, want %d", n, want)
			}
			// A client without the hook: reading the call's byte counts in
			// OnRequest races with a canceled fetch (client.go send).
			rc := newTestConsumer(t, newTestClient(t, addr), WithIsolationLevel(ReadCommitted))
			rc.Assign(map[string]map[int32]Offset{topic: {0: Earliest()}})
			got, _ := pollN(t, rc, 4, 30*time.Second)
			checkExactly(t, got, vals)
			if extra, _ := pollQuiet(t, rc, 300*time.Millisecond); len(extra) > 0 {
				t.Fatalf("read_committed: record %+v of the aborted transaction", extra[0])
			}
		})
	}
}

// TestIntegrationTxnCloseAborts: Close ends the open transaction at once
// (the coordinator shows it aborted long before its timeout), its records
// never become visible, and read_committed readers are not held back by
// it. The control is the same transaction before Close: the coordinator
// shows it open.
func TestIntegrationTxnCloseAborts(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cl := newTestClient(t, addr)
			topic := createTestTopic(t, cl, 1)
			id := "kpax-close-" + topic
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			p := newTxnProducer(t, cl, id, WithTransactionTimeout(time.Minute))
			if err := p.BeginTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := txnProduce(ctx, p, topic, 1, "closed", 5); err != nil {
				t.Fatal(err)
			}
			outcome := make(chan error, 1)
			if err := p.Produce(ctx, &Record{Topic: topic, Value: []byte("last")}, func(_ *Record, err error) { outcome <- err }); err != nil {
				t.Fatal(err)
			}
			state := func() string {
				ds, err := cl.Admin().DescribeTransactions(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return ds[0].State
			}
			if s := state(); s != "Ongoing" {
				t.Fatalf("control: the open transaction is %q at the coordinator, want Ongoing", s)
			}
			start := time.Now()
			if err := p.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := <-outcome; err != nil && !errors.Is(err, ErrTransactionAborted) {
				t.Fatalf("the last record: %v, want success or ErrTransactionAborted", err)
			}
			for s := state(); s != "CompleteAbort"; s = state() {
				if time.Since(start) > 10*time.Second {
					t.Fatalf("the transaction is %q 10s after Close, want CompleteAbort", s)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err := p.BeginTransaction(ctx); !errors.Is(err, ErrProducerClosed) {
				t.Fatalf("Begin after Close: %v", err)
			}
			// A later transaction on the partition is readable at once.
			p2 := newTxnProducer(t, cl, id+"-2")
			if err := p2.BeginTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			vals, err := txnProduce(ctx, p2, topic, 1, "after", 2)
			if err != nil {
				t.Fatal(err)
			}
			if err := p2.CommitTransaction(ctx); err != nil {
				t.Fatal(err)
			}
			rc := newTestConsumer(t, newTestClient(t, addr), WithIsolationLevel(ReadCommitted))
			rc.Assign(map[string]map[int32]Offset{topic: {0: Earliest()}})
			got, _ := pollN(t, rc, 2, 30*time.Second)
			checkExactly(t, got, vals)
			if extra, _ := pollQuiet(t, rc, 300*time.Millisecond); len(extra) > 0 {
				t.Fatalf("read_committed: record %+v of the transaction Close aborted", extra[0])
			}
		})
	}
}

// TestPickTxnV2 checks the versions of transactional requests: TV1's caps
// unless the context is a TV2 transaction's, and then exactly TV2's
// version, or an error where the broker or a WithMaxVersion cap does not
// allow it.
func TestPickTxnV2(t *testing.T) {
	broker := func(endTxnMax int16) *apiVersions {
		v := newAPIVersions()
		for _, k := range []int16{0, 3, 26, 28} {
			v.max[k] = 13
		}
		v.max[26] = endTxnMax
		return &v
	}
	v2 := withTxnV2(context.Background())
	id := "t"
	tests := []struct {
		name    string
		vs      *apiVersions
		ctx     context.Context
		req     Request
		caps    map[int16]int16
		want    int16
		wantErr bool
	}{
		{"EndTxn TV1", broker(5), context.Background(), &EndTxnRequest{}, nil, 4, false},
		{"EndTxn TV2", broker(5), v2, &EndTxnRequest{}, nil, 5, false},
		{"EndTxn TV2, old broker", broker(4), v2, &EndTxnRequest{}, nil, 0, true},
		{"EndTxn TV2, capped", broker(5), v2, &EndTxnRequest{}, map[int16]int16{26: 4}, 0, true},
		{"TxnOffsetCommit TV1", broker(5), context.Background(), &TxnOffsetCommitRequest{}, nil, 4, false},
		{"TxnOffsetCommit TV2, no topics", broker(5), v2, &TxnOffsetCommitRequest{}, nil, 6, false},
		{"TxnOffsetCommit TV2, topic IDs", broker(5), v2, &TxnOffsetCommitRequest{Topics: []TxnOffsetCommitRequestTopic{{Name: "a", TopicID: UUID{1}}}}, nil, 6, false},
		{"TxnOffsetCommit TV2, an unknown ID", broker(5), v2, &TxnOffsetCommitRequest{Topics: []TxnOffsetCommitRequestTopic{{Name: "a"}}}, nil, 5, false},
		{"TxnOffsetCommit TV2, broker without v6", broker(5), v2, &TxnOffsetCommitRequest{Topics: []TxnOffsetCommitRequestTopic{{Name: "a", TopicID: UUID{1}}}}, map[int16]int16{28: 5}, 5, false},
		{"transactional Produce TV1", broker(5), context.Background(), &ProduceRequest{TransactionalID: &id}, nil, 11, false},
		{"Produce TV2", broker(5), v2, &ProduceRequest{}, nil, 13, false},
		{"Produce TV2, broker without v13", broker(5), v2, &ProduceRequest{}, map[int16]int16{0: 12}, 12, false},
		{"Metadata unchanged by TV2", broker(5), v2, &MetadataRequest{}, map[int16]int16{3: 9}, 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.vs.pickCtx(tt.ctx, tt.req, tt.caps)
			if (err != nil) != tt.wantErr || !tt.wantErr && got != tt.want {
				t.Fatalf("pickCtx = v%d, %v; want v%d (error %v)", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("error %v, want ErrUnsupportedVersion", err)
			}
		})
	}
}
