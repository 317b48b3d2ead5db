package kpax

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var allTestCodecs = []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}

func codecTestName(c Compression) string {
	return [...]string{"none", "gzip", "snappy", "lz4", "zstd"}[c]
}

// setCRCv2 recomputes the CRC-32C of the v2 batch at the start of b.
func setCRCv2(b []byte) {
	n := entryHeaderLen + int(binary.BigEndian.Uint32(b[8:]))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:n], crc32.MakeTable(crc32.Castagnoli)))
}

// setCRCv1 recomputes the CRC-32 of the v0/v1 message at the start of b.
func setCRCv1(b []byte) {
	n := entryHeaderLen + int(binary.BigEndian.Uint32(b[8:]))
	binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:n]))
}

func joinBytes(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func beInt16(v int16) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func beInt32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func beInt64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func mustBatch(t testing.TB, h BatchHeader, recs []Record, c Compression) []byte {
	t.Helper()
	b, err := AppendRecordBatch(nil, h, recs, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustMessageSet(t testing.TB, magic int8, base int64, recs []Record, c Compression) []byte {
	t.Helper()
	b, err := AppendMessageSet(nil, magic, base, recs, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAllBatches(t testing.TB, src []byte, keepControl bool) ([]Record, []BatchHeader) {
	t.Helper()
	r := RecordReader{Topic: "t", Partition: 3, KeepControl: keepControl}
	r.Reset(src)
	var recs []Record
	var hs []BatchHeader
	for {
		h, out, err := r.Next(recs)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		recs = out
		hs = append(hs, h)
	}
	return recs, hs
}

// expectV2 returns what decoding recs from a v2 batch with header h gives.
func expectV2(recs []Record, h BatchHeader, base int64) []Record {
	var out []Record
	for i, r := range recs {
		r.Topic, r.Partition = "t", 3
		r.Offset = base + int64(i)
		r.LeaderEpoch = h.PartitionLeaderEpoch
		r.ProducerID, r.ProducerEpoch = h.ProducerID, h.ProducerEpoch
		r.Attrs = h.Attributes
		if len(r.Headers) == 0 {
			r.Headers = nil
		}
		out = append(out, r)
	}
	return out
}

// expectV1 returns what decoding recs from a v0/v1 message set gives.
func expectV1(recs []Record, magic int8, attrs BatchAttrs, base int64) []Record {
	var out []Record
	for i, r := range recs {
		r.Topic, r.Partition = "t", 3
		r.Offset = base + int64(i)
		r.LeaderEpoch, r.ProducerID, r.ProducerEpoch = -1, -1, -1
		r.Attrs = attrs
		if magic == 0 {
			r.Timestamp = time.Time{}
		}
		out = append(out, r)
	}
	return out
}

func TestRecordBatchGolden(t *testing.T) {
	ts := time.UnixMilli(1700000000000)
	recs := []Record{
		{Key: []byte("k1"), Value: []byte("v1"), Headers: []Header{{Key: "h", Value: []byte("x")}}, Timestamp: ts},
		{Key: nil, Value: []byte("v2"), Timestamp: ts.Add(5 * time.Millisecond)},
	}
	h := BatchHeader{BaseOffset: 16, PartitionLeaderEpoch: 5, ProducerID: 7, ProducerEpoch: 1, BaseSequence: 3}

	records := joinBytes(
		// record 0
		[]byte{0x1c},      // length 14 (zig-zag varint)
		[]byte{0x00},      // attributes
		[]byte{0x00},      // timestampDelta 0
		[]byte{0x00},      // offsetDelta 0
		[]byte{0x04},      // keyLength 2
		[]byte("k1"),      // key
		[]byte{0x04},      // valueLength 2
		[]byte("v1"),      // value
		[]byte{0x02},      // header count 1
		[]byte{0x02, 'h'}, // headerKeyLength 1, "h"
		[]byte{0x02, 'x'}, // headerValueLength 1, "x"
		// record 1
		[]byte{0x10}, // length 8
		[]byte{0x00}, // attributes
		[]byte{0x0a}, // timestampDelta 5
		[]byte{0x02}, // offsetDelta 1
		[]byte{0x01}, // keyLength -1: null key
		[]byte{0x04}, // valueLength 2
		[]byte("v2"), // value
		[]byte{0x00}, // header count 0
	)
	afterCRC := joinBytes(
		beInt16(0), // attributes: no compression, create time
		beInt32(1), // lastOffsetDelta
		[]byte{0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00}, // baseTimestamp 1700000000000
		[]byte{0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x05}, // maxTimestamp 1700000000005
		beInt64(7), // producerId
		beInt16(1), // producerEpoch
		beInt32(3), // baseSequence
		beInt32(2), // number of records
		records,
	)
	want := joinBytes(
		beInt64(16), // baseOffset
		beInt32(int32(4+1+4+len(afterCRC))), // batchLength: from partitionLeaderEpoch to the end
		beInt32(5), // partitionLeaderEpoch
		[]byte{2},  // magic
		binary.BigEndian.AppendUint32(nil, crc32.Checksum(afterCRC, crc32.MakeTable(crc32.Castagnoli))),
		afterCRC,
	)
	if len(want) != 61+24 {
		t.Fatalf("golden batch is %d bytes, want 85", len(want))
	}

	got := mustBatch(t, h, recs, CompressionNone)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendRecordBatch:\n got %x\nwant %x", got, want)
	}

	dec, hs := readAllBatches(t, want, false)
	wantH := BatchHeader{BaseOffset: 16, BatchLength: 73, PartitionLeaderEpoch: 5, Magic: 2,
		CRC: binary.BigEndian.Uint32(want[17:]), LastOffsetDelta: 1, FirstTimestamp: 1700000000000,
		MaxTimestamp: 1700000000005, ProducerID: 7, ProducerEpoch: 1, BaseSequence: 3, NumRecords: 2}
	if diff := cmp.Diff([]BatchHeader{wantH}, hs); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(expectV2(recs, wantH, 16), dec); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestMessageSetGolden(t *testing.T) {
	ts := time.UnixMilli(1700000000000)
	recs := []Record{{Key: []byte("k"), Value: []byte("v1"), Timestamp: ts}}

	v0msg := joinBytes(
		[]byte{0},    // magic
		[]byte{0},    // attributes
		beInt32(1),   // key length
		[]byte("k"),  // key
		beInt32(2),   // value length
		[]byte("v1"), // value
	)
	v0 := joinBytes(
		beInt64(42),                  // offset
		beInt32(int32(4+len(v0msg))), // message size: crc + the rest
		beInt32(int32(crc32.ChecksumIEEE(v0msg))),
		v0msg,
	)
	v1msg := joinBytes(
		[]byte{1}, // magic
		[]byte{0}, // attributes
		[]byte{0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00}, // timestamp 1700000000000
		beInt32(1),   // key length
		[]byte("k"),  // key
		beInt32(2),   // value length
		[]byte("v1"), // value
	)
	v1 := joinBytes(
		beInt64(42),
		beInt32(int32(4+len(v1msg))),
		beInt32(int32(crc32.ChecksumIEEE(v1msg))),
		v1msg,
	)
	if len(v0) != 12+17 || len(v1) != 12+25 {
		t.Fatalf("golden sizes %d %d", len(v0), len(v1))
	}
	for _, tc := range []struct {
		magic int8
		want  []byte
	}{{0, v0}, {1, v1}} {
		got := mustMessageSet(t, tc.magic, 42, recs, CompressionNone)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("v%d:\n got %x\nwant %x", tc.magic, got, tc.want)
		}
		dec, hs := readAllBatches(t, tc.want, false)
		if diff := cmp.Diff(expectV1(recs, tc.magic, 0, 42), dec); diff != "" {
			t.Errorf("v%d records (-want +got):\n%s", tc.magic, diff)
		}
		wantTs := int64(-1)
		if tc.magic == 1 {
			wantTs = 1700000000000
		}
		wantH := BatchHeader{BaseOffset: 42, BatchLength: int32(len(tc.want) - 12), PartitionLeaderEpoch: -1,
			Magic: tc.magic, CRC: binary.BigEndian.Uint32(tc.want[12:]), FirstTimestamp: wantTs,
			MaxTimestamp: wantTs, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, NumRecords: 1}
		if diff := cmp.Diff([]BatchHeader{wantH}, hs); diff != "" {
			t.Errorf("v%d header (-want +got):\n%s", tc.magic, diff)
		}
	}
}

// testRecords returns records covering null, empty and large keys and
// values, headers and timestamps.
func testRecords(headers bool) []Record {
	ts := time.UnixMilli(1700000000000)
	recs := []Record{
		{Key: []byte("key-0"), Value: []byte("value-0"), Timestamp: ts},
		{Key: nil, Value: []byte("null key"), Timestamp: ts.Add(-3 * time.Millisecond)},
		{Key: []byte{}, Value: []byte("empty key"), Timestamp: ts.Add(time.Hour)},
		{Key: []byte("tombstone"), Value: nil, Timestamp: ts.Add(time.Millisecond)},
		{Key: []byte("empty value"), Value: []byte{}, Timestamp: ts},
		{Key: []byte("no timestamp"), Value: []byte("x")},
		{Key: bytes.Repeat([]byte("K"), 300), Value: bytes.Repeat([]byte("large value "), 1000), Timestamp: ts},
	}
	if headers {
		recs[0].Headers = []Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: nil}, {Key: "", Value: []byte{}}}
		recs[3].Headers = []Header{{Key: "trace-id", Value: bytes.Repeat([]byte{0xff}, 200)}}
	}
	return recs
}

func TestRecordBatchRoundTrip(t *testing.T) {
	recs := testRecords(true)
	for _, c := range allTestCodecs {
		t.Run(codecTestName(c), func(t *testing.T) {
			h := NewBatchHeader()
			h.BaseOffset = 1000
			h.PartitionLeaderEpoch = 9
			h.ProducerID, h.ProducerEpoch, h.BaseSequence = 123456789, 4, 77
			h.Attributes = AttrTransactional | 7 // compression bits are replaced by c
			var e BatchEncoder
			b, err := e.AppendRecordBatch([]byte("prefix"), h, recs, c, 0)
			if err != nil {
				t.Fatal(err)
			}
			if string(b[:6]) != "prefix" {
				t.Fatal("dst prefix overwritten")
			}
			b = b[6:]
			dec, hs := readAllBatches(t, b, false)
			if len(hs) != 1 {
				t.Fatalf("%d batches", len(hs))
			}
			got := hs[0]
			if got.Attributes != AttrTransactional|BatchAttrs(c) || got.Attributes.Compression() != c ||
				!got.Attributes.Transactional() || got.Attributes.Control() || got.Attributes.LogAppendTime() {
				t.Errorf("attributes %#x", got.Attributes)
			}
			if got.NumRecords != int32(len(recs)) || got.LastOffsetDelta != int32(len(recs)-1) || got.LastOffset() != 1000+int64(len(recs))-1 {
				t.Errorf("header %+v", got)
			}
			if got.FirstTimestamp != 1700000000000 || got.MaxTimestamp != 1700000000000+3600000 {
				t.Errorf("timestamps %d %d", got.FirstTimestamp, got.MaxTimestamp)
			}
			if got.ProducerID != h.ProducerID || got.ProducerEpoch != 4 || got.BaseSequence != 77 || got.PartitionLeaderEpoch != 9 {
				t.Errorf("producer fields %+v", got)
			}
			if diff := cmp.Diff(expectV2(recs, got, 1000), dec); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			// A second encoding with the same encoder (reused scratch) is identical.
			b2, err := e.AppendRecordBatch(nil, h, recs, c, 0)
			if err != nil || (c != CompressionGzip && !bytes.Equal(b, b2)) {
				t.Errorf("re-encoding differs (err %v)", err)
			}
		})
	}
}

func TestMessageSetRoundTrip(t *testing.T) {
	recs := testRecords(false)
	for _, magic := range []int8{0, 1} {
		for _, c := range allTestCodecs[:4] {
			t.Run(fmt.Sprintf("v%d/%s", magic, codecTestName(c)), func(t *testing.T) {
				b := mustMessageSet(t, magic, 500, recs, c)
				dec, hs := readAllBatches(t, b, false)
				if diff := cmp.Diff(expectV1(recs, magic, BatchAttrs(c), 500), dec); diff != "" {
					t.Errorf("records (-want +got):\n%s", diff)
				}
				if c == CompressionNone {
					if len(hs) != len(recs) {
						t.Fatalf("%d entries", len(hs))
					}
					return
				}
				if len(hs) != 1 {
					t.Fatalf("%d entries", len(hs))
				}
				h := hs[0]
				if h.BaseOffset != 500 || h.LastOffset() != 500+int64(len(recs))-1 || h.NumRecords != int32(len(recs)) || h.Attributes.Compression() != c {
					t.Errorf("header %+v", h)
				}
				// The wrapper's offset is the last inner offset.
				if off := int64(binary.BigEndian.Uint64(b)); off != 500+int64(len(recs))-1 {
					t.Errorf("wrapper offset %d", off)
				}
				if magic == 1 && h.MaxTimestamp != 1700000000000+3600000 {
					t.Errorf("wrapper timestamp %d", h.MaxTimestamp)
				}
			})
		}
	}
}

// TestMessageSetV1BrokerOffsets checks the v1 inner offset arithmetic when
// the broker assigned the wrapper an absolute offset and the inner relative
// offsets have gaps (as after compaction).
func TestMessageSetV1BrokerOffsets(t *testing.T) {
	var inner []byte
	for i, rel := range []int64{0, 2, 5} {
		var err error
		inner, err = appendMessage(inner, 1, rel, 0, 1000+int64(i), []byte{byte('a' + i)}, []byte("v"))
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range allTestCodecs[1:4] {
		val, err := appendCompressed(nil, c, 0, inner, false)
		if err != nil {
			t.Fatal(err)
		}
		// Wrapper with offset 105 and log-append time 5000.
		msg := joinBytes([]byte{1, byte(c) | 0x08}, beInt64(5000), beInt32(-1), beInt32(int32(len(val))), val)
		b := joinBytes(beInt64(105), beInt32(int32(4+len(msg))), beInt32(0), msg)
		setCRCv1(b)
		dec, hs := readAllBatches(t, b, false)
		var offs []int64
		for _, r := range dec {
			offs = append(offs, r.Offset)
			if r.Timestamp.UnixMilli() != 5000 || !r.Attrs.LogAppendTime() {
				t.Errorf("%s: timestamp %v attrs %#x, want log-append time 5000", codecTestName(c), r.Timestamp, r.Attrs)
			}
		}
		if diff := cmp.Diff([]int64{100, 102, 105}, offs); diff != "" {
			t.Errorf("%s offsets (-want +got):\n%s", codecTestName(c), diff)
		}
		if hs[0].BaseOffset != 100 || hs[0].LastOffset() != 105 || hs[0].NumRecords != 3 {
			t.Errorf("%s header %+v", codecTestName(c), hs[0])
		}
	}
}

func TestRecordBatchLogAppendTime(t *testing.T) {
	recs := testRecords(false)
	h := NewBatchHeader()
	h.Attributes = AttrLogAppendTime
	b := mustBatch(t, h, recs, CompressionNone)
	binary.BigEndian.PutUint64(b[35:], 99999) // the broker sets maxTimestamp
	setCRCv2(b)
	dec, _ := readAllBatches(t, b, false)
	for _, r := range dec {
		if r.Timestamp.UnixMilli() != 99999 || !r.Attrs.LogAppendTime() {
			t.Fatalf("timestamp %v attrs %#x", r.Timestamp, r.Attrs)
		}
	}
}

func controlBatch(t testing.TB, base int64, pid int64, typ ControlType) []byte {
	h := NewBatchHeader()
	h.BaseOffset, h.ProducerID, h.ProducerEpoch = base, pid, 0
	h.Attributes = AttrTransactional | AttrControl
	key := joinBytes(beInt16(0), beInt16(int16(typ)))
	val := joinBytes(beInt16(0), beInt32(17)) // version, coordinator epoch
	return mustBatch(t, h, []Record{{Key: key, Value: val, Timestamp: time.UnixMilli(1)}}, CompressionNone)
}

func TestRecordBatchControlAndTransactions(t *testing.T) {
	h := NewBatchHeader()
	h.ProducerID, h.ProducerEpoch, h.BaseSequence = 55, 0, 0
	h.Attributes = AttrTransactional
	txn := mustBatch(t, h, testRecords(true)[:2], CompressionZstd)
	h.BaseOffset = 3
	txn2 := mustBatch(t, h, testRecords(true)[2:3], CompressionNone)
	src := joinBytes(txn, controlBatch(t, 2, 55, ControlAbort), txn2, controlBatch(t, 4, 55, ControlCommit))

	// By default control batches are skipped.
	dec, hs := readAllBatches(t, src, false)
	if len(dec) != 3 || len(hs) != 2 {
		t.Fatalf("%d records, %d batches", len(dec), len(hs))
	}
	for _, r := range dec {
		if !r.Attrs.Transactional() || r.ProducerID != 55 {
			t.Errorf("record %+v", r)
		}
		if _, ok := r.ControlType(); ok {
			t.Error("data record reported as control record")
		}
	}
	if got, err := DecodeRecords(nil, src); err != nil || len(got) != 3 {
		t.Errorf("DecodeRecords: %d records, %v", len(got), err)
	}

	// KeepControl shows them, with their type.
	dec, hs = readAllBatches(t, src, true)
	if len(dec) != 5 || len(hs) != 4 {
		t.Fatalf("%d records, %d batches", len(dec), len(hs))
	}
	for i, want := range map[int]ControlType{2: ControlAbort, 4: ControlCommit} {
		typ, ok := dec[i].ControlType()
		if !ok || typ != want || dec[i].Offset != int64(i) {
			t.Errorf("record %d: control %v %v offset %d", i, typ, ok, dec[i].Offset)
		}
	}
	if ControlAbort.String() != "abort" || ControlCommit.String() != "commit" || ControlType(7).String() != "ControlType(7)" {
		t.Error("ControlType.String")
	}
	if !hs[1].Attributes.Control() || hs[1].ProducerID != 55 || hs[1].BaseOffset != 2 {
		t.Errorf("control header %+v", hs[1])
	}

	// A control record needs a 4-byte key.
	h = NewBatchHeader()
	h.Attributes = AttrControl
	bad := mustBatch(t, h, []Record{{Key: []byte{0}, Value: nil}}, CompressionNone)
	if _, err := DecodeRecords(nil, bad); !errors.Is(err, ErrCorruptRecords) {
		t.Errorf("short control key: %v", err)
	}
}

func TestRecordBatchEmpty(t *testing.T) {
	// All records compacted away: the batch stays, with its offsets.
	h := NewBatchHeader()
	h.BaseOffset, h.LastOffsetDelta, h.FirstTimestamp, h.MaxTimestamp = 10, 4, 1, 2
	b := mustBatch(t, h, nil, CompressionNone)
	if len(b) != batchHeaderLen {
		t.Fatalf("empty batch is %d bytes", len(b))
	}
	src := joinBytes(b, mustBatch(t, NewBatchHeader(), testRecords(false)[:1], CompressionNone))
	var r RecordReader
	r.Reset(src)
	got, recs, err := r.Next(nil)
	if err != nil || len(recs) != 0 || got.LastOffset() != 14 || got.NumRecords != 0 {
		t.Fatalf("empty batch: %+v %d %v", got, len(recs), err)
	}
	if _, recs, err = r.Next(recs); err != nil || len(recs) != 1 {
		t.Fatalf("after the empty batch: %d %v", len(recs), err)
	}
	if _, _, err = r.Next(recs); err != io.EOF || r.Remaining() != 0 {
		t.Fatalf("end: %v, %d remaining", err, r.Remaining())
	}
}

func TestRecordsMixedFormats(t *testing.T) {
	// After a message format upgrade a fetch can return old messages and
	// then record batches.
	recs := testRecords(false)
	h := NewBatchHeader()
	h.BaseOffset = 100 + int64(len(recs))
	src := joinBytes(
		mustMessageSet(t, 0, 0, recs[:2], CompressionNone),
		mustMessageSet(t, 0, 2, recs[2:4], CompressionGzip),
		mustMessageSet(t, 1, 4, recs[4:5], CompressionNone),
		mustMessageSet(t, 1, 5, recs[5:], CompressionLZ4),
	)
	h.BaseOffset = int64(len(recs))
	src = joinBytes(src, mustBatch(t, h, recs, CompressionSnappy))
	dec, err := DecodeRecords(nil, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(dec) != 2*len(recs) {
		t.Fatalf("%d records", len(dec))
	}
	for i, r := range dec {
		want := recs[i%len(recs)]
		if r.Offset != int64(i) || !bytes.Equal(r.Key, want.Key) || !bytes.Equal(r.Value, want.Value) {
			t.Errorf("record %d: offset %d key %q", i, r.Offset, r.Key)
		}
	}
}

func TestRecordsPartialTrailingBatch(t *testing.T) {
	recs := testRecords(true)
	one := mustBatch(t, NewBatchHeader(), recs, CompressionNone)
	h := NewBatchHeader()
	h.BaseOffset = int64(len(recs))
	two := mustBatch(t, h, recs, CompressionLZ4)
	for cut := 1; cut < len(two); cut++ {
		var r RecordReader
		r.Reset(joinBytes(one, two[:cut]))
		dec, err := r.ReadAll(nil)
		if err != nil || len(dec) != len(recs) || r.Remaining() != cut {
			t.Fatalf("v2 cut at %d: %d records, %d remaining, %v", cut, len(dec), r.Remaining(), err)
		}
	}
	// Message sets: three messages, the last one cut.
	plain := testRecords(false)[:3]
	msgs := mustMessageSet(t, 1, 0, plain, CompressionNone)
	last := len(msgs) - (12 + 22 + len(plain[2].Key) + len(plain[2].Value))
	for cut := last + 1; cut < len(msgs); cut++ {
		dec, err := DecodeRecords(nil, msgs[:cut])
		if err != nil || len(dec) != 2 {
			t.Fatalf("v1 cut at %d: %d records, %v", cut, len(dec), err)
		}
	}
}

func TestRecordBatchBadCRC(t *testing.T) {
	good := mustBatch(t, NewBatchHeader(), testRecords(true), CompressionNone)
	for _, pos := range []int{17, 21, 30, 61, len(good) - 1} {
		b := joinBytes(good, good)
		b[len(good)+pos] ^= 0x40
		r := RecordReader{}
		r.Reset(b)
		dec, err := r.ReadAll(nil)
		var ce *CorruptRecordsError
		if !errors.Is(err, ErrCorruptRecords) || !errors.As(err, &ce) || ce.Pos != len(good) {
			t.Fatalf("flip at %d: %v", pos, err)
		}
		if len(dec) != len(testRecords(true)) {
			t.Errorf("flip at %d: %d records before the bad batch", pos, len(dec))
		}
		if _, _, err2 := r.Next(nil); err2 != err {
			t.Errorf("error not sticky: %v", err2)
		}
	}
	// Partition leader epoch is outside the CRC.
	b := joinBytes(good)
	b[12] ^= 1
	if _, err := DecodeRecords(nil, b); err != nil {
		t.Errorf("leader epoch change: %v", err)
	}
	// Message sets.
	for _, c := range []Compression{CompressionNone, CompressionGzip} {
		m := mustMessageSet(t, 1, 0, testRecords(false), c)
		m[len(m)-1] ^= 1
		if _, err := DecodeRecords(nil, m); !errors.Is(err, ErrCorruptRecords) {
			t.Errorf("message set %s: %v", codecTestName(c), err)
		}
	}
}

func TestRecordsDecompressLimit(t *testing.T) {
	recs := []Record{{Value: make([]byte, 1<<20)}}
	for _, c := range allTestCodecs[1:] {
		src := joinBytes(mustBatch(t, NewBatchHeader(), recs, c), mustMessageSet(t, 1, 1, recs, min(c, CompressionLZ4)))
		r := RecordReader{MaxDecompressed: 1 << 20}
		r.Reset(src)
		_, err := r.ReadAll(nil)
		if !errors.Is(err, ErrDecompressedTooLarge) || !errors.Is(err, ErrCorruptRecords) {
			t.Errorf("%s: %v", codecTestName(c), err)
		}
		// The budget covers the whole input.
		r.MaxDecompressed = 1<<20 + 100
		r.Reset(src)
		if dec, err := r.ReadAll(nil); !errors.Is(err, ErrDecompressedTooLarge) || len(dec) != 1 {
			t.Errorf("%s second batch: %d records, %v", codecTestName(c), len(dec), err)
		}
		r.MaxDecompressed = 0
		r.Reset(src)
		if dec, err := r.ReadAll(nil); err != nil || len(dec) != 2 {
			t.Errorf("%s default limit: %d records, %v", codecTestName(c), len(dec), err)
		}
	}
}

func TestRecordReaderReuse(t *testing.T) {
	src := mustBatch(t, NewBatchHeader(), testRecords(true), CompressionLZ4)
	var r RecordReader
	var dec []Record
	for range 3 {
		r.Reset(src)
		var err error
		if dec, err = r.ReadAll(dec[:0]); err != nil {
			t.Fatal(err)
		}
	}
	want := expectV2(testRecords(true), BatchHeader{PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, Attributes: BatchAttrs(CompressionLZ4)}, 0)
	for i := range want {
		want[i].Topic, want[i].Partition = "", 0
	}
	if diff := cmp.Diff(want, dec); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRecordEncodeErrors(t *testing.T) {
	withHeaders := testRecords(true)
	for _, tc := range []struct {
		name string
		f    func() ([]byte, error)
	}{
		{"bad codec v2", func() ([]byte, error) { return AppendRecordBatch([]byte("x"), NewBatchHeader(), nil, 5, 0) }},
		{"magic 2 message set", func() ([]byte, error) { return AppendMessageSet([]byte("x"), 2, 0, nil, 0, 0) }},
		{"zstd message set", func() ([]byte, error) { return AppendMessageSet([]byte("x"), 1, 0, nil, CompressionZstd, 0) }},
		{"headers v1", func() ([]byte, error) { return AppendMessageSet([]byte("x"), 1, 0, withHeaders, 0, 0) }},
	} {
		b, err := tc.f()
		if err == nil || string(b) != "x" {
			t.Errorf("%s: %q, %v", tc.name, b, err)
		}
	}
}

// TestRecordsSteadyStateAllocs checks that encoding with a reused buffer and
// decoding with a reused RecordReader and slice allocate nothing per record,
// headers included.
func TestRecordsSteadyStateAllocs(t *testing.T) {
	recs := benchRecords()[:100]
	for i := range recs {
		recs[i].Headers = []Header{{Key: "trace-id", Value: []byte("abc")}, {Key: "kind", Value: nil}}
	}
	var e BatchEncoder
	buf, _ := e.AppendRecordBatch(nil, NewBatchHeader(), recs, CompressionNone, 0)
	if n := testing.AllocsPerRun(20, func() {
		buf, _ = e.AppendRecordBatch(buf[:0], NewBatchHeader(), recs, CompressionNone, 0)
	}); n != 0 {
		t.Errorf("encoding: %v allocations per batch of %d records", n, len(recs))
	}
	var r RecordReader
	var dec []Record
	if n := testing.AllocsPerRun(20, func() {
		r.Reset(buf)
		dec, _ = r.ReadAll(dec[:0])
	}); n != 0 || len(dec) != len(recs) {
		t.Errorf("decoding: %v allocations per batch of %d records", n, len(dec))
	}
}

func ExampleAppendRecordBatch() {
	h := NewBatchHeader() // not idempotent: producer ID, epoch and sequence -1
	recs := []Record{
		{Key: []byte("user-1"), Value: []byte("signed up"), Timestamp: time.UnixMilli(1700000000000)},
		{Key: []byte("user-1"), Value: nil, Headers: []Header{{Key: "reason", Value: []byte("gdpr")}}},
	}
	var e BatchEncoder // reuse it: it keeps the compression scratch buffer
	records, err := e.AppendRecordBatch(nil, h, recs, CompressionNone, 0)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(records), "bytes for the Produce request's records field")
	// Output: 113 bytes for the Produce request's records field
}

func ExampleRecordReader() {
	// Two batches as a Fetch response could return them, the second cut
	// short by the response size limit.
	h := NewBatchHeader()
	h.BaseOffset = 40
	src, _ := AppendRecordBatch(nil, h, []Record{{Value: []byte("a")}, {Value: []byte("b")}}, CompressionNone, 0)
	h.BaseOffset = 42
	next, _ := AppendRecordBatch(nil, h, []Record{{Value: []byte("c")}}, CompressionNone, 0)
	src = append(src, next[:30]...)

	r := RecordReader{Topic: "events", Partition: 0}
	r.Reset(src)
	var recs []Record
	for {
		h, out, err := r.Next(recs[:0])
		if err == io.EOF {
			break
		} else if err != nil {
			panic(err)
		}
		recs = out
		for _, rec := range recs {
			fmt.Printf("%s/%d@%d: %s\n", rec.Topic, rec.Partition, rec.Offset, rec.Value)
		}
		fmt.Println("next fetch offset", h.LastOffset()+1)
	}
	fmt.Println(r.Remaining(), "bytes of a truncated batch left")
	// Output:
	// events/0@40: a
	// events/0@41: b
	// next fetch offset 42
	// 30 bytes of a truncated batch left
}
