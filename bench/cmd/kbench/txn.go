package main

// The transactional produce workload: one producer commits a transaction
// every TxnInterval (1, 10 or 100 ms) until N records are sent; records/s
// and CPU per record include the transactions' requests (AddPartitionsToTxn
// under transaction version 1, EndTxn) and the flush each commit waits for.
// Only kpax and franz-go have a transactional producer here.

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"h12.me/kpax"
)

// txnProducer is a producer with transactions.
type txnProducer interface {
	producer
	begin(ctx context.Context) error
	commit(ctx context.Context) error // sends what is buffered and commits
}

var txnProducers = map[string]func(s *Spec, done doneFunc) (txnProducer, error){
	"kpax":     newKpaxTxnProducer,
	"franz-go": newFranzTxnProducer,
}

func txnID(s *Spec) string { return fmt.Sprintf("%s-%s", s.Topic, s.Client) }

func runTxnProduce(ctx context.Context, s *Spec, res *Result) error {
	newP, ok := txnProducers[s.Client]
	if !ok {
		return fmt.Errorf("%s: no transactional producer in this benchmark", s.Client)
	}
	vals := payloads()
	var c counter
	p, err := newP(s, func(_ int, err error) { c.add(1, err) })
	if err != nil {
		return err
	}
	defer p.close()
	res.Config = p.config()
	const step = 100 // values per send call
	sendTxns := func(n int) (txns int, err error) {
		for sent := 0; sent < n; txns++ {
			if err := p.begin(ctx); err != nil {
				return txns, err
			}
			end := time.Now().Add(s.TxnInterval)
			for sent < n && (sent == 0 || time.Now().Before(end)) {
				k := min(step, n-sent)
				p.send(ctx, sent, chunk(vals, sent, k))
				sent += k
			}
			if err := p.commit(ctx); err != nil {
				return txns, err
			}
		}
		return txns, nil
	}
	if _, err := sendTxns(s.Warmup); err != nil {
		return err
	}
	runtime.GC()
	a := takeSample()
	txns, err := sendTxns(s.N)
	b := takeSample()
	res.measure(a, b)
	res.Records = s.N
	res.Errors = c.errs.Load()
	res.Note = fmt.Sprintf("%d transactions of %v", txns, s.TxnInterval)
	return err
}

type kpaxTxnProducer struct{ *kpaxProducer }

func newKpaxTxnProducer(s *Spec, done doneFunc) (txnProducer, error) {
	cl, err := kpax.New(kpax.WithSeedBrokers(s.Addr))
	if err != nil {
		return nil, err
	}
	p, err := cl.NewProducer(kpax.WithTransactionalID(txnID(s)), kpax.WithLinger(s.Linger),
		kpax.WithMaxBatchBytes(s.MaxBatchBytes), kpax.WithMaxBufferedRecords(s.MaxBuffered),
		kpax.WithPartitioner(kpax.RoundRobinPartitioner()))
	if err != nil {
		cl.Close()
		return nil, err
	}
	kp := &kpaxProducer{cl: cl, p: p, topic: s.Topic, done: done}
	kp.cb = func(_ *kpax.Record, err error) { done(-1, err) }
	kp.opts = fmt.Sprintf("kpax.New(WithSeedBrokers(%q)).NewProducer(WithTransactionalID, WithLinger(%v), WithMaxBatchBytes(%d), "+
		"WithMaxBufferedRecords(%d), WithPartitioner(RoundRobinPartitioner())); BeginTransaction, Produce, CommitTransaction",
		s.Addr, s.Linger, s.MaxBatchBytes, s.MaxBuffered)
	return kpaxTxnProducer{kp}, nil
}

func (k kpaxTxnProducer) begin(ctx context.Context) error  { return k.p.BeginTransaction(ctx) }
func (k kpaxTxnProducer) commit(ctx context.Context) error { return k.p.CommitTransaction(ctx) }

type franzTxnProducer struct{ *franzProducer }

func newFranzTxnProducer(s *Spec, done doneFunc) (txnProducer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr), kgo.TransactionalID(txnID(s)), kgo.ProducerLinger(s.Linger),
		kgo.ProducerBatchMaxBytes(int32(s.MaxBatchBytes)), kgo.MaxBufferedRecords(s.MaxBuffered),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return nil, err
	}
	p := &franzProducer{cl: cl, topic: s.Topic, done: done}
	p.promise = func(_ *kgo.Record, err error) { done(-1, err) }
	p.cfg = "kgo.NewClient(SeedBrokers, TransactionalID, ProducerLinger, ProducerBatchMaxBytes, MaxBufferedRecords, " +
		"RecordPartitioner(RoundRobinPartitioner()), RequiredAcks(AllISRAcks())); BeginTransaction, Produce, Flush, EndTransaction(TryCommit)"
	return franzTxnProducer{p}, nil
}

func (f franzTxnProducer) begin(context.Context) error { return f.cl.BeginTransaction() }

func (f franzTxnProducer) commit(ctx context.Context) error {
	if err := f.cl.Flush(ctx); err != nil {
		return err
	}
	return f.cl.EndTransaction(ctx, kgo.TryCommit)
}
