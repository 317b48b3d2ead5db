package kpax

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"
)

func benchRecords() []Record {
	recs := make([]Record, 1000)
	ts := time.UnixMilli(1700000000000)
	for i := range recs {
		key := fmt.Appendf(nil, "key-%012d", i) // 16 bytes
		val := bytes.Repeat([]byte{byte(i)}, 100)
		copy(val, fmt.Sprintf("value %d of the benchmark, somewhat compressible text", i))
		recs[i] = Record{Key: key, Value: val, Timestamp: ts.Add(time.Duration(i) * time.Millisecond)}
	}
	return recs
}

// reportPerRecord reports ns/record and allocs/record for n records per op.
func reportPerRecord(b *testing.B, n int, mallocs uint64) {
	recs := float64(b.N) * float64(n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/recs, "ns/record")
	b.ReportMetric(float64(mallocs)/recs, "allocs/record")
}

func mallocCount() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// BenchmarkRecordBatchEncode encodes 1000 records of a 16-byte key and a
// 100-byte value into one batch. Throughput counts the uncompressed batch.
func BenchmarkRecordBatchEncode(b *testing.B) {
	recs := benchRecords()
	plain := mustBatch(b, NewBatchHeader(), recs, CompressionNone)
	for _, c := range allTestCodecs {
		b.Run(codecTestName(c), func(b *testing.B) {
			var e BatchEncoder
			buf, _ := e.AppendRecordBatch(nil, NewBatchHeader(), recs, c, 0)
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			m := mallocCount()
			for b.Loop() {
				var err error
				if buf, err = e.AppendRecordBatch(buf[:0], NewBatchHeader(), recs, c, 0); err != nil {
					b.Fatal(err)
				}
			}
			reportPerRecord(b, len(recs), mallocCount()-m)
		})
	}
}

// BenchmarkRecordBatchDecode decodes the batches of BenchmarkRecordBatchEncode
// into a reused slice with a reused RecordReader.
func BenchmarkRecordBatchDecode(b *testing.B) {
	recs := benchRecords()
	plain := mustBatch(b, NewBatchHeader(), recs, CompressionNone)
	for _, c := range allTestCodecs {
		b.Run(codecTestName(c), func(b *testing.B) {
			src := mustBatch(b, NewBatchHeader(), recs, c)
			var r RecordReader
			var dec []Record
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			m := mallocCount()
			for b.Loop() {
				r.Reset(src)
				var err error
				if dec, err = r.ReadAll(dec[:0]); err != nil || len(dec) != len(recs) {
					b.Fatal(len(dec), err)
				}
			}
			reportPerRecord(b, len(recs), mallocCount()-m)
		})
	}
}
