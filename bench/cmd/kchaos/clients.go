package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"h12.me/kpax"
)

// The settings both producers get. Timestamps, partitioners (both murmur2
// for keyed records), retry backoffs and metadata ages are each client's
// default; asymmetries lists what differs.
const (
	linger          = 2 * time.Millisecond
	deliveryTimeout = 60 * time.Second
	requestTimeout  = 5 * time.Second  // beyond the Produce request's own timeout
	produceTimeout  = 30 * time.Second // a Produce request's TimeoutMs (kpax's default; franz-go's is 10s)
	maxBuffered     = 100_000          // records (kpax's default; franz-go's is 50,000)
	maxBatchBytes   = 1_000_000        // kpax's default; franz-go's is 1,000,012
)

// asymmetries says what is not the same between the two runs of a seed.
var asymmetries = []string{
	"timestamps: each client's default (both stamp the record at Produce)",
	"retry backoff: kpax 100ms doubling to 5s; franz-go 250ms doubling to 5s with ±20% jitter (defaults)",
	"metadata refresh after a produce error (NOT_LEADER_OR_FOLLOWER, a dead connection): kpax at most every 100ms (WithMetadataMinAge default); franz-go at most every 5s (MetadataMinAge default) for the refreshes its producer triggers",
	"in flight: both 5 Produce requests per broker with idempotence (kpax also caps 5 batches per partition)",
	"request timeout 5s: kpax WithRequestTimeout, franz-go RequestTimeoutOverhead; both wait that long beyond the 30s Produce timeout",
	"dial timeout 1s: the harness's dialer bounds every dial for both (franz-go's DialTimeout does not apply to a custom Dialer; kpax also gets WithDialTimeout(1s))",
	"delivery timeout 60s: kpax WithDeliveryTimeout, franz-go RecordDeliveryTimeout (franz-go enforces it only where it cannot break sequence numbers)",
	"buffered bytes: kpax caps them at 64 MiB (default), franz-go does not (default); far above what a run buffers",
	"order: the clients run one after the other on the same cluster, the first rotating by seed; each gets a fresh topic",
}

// configs is what each client is given, for the report.
var configs = map[string]string{
	"kpax": fmt.Sprintf("kpax.New(WithSeedBrokers, WithDialer, WithRequestTimeout(%v), WithDialTimeout(%v)).NewProducer("+
		"WithIdempotence(true), WithAcks(AcksAll), WithLinger(%v), WithDeliveryTimeout(%v), WithProduceTimeout(%v), "+
		"WithMaxBufferedRecords(%d), WithMaxBatchBytes(%d))",
		requestTimeout, dialTimeout, linger, deliveryTimeout, produceTimeout, maxBuffered, maxBatchBytes),
	"franz-go": fmt.Sprintf("kgo.NewClient(SeedBrokers, Dialer, RequestTimeoutOverhead(%v), RequiredAcks(AllISRAcks()), "+
		"ProducerLinger(%v), RecordDeliveryTimeout(%v), ProduceRequestTimeout(%v), MaxBufferedRecords(%d), "+
		"ProducerBatchMaxBytes(%d)); idempotent by default",
		requestTimeout, linger, deliveryTimeout, produceTimeout, maxBuffered, maxBatchBytes),
	"franz-go-tuned": "as franz-go, plus MetadataMinAge(100ms) and RetryBackoffFn(100ms doubling to 5s): kpax's defaults for both",
}

// producer is what a run needs of a client: Produce with a callback, Flush,
// Close. Produce's error means the record was not queued (no callback).
type producer interface {
	produce(ctx context.Context, key, value []byte, cb func(partition int32, offset int64, err error)) error
	flush(ctx context.Context) error
	close()
}

func newProducer(name string, brokers []string, fn *faultNet, topic string) (producer, error) {
	switch name {
	case "kpax":
		return newKpax(brokers, fn, topic)
	case "franz-go":
		return newFranz(brokers, fn, topic)
	case "franz-go-tuned":
		return newFranz(brokers, fn, topic, kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryBackoffFn(kpaxBackoff))
	}
	return nil, fmt.Errorf("unknown client %q (kpax, franz-go, franz-go-tuned)", name)
}

type kpaxProducer struct {
	cl    *kpax.Client
	p     *kpax.Producer
	topic string
}

func newKpax(brokers []string, fn *faultNet, topic string) (producer, error) {
	cl, err := kpax.New(kpax.WithSeedBrokers(brokers...), kpax.WithDialer(fn.Dial),
		kpax.WithRequestTimeout(requestTimeout), kpax.WithDialTimeout(dialTimeout))
	if err != nil {
		return nil, err
	}
	p, err := cl.NewProducer(kpax.WithIdempotence(true), kpax.WithAcks(kpax.AcksAll), kpax.WithLinger(linger),
		kpax.WithDeliveryTimeout(deliveryTimeout), kpax.WithProduceTimeout(produceTimeout),
		kpax.WithMaxBufferedRecords(maxBuffered), kpax.WithMaxBatchBytes(maxBatchBytes))
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &kpaxProducer{cl: cl, p: p, topic: topic}, nil
}

func (k *kpaxProducer) produce(ctx context.Context, key, value []byte, cb func(int32, int64, error)) error {
	return k.p.Produce(ctx, &kpax.Record{Topic: k.topic, Key: key, Value: value}, func(r *kpax.Record, err error) {
		cb(r.Partition, r.Offset, err)
	})
}

func (k *kpaxProducer) flush(ctx context.Context) error { return k.p.Flush(ctx) }

func (k *kpaxProducer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k.p.Close(ctx)
	k.cl.Close()
}

type franzProducer struct {
	cl    *kgo.Client
	topic string
}

// kpaxBackoff is kpax's default retry backoff (100ms doubling to 5s), for
// franz-go-tuned.
func kpaxBackoff(fails int) time.Duration {
	return min(100*time.Millisecond<<min(max(fails-1, 0), 6), 5*time.Second)
}

func newFranz(brokers []string, fn *faultNet, topic string, extra ...kgo.Opt) (producer, error) {
	// Idempotence is franz-go's default; acks=all is set anyway.
	opts := append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.Dialer(fn.Dial),
		kgo.RequestTimeoutOverhead(requestTimeout), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(linger), kgo.RecordDeliveryTimeout(deliveryTimeout),
		kgo.ProduceRequestTimeout(produceTimeout), kgo.MaxBufferedRecords(maxBuffered),
		kgo.ProducerBatchMaxBytes(maxBatchBytes)}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &franzProducer{cl: cl, topic: topic}, nil
}

func (f *franzProducer) produce(ctx context.Context, key, value []byte, cb func(int32, int64, error)) error {
	f.cl.Produce(ctx, &kgo.Record{Topic: f.topic, Key: key, Value: value}, func(r *kgo.Record, err error) {
		cb(r.Partition, r.Offset, err)
	})
	return nil
}

func (f *franzProducer) flush(ctx context.Context) error { return f.cl.Flush(ctx) }

func (f *franzProducer) close() { f.cl.Close() }
