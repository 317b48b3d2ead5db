package kpax

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"
	"unsafe"
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

// TestFrameBuf: which free request buffer a sink reuses for a frame of n bytes, and how many it
// keeps.
func TestFrameBuf(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name      string
		free      int // the free buffer's capacity; 0: none
		n         int
		budget    bool
		oversized int // frames in a row that already took a much larger buffer
		reused    bool
	}{
		{"none free", 0, 100, false, 0, false},
		{"fits", 1000, 1000, false, 0, true},
		{"too small", 999, 1000, false, 0, false},
		{"up to 1 MiB is never too large", mib, 10, false, 0, true},
		{"up to 4n is never too large", 4 * 2 * mib, 2 * mib, false, 0, true},
		{"much larger, for a while", 8 * mib, 100, false, oversizedFrames - 1, true},
		{"much larger, for too long", 8 * mib, 100, false, oversizedFrames, false},
		{"much larger, under a budget", 8 * mib, 100, true, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Producer{cfg: defaultProducerConfig()}
			if tt.budget {
				p.budget = &memBudget{max: 64 * mib}
			}
			s := &sink{p: p, bufs: make(chan []byte, reqBufsKept(p)), oversized: tt.oversized}
			var free []byte
			if tt.free > 0 {
				free = make([]byte, 0, tt.free)
				s.bufs <- free
			}
			b, kept := s.frameBuf(tt.n)
			if cap(b) < tt.n || len(b) != 0 {
				t.Fatalf("len %d cap %d for %d bytes", len(b), cap(b), tt.n)
			}
			if reused := free != nil && &b[:1][0] == &free[:1][0]; reused != tt.reused || kept != tt.reused {
				t.Errorf("reused the free buffer: %v (kept %v), want %v", reused, kept, tt.reused)
			}
		})
	}
	p := &Producer{cfg: defaultProducerConfig()}
	if got, want := reqBufsKept(p), min(p.cfg.maxInFlight, maxUnwritten)+1; got != want {
		t.Errorf("a sink keeps %d buffers, want one per frame that may be unwritten and one more: %d", got, want)
	}
}

// TestFreeBufWaits checks that a sink encodes no frame while maxUnwritten of its frames wait
// for the connection's writer, and what ends the wait.
func TestFreeBufWaits(t *testing.T) {
	tests := []struct {
		name   string
		out    int  // unwritten frames
		budget bool // under a memory budget (no wait)
		end    func(s *sink, bufs [][]byte, calls []*call)
		reused int // the buffer freeBuf returns: its index in bufs, -1 for none
		left   int // unwritten frames after
	}{
		{"room for one more", maxUnwritten - 1, false, nil, -1, maxUnwritten - 1},
		{"under a budget", maxUnwritten, true, nil, -1, maxUnwritten},
		{"the oldest written", maxUnwritten, false, func(s *sink, bufs [][]byte, _ []*call) { s.bufs <- bufs[0][:0] }, 0, maxUnwritten - 1},
		{"a later one written", maxUnwritten, false, func(s *sink, bufs [][]byte, _ []*call) { s.bufs <- bufs[1][:0] }, 1, maxUnwritten - 1},
		{"the oldest's call ended unwritten", maxUnwritten, false, func(_ *sink, _ [][]byte, calls []*call) { calls[0].finish(io.EOF) }, -1, maxUnwritten - 1},
		{"the oldest's connection closed with it queued", maxUnwritten, false, func(s *sink, _ [][]byte, _ []*call) { close(s.out[0].conn.done) }, -1, maxUnwritten - 1},
		{"stopped", maxUnwritten, false, func(s *sink, _ [][]byte, _ []*call) { close(s.stopc) }, -1, maxUnwritten},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Producer{cfg: defaultProducerConfig(), ctx: context.Background()}
			if tt.budget {
				p.budget = &memBudget{max: 64 << 20}
			}
			s := &sink{p: p, bufs: make(chan []byte, reqBufsKept(p)), stopc: make(chan struct{})}
			var bufs [][]byte
			var calls []*call
			for range tt.out {
				b, c := make([]byte, 10, 100), &call{done: make(chan struct{})}
				bufs, calls = append(bufs, b), append(calls, c)
				s.out = append(s.out, outFrame{call: c, conn: &conn{done: make(chan struct{})}, data: unsafe.SliceData(b)})
			}
			if tt.end != nil {
				go func() {
					time.Sleep(20 * time.Millisecond)
					tt.end(s, bufs, calls)
				}()
			}
			b, ok := s.freeBuf()
			if tt.reused >= 0 {
				if !ok || unsafe.SliceData(b) != unsafe.SliceData(bufs[tt.reused]) {
					t.Fatalf("freeBuf gave %v (cap %d), want the buffer of frame %d back", ok, cap(b), tt.reused)
				}
			} else if ok {
				t.Fatalf("freeBuf gave a buffer of cap %d, want none", cap(b))
			}
			if len(s.out) != tt.left {
				t.Errorf("%d frames unwritten after, want %d", len(s.out), tt.left)
			}
		})
	}
}
