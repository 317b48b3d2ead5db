package kpax

import (
	"bytes"
	"fmt"
	"testing"
)

// TestProduceFrame: the frame a sink encodes in place is, byte for byte,
// what the generated encoder (appendRequest) writes for the same request,
// for every Produce version, with and without compression and a
// transactional ID, with several topics, and where a flexible version's
// Records length takes fewer or more bytes than its budget reserved (the
// batch moves).
func TestProduceFrame(t *testing.T) {
	val := bytes.Repeat([]byte("kpax frame "), 20)
	txnID := "txn-1"
	for v := int16(0); v <= (&ProduceRequest{}).MaxVersion(); v++ {
		for _, tt := range []struct {
			name   string
			codec  Compression
			txn    bool
			budget func(real int) int // a batch's bytes, as the frame budget sees it
		}{
			{"plain", CompressionNone, false, nil},
			{"lz4", CompressionLZ4, false, nil},
			{"zstd-txn", CompressionZstd, true, nil},
			{"budget-small", CompressionNone, false, func(int) int { return 0 }},       // varint grows: the batch moves right
			{"budget-large", CompressionGzip, false, func(int) int { return 1 << 22 }}, // varint shrinks: the batch moves left
		} {
			t.Run(fmt.Sprintf("v%d/%s", v, tt.name), func(t *testing.T) {
				if tt.codec == CompressionZstd && v < 7 {
					t.Skip("zstd needs Produce v7")
				}
				cl := &Client{cfg: defaultConfig()}
				cl.cfg.clientID = "frame-test"
				p := &Producer{cl: cl, cfg: defaultProducerConfig()}
				p.cfg.compression, p.cfg.compressionLevel = tt.codec, 0
				s := &sink{p: p, bufs: make(chan []byte, 1)}
				req := &ProduceRequest{Acks: -1, TimeoutMs: 1500}
				if tt.txn {
					req.TransactionalID = &txnID
				}
				// Topics out of order: the sink sorts them into runs.
				var bs []*batch
				for i, topic := range []string{"b", "a", "b", "c"} {
					ps := &partState{tp: topicPartition{topic, int32(i)}}
					b := &batch{ps: ps, seq: -1}
					for j := 0; j < 40*(i+1); j++ {
						r := &Record{Topic: topic, Key: []byte{byte(j)}, Value: val}
						b.recs = append(b.recs, pending{rec: r, size: recordSize(r)})
						b.bytes += recordSize(r)
					}
					if tt.budget != nil {
						b.bytes = tt.budget(b.bytes)
					}
					bs = append(bs, b)
				}
				sortByTopic(bs)
				for _, b := range bs {
					addToProduce(req, b.ps.tp, UUID{1, byte(len(b.ps.tp.topic))})
				}
				f := &flight{batches: bs}
				if err := s.encodeProduce(f, req, frameEncoding{version: v, flex: req.IsFlexible(v)}); err != nil {
					t.Fatal(err)
				}
				want := appendRequest(nil, req, v, 0, cl.cfg.clientID)
				if !bytes.Equal(f.buf, want) {
					t.Fatalf("frame (%d bytes) differs from appendRequest's (%d bytes)", len(f.buf), len(want))
				}
				var back ProduceRequest
				hdr := len(appendRequestHeader(nil, req, v, 0, cl.cfg.clientID))
				if err := back.Decode(f.buf[hdr:], v); err != nil {
					t.Fatalf("decode: %v", err)
				}
				if n := len(back.TopicData); n != 3 {
					t.Fatalf("%d topics, want 3 (a, b, c)", n)
				}
			})
		}
	}
}

// TestUvarintLen matches encoding/binary's encoding.
func TestUvarintLen(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<63 + 5} {
		if got, want := uvarintLen(v), len(appendUvarint(nil, v)); got != want {
			t.Errorf("uvarintLen(%d) = %d, want %d", v, got, want)
		}
	}
}
