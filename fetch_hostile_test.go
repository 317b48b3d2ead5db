package kpax

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

// This file holds the Fetch side of the hostile-response suite: brokers
// whose Fetch responses carry compression bombs or corrupt batches in many
// partitions at once.

// hostileFetchBroker answers ListOffsets with offset 0, and its first Fetch
// with the same batch for every partition; later fetches get no records.
type hostileFetchBroker struct {
	batch []byte
	mu    sync.Mutex
	sent  int // partitions the batch went to
	done  bool
}

// bombBatch returns a v2 batch of one record whose records field is the
// compressed data (the CRC is right, so only decompressing can refuse it).
func bombBatch(t *testing.T, c Compression, data []byte) []byte {
	t.Helper()
	b, err := AppendRecordBatch(nil, NewBatchHeader(), []Record{{Value: []byte("x")}}, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b[:batchHeaderLen:batchHeaderLen], data...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-entryHeaderLen))
	setCRCv2(b)
	return b
}

func (h *hostileFetchBroker) handle(req Request, v int16) Response {
	switch r := req.(type) {
	case *ListOffsetsRequest:
		resp := &ListOffsetsResponse{}
		for _, t := range r.Topics {
			rt := ListOffsetsResponseTopic{Name: t.Name}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, ListOffsetsResponseTopicPartition{PartitionIndex: p.PartitionIndex, Timestamp: -1, LeaderEpoch: -1})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *FetchRequest:
		resp := &FetchResponse{}
		h.mu.Lock()
		first := !h.done
		h.done = true
		h.mu.Unlock()
		for _, t := range r.Topics {
			rt := FetchResponseItem{Topic: t.Topic, TopicID: t.TopicID}
			for _, p := range t.Partitions {
				fp := FetchResponseItemPartition{PartitionIndex: p.Partition, HighWatermark: 1, LastStableOffset: 1, PreferredReadReplica: -1}
				if first {
					fp.Records = h.batch
					h.mu.Lock()
					h.sent++
					h.mu.Unlock()
				}
				rt.Partitions = append(rt.Partitions, fp)
			}
			resp.Responses = append(resp.Responses, rt)
		}
		if !first {
			time.Sleep(time.Duration(r.MaxWaitMs) * time.Millisecond)
		}
		return resp
	}
	return nil
}

// pollErrors polls until an error comes, then for a little longer, and
// returns the errors (at most d in all).
func pollErrors(cons *Consumer, d time.Duration) []error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var errs []error
	for {
		fe, err := cons.Poll(ctx)
		if err != nil {
			return errs
		}
		if len(errs) == 0 && len(fe.Errors) > 0 {
			cancel()
			ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
		}
		errs = append(errs, fe.Errors...)
	}
}

// TestFetchBombsBounded: a Fetch response whose partitions each hold a
// compression bomb (192 MiB of zeros, under the per-partition bound) costs
// about the per-response decompression budget, not partitions times the
// per-partition bound, for every codec; the partition that decompresses its
// bomb fails with a clear error (no panic), the others stop at the budget,
// and the client keeps working. The control, one
// partition, shows what one bomb costs: the limit that bounds eight is the
// response's.
func TestFetchBombsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 192 MiB bombs")
	}
	size := 192 << 20
	race := !compressPoolsKeep()
	if race { // smaller bombs, as in TestCompressBombs
		size = 64 << 20
	}
	for _, c := range []Compression{CompressionGzip, CompressionZstd, CompressionLZ4, CompressionSnappy} {
		if race && (c == CompressionGzip || c == CompressionZstd) {
			continue // a minute under the race detector; lz4 and snappy take the same path
		}
		bomb := repeatedBomb(t, c, size)
		for _, parts := range []int32{1, 8} {
			t.Run(c.String()+"/"+string(rune('0'+parts)), func(t *testing.T) {
				hb := &hostileFetchBroker{batch: bombBatch(t, c, bomb)}
				f := newFakeCluster(t, parts, hb.handle)
				cl := newTestClient(t, f.addr(), WithRetryBackoff(time.Second, time.Second))
				cons, err := cl.NewConsumer(WithFetchMaxWait(50 * time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				assign := map[int32]Offset{}
				for p := range parts {
					assign[p] = AtOffset(0)
				}
				cons.Assign(map[string]map[int32]Offset{"t": assign})
				h := startHeapSampler()
				start := time.Now()
				errs := pollErrors(cons, 20*time.Second)
				took := time.Since(start)
				peak := h.done()
				if len(errs) == 0 {
					t.Fatal("no partition error")
				}
				for _, e := range errs {
					if !errors.Is(e, ErrCorruptRecords) {
						t.Errorf("error %v does not wrap ErrCorruptRecords", e)
					}
				}
				hb.mu.Lock()
				sent := hb.sent
				hb.mu.Unlock()
				t.Logf("%v %d partitions of %d MiB bombs (%d KiB each on the wire, %d sent): %d errors in %v, peak heap +%d MiB; first: %v",
					c, parts, size>>20, len(hb.batch)>>10, sent, len(errs), took.Round(time.Millisecond), peak>>20, errs[0])
				// Growing the output by doubling may hold twice the budget;
				// reading the response, twice the bytes on the wire.
				wire := uint64(parts) * uint64(len(hb.batch))
				if budget := cons.fetchDecompressBudget(); parts > 1 && peak > 2*uint64(budget)+2*wire+32<<20 {
					t.Errorf("peak heap +%d MiB, want at most twice the response budget %d MiB and the response", peak>>20, budget>>20)
				}
				if parts == 1 && peak < uint64(size) {
					t.Errorf("control: peak heap +%d MiB below the bomb's %d MiB: it did not bite", peak>>20, size>>20)
				}
				cons.Close(context.Background())
				mustMetadataOf(t, cl)
				checkNoLeak(t, cl, f.close)
			})
		}
	}
}

// repeatedBomb returns data that decompresses to size bytes of zeros, cheap
// to build: 1 MiB of zeros compressed once, repeated as gzip members, zstd
// frames, lz4 frames or xerial snappy chunks (each a valid stream of
// streams).
func repeatedBomb(t *testing.T, c Compression, size int) []byte {
	t.Helper()
	piece := 1 << 20
	if c == CompressionSnappy {
		piece = 32 << 10 // a xerial chunk
	}
	one, err := appendCompressed(nil, c, 0, make([]byte, piece), false)
	if err != nil {
		t.Fatal(err)
	}
	var prefix []byte
	if c == CompressionSnappy { // repeat the chunks, not the stream header
		prefix, one = one[:len(xerialHeader)], one[len(xerialHeader):]
	}
	return append(prefix, bytes.Repeat(one, size/piece)...)
}

// mustMetadataOf checks that a routed Metadata request works.
func mustMetadataOf(t *testing.T, cl *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Metadata(ctx, "t"); err != nil {
		t.Fatalf("the next request: %v", err)
	}
}

// TestFetchCorruptBatches: a Fetch response whose batch is corrupt (a bad
// CRC in a v2 batch or a v1 message, impossible counts and lengths under a
// good CRC) reaches the Consumer as a partition error that wraps
// ErrCorruptRecords, never a panic nor a record; the client keeps working.
// The control, the same batch intact, is delivered: what bites is the
// corruption.
func TestFetchCorruptBatches(t *testing.T) {
	recs := []Record{{Key: []byte("key"), Value: []byte("value")}}
	good := mustBatch(t, NewBatchHeader(), recs, CompressionNone)
	edit := func(src []byte, fix func([]byte), f func(b []byte)) []byte {
		b := joinBytes(src)
		f(b)
		if fix != nil {
			fix(b)
		}
		return b
	}
	msg := mustMessageSet(t, 1, 0, recs, CompressionNone)
	tests := []struct {
		name  string
		batch []byte
		bad   bool
	}{
		{"control", good, false},
		{"control v1", msg, false},
		{"batch CRC", edit(good, nil, func(b []byte) { b[len(b)-1] ^= 0xff }), true},
		{"message v1 CRC", edit(msg, nil, func(b []byte) { b[len(b)-1] ^= 0xff }), true},
		{"record count 0x7fffffff", edit(good, setCRCv2, func(b []byte) { copy(b[57:], beInt32(0x7fffffff)) }), true},
		{"record count -1", edit(good, setCRCv2, func(b []byte) { copy(b[57:], beInt32(-1)) }), true},
		{"record length past the batch", edit(good, setCRCv2, func(b []byte) { b[61] = 0x7e }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hb := &hostileFetchBroker{batch: tt.batch}
			f := newFakeCluster(t, 1, hb.handle)
			cl := newTestClient(t, f.addr(), WithRetryBackoff(time.Second, time.Second))
			cons, err := cl.NewConsumer(WithFetchMaxWait(50 * time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			cons.Assign(map[string]map[int32]Offset{"t": {0: AtOffset(0)}})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var got []Record
			var errs []error
			for len(got) == 0 && len(errs) == 0 {
				fe, err := cons.Poll(ctx)
				if err != nil {
					t.Fatalf("Poll: %v (no record, no error)", err)
				}
				got = append(got, fe.Records...)
				errs = append(errs, fe.Errors...)
			}
			t.Logf("figures: %d records, errors %v", len(got), errs)
			if !tt.bad {
				if len(errs) > 0 || len(got) != 1 || string(got[0].Value) != "value" {
					t.Fatalf("control: records %v, errors %v: want the record", got, errs)
				}
			} else {
				if len(got) > 0 {
					t.Errorf("a corrupt batch gave records %v", got)
				}
				for _, e := range errs {
					var pe *PartitionError
					if !errors.Is(e, ErrCorruptRecords) || !errors.As(e, &pe) || pe.Topic != "t" || pe.Partition != 0 {
						t.Errorf("error %v: want a PartitionError of t/0 wrapping ErrCorruptRecords", e)
					}
				}
			}
			cons.Close(context.Background())
			mustMetadataOf(t, cl)
			checkNoLeak(t, cl, f.close)
		})
	}
}
