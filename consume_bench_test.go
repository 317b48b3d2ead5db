package kpax

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"
)

// benchFetchBroker answers Fetch with synthetic record batches: batches of
// benchBatchRecords records, pre-encoded once, whose base offsets are
// patched to follow the offset asked for (the base offset is outside the
// batch CRC). It never stores anything, so the consumer can read as many
// records as a benchmark needs.
type benchFetchBroker struct {
	batch []byte // one encoded batch, base offset 0
	mu    sync.Mutex
	buf   []byte // reused response records; the fake encodes before the next request
}

const benchBatchRecords = 1000

func newBenchFetchBroker(tb testing.TB, c Compression) *benchFetchBroker {
	vals := benchValues()
	recs := make([]Record, benchBatchRecords)
	ts := time.UnixMilli(1_700_000_000_000)
	for i := range recs {
		recs[i] = Record{Value: vals[i%len(vals)], Timestamp: ts}
	}
	batch, err := AppendRecordBatch(nil, NewBatchHeader(), recs, c, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return &benchFetchBroker{batch: batch}
}

// records returns batches from offset on (offset is a multiple of
// benchBatchRecords, as the consumer only asks for the offset after the
// last batch), at most max bytes and 16 batches.
func (b *benchFetchBroker) records(offset int64, max int32) []byte {
	b.buf = b.buf[:0]
	for i := 0; i < 16 && len(b.buf)+len(b.batch) <= int(max); i++ {
		start := len(b.buf)
		b.buf = append(b.buf, b.batch...)
		binary.BigEndian.PutUint64(b.buf[start:], uint64(offset+int64(i*benchBatchRecords)))
	}
	return b.buf
}

func (b *benchFetchBroker) handle(req Request, v int16) Response {
	switch r := req.(type) {
	case *ListOffsetsRequest:
		resp := &ListOffsetsResponse{}
		for _, t := range r.Topics {
			rt := ListOffsetsResponseTopic{Name: t.Name}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, ListOffsetsResponseTopicPartition{PartitionIndex: p.PartitionIndex, Offset: 0, Timestamp: -1, LeaderEpoch: -1})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *FetchRequest:
		b.mu.Lock()
		defer b.mu.Unlock()
		resp := &FetchResponse{}
		for _, t := range r.Topics {
			rt := FetchResponseItem{Topic: t.Topic, TopicID: t.TopicID}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, FetchResponseItemPartition{
					PartitionIndex: p.Partition, HighWatermark: 1 << 62, LastStableOffset: 1 << 62,
					LogStartOffset: 0, PreferredReadReplica: -1,
					Records: b.records(p.FetchOffset, p.PartitionMaxBytes),
				})
			}
			resp.Responses = append(resp.Responses, rt)
		}
		return resp
	}
	return nil
}

// BenchmarkConsume measures the consumer's hot path: Poll over 100-byte
// records (1000 per batch) fetched from an in-process broker that serves
// synthetic batches from memory. It reports records/s, allocations per
// record (the whole process, the fake broker's few per response included)
// and CPU per record three ways, as BenchmarkProduce does: cpu-ns/record
// for the process, broker-cpu-ns/record for the fake broker's connection
// goroutine (on its own OS thread: reading the request, copying the
// batches into the response, writing it) and client-cpu-ns/record, the
// difference: fetching, decompressing, decoding and handing out records.
func BenchmarkConsume(b *testing.B) {
	for _, c := range []Compression{CompressionNone, CompressionLZ4, CompressionZstd} {
		b.Run(c.String(), func(b *testing.B) {
			fb := newBenchFetchBroker(b, c)
			f := newFakeCluster(b, 1, fb.handle)
			f.measureCPU.Store(true)
			cl, err := New(WithSeedBrokers(f.addr()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			cons, err := cl.NewConsumer()
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			defer cons.Close(ctx)
			cons.Assign(map[string]map[int32]Offset{"bench": {0: AtOffset(0)}})
			// Warm up: metadata, connection, the first fetches.
			var sum int
			for n := 0; n < 4*benchBatchRecords; {
				fe, err := cons.Poll(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(fe.Errors) > 0 {
					b.Fatal(fe.Errors)
				}
				n += len(fe.Records)
			}
			b.ReportAllocs()
			b.ResetTimer()
			m0 := mallocCount()
			cpu0, t0, broker0 := cpuTime(), time.Now(), f.serveCPU.Load()
			for n := 0; n < b.N; {
				fe, err := cons.Poll(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(fe.Errors) > 0 {
					b.Fatal(fe.Errors)
				}
				for i := range fe.Records {
					sum += len(fe.Records[i].Value)
				}
				n += len(fe.Records)
			}
			b.StopTimer()
			cpu, wall, broker := cpuTime()-cpu0, time.Since(t0), f.serveCPU.Load()-broker0
			mallocs := mallocCount() - m0
			b.ReportMetric(float64(b.N)/wall.Seconds(), "records/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
			b.ReportMetric(float64(broker)/float64(b.N), "broker-cpu-ns/record")
			b.ReportMetric(float64(cpu.Nanoseconds()-broker)/float64(b.N), "client-cpu-ns/record")
			b.ReportMetric(float64(mallocs)/float64(b.N), "allocs/record")
			if sum == 0 {
				b.Fatal("no record bytes")
			}
		})
	}
}
