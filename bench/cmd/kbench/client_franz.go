package main

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	clients["franz-go"] = clientImpl{newProducer: newFranzProducer, newConsumer: newFranzConsumer}
}

func franzCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("franz-go: codec %q not in the benchmark", name)
}

// franzConfig lists the values of the client's options, defaults included.
func franzConfig(cl *kgo.Client, opts ...any) string {
	var b strings.Builder
	for _, o := range opts {
		name := runtime.FuncForPC(reflect.ValueOf(o).Pointer()).Name()
		name = name[strings.LastIndex(name, ".")+1:]
		fmt.Fprintf(&b, "  %s = %v\n", name, cl.OptValues(o))
	}
	return b.String()
}

type franzProducer struct {
	cl      *kgo.Client
	topic   string
	done    doneFunc
	promise func(*kgo.Record, error)
	track   bool
	cfg     string
}

func newFranzProducer(s *Spec, done doneFunc, track bool) (producer, error) {
	codec, err := franzCodec(s.Compression)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.Addr),
		kgo.ProducerLinger(s.Linger),
		kgo.ProducerBatchMaxBytes(int32(s.MaxBatchBytes)),
		kgo.ProducerBatchCompression(codec),
		kgo.MaxBufferedRecords(s.MaxBuffered),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
	}
	if s.Acks == 1 {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	} else {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	if !s.Idempotent {
		// With idempotence franz-go keeps 5 in flight and refuses the option.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(maxInFlight))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	p := &franzProducer{cl: cl, topic: s.Topic, done: done, track: track}
	p.promise = func(_ *kgo.Record, err error) { done(-1, err) }
	p.cfg = "kgo.NewClient(SeedBrokers, ProducerLinger, ProducerBatchMaxBytes, ProducerBatchCompression, " +
		"MaxBufferedRecords, RecordPartitioner(RoundRobinPartitioner()), RequiredAcks[, DisableIdempotentWrite, MaxProduceRequestsInflightPerBroker]); " +
		"Produce(ctx, &kgo.Record{Topic, Value}, promise)\n" + franzConfig(cl,
		kgo.SeedBrokers, kgo.RequiredAcks, kgo.DisableIdempotentWrite, kgo.ProducerLinger, kgo.ProducerBatchMaxBytes,
		kgo.ProducerBatchCompression, kgo.MaxBufferedRecords, kgo.MaxBufferedBytes,
		kgo.MaxProduceRequestsInflightPerBroker, kgo.ProduceRequestTimeout, kgo.RecordRetries,
		kgo.RecordDeliveryTimeout, kgo.ClientID)
	return p, nil
}

func (p *franzProducer) send(ctx context.Context, first int, values [][]byte) {
	for i, v := range values {
		r := &kgo.Record{Topic: p.topic, Value: v}
		promise := p.promise
		if p.track {
			seq := first + i
			promise = func(_ *kgo.Record, err error) { p.done(seq, err) }
		}
		p.cl.Produce(ctx, r, promise)
	}
}

func (p *franzProducer) close() error {
	p.cl.Close()
	return nil
}

func (p *franzProducer) config() string { return p.cfg }

type franzConsumer struct {
	got, bytes int64
	cl         *kgo.Client
	cfg        string
}

func newFranzConsumer(s *Spec) (consumer, error) {
	parts := map[int32]kgo.Offset{}
	for i := 0; i < s.Partitions; i++ {
		parts[int32(i)] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(s.Addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.Topic: parts}),
		kgo.FetchMaxBytes(int32(s.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(s.FetchPartMax)),
		kgo.FetchMaxWait(s.FetchMaxWait),
		kgo.FetchMinBytes(1),
	)
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("kgo.NewClient(SeedBrokers, ConsumePartitions(%s: 0..%d at NewOffset().AtStart()), "+
		"FetchMaxBytes, FetchMaxPartitionBytes, FetchMaxWait, FetchMinBytes(1)); PollFetches loop\n", s.Topic, s.Partitions-1) +
		franzConfig(cl, kgo.SeedBrokers, kgo.FetchMaxBytes, kgo.FetchMaxPartitionBytes, kgo.FetchMaxWait,
			kgo.FetchMinBytes, kgo.MaxConcurrentFetches, kgo.FetchIsolationLevel, kgo.ClientID)
	return &franzConsumer{cl: cl, cfg: cfg}, nil
}

func (c *franzConsumer) consume(ctx context.Context, total int64) (int64, error) {
	for c.got < total {
		fs := c.cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil && fs.NumRecords() == 0 {
			return c.got, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			c.bytes += int64(len(r.Value))
			c.got++
		})
	}
	return c.got, nil
}

func (c *franzConsumer) close() error {
	c.cl.Close()
	return nil
}

func (c *franzConsumer) config() string { return c.cfg }
