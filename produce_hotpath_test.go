package kpax

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests of the producer's hot path (produce.go/sender.go: pending slices
// reused between batches, request buffers reused between requests, batches
// encoded in place from the pending records, the cached clock for
// deadlines) against the in-process fake broker, which here decodes what it
// is sent to check it.

// logBroker is a fake broker's Produce handler that decodes every batch
// and appends its records to a per-partition log, answering with the base
// offset of what it appended.
type logBroker struct {
	mu   sync.Mutex
	logs map[int32][]string // partition → values, by offset
	err  error              // first decoding problem
}

func (lb *logBroker) handle(req Request, _ int16) Response {
	pr, ok := req.(*ProduceRequest)
	if !ok {
		return nil
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	resp := &ProduceResponse{}
	var rr RecordReader
	var recs []Record
	for _, td := range pr.TopicData {
		rt := ProduceResponseItem{Name: td.Name, TopicID: td.TopicID}
		for _, pd := range td.PartitionData {
			rr.Reset(pd.Records)
			var err error
			if recs, err = rr.ReadAll(recs[:0]); err != nil && lb.err == nil {
				lb.err = err
			}
			base := int64(len(lb.logs[pd.Index]))
			for _, r := range recs {
				lb.logs[pd.Index] = append(lb.logs[pd.Index], string(r.Value)) // r.Value aliases the request buffer
			}
			rt.PartitionResponses = append(rt.PartitionResponses, ProduceResponseItemPartitionResponse{
				Index: pd.Index, BaseOffset: base, LogAppendTimeMs: -1})
		}
		resp.Responses = append(resp.Responses, rt)
	}
	return resp
}

// TestProduceHotPathOrderAndOffsets produces from several goroutines with
// batches and a buffer small enough that every reuse path runs (full runs
// cut while a later one fills, runs grown and taken from the free slices,
// backpressure), then checks against what the broker decoded: every
// record acknowledged once, at the offset where the broker has its value,
// and each goroutine's records in order within their partition.
func TestProduceHotPathOrderAndOffsets(t *testing.T) {
	tests := []struct {
		name  string
		codec Compression
		acks  Acks
	}{
		{"none-acks1", CompressionNone, 1},
		{"lz4-idempotent", CompressionLZ4, -1},
		{"zstd-acks1", CompressionZstd, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb := &logBroker{logs: map[int32][]string{}}
			f := newFakeCluster(t, 3, lb.handle)
			cl, err := New(WithSeedBrokers(f.addr()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			p, err := cl.NewProducer(WithAcks(tt.acks), WithLinger(time.Millisecond), WithCompression(tt.codec),
				WithMaxBatchBytes(2048), WithMaxBufferedRecords(300), WithMaxBufferedBytes(64<<10))
			if err != nil {
				t.Fatal(err)
			}
			const writers, perWriter = 5, 2000
			var mu sync.Mutex
			acked := map[string]int{}   // value → callbacks
			where := map[string]int64{} // value → offset
			part := map[string]int32{}
			var failures []error
			cb := func(r *Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures = append(failures, err)
					return
				}
				v := string(r.Value)
				acked[v]++
				where[v], part[v] = r.Offset, r.Partition
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					recs := make([]Record, perWriter)
					for i := range recs {
						key := []byte("k" + strconv.Itoa(w)) // one partition per writer
						if w == writers-1 {
							key = nil // sticky: spread over partitions by batch
						}
						recs[i] = Record{Topic: "hot", Key: key, Value: []byte(fmt.Sprintf("%d-%05d-%s", w, i, strings.Repeat("x", i%97)))}
						if err := p.Produce(ctx, &recs[i], cb); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			lb.mu.Lock()
			defer lb.mu.Unlock()
			if lb.err != nil {
				t.Fatalf("broker could not decode a batch: %v", lb.err)
			}
			if len(failures) > 0 {
				t.Fatalf("%d records failed, first: %v", len(failures), failures[0])
			}
			if len(acked) != writers*perWriter {
				t.Fatalf("%d records acknowledged, want %d", len(acked), writers*perWriter)
			}
			total := 0
			for v, n := range acked {
				if n != 1 {
					t.Fatalf("record %s acknowledged %d times", v, n)
				}
				log := lb.logs[part[v]]
				if off := where[v]; off < 0 || off >= int64(len(log)) || log[off] != v {
					t.Fatalf("record %s acknowledged at %d/%d, which the broker does not hold", v, part[v], off)
				}
			}
			for p, log := range lb.logs {
				total += len(log)
				last := map[string]int{}
				for _, v := range log {
					w, rest, _ := strings.Cut(v, "-")
					i, _ := strconv.Atoi(rest[:5])
					if prev, ok := last[w]; ok && w != strconv.Itoa(writers-1) && i != prev+1 {
						t.Fatalf("partition %d: writer %s record %d after %d", p, w, i, prev)
					}
					last[w] = i
				}
			}
			if total != writers*perWriter {
				t.Fatalf("broker holds %d records, want %d (duplicates?)", total, writers*perWriter)
			}
		})
	}
}

// TestProduceSteadyStateAllocs checks the goal of at most one
// allocation per record, with a wide margin: in steady state the producer
// allocates per request, not per record. Mallocs are process-wide, so the
// fake broker's per-request allocations count too.
func TestProduceSteadyStateAllocs(t *testing.T) {
	f := newFakeCluster(t, 1, nil)
	cl, err := New(WithSeedBrokers(f.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p, err := cl.NewProducer(WithAcks(1), WithLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	vals := benchValues()
	recs := make([]Record, 20000)
	for i := range recs {
		recs[i] = Record{Topic: "allocs", Value: vals[i%len(vals)]}
	}
	run := func() {
		for i := range recs {
			if err := p.Produce(ctx, &recs[i], nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	run() // warm up: metadata, connection, pools
	run()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	const rounds = 5
	for range rounds {
		run()
	}
	runtime.ReadMemStats(&m1)
	per := float64(m1.Mallocs-m0.Mallocs) / float64(rounds*len(recs))
	t.Logf("%.4f allocations per record", per)
	if per > 0.05 {
		t.Errorf("%.4f allocations per record, want ~0 (≤0.05)", per)
	}
	p.Close(ctx)
}

// TestProduceDeliveryTimeoutClock checks the cached clock behind record
// deadlines: a record that joins a pending run late gets its deadline from
// a clock at most one sender pass old, so it expires no more than that
// early, and not at the run's start. The partition's linger (1s) keeps the
// run pending past the delivery timeout (300ms).
func TestProduceDeliveryTimeoutClock(t *testing.T) {
	f := newFakeCluster(t, 1, nil)
	cl, err := New(WithSeedBrokers(f.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const timeout = 300 * time.Millisecond
	p, err := cl.NewProducer(WithAcks(1), WithLinger(time.Second), WithDeliveryTimeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	warm := make(chan error, 1)
	if err := p.Produce(ctx, &Record{Topic: "clock", Value: []byte("warm")}, func(_ *Record, err error) { warm <- err }); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil { // the linger would outlast the timeout
		t.Fatal(err)
	}
	if err := <-warm; err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		err  error
		took time.Duration
	}
	produce := func() <-chan outcome {
		ch := make(chan outcome, 1)
		start := time.Now()
		if err := p.Produce(ctx, &Record{Topic: "clock", Value: []byte("v")}, func(_ *Record, err error) {
			ch <- outcome{err, time.Since(start)}
		}); err != nil {
			t.Fatal(err)
		}
		return ch
	}
	first := produce()
	time.Sleep(250 * time.Millisecond)
	late := produce() // joins the run started by first
	a, b := <-first, <-late
	for _, o := range []outcome{a, b} {
		if o.err == nil || !strings.Contains(o.err.Error(), "delivery timeout") {
			t.Fatalf("want a delivery timeout, got %v", o.err)
		}
	}
	t.Logf("first record expired after %v, late record after %v", a.took, b.took)
	// Expiry is checked once per sender pass (≤100ms), and the late
	// record's clock may be one pass old.
	if a.took < timeout || a.took > timeout+400*time.Millisecond {
		t.Errorf("first record expired after %v, want about %v", a.took, timeout)
	}
	if b.took < timeout-150*time.Millisecond || b.took > timeout+400*time.Millisecond {
		t.Errorf("late record expired after %v, want about %v (its own Produce, not the run's start)", b.took, timeout)
	}
	p.Close(ctx)
}

// TestPendingRuns checks that a partition's pending records form runs of at
// most a batch each, in Produce order, and that cutBatch takes them whole:
// each batch is the longest run of the oldest records within maxBatchBytes.
func TestPendingRuns(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
		want  [][]int // each batch's record sizes, in cut order
	}{
		{"one record", []int{40}, [][]int{{40}}},
		{"exactly a batch", []int{50, 50}, [][]int{{50, 50}}},
		{"one byte over", []int{50, 50, 1}, [][]int{{50, 50}, {1}}},
		{"runs", []int{40, 40, 40, 40, 40, 100, 10}, [][]int{{40, 40}, {40, 40}, {40}, {100}, {10}}},
		{"growing runs", slices.Repeat([]int{1}, 250), [][]int{slices.Repeat([]int{1}, 100), slices.Repeat([]int{1}, 100), slices.Repeat([]int{1}, 50)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultProducerConfig()
			cfg.maxBatchBytes = 100
			p := &Producer{cfg: cfg, wake: make(chan struct{}, 1), parts: map[topicPartition]*partState{}, epoch: time.Now()}
			tp := topicPartition{"t", 0}
			ps := &partState{tp: tp, leader: -1}
			p.parts[tp] = ps
			var recs []*Record
			for i, size := range tt.sizes {
				r := &Record{Topic: "t", Offset: int64(i)}
				recs = append(recs, r)
				p.addPending(tp, pending{rec: r, size: size})
			}
			total := 0
			for _, s := range tt.sizes {
				total += s
			}
			if ps.pendBytes != total {
				t.Fatalf("pendBytes %d, want %d", ps.pendBytes, total)
			}
			next := 0
			for i, want := range tt.want {
				if len(ps.pending) == 0 {
					t.Fatalf("batch %d: no records pending", i)
				}
				b := p.cutBatch(ps)
				var got []int
				for _, pr := range b.recs {
					if pr.rec != recs[next] {
						t.Fatalf("batch %d: record %d out of Produce order", i, pr.rec.Offset)
					}
					got, next = append(got, pr.size), next+1
				}
				if !slices.Equal(got, want) {
					t.Errorf("batch %d: sizes %v, want %v", i, got, want)
				}
				if sum := b.bytes; sum > cfg.maxBatchBytes && len(got) > 1 {
					t.Errorf("batch %d: %d bytes, over the max %d", i, sum, cfg.maxBatchBytes)
				}
			}
			if len(ps.pending) != 0 || len(ps.full) != 0 || ps.pendBytes != 0 || ps.runBytes != 0 {
				t.Errorf("left: %d pending, %d full runs, %d bytes, %d in the run", len(ps.pending), len(ps.full), ps.pendBytes, ps.runBytes)
			}
		})
	}
}
