package main

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestClientsAgainstSink runs every client's producer (both acks modes, a
// codec, 1 and 6 partitions), consumer and open-loop latency run against an
// in-process sink: the adapters work and every record gets its outcome.
func TestClientsAgainstSink(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	topics := []string{"t-p1", "t-p6", "c-p1", "c-p3", "lat-p1"}
	s, err := newSink(ln, topics)
	if err != nil {
		t.Fatal(err)
	}
	go s.accept(ln)
	addr := ln.Addr().String()
	for _, client := range []string{"kpax", "franz-go", "sarama", "kafka-go"} {
		impl := clients[client]
		for _, tc := range []struct {
			acks  int
			comp  string
			topic string
			parts int
		}{{1, "none", "t-p1", 1}, {-1, "lz4", "t-p6", 6}, {-1, "zstd", "t-p1", 1}} {
			spec := Spec{Kind: "produce", Client: client, Broker: "sink", Addr: addr, Topic: tc.topic,
				Partitions: tc.parts, N: 3000, Acks: tc.acks, Idempotent: tc.acks == -1, Compression: tc.comp,
				Linger: time.Millisecond, MaxBatchBytes: maxBatchBytes, MaxBuffered: maxBuffered, Goroutines: 4, Warmup: 100}
			var res Result
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := runProduce(ctx, impl, &spec, &res)
			cancel()
			if err != nil || res.Errors != 0 || res.Err != "" {
				t.Errorf("%s produce %+v: err %v, %d record errors, %s", client, tc, err, res.Errors, res.Err)
			}
		}
		for _, topic := range []string{"c-p1", "c-p3"} {
			parts := 1
			if topic == "c-p3" {
				parts = 3
			}
			spec := Spec{Kind: "consume", Client: client, Broker: "sink", Addr: addr, Topic: topic, Partitions: parts,
				N: 5000, FetchMaxBytes: fetchMaxBytes, FetchPartMax: fetchPartMax, FetchMaxWait: fetchMaxWait}
			var res Result
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := runConsume(ctx, impl.newConsumer, &spec, &res)
			cancel()
			if err != nil || res.Records < spec.N {
				t.Errorf("%s consume %s: err %v, %d records", client, topic, err, res.Records)
			}
		}
		gspec := Spec{Kind: "group", Client: client, Broker: "sink", Addr: addr, Topic: "c-p3", Partitions: 3,
			Group: "g-" + client, N: 5000, FetchMaxBytes: fetchMaxBytes, FetchPartMax: fetchPartMax, FetchMaxWait: fetchMaxWait}
		var gres Result
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := runConsume(ctx, groups[client], &gspec, &gres)
		cancel()
		if err != nil || gres.Records < gspec.N {
			t.Errorf("%s group consume: err %v, %d records", client, err, gres.Records)
		}
		spec := Spec{Kind: "latency", Client: client, Broker: "sink", Addr: addr, Topic: "lat-p1", Partitions: 1,
			Acks: -1, Idempotent: true, Compression: "none", Linger: time.Millisecond, MaxBatchBytes: maxBatchBytes,
			MaxBuffered: maxBuffered, Goroutines: 1, Rate: 5000, Duration: 200 * time.Millisecond, Warmup: 10}
		var res Result
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		err = runLatency(ctx, impl, &spec, &res)
		cancel()
		if err != nil || res.Records != 1000 || res.P50us <= 0 || res.P999us < res.P50us {
			t.Errorf("%s latency: err %v, %d records, p50 %v p99.9 %v", client, err, res.Records, res.P50us, res.P999us)
		}
	}
}

func TestPayloads(t *testing.T) {
	vals := payloads()
	seen := map[string]bool{}
	for _, v := range vals {
		if len(v) != 100 {
			t.Fatalf("value of %d bytes", len(v))
		}
		seen[string(v)] = true
	}
	if len(vals) != 4096 || len(seen) != 4096 {
		t.Fatalf("%d values, %d distinct", len(vals), len(seen))
	}
}

func TestStat(t *testing.T) {
	if s := statOf([]float64{5, 1, 3}); s != (stat{Med: 3, Min: 1, Max: 5}) {
		t.Errorf("odd: %+v", s)
	}
	if s := statOf([]float64{4, 1, 3, 2}); s.Med != 2.5 {
		t.Errorf("even: %+v", s)
	}
}
