package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

func init() {
	clients["kafka-go"] = clientImpl{newProducer: newKafkaGoProducer, newConsumer: newKafkaGoConsumer, note: kafkaGoNote}
}

func kafkaGoNote(s *Spec) string {
	if (s.Kind == "produce" || s.Kind == "latency") && s.Idempotent {
		return "no idempotent producer in kafka-go: acks=all without idempotence; the Writer has no in-flight setting"
	}
	return ""
}

type kafkaGoProducer struct {
	w     *kafka.Writer
	track bool
	cfg   string
}

func newKafkaGoProducer(s *Spec, done doneFunc, track bool) (producer, error) {
	var codec compress.Compression
	switch s.Compression {
	case "none":
	case "lz4":
		codec = kafka.Lz4
	case "zstd":
		codec = kafka.Zstd
	default:
		return nil, fmt.Errorf("kafka-go: codec %q not in the benchmark", s.Compression)
	}
	acks := kafka.RequireOne
	if s.Acks == -1 {
		acks = kafka.RequireAll
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(s.Addr),
		Topic:        s.Topic,
		Balancer:     &kafka.RoundRobin{},
		BatchSize:    s.MaxBatchBytes / 100, // records per batch: as many as max batch bytes holds
		BatchBytes:   int64(s.MaxBatchBytes),
		BatchTimeout: s.Linger,
		RequiredAcks: acks,
		Async:        true,
		Compression:  codec,
	}
	w.Completion = func(msgs []kafka.Message, err error) {
		for i := range msgs {
			seq := -1
			if track {
				seq, _ = msgs[i].WriterData.(int)
			}
			done(seq, err)
		}
	}
	p := &kafkaGoProducer{w: w, track: track}
	p.cfg = fmt.Sprintf("kafka.Writer{Async: true, Completion: count}; WriteMessages(ctx, msgs...) with up to 1000 "+
		"messages a call (1 in latency runs)\n  Writer{Addr: %v, Topic: %s, Balancer: %T, MaxAttempts: %d, "+
		"WriteBackoffMin: %v, WriteBackoffMax: %v, BatchSize: %d, BatchBytes: %d, BatchTimeout: %v, ReadTimeout: %v, "+
		"WriteTimeout: %v, RequiredAcks: %v, Async: %v, Compression: %v, Transport: default}\n  Stats()=%+v",
		w.Addr, w.Topic, w.Balancer, w.MaxAttempts, w.WriteBackoffMin, w.WriteBackoffMax, w.BatchSize, w.BatchBytes,
		w.BatchTimeout, w.ReadTimeout, w.WriteTimeout, w.RequiredAcks, w.Async, w.Compression, w.Stats())
	return p, nil
}

func (p *kafkaGoProducer) send(ctx context.Context, first int, values [][]byte) {
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i].Value = v
		if p.track {
			msgs[i].WriterData = first + i
		}
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		p.w.Completion(msgs, err)
	}
}

func (p *kafkaGoProducer) close() error { return p.w.Close() }

func (p *kafkaGoProducer) config() string { return p.cfg }

type kafkaGoConsumer struct {
	readers []*kafka.Reader
	count   counter
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	cfg     string
}

func newKafkaGoConsumer(s *Spec) (consumer, error) {
	c := &kafkaGoConsumer{}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.count.expect(1 << 62)
	var rc kafka.ReaderConfig
	for i := 0; i < s.Partitions; i++ {
		rc = kafka.ReaderConfig{
			Brokers:   []string{s.Addr},
			Topic:     s.Topic,
			Partition: i,
			MinBytes:  1,
			MaxBytes:  s.FetchPartMax,
			MaxWait:   s.FetchMaxWait,
		}
		r := kafka.NewReader(rc)
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			c.close()
			return nil, err
		}
		c.read(r)
	}
	c.cfg = fmt.Sprintf("kafka.NewReader(cfg) per partition (%d), SetOffset(FirstOffset), ReadMessage loop "+
		"(a Reader fetches one partition; MaxBytes is per fetch)\n  ReaderConfig=%+v", s.Partitions, rc)
	return c, nil
}

// read counts r's messages on a goroutine of its own until close.
func (c *kafkaGoConsumer) read(r *kafka.Reader) {
	c.readers = append(c.readers, r)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			m, err := r.ReadMessage(c.ctx)
			if err != nil {
				return
			}
			_ = len(m.Value)
			c.count.add(1, nil)
		}
	}()
}

func (c *kafkaGoConsumer) consume(ctx context.Context, total int64) (int64, error) {
	err := waitDone(ctx, c.count.expect(total), &c.count)
	return c.count.n.Load(), err
}

func (c *kafkaGoConsumer) close() error {
	c.cancel()
	for _, r := range c.readers {
		r.Close()
	}
	c.wg.Wait()
	return nil
}

func (c *kafkaGoConsumer) config() string { return c.cfg }
