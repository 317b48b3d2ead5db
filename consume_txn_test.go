package kpax

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// txnWriter writes transactions with generated requests only: what the
// consumer's read_committed filtering is tested against, independent of
// any producer code in this package.
type txnWriter struct {
	t     *testing.T
	cl    *Client
	id    string
	pid   int64
	epoch int16
	seq   map[int32]int32
}

func newTxnWriter(t *testing.T, cl *Client) *txnWriter {
	t.Helper()
	id := fmt.Sprintf("kpax-txn-%s-%d", t.Name(), time.Now().UnixNano())
	w := &txnWriter{t: t, cl: cl, id: id, seq: map[int32]int32{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		// The transaction coordinator may still be loading its log.
		r, err := cl.Request(ctx, &InitProducerIdRequest{TransactionalID: &id, TransactionTimeoutMs: 60000, ProducerID: -1, ProducerEpoch: -1})
		if err != nil {
			t.Fatal(err)
		}
		resp := r.(*InitProducerIdResponse)
		if err := ErrorForCode(resp.ErrorCode); err != nil {
			if IsRetriable(err) && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			t.Fatalf("InitProducerId: %v", err)
		}
		w.pid, w.epoch = resp.ProducerID, resp.ProducerEpoch
		return w
	}
}

// txn writes one transaction of values to each partition and commits or
// aborts it.
func (w *txnWriter) txn(topic string, values map[int32][]string, commit bool) {
	t := w.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var parts []int32
	for p := range values {
		parts = append(parts, p)
	}
	for {
		r, err := w.cl.Request(ctx, &AddPartitionsToTxnRequest{V3AndBelowTransactionalID: w.id, V3AndBelowProducerID: w.pid,
			V3AndBelowProducerEpoch: w.epoch, V3AndBelowTopics: []AddPartitionsToTxnRequestV3AndBelowTopic{{Name: topic, Partitions: parts}}})
		if err != nil {
			t.Fatal(err)
		}
		var perr error
		for _, rt := range r.(*AddPartitionsToTxnResponse).ResultsByTopicV3AndBelow {
			for _, rp := range rt.ResultsByPartition {
				if err := ErrorForCode(rp.PartitionErrorCode); err != nil {
					perr = err
				}
			}
		}
		if perr == nil {
			break
		}
		if !IsRetriable(perr) || ctx.Err() != nil {
			t.Fatalf("AddPartitionsToTxn: %v", perr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for p, vals := range values {
		recs := make([]Record, len(vals))
		for i, v := range vals {
			recs[i] = Record{Value: []byte(v)}
		}
		h := NewBatchHeader()
		h.ProducerID, h.ProducerEpoch, h.BaseSequence = w.pid, w.epoch, w.seq[p]
		h.Attributes |= AttrTransactional
		batch, err := AppendRecordBatch(nil, h, recs, CompressionNone, 0)
		if err != nil {
			t.Fatal(err)
		}
		w.seq[p] += int32(len(vals))
		r, err := w.cl.Request(ctx, &ProduceRequest{TransactionalID: &w.id, Acks: -1, TimeoutMs: 10000,
			TopicData: []ProduceRequestTopicData{{Name: topic, PartitionData: []ProduceRequestTopicDataPartitionData{{Index: p, Records: batch}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := ErrorForCode(r.(*ProduceResponse).Responses[0].PartitionResponses[0].ErrorCode); err != nil {
			t.Fatalf("transactional Produce to %s/%d: %v", topic, p, err)
		}
	}
	r, err := w.cl.Request(ctx, &EndTxnRequest{TransactionalID: w.id, ProducerID: w.pid, ProducerEpoch: w.epoch, Committed: commit})
	if err != nil {
		t.Fatal(err)
	}
	if err := ErrorForCode(r.(*EndTxnResponse).ErrorCode); err != nil {
		t.Fatalf("EndTxn(commit=%v): %v", commit, err)
	}
}

// TestIntegrationConsumerReadCommitted writes a committed, an aborted and
// a committed transaction around plain records, with generated requests:
// read_committed returns the plain and committed records only and no
// control record; the control, read_uncommitted, returns the aborted ones
// too (so the filtering is what hides them).
func TestIntegrationConsumerReadCommitted(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			// AddPartitionsToTxn v4+ is for brokers (KIP-890); clients use v3.
			cl := newTestClient(t, addr, WithMaxVersion(24, 3))
			topic := createTestTopic(t, cl, 2)
			w := newTxnWriter(t, cl)
			vals := func(tag string, p int32, n int) []string {
				var out []string
				for i := range n {
					out = append(out, fmt.Sprintf("%s-p%d-%d", tag, p, i))
				}
				return out
			}
			committed := map[int32][]string{}
			all := map[int32][]string{}
			add := func(m map[int32][]string, src map[int32][]string) {
				for p, v := range src {
					m[p] = append(m[p], v...)
				}
			}
			plain := func(tag string) {
				recs := []*Record{}
				src := map[int32][]string{}
				for p := int32(0); p < 2; p++ {
					src[p] = vals(tag, p, 3)
					for _, v := range src[p] {
						recs = append(recs, &Record{Topic: topic, Partition: p, Value: []byte(v)})
					}
				}
				produceKpax(t, cl, recs, WithPartitioner(ManualPartitioner()), WithIdempotence(false))
				add(committed, src)
				add(all, src)
			}
			plain("plain1")
			t1 := map[int32][]string{0: vals("commit1", 0, 5), 1: vals("commit1", 1, 4)}
			w.txn(topic, t1, true)
			add(committed, t1)
			add(all, t1)
			t2 := map[int32][]string{0: vals("abort", 0, 6), 1: vals("abort", 1, 2)}
			w.txn(topic, t2, false)
			add(all, t2)
			t3 := map[int32][]string{0: vals("commit2", 0, 2)}
			w.txn(topic, t3, true)
			add(committed, t3)
			add(all, t3)
			plain("plain2")

			count := func(m map[int32][]string) int {
				n := 0
				for _, v := range m {
					n += len(v)
				}
				return n
			}
			start := map[string]map[int32]Offset{topic: {0: Earliest(), 1: Earliest()}}

			c := newTestConsumer(t, cl, WithIsolationLevel(ReadCommitted))
			c.Assign(start)
			got, _ := pollN(t, c, count(committed), 30*time.Second)
			checkExactly(t, got, committed)
			if extra, _ := pollQuiet(t, c, 300*time.Millisecond); len(extra) > 0 {
				t.Fatalf("read_committed: %d more records, first %+v", len(extra), extra[0])
			}

			u := newTestConsumer(t, cl)
			u.Assign(start)
			got, _ = pollN(t, u, count(all), 30*time.Second)
			checkExactly(t, got, all)
			t.Logf("read_committed %d records, read_uncommitted %d (aborted %d)", count(committed), count(all), count(t2))
		})
	}
}
