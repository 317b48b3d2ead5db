package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
)

func init() {
	clients["sarama"] = clientImpl{newProducer: newSaramaProducer, newConsumer: newSaramaConsumer, note: saramaNote}
}

func saramaNote(s *Spec) string {
	switch {
	case s.Kind != "produce" && s.Kind != "latency":
		return ""
	case s.Idempotent:
		return "idempotence needs Net.MaxOpenRequests = 1 in sarama (one produce request in flight per broker, " +
			"not 5); max batch bytes is Producer.MaxMessageBytes and Flush.Bytes, which bound a whole request"
	}
	return "max batch bytes is Producer.MaxMessageBytes and Flush.Bytes, which bound a whole request (all partitions)"
}

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = "kbench"
	return cfg
}

type saramaProducer struct {
	ap    sarama.AsyncProducer
	topic string
	track bool
	wg    sync.WaitGroup
	cfg   string
}

func newSaramaProducer(s *Spec, done doneFunc, track bool) (producer, error) {
	cfg := saramaConfig()
	switch s.Compression {
	case "none":
		cfg.Producer.Compression = sarama.CompressionNone
	case "lz4":
		cfg.Producer.Compression = sarama.CompressionLZ4
	case "zstd":
		cfg.Producer.Compression = sarama.CompressionZSTD
	default:
		return nil, fmt.Errorf("sarama: codec %q not in the benchmark", s.Compression)
	}
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	if s.Acks == -1 {
		cfg.Producer.RequiredAcks = sarama.WaitForAll
	}
	cfg.Net.MaxOpenRequests = maxInFlight
	if s.Idempotent {
		cfg.Producer.Idempotent = true
		cfg.Net.MaxOpenRequests = 1 // required by sarama for idempotence
	}
	cfg.Producer.Flush.Frequency = s.Linger
	cfg.Producer.Flush.Bytes = s.MaxBatchBytes
	cfg.Producer.MaxMessageBytes = s.MaxBatchBytes
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	ap, err := sarama.NewAsyncProducer([]string{s.Addr}, cfg)
	if err != nil {
		return nil, err
	}
	p := &saramaProducer{ap: ap, topic: s.Topic, track: track}
	seqOf := func(m *sarama.ProducerMessage) int {
		if seq, ok := m.Metadata.(int); ok {
			return seq
		}
		return -1
	}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		for m := range ap.Successes() {
			done(seqOf(m), nil)
		}
	}()
	go func() {
		defer p.wg.Done()
		for e := range ap.Errors() {
			done(seqOf(e.Msg), e.Err)
		}
	}()
	p.cfg = fmt.Sprintf("sarama.NewAsyncProducer(addrs, cfg); Input() <- &ProducerMessage{Topic, Value: ByteEncoder(v)}; "+
		"Successes() and Errors() drained\n  Version=%v ChannelBufferSize=%d Net.MaxOpenRequests=%d\n  Producer=%+v",
		cfg.Version, cfg.ChannelBufferSize, cfg.Net.MaxOpenRequests, cfg.Producer)
	return p, nil
}

func (p *saramaProducer) send(ctx context.Context, first int, values [][]byte) {
	in := p.ap.Input()
	for i, v := range values {
		m := &sarama.ProducerMessage{Topic: p.topic, Value: sarama.ByteEncoder(v)}
		if p.track {
			m.Metadata = first + i
		}
		in <- m
	}
}

func (p *saramaProducer) close() error {
	p.ap.AsyncClose()
	p.wg.Wait()
	return nil
}

func (p *saramaProducer) config() string { return p.cfg }

type saramaConsumer struct {
	c     sarama.Consumer
	pcs   []sarama.PartitionConsumer
	count counter
	bytes int64
	wg    sync.WaitGroup
	cfg   string
}

func newSaramaConsumer(s *Spec) (consumer, error) {
	cfg := saramaConfig()
	cfg.Consumer.Fetch.Min = 1
	cfg.Consumer.Fetch.Default = int32(s.FetchPartMax)
	cfg.Consumer.MaxWaitTime = s.FetchMaxWait
	sarama.MaxResponseSize = int32(s.FetchMaxBytes)
	c, err := sarama.NewConsumer([]string{s.Addr}, cfg)
	if err != nil {
		return nil, err
	}
	sc := &saramaConsumer{c: c}
	sc.count.expect(1 << 62)
	for i := 0; i < s.Partitions; i++ {
		pc, err := c.ConsumePartition(s.Topic, int32(i), sarama.OffsetOldest)
		if err != nil {
			sc.close()
			return nil, err
		}
		sc.pcs = append(sc.pcs, pc)
		sc.wg.Add(1)
		go func() {
			defer sc.wg.Done()
			for m := range pc.Messages() {
				_ = len(m.Value)
				sc.count.add(1, nil)
			}
		}()
	}
	sc.cfg = fmt.Sprintf("sarama.NewConsumer(addrs, cfg).ConsumePartition(%s, 0..%d, OffsetOldest); Messages() drained\n"+
		"  Version=%v ChannelBufferSize=%d MaxResponseSize=%d\n  Consumer=%+v",
		s.Topic, s.Partitions-1, cfg.Version, cfg.ChannelBufferSize, sarama.MaxResponseSize, cfg.Consumer)
	return sc, nil
}

func (c *saramaConsumer) consume(ctx context.Context, total int64) (int64, error) {
	err := waitDone(ctx, c.count.expect(total), &c.count)
	return c.count.n.Load(), err
}

func (c *saramaConsumer) close() error {
	for _, pc := range c.pcs {
		pc.AsyncClose()
	}
	c.wg.Wait()
	return c.c.Close()
}

func (c *saramaConsumer) config() string { return c.cfg }
