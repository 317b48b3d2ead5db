package kpax

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// epochFake is a transaction coordinator and partition leader that hands
// out producer epochs at the end of int16's range, which no real broker
// reaches on demand. Its answers come from the test case; it records the
// producer ID and epoch of every batch, EndTxn and InitProducerId.
type epochFake struct {
	tv2 bool
	// init answers InitProducerId for the ID and epoch the producer
	// expects ((-1, -1): none).
	init func(expect producerID) (producerID, int16)
	// produce answers the n-th Produce (from 0) with an error code.
	produce func(n int) int16
	// batch, if set, answers a batch instead: its producer ID and epoch, base sequence and
	// record count (called without f.mu).
	batch func(pid producerID, seq, count int32) int16
	// endTxn answers EndTxn: the next producer ID and epoch (TV2).
	endTxn func(pid producerID) (producerID, int16)
	// describe is the coordinator's state of the transactional ID.
	describe func() DescribeTransactionsResponseTransactionState

	mu       sync.Mutex
	batches  []producerID // the ID and epoch of each batch produced
	seqs     []int32      // the base sequence of each batch
	ends     []producerID // the ID and epoch of each EndTxn
	inits    []producerID // the expected ID and epoch of each InitProducerId
	produced int
}

func (f *epochFake) handle(addr func() string) func(Request, int16) Response {
	return func(req Request, v int16) Response {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch r := req.(type) {
		case *ApiVersionsRequest:
			resp := &ApiVersionsResponse{}
			for _, key := range apiKeys() {
				m := NewRequest(key)
				resp.ApiKeys = append(resp.ApiKeys, ApiVersionsResponseApiKey{ApiKey: key, MinVersion: m.MinVersion(), MaxVersion: m.MaxVersion()})
			}
			if f.tv2 {
				resp.FinalizedFeatures = []ApiVersionsResponseFinalizedFeature{{Name: "transaction.version", MaxVersionLevel: 2, MinVersionLevel: 2}}
			}
			return resp
		case *FindCoordinatorRequest:
			host, port, _ := net.SplitHostPort(addr())
			p, _ := strconv.Atoi(port)
			resp := &FindCoordinatorResponse{NodeID: 1, Host: host, Port: int32(p)}
			for _, k := range r.CoordinatorKeys {
				resp.Coordinators = append(resp.Coordinators, FindCoordinatorResponseCoordinator{Key: k, NodeID: 1, Host: host, Port: int32(p)})
			}
			return resp
		case *InitProducerIdRequest:
			expect := producerID{r.ProducerID, r.ProducerEpoch}
			f.inits = append(f.inits, expect)
			pid, code := f.init(expect)
			return &InitProducerIdResponse{ErrorCode: code, ProducerID: pid.id, ProducerEpoch: pid.epoch}
		case *AddPartitionsToTxnRequest:
			resp := &AddPartitionsToTxnResponse{}
			for _, t := range r.V3AndBelowTopics {
				rt := AddPartitionsToTxnResponseResultsByTopicV3AndBelow{Name: t.Name}
				for _, p := range t.Partitions {
					rt.ResultsByPartition = append(rt.ResultsByPartition, AddPartitionsToTxnResponseResultsByTopicV3AndBelowResultsByPartition{PartitionIndex: p})
				}
				resp.ResultsByTopicV3AndBelow = append(resp.ResultsByTopicV3AndBelow, rt)
			}
			return resp
		case *ProduceRequest:
			resp := &ProduceResponse{}
			for _, td := range r.TopicData {
				rt := ProduceResponseItem{Name: td.Name, TopicID: td.TopicID}
				for _, pd := range td.PartitionData {
					b := pd.Records
					code := int16(0)
					if len(b) >= 61 {
						pid := producerID{int64(binary.BigEndian.Uint64(b[43:])), int16(binary.BigEndian.Uint16(b[51:]))}
						seq := int32(binary.BigEndian.Uint32(b[53:]))
						f.batches, f.seqs = append(f.batches, pid), append(f.seqs, seq)
						if f.batch != nil {
							f.mu.Unlock()
							code = f.batch(pid, seq, int32(binary.BigEndian.Uint32(b[57:])))
							f.mu.Lock()
						} else {
							code = f.produce(f.produced)
						}
						f.produced++
					}
					rt.PartitionResponses = append(rt.PartitionResponses, ProduceResponseItemPartitionResponse{
						Index: pd.Index, ErrorCode: code, LogAppendTimeMs: -1})
				}
				resp.Responses = append(resp.Responses, rt)
			}
			return resp
		case *EndTxnRequest:
			pid := producerID{r.ProducerID, r.ProducerEpoch}
			f.ends = append(f.ends, pid)
			next, code := f.endTxn(pid)
			return &EndTxnResponse{ErrorCode: code, ProducerID: next.id, ProducerEpoch: next.epoch}
		case *DescribeTransactionsRequest:
			st := f.describe()
			st.TransactionalID = r.TransactionalIDs[0]
			return &DescribeTransactionsResponse{TransactionStates: []DescribeTransactionsResponseTransactionState{st}}
		}
		return nil
	}
}

// client is a client of a one-broker fake cluster that f answers, closed when the test ends.
func (f *epochFake) client(t *testing.T) *Client {
	t.Helper()
	var fc *fakeCluster
	fc = newFakeCluster(t, 1, f.handle(func() string { return fc.addr() }))
	cl, err := New(WithSeedBrokers(fc.addr()), WithRetryBackoff(time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestTxnEpochExhaustion checks transactions at the end of the producer
// epoch's range (int16): where the coordinator rotates to a new producer
// ID (TV2's EndTxn past 32766, the bump after a failed transaction, the
// recovery after a timeout abort that fenced at 32767), the producer
// adopts it with sequence numbers from 0; a broker that hands out epoch
// 32767 itself gets no overflowed epoch back (the recovery would ask for
// 32767+1): the producer is fenced.
func TestTxnEpochExhaustion(t *testing.T) {
	const max = math.MaxInt16
	none := producerID{-1, -1}
	bumpOrRotate := func(pid producerID) (producerID, int16) {
		if pid.epoch >= max-1 {
			return producerID{pid.id + 1, 0}, 0 // the coordinator's epoch is exhausted: a new ID
		}
		return producerID{pid.id, pid.epoch + 1}, 0
	}
	ok := func(int) int16 { return 0 }
	type txn struct {
		fail    bool // the commit fails (abortable): abort
		wantPID producerID
	}
	tests := []struct {
		name      string
		tv2       bool
		init      func(producerID) (producerID, int16)
		produce   func(int) int16
		describe  func() DescribeTransactionsResponseTransactionState
		txns      []txn
		wantEnds  []producerID
		wantInits []producerID
		wantFatal bool
	}{
		{
			name: "TV2: EndTxn bumps to 32766, then rotates", tv2: true,
			init: func(producerID) (producerID, int16) { return producerID{7, max - 2}, 0 },
			txns: []txn{{wantPID: producerID{7, max - 2}}, {wantPID: producerID{7, max - 1}}, {wantPID: producerID{8, 0}}, {wantPID: producerID{8, 1}}},
			// Each EndTxn carries the epoch its transaction ran with.
			wantEnds:  []producerID{{7, max - 2}, {7, max - 1}, {8, 0}, {8, 1}},
			wantInits: []producerID{none},
		},
		{
			name: "TV1: the bump after a failed transaction at 32766 rotates",
			init: func(expect producerID) (producerID, int16) {
				if expect == none {
					return producerID{7, max - 1}, 0
				}
				return bumpOrRotate(expect)
			},
			produce:   func(n int) int16 { return map[bool]int16{true: ErrOutOfOrderSequenceNumber.code}[n == 0] },
			txns:      []txn{{fail: true, wantPID: producerID{7, max - 1}}, {wantPID: producerID{8, 0}}},
			wantEnds:  []producerID{{7, max - 1}, {8, 0}},
			wantInits: []producerID{none, {7, max - 1}},
		},
		{
			name: "TV1: a timeout abort fenced 32766 with 32767: recovery rotates",
			init: func(expect producerID) (producerID, int16) {
				switch expect {
				case none:
					return producerID{7, max - 1}, 0
				case producerID{7, max}:
					return producerID{8, 0}, 0 // exhausted: a new ID
				}
				return producerID{}, ErrProducerFenced.code // Kafka 3.x after the fence
			},
			produce: func(n int) int16 { return map[bool]int16{true: ErrInvalidProducerEpoch.code}[n == 0] },
			describe: func() DescribeTransactionsResponseTransactionState {
				return DescribeTransactionsResponseTransactionState{TransactionState: "CompleteAbort", ProducerID: 7, ProducerEpoch: max}
			},
			txns:      []txn{{fail: true, wantPID: producerID{7, max - 1}}, {wantPID: producerID{8, 0}}},
			wantEnds:  []producerID{{8, 0}},
			wantInits: []producerID{none, {7, max - 1}, {7, max}},
		},
		{
			name: "a broker that hands out 32767: fenced, no overflowed epoch",
			init: func(expect producerID) (producerID, int16) {
				if expect == none {
					return producerID{7, max}, 0
				}
				return producerID{}, ErrProducerFenced.code
			},
			produce: func(n int) int16 { return map[bool]int16{true: ErrInvalidProducerEpoch.code}[n == 0] },
			describe: func() DescribeTransactionsResponseTransactionState {
				// What an overflowed "one above" would find.
				return DescribeTransactionsResponseTransactionState{TransactionState: "CompleteAbort", ProducerID: 7, ProducerEpoch: math.MinInt16}
			},
			txns:      []txn{{fail: true, wantPID: producerID{7, max}}},
			wantInits: []producerID{none, {7, max}},
			wantFatal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &epochFake{tv2: tt.tv2, init: tt.init, produce: tt.produce, endTxn: bumpOrRotate, describe: tt.describe}
			if f.produce == nil {
				f.produce = ok
			}
			if !tt.tv2 {
				f.endTxn = func(producerID) (producerID, int16) { return none, 0 }
			}
			p := newTxnProducer(t, f.client(t), "exhausted")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var lastErr error
			for i, tx := range tt.txns {
				if err := p.BeginTransaction(ctx); err != nil {
					t.Fatalf("transaction %d: begin: %v", i, err)
				}
				if i > 0 || !tt.wantFatal {
					if got := p.pidNow(); got != tx.wantPID {
						t.Fatalf("transaction %d: producer ID and epoch %v, want %v", i, got, tx.wantPID)
					}
				}
				perr := p.ProduceSync(ctx, &Record{Topic: "t", Value: []byte("v")})
				err := p.CommitTransaction(ctx)
				if tx.fail != (perr != nil) || tx.fail != (err != nil) {
					t.Fatalf("transaction %d: produce %v, commit %v; want failure %v", i, perr, err, tx.fail)
				}
				f.mu.Lock()
				batch, seq := f.batches[len(f.batches)-1], f.seqs[len(f.seqs)-1]
				f.mu.Unlock()
				if batch != tx.wantPID || seq != 0 {
					t.Fatalf("transaction %d: batch of %v seq %d, want %v seq 0", i, batch, seq, tx.wantPID)
				}
				if err == nil {
					continue
				}
				lastErr = err
				if tt.wantFatal {
					break
				}
				if !errors.Is(err, ErrAbortable) {
					t.Fatalf("transaction %d: commit error %v is not abortable", i, err)
				}
				if err := p.AbortTransaction(ctx); err != nil {
					t.Fatalf("transaction %d: abort: %v", i, err)
				}
			}
			if tt.wantFatal && (!errors.Is(lastErr, ErrFatal) || !errors.Is(lastErr, ErrProducerFenced)) {
				t.Fatalf("commit error %v, want fatal, fenced", lastErr)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if !equalPIDs(f.ends, tt.wantEnds) {
				t.Errorf("EndTxn with %v, want %v", f.ends, tt.wantEnds)
			}
			if !equalPIDs(f.inits, tt.wantInits) {
				t.Errorf("InitProducerId expecting %v, want %v", f.inits, tt.wantInits)
			}
		})
	}
}

func equalPIDs(a, b []producerID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestTxnEpochBumpOneInFlight: after TV2's commit bumps the epoch, the leaders have no state for
// the new epoch and take only sequence 0 first. When that first batch fails (retriably: here
// CONCURRENT_TRANSACTIONS, as while the last transaction's markers are written), batches
// pipelined behind it would be refused as out of order and the transaction aborted; so a
// partition has one batch in flight under a new epoch until the first is acknowledged. The
// fake leader keeps sequences per producer ID and epoch and answers the new epoch's first
// batch late and with the error, so that the producer could pipeline meanwhile.
func TestTxnEpochBumpOneInFlight(t *testing.T) {
	var mu sync.Mutex
	next := map[producerID]int32{} // the leader's next sequence per ID and epoch
	failed := false
	f := &epochFake{tv2: true,
		init:   func(producerID) (producerID, int16) { return producerID{7, 0}, 0 },
		endTxn: func(pid producerID) (producerID, int16) { return producerID{pid.id, pid.epoch + 1}, 0 },
		batch: func(pid producerID, seq, count int32) int16 {
			mu.Lock()
			defer mu.Unlock()
			if pid.epoch == 1 && !failed {
				failed = true
				mu.Unlock()
				time.Sleep(100 * time.Millisecond)
				mu.Lock()
				return ErrConcurrentTransactions.code
			}
			if seq != next[pid] {
				return ErrOutOfOrderSequenceNumber.code
			}
			next[pid] = seq + count
			return 0
		},
	}
	p := newTxnProducer(t, f.client(t), "bumped", WithMaxBatchBytes(1000))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	val := make([]byte, 100)
	for i := 0; i < 2; i++ {
		if err := p.BeginTransaction(ctx); err != nil {
			t.Fatal(err)
		}
		var recs []*Record
		for range 200 {
			recs = append(recs, &Record{Topic: "t", Value: val})
		}
		if err := p.ProduceSync(ctx, recs...); err != nil {
			t.Fatalf("transaction %d: produce: %v", i, err)
		}
		if err := p.CommitTransaction(ctx); err != nil {
			t.Fatalf("transaction %d: commit: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !failed {
		t.Fatal("the new epoch's first batch never came")
	}
	if got := next[producerID{7, 1}]; got != 200 {
		t.Errorf("the leader took %d records under the new epoch, want 200", got)
	}
}
