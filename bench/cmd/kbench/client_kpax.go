package main

import (
	"context"
	"fmt"
	"time"

	"h12.me/kpax"
)

func init() {
	clients["kpax"] = clientImpl{newProducer: newKpaxProducer, newConsumer: newKpaxConsumer}
}

type kpaxProducer struct {
	cl    *kpax.Client
	p     *kpax.Producer
	topic string
	done  doneFunc
	cb    func(*kpax.Record, error)
	track bool
	opts  string
}

func newKpaxProducer(s *Spec, done doneFunc, track bool) (producer, error) {
	codec, err := kpax.ParseCompression(s.Compression)
	if err != nil {
		return nil, err
	}
	cl, err := kpax.New(kpax.WithSeedBrokers(s.Addr))
	if err != nil {
		return nil, err
	}
	opts := []kpax.Option{
		kpax.WithAcks(kpax.Acks(s.Acks)),
		kpax.WithIdempotence(s.Idempotent),
		kpax.WithLinger(s.Linger),
		kpax.WithMaxBatchBytes(s.MaxBatchBytes),
		kpax.WithCompression(codec),
		kpax.WithMaxBufferedRecords(s.MaxBuffered),
		kpax.WithPartitioner(kpax.RoundRobinPartitioner()),
		kpax.WithMaxInFlight(maxInFlight),
	}
	p, err := cl.NewProducer(opts...)
	if err != nil {
		cl.Close()
		return nil, err
	}
	kp := &kpaxProducer{cl: cl, p: p, topic: s.Topic, done: done, track: track}
	kp.cb = func(_ *kpax.Record, err error) { done(-1, err) }
	kp.opts = fmt.Sprintf("kpax.New(WithSeedBrokers(%q)).NewProducer(\n"+
		"  WithAcks(%d), WithIdempotence(%v), WithLinger(%v), WithMaxBatchBytes(%d),\n"+
		"  WithCompression(%v /* codec default level */), WithMaxBufferedRecords(%d),\n"+
		"  WithPartitioner(RoundRobinPartitioner()), WithMaxInFlight(%d))\n"+
		"  other settings: kpax defaults (max buffered bytes 64 MiB, delivery timeout 2m, produce timeout and retries as documented)",
		s.Addr, s.Acks, s.Idempotent, s.Linger, s.MaxBatchBytes, codec, s.MaxBuffered, maxInFlight)
	return kp, nil
}

func (k *kpaxProducer) send(ctx context.Context, first int, values [][]byte) {
	for i, v := range values {
		r := &kpax.Record{Topic: k.topic, Value: v}
		cb := k.cb
		if k.track {
			seq := first + i
			cb = func(_ *kpax.Record, err error) { k.done(seq, err) }
		}
		if err := k.p.Produce(ctx, r, cb); err != nil {
			k.done(-1, err)
		}
	}
}

func (k *kpaxProducer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := k.p.Close(ctx)
	k.cl.Close()
	return err
}

func (k *kpaxProducer) config() string { return k.opts }

type kpaxConsumer struct {
	got, bytes int64
	cl         *kpax.Client
	c          *kpax.Consumer
	opts       string
}

func newKpaxConsumer(s *Spec) (consumer, error) {
	cl, err := kpax.New(kpax.WithSeedBrokers(s.Addr))
	if err != nil {
		return nil, err
	}
	c, err := cl.NewConsumer(
		kpax.WithFetchMaxBytes(int32(s.FetchMaxBytes)),
		kpax.WithFetchMaxPartitionBytes(int32(s.FetchPartMax)),
		kpax.WithFetchMaxWait(s.FetchMaxWait),
		kpax.WithFetchMinBytes(1),
	)
	if err != nil {
		cl.Close()
		return nil, err
	}
	parts := map[int32]kpax.Offset{}
	for i := 0; i < s.Partitions; i++ {
		parts[int32(i)] = kpax.Earliest()
	}
	c.Assign(map[string]map[int32]kpax.Offset{s.Topic: parts})
	opts := fmt.Sprintf("kpax.New(WithSeedBrokers(%q)).NewConsumer(\n"+
		"  WithFetchMaxBytes(%d), WithFetchMaxPartitionBytes(%d), WithFetchMaxWait(%v), WithFetchMinBytes(1))\n"+
		"  Assign(%s: partitions 0..%d at Earliest()); Poll loop; other settings: kpax defaults (fetch buffer 100 MiB)",
		s.Addr, s.FetchMaxBytes, s.FetchPartMax, s.FetchMaxWait, s.Topic, s.Partitions-1)
	return &kpaxConsumer{cl: cl, c: c, opts: opts}, nil
}

func (k *kpaxConsumer) consume(ctx context.Context, total int64) (int64, error) {
	for k.got < total {
		f, err := k.c.Poll(ctx)
		if err != nil {
			return k.got, err
		}
		for i := range f.Records {
			k.bytes += int64(len(f.Records[i].Value))
		}
		k.got += int64(len(f.Records))
		if len(f.Errors) > 0 && len(f.Records) == 0 {
			return k.got, f.Errors[0]
		}
	}
	return k.got, nil
}

func (k *kpaxConsumer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := k.c.Close(ctx)
	k.cl.Close()
	return err
}

func (k *kpaxConsumer) config() string { return k.opts }
