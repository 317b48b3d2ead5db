package kpax

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"
)

// TestRecordsHostile feeds malformed data built from valid encodings.
func TestRecordsHostile(t *testing.T) {
	rec := []Record{{Key: []byte("key"), Value: []byte("value"), Headers: []Header{{Key: "h", Value: []byte("v")}}}}
	good := mustBatch(t, NewBatchHeader(), rec, CompressionNone)
	// Offsets in good: records start at 61; record: len, attrs, tsDelta,
	// offsetDelta, keyLen at 65, key, valueLen at 69, value, header count
	// at 75, header key length at 76.
	v2 := func(edit func(b []byte) []byte) []byte {
		b := edit(joinBytes(good))
		binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
		setCRCv2(b)
		return b
	}
	plain := []Record{{Key: []byte("key"), Value: []byte("value")}}
	msg := mustMessageSet(t, 1, 0, plain, CompressionNone)
	v1 := func(edit func(b []byte) []byte) []byte {
		b := edit(joinBytes(msg))
		binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
		setCRCv1(b)
		return b
	}
	wrap := func(c Compression, inner []byte) []byte {
		val, err := appendCompressed(nil, c, 0, inner, false)
		if err != nil {
			t.Fatal(err)
		}
		m := joinBytes([]byte{1, byte(c)}, beInt64(0), beInt32(-1), beInt32(int32(len(val))), val)
		b := joinBytes(beInt64(0), beInt32(int32(4+len(m))), beInt32(0), m)
		setCRCv1(b)
		return b
	}
	zip := func(c Compression, raw []byte) []byte {
		b := joinBytes(good[:61])
		b[22] = byte(c)
		b, err := appendCompressed(b, c, 0, raw, false)
		if err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
		setCRCv2(b)
		return b
	}
	tests := []struct {
		name string
		src  []byte
	}{
		{"unknown magic", func() []byte { b := joinBytes(good); b[16] = 3; return b }()},
		{"negative batch length", func() []byte { b := joinBytes(good); copy(b[8:], beInt32(-5)); return b }()},
		{"batch length below header", func() []byte { b := joinBytes(good); copy(b[8:], beInt32(20)); return b }()},
		{"huge numRecords", v2(func(b []byte) []byte { copy(b[57:], beInt32(math.MaxInt32)); return b })},
		{"negative numRecords", v2(func(b []byte) []byte { copy(b[57:], beInt32(-1)); return b })},
		{"numRecords too big by one", v2(func(b []byte) []byte { copy(b[57:], beInt32(2)); return b })},
		{"numRecords too small", v2(func(b []byte) []byte { copy(b[57:], beInt32(0)); return b })},
		{"negative record length", v2(func(b []byte) []byte { b[61] = 0x03; return b })},
		{"record length past end", v2(func(b []byte) []byte { b[61] += 2; return b })},
		{"record length short", v2(func(b []byte) []byte { b[61] -= 2; return b })},
		{"varint overflow", v2(func(b []byte) []byte {
			return joinBytes(b[:61], bytes.Repeat([]byte{0xff}, 11), b[62:])
		})},
		{"bad timestamp delta varint", v2(func(b []byte) []byte {
			return joinBytes(b[:63], bytes.Repeat([]byte{0x88}, 10), b[64:]) // found by FuzzDecodeRecordBatch
		})},
		{"key length -2", v2(func(b []byte) []byte { b[65] = 0x03; return b })},
		{"key length past record", v2(func(b []byte) []byte { b[65] = 0x7e; return b })},
		{"value length huge", v2(func(b []byte) []byte {
			return joinBytes(b[:69], []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, b[70:])
		})},
		{"negative header count", v2(func(b []byte) []byte { b[75] = 0x01; return b })},
		{"huge header count", v2(func(b []byte) []byte {
			return joinBytes(b[:75], []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, b[76:])
		})},
		{"negative header key length", v2(func(b []byte) []byte { b[76] = 0x01; return b })},
		{"unknown codec", v2(func(b []byte) []byte { b[22] = 6; return b })},
		{"undecompressable", v2(func(b []byte) []byte { b[22] = byte(CompressionGzip); return b })},
		{"compressed records short", zip(CompressionZstd, good[61:70])},
		{"compressed numRecords huge", func() []byte {
			b := zip(CompressionSnappy, good[61:])
			copy(b[57:], beInt32(1<<30))
			setCRCv2(b)
			return b
		}()},
		{"message key length -2", v1(func(b []byte) []byte { copy(b[26:], beInt32(-2)); return b })},
		{"message key length huge", v1(func(b []byte) []byte { copy(b[26:], beInt32(math.MaxInt32)); return b })},
		{"message value past end", v1(func(b []byte) []byte { copy(b[33:], beInt32(6)); return b })},
		{"message trailing bytes", v1(func(b []byte) []byte { return append(b, 0) })},
		{"message crc", func() []byte { b := joinBytes(msg); b[len(b)-1]++; return b }()},
		{"message length below minimum", func() []byte { b := joinBytes(msg); copy(b[8:], beInt32(21)); return b }()},
		{"wrapper null value", v1(func(b []byte) []byte { b[17] = 1; return joinBytes(b[:33], beInt32(-1)) })},
		{"wrapper codec 4 in v1", v1(func(b []byte) []byte { b[17] = 4; return b })},
		{"wrapper not decompressable", v1(func(b []byte) []byte { b[17] = 1; return b })},
		{"inner truncated", wrap(CompressionGzip, msg[:len(msg)-1])},
		{"inner short header", wrap(CompressionGzip, msg[:10])},
		{"inner negative size", wrap(CompressionGzip, func() []byte { b := joinBytes(msg); copy(b[8:], beInt32(-1)); return b }())},
		{"inner magic differs", wrap(CompressionGzip, mustMessageSet(t, 0, 0, plain, CompressionNone))},
		{"inner compressed", wrap(CompressionGzip, wrap(CompressionGzip, msg))},
		{"inner bad crc", wrap(CompressionSnappy, func() []byte { b := joinBytes(msg); b[20]++; return b }())},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec, err := DecodeRecords(nil, tc.src)
			var ce *CorruptRecordsError
			if !errors.Is(err, ErrCorruptRecords) || !errors.As(err, &ce) {
				t.Fatalf("got %d records, error %v; want a corrupt-records error", len(dec), err)
			}
			if len(dec) != 0 {
				t.Errorf("%d records returned with the error", len(dec))
			}
			if ce.Error() == "" {
				t.Error("empty message")
			}
		})
	}
}

// TestRecordsTruncatedEverywhere cuts valid data at every byte: the result is
// records of the complete entries and no error (a truncated trailing entry),
// or a corrupt-records error, never a panic.
func TestRecordsTruncatedEverywhere(t *testing.T) {
	recs := testRecords(true)
	srcs := map[string][]byte{"v2": mustBatch(t, NewBatchHeader(), recs[:4], CompressionNone)}
	for _, c := range allTestCodecs {
		srcs["v2 "+codecTestName(c)] = mustBatch(t, NewBatchHeader(), recs[:4], c)
		if c != CompressionZstd {
			srcs["v0 "+codecTestName(c)] = mustMessageSet(t, 0, 0, testRecords(false)[:4], c)
			srcs["v1 "+codecTestName(c)] = mustMessageSet(t, 1, 0, testRecords(false)[:4], c)
		}
	}
	for name, src := range srcs {
		for cut := range len(src) {
			b := src[:cut]
			dec, err := DecodeRecords(nil, b)
			if err != nil {
				t.Fatalf("%s cut at %d: %v", name, cut, err)
			}
			if len(dec) > cut/7 {
				t.Fatalf("%s cut at %d: %d records", name, cut, len(dec))
			}
			// The length field also cut short: lengths now point inside
			// the data, which must be an error or a clean decode.
			if cut > 12 {
				c := joinBytes(b)
				binary.BigEndian.PutUint32(c[8:], uint32(cut-12))
				_, err := DecodeRecords(nil, c)
				if err != nil && !errors.Is(err, ErrCorruptRecords) {
					t.Fatalf("%s shortened to %d: %v", name, cut, err)
				}
			}
		}
	}
}

// fuzzDecode decodes data and checks that what it returns is bounded by the
// bytes it had: the input and the decompressed data.
func fuzzDecode(t *testing.T, data []byte) {
	if n := recordsHint(data); n < 0 || n > len(data)/minRecordLenV2 {
		t.Fatalf("recordsHint %d for %d bytes", n, len(data))
	}
	fuzzDecodeOnce(t, data)
	// Again with correct CRCs, so that mutations reach the record parsing.
	fuzzDecodeOnce(t, fixCRCs(data))
}

// fixCRCs returns a copy of data with the CRC of every complete top-level
// batch or message recomputed.
func fixCRCs(data []byte) []byte {
	b := bytes.Clone(data)
	for p := 0; len(b)-p >= 17; {
		n := int64(int32(binary.BigEndian.Uint32(b[p+8:])))
		if n < 9 || n > int64(len(b)-p-12) {
			break
		}
		switch b[p+16] {
		case 0, 1:
			setCRCv1(b[p:])
		case 2:
			if n >= 49 {
				setCRCv2(b[p:])
			}
		}
		p += 12 + int(n)
	}
	return b
}

func fuzzDecodeOnce(t *testing.T, data []byte) {
	for _, keep := range []bool{false, true} {
		r := RecordReader{MaxDecompressed: 1 << 20, KeepControl: keep}
		r.Reset(data)
		var recs []Record
		batches := 0
		for {
			h, out, err := r.Next(recs)
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrCorruptRecords) {
					t.Fatalf("error %v is not a corrupt-records error", err)
				}
				if err == io.EOF && r.Remaining() < 0 {
					t.Fatal("negative remaining")
				}
				break
			}
			batches++
			if n := len(out) - len(recs); h.Magic == 2 && n != int(h.NumRecords) {
				t.Fatalf("batch claims %d records, returned %d", h.NumRecords, n)
			}
			recs = out
		}
		avail := len(data) + len(r.scratch)
		if len(recs) > avail/7 {
			t.Fatalf("%d records from %d bytes", len(recs), avail)
		}
		if len(r.scratch) > r.MaxDecompressed {
			t.Fatalf("decompressed %d bytes, limit %d", len(r.scratch), r.MaxDecompressed)
		}
		payload, headers := 0, 0
		for _, rec := range recs {
			payload += len(rec.Key) + len(rec.Value)
			headers += len(rec.Headers)
			for _, h := range rec.Headers {
				payload += len(h.Key) + len(h.Value)
			}
		}
		if payload > avail || headers > avail/2 {
			t.Fatalf("%d payload bytes, %d headers from %d bytes", payload, headers, avail)
		}
		// What decodes must encode and decode back to the same records.
		if len(recs) == 0 || !keep {
			continue
		}
		enc, err := AppendRecordBatch(nil, NewBatchHeader(), recs, CompressionNone, 0)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		again, err := DecodeRecords(nil, enc)
		if err != nil || len(again) != len(recs) {
			t.Fatalf("re-decoding: %d of %d records, %v", len(again), len(recs), err)
		}
		for i := range recs {
			a, b := recs[i], again[i]
			if !bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil) ||
				!bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil) ||
				len(a.Headers) != len(b.Headers) || !a.Timestamp.Equal(b.Timestamp) {
				t.Fatalf("record %d changed in a round trip: %+v, %+v", i, a, b)
			}
		}
	}
}

func FuzzDecodeRecordBatch(f *testing.F) {
	recs := testRecords(true)[:4]
	for _, c := range allTestCodecs {
		h := NewBatchHeader()
		h.BaseOffset = int64(c) * 10
		f.Add(mustBatch(f, h, recs, c))
	}
	f.Add(joinBytes(mustBatch(f, NewBatchHeader(), recs[:1], CompressionNone), controlBatch(f, 1, 5, ControlCommit)))
	h := NewBatchHeader()
	h.Attributes = AttrLogAppendTime | AttrTransactional
	f.Add(mustBatch(f, h, recs[1:3], CompressionSnappy)[:90])
	f.Add(mustBatch(f, NewBatchHeader(), nil, CompressionNone))
	f.Fuzz(fuzzDecode)
}

func FuzzDecodeMessageSet(f *testing.F) {
	recs := testRecords(false)[:4]
	for _, magic := range []int8{0, 1} {
		for _, c := range allTestCodecs[:4] {
			f.Add(mustMessageSet(f, magic, 7, recs, c))
		}
	}
	f.Add(joinBytes(mustMessageSet(f, 1, 0, recs, CompressionGzip), mustBatch(f, NewBatchHeader(), recs, CompressionNone)))
	f.Fuzz(fuzzDecode)
}

func TestRecordsHint(t *testing.T) {
	recs := testRecords(true)[:4]
	one := mustBatch(t, NewBatchHeader(), recs, CompressionNone)
	many := make([]Record, 2000)
	for i := range many {
		many[i].Value = []byte("same value, compressed well")
	}
	packed := mustBatch(t, NewBatchHeader(), many, CompressionZstd)
	huge := bytes.Clone(one)
	binary.BigEndian.PutUint32(huge[57:], 1<<31-1) // a NumRecords its bytes cannot hold
	for _, tc := range []struct {
		name string
		data []byte
		want int
	}{
		{"empty", nil, 0},
		{"one batch", one, 4},
		{"two batches and a control batch", joinBytes(one, one, controlBatch(t, 9, 5, ControlCommit)), 9},
		{"a truncated second batch", joinBytes(one, one[:len(one)-1]), 4},
		{"compressed: at most a record per 7 bytes", packed, (len(packed) - 61) / minRecordLenV2},
		{"hostile NumRecords", huge, (len(huge) - 61) / minRecordLenV2},
		{"a v1 message set", mustMessageSet(t, 1, 0, testRecords(false)[:2], CompressionNone), 0},
	} {
		if got := recordsHint(tc.data); got != tc.want {
			t.Errorf("%s: recordsHint = %d, want %d", tc.name, got, tc.want)
		}
	}
}
