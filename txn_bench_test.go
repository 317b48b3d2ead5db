package kpax

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkIntegrationTxn commits transactions of 10 records (one
// partition) on the 4.x test broker (KPAX_TEST_KAFKA4), at transaction
// version 2 and, with EndTxn capped at v4, version 1: txns/s is the
// transactions committed per second, each waiting for its records and its
// EndTxn; requests/txn counts AddPartitionsToTxn (TV1, retried while the
// previous transaction completes), Produce and EndTxn.
func BenchmarkIntegrationTxn(b *testing.B) {
	addr := os.Getenv("KPAX_TEST_KAFKA4")
	if addr == "" {
		b.Skip("no broker: set KPAX_TEST_KAFKA4")
	}
	for _, tc := range []struct {
		name string
		opts []Option
	}{{"tv2", nil}, {"tv1", []Option{WithMaxVersion(26, 4)}}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var reqs atomic.Int64
			hook := WithHooks(Hooks{OnRequest: func(RequestInfo) { reqs.Add(1) }})
			cl, err := New(append([]Option{WithSeedBrokers(addr), hook}, tc.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			topic := fmt.Sprintf("kpax-bench-txn-%s-%d", tc.name, time.Now().UnixNano())
			r, err := cl.Request(ctx, &CreateTopicsRequest{TimeoutMs: 20000, Topics: []CreateTopicsRequestTopic{{Name: topic, NumPartitions: 1, ReplicationFactor: 1}}})
			if err == nil {
				err = ErrorForCode(r.(*CreateTopicsResponse).Topics[0].ErrorCode)
			}
			if err != nil {
				b.Fatal(err)
			}
			p, err := cl.NewProducer(WithTransactionalID(topic))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(ctx)
			recs := make([]*Record, 10)
			for i := range recs {
				recs[i] = &Record{Topic: topic, Value: []byte(fmt.Sprintf("value-%d", i))}
			}
			txn := func() {
				if err := p.BeginTransaction(ctx); err != nil {
					b.Fatal(err)
				}
				for _, rec := range recs {
					if err := p.Produce(ctx, rec, nil); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.CommitTransaction(ctx); err != nil {
					b.Fatal(err)
				}
			}
			txn() // the producer ID, the topic's leader, the coordinator's connection
			reqs.Store(0)
			b.ResetTimer()
			for range b.N {
				txn()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
			b.ReportMetric(float64(reqs.Load())/float64(b.N), "requests/txn")
		})
	}
}
