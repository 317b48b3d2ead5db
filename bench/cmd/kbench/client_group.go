package main

// Group consumers: each client joins a fresh group (classic protocol, range
// assignment, automatic commits every 5s) on the topic and consumes from the
// earliest offset.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"h12.me/kpax"
)

const autoCommit = 5 * time.Second

// groups holds each client's group consumer constructor.
var groups = map[string]func(*Spec) (consumer, error){
	"kpax": newKpaxGroup, "franz-go": newFranzGroup, "sarama": newSaramaGroup, "kafka-go": newKafkaGoGroup,
}

type kpaxGroup struct {
	got int64
	cl  *kpax.Client
	g   *kpax.GroupConsumer
	cfg string
}

func newKpaxGroup(s *Spec) (consumer, error) {
	cl, err := kpax.New(kpax.WithSeedBrokers(s.Addr))
	if err != nil {
		return nil, err
	}
	g, err := cl.NewGroupConsumer(s.Group, []string{s.Topic},
		kpax.WithFetchMaxBytes(int32(s.FetchMaxBytes)),
		kpax.WithFetchMaxPartitionBytes(int32(s.FetchPartMax)),
		kpax.WithFetchMaxWait(s.FetchMaxWait),
		kpax.WithFetchMinBytes(1),
		kpax.WithAutoCommit(autoCommit),
		kpax.WithStartOffset(kpax.Earliest()),
	)
	if err != nil {
		cl.Close()
		return nil, err
	}
	cfg := fmt.Sprintf("kpax.New(WithSeedBrokers(%q)).NewGroupConsumer(%q, [%s],\n"+
		"  WithFetchMaxBytes(%d), WithFetchMaxPartitionBytes(%d), WithFetchMaxWait(%v), WithFetchMinBytes(1),\n"+
		"  WithAutoCommit(%v), WithStartOffset(Earliest())); Poll loop; other settings: kpax defaults "+
		"(classic protocol, range balancer, session 45s, heartbeat 3s)", s.Addr, s.Group, s.Topic,
		s.FetchMaxBytes, s.FetchPartMax, s.FetchMaxWait, autoCommit)
	return &kpaxGroup{cl: cl, g: g, cfg: cfg}, nil
}

func (k *kpaxGroup) consume(ctx context.Context, total int64) (int64, error) {
	for k.got < total {
		f, err := k.g.Poll(ctx)
		if err != nil {
			return k.got, err
		}
		for i := range f.Records {
			_ = len(f.Records[i].Value)
		}
		k.got += int64(len(f.Records))
	}
	return k.got, nil
}

func (k *kpaxGroup) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := k.g.Close(ctx)
	k.cl.Close()
	return err
}

func (k *kpaxGroup) config() string { return k.cfg }

func newFranzGroup(s *Spec) (consumer, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(s.Addr),
		kgo.ConsumerGroup(s.Group),
		kgo.ConsumeTopics(s.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.AutoCommitInterval(autoCommit),
		kgo.FetchMaxBytes(int32(s.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(s.FetchPartMax)),
		kgo.FetchMaxWait(s.FetchMaxWait),
		kgo.FetchMinBytes(1),
	)
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("kgo.NewClient(SeedBrokers, ConsumerGroup(%q), ConsumeTopics(%q), ConsumeResetOffset(AtStart()), "+
		"Balancers(RangeBalancer()), AutoCommitInterval, FetchMaxBytes, FetchMaxPartitionBytes, FetchMaxWait, "+
		"FetchMinBytes(1)); PollFetches loop\n", s.Group, s.Topic) +
		franzConfig(cl, kgo.SeedBrokers, kgo.ConsumerGroup, kgo.Balancers, kgo.AutoCommitInterval, kgo.SessionTimeout,
			kgo.HeartbeatInterval, kgo.FetchMaxBytes, kgo.FetchMaxPartitionBytes, kgo.FetchMaxWait, kgo.FetchMinBytes)
	return &franzConsumer{cl: cl, cfg: cfg}, nil
}

type saramaGroup struct {
	g      sarama.ConsumerGroup
	count  counter
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	cfg    string
}

func newSaramaGroup(s *Spec) (consumer, error) {
	cfg := saramaConfig()
	cfg.Consumer.Fetch.Min = 1
	cfg.Consumer.Fetch.Default = int32(s.FetchPartMax)
	cfg.Consumer.MaxWaitTime = s.FetchMaxWait
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = true
	cfg.Consumer.Offsets.AutoCommit.Interval = autoCommit
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	sarama.MaxResponseSize = int32(s.FetchMaxBytes)
	g, err := sarama.NewConsumerGroup([]string{s.Addr}, s.Group, cfg)
	if err != nil {
		return nil, err
	}
	c := &saramaGroup{g: g}
	c.count.expect(1 << 62)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for c.ctx.Err() == nil {
			if err := g.Consume(c.ctx, []string{s.Topic}, c); err != nil {
				return
			}
		}
	}()
	c.cfg = fmt.Sprintf("sarama.NewConsumerGroup(addrs, %q, cfg).Consume(ctx, [%s], handler); handler marks "+
		"every message (MarkMessage)\n  Version=%v ChannelBufferSize=%d MaxResponseSize=%d\n  Consumer=%+v",
		s.Group, s.Topic, cfg.Version, cfg.ChannelBufferSize, sarama.MaxResponseSize, cfg.Consumer)
	return c, nil
}

func (c *saramaGroup) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *saramaGroup) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c *saramaGroup) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		_ = len(m.Value)
		sess.MarkMessage(m, "")
		c.count.add(1, nil)
	}
	return nil
}

func (c *saramaGroup) consume(ctx context.Context, total int64) (int64, error) {
	err := waitDone(ctx, c.count.expect(total), &c.count)
	return c.count.n.Load(), err
}

func (c *saramaGroup) close() error {
	c.cancel()
	err := c.g.Close()
	c.wg.Wait()
	return err
}

func (c *saramaGroup) config() string { return c.cfg }

func newKafkaGoGroup(s *Spec) (consumer, error) {
	c := &kafkaGoConsumer{}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.count.expect(1 << 62)
	rc := kafka.ReaderConfig{
		Brokers:        []string{s.Addr},
		GroupID:        s.Group,
		Topic:          s.Topic,
		StartOffset:    kafka.FirstOffset,
		MinBytes:       1,
		MaxBytes:       s.FetchPartMax,
		MaxWait:        s.FetchMaxWait,
		CommitInterval: autoCommit,
		GroupBalancers: []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
	}
	r := kafka.NewReader(rc)
	c.read(r)
	c.cfg = fmt.Sprintf("kafka.NewReader(cfg with GroupID), ReadMessage loop (commits every CommitInterval)\n"+
		"  ReaderConfig=%+v", rc)
	return c, nil
}
