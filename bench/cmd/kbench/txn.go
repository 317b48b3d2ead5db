package main

// The transactional produce workload: one producer produces records
// continuously into transactions, each open for TxnInterval (1, 10 or
// 100 ms) and then committed, for Duration (or, with no Duration, until N
// records are sent); records/s and CPU per record include the
// transactions' requests (AddPartitionsToTxn under transaction version 1,
// EndTxn) and the flush each commit waits for. Only kpax and franz-go have
// a transactional producer here, and only the real broker runs it: the
// sink has no transaction coordinator (FindCoordinator, AddPartitionsToTxn,
// EndTxn). Settings are the produce runs': acks=all with idempotence
// (which a transactional ID implies in both), no compression, the same
// linger, batch size, buffer, 5 requests in flight, round-robin
// partitioning, the same 100-byte values, timestamps set at Produce.

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
	// sendTxns runs transactions until n records are sent or, with a
	// duration d, until d has passed; it returns the records and
	// transactions committed.
	sendTxns := func(n int, d time.Duration) (sent, txns int, err error) {
		stop := time.Now().Add(d)
		more := func() bool { return d > 0 && time.Now().Before(stop) || d <= 0 && sent < n }
		for ; more(); txns++ {
			if err := p.begin(ctx); err != nil {
				return sent, txns, err
			}
			end := time.Now().Add(s.TxnInterval)
			for first := true; first || time.Now().Before(end) && (d > 0 || sent < n); first = false {
				k := step
				if d <= 0 {
					k = min(step, n-sent)
				}
				p.send(ctx, sent, chunk(vals, sent, k))
				sent += k
			}
			if err := p.commit(ctx); err != nil {
				return sent, txns, err
			}
		}
		return sent, txns, nil
	}
	if _, _, err := sendTxns(s.Warmup, 0); err != nil {
		return err
	}
	runtime.GC()
	a := takeSample()
	sent, txns, err := sendTxns(s.N, s.Duration)
	b := takeSample()
	res.measure(a, b)
	res.Records = sent
	res.Errors = c.errs.Load()
	res.Txns = txns
	return err
}

type kpaxTxnProducer struct{ *kpaxProducer }

func newKpaxTxnProducer(s *Spec, done doneFunc) (txnProducer, error) {
	cl, err := kpax.New(kpax.WithSeedBrokers(s.Addr))
	if err != nil {
		return nil, err
	}
	p, err := cl.NewProducer(kpax.WithTransactionalID(txnID(s)), kpax.WithAcks(kpax.AcksAll), kpax.WithLinger(s.Linger),
		kpax.WithMaxBatchBytes(s.MaxBatchBytes), kpax.WithCompression(kpax.CompressionNone),
		kpax.WithMaxBufferedRecords(s.MaxBuffered), kpax.WithPartitioner(kpax.RoundRobinPartitioner()),
		kpax.WithMaxInFlight(maxInFlight))
	if err != nil {
		cl.Close()
		return nil, err
	}
	kp := &kpaxProducer{cl: cl, p: p, topic: s.Topic, done: done}
	kp.cb = func(_ *kpax.Record, err error) { done(-1, err) }
	kp.opts = fmt.Sprintf("kpax.New(WithSeedBrokers(%q)).NewProducer(\n"+
		"  WithTransactionalID(%q) /* implies idempotence */, WithAcks(AcksAll), WithLinger(%v), WithMaxBatchBytes(%d),\n"+
		"  WithCompression(CompressionNone), WithMaxBufferedRecords(%d), WithPartitioner(RoundRobinPartitioner()), WithMaxInFlight(%d))\n"+
		"  BeginTransaction, Produce, CommitTransaction (which flushes); other settings: kpax defaults (transaction timeout 60s)",
		s.Addr, txnID(s), s.Linger, s.MaxBatchBytes, s.MaxBuffered, maxInFlight)
	return kpaxTxnProducer{kp}, nil
}

func (k kpaxTxnProducer) begin(ctx context.Context) error  { return k.p.BeginTransaction(ctx) }
func (k kpaxTxnProducer) commit(ctx context.Context) error { return k.p.CommitTransaction(ctx) }

type franzTxnProducer struct{ *franzProducer }

func newFranzTxnProducer(s *Spec, done doneFunc) (txnProducer, error) {
	// With idempotence (implied by the transactional ID) franz-go keeps 5
	// produce requests in flight and refuses MaxProduceRequestsInflightPerBroker;
	// its default codec is snappy, so none is set explicitly.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr), kgo.TransactionalID(txnID(s)), kgo.ProducerLinger(s.Linger),
		kgo.ProducerBatchMaxBytes(int32(s.MaxBatchBytes)), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(s.MaxBuffered), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return nil, err
	}
	p := &franzProducer{cl: cl, topic: s.Topic, done: done}
	p.promise = func(_ *kgo.Record, err error) { done(-1, err) }
	p.cfg = "kgo.NewClient(SeedBrokers, TransactionalID, ProducerLinger, ProducerBatchMaxBytes, ProducerBatchCompression(NoCompression()), " +
		"MaxBufferedRecords, RecordPartitioner(RoundRobinPartitioner()), RequiredAcks(AllISRAcks())); " +
		"BeginTransaction, Produce(ctx, &kgo.Record{Topic, Value}, promise), Flush, EndTransaction(TryCommit)\n" + franzConfig(cl,
		kgo.SeedBrokers, kgo.TransactionalID, kgo.RequiredAcks, kgo.DisableIdempotentWrite, kgo.ProducerLinger,
		kgo.ProducerBatchMaxBytes, kgo.ProducerBatchCompression, kgo.MaxBufferedRecords, kgo.MaxProduceRequestsInflightPerBroker,
		kgo.TransactionTimeout)
	return franzTxnProducer{p}, nil
}

func (f franzTxnProducer) begin(context.Context) error { return f.cl.BeginTransaction() }

func (f franzTxnProducer) commit(ctx context.Context) error {
	if err := f.cl.Flush(ctx); err != nil {
		return err
	}
	return f.cl.EndTransaction(ctx, kgo.TryCommit)
}
