package kpax

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"time"
)

// This file holds the record data formats (see "Record Batch" and "Old
// Message Format" in the Kafka implementation guide): the user-facing Record
// type, the batch header, and encoding of record batches (magic 2) and message
// sets (magic 0 and 1). Decoding lives in recorddecode.go.

// Header is a record header, a key/value pair that travels with a record.
// Headers exist only in record batches (message format v2, Kafka 0.11+).
type Header struct {
	Key   string
	Value []byte // nil is a null value
}

// Record is one Kafka record (a "message" in formats before 0.11).
//
// When producing, Topic, Partition, Key, Value, Headers and Timestamp are
// input; the rest is ignored by the encoders. When consuming, every field is
// filled from the fetched data.
type Record struct {
	Topic     string
	Partition int32

	// LeaderEpoch is the partition leader epoch of the batch that held the
	// record, or -1 if unknown (message formats v0 and v1).
	LeaderEpoch int32

	// Offset is the record's offset in its partition: set on consume, and
	// after a successful produce.
	Offset int64

	// Key and Value are the record's payload. A nil Key is a null key (the
	// producer picks a partition), a nil Value is a tombstone for compacted
	// topics; empty but non-nil slices are empty, not null. Decoded keys and
	// values alias the decoder's input (see RecordReader).
	Key, Value []byte

	// Headers are the record headers, in order. Message formats v0 and v1
	// cannot carry headers.
	Headers []Header

	// Timestamp is the record's create time, or the broker's log-append time
	// when Attrs.LogAppendTime() is true. The zero Time stands for Kafka's
	// "no timestamp" (-1), which message format v0 always has; Producer.Produce
	// replaces it with the current time.
	Timestamp time.Time

	// ProducerID and ProducerEpoch identify the idempotent or transactional
	// producer that wrote the record, or are -1 for other producers.
	ProducerID    int64
	ProducerEpoch int16

	// Attrs are the attributes of the batch (or of the wrapper message) that
	// held the record: compression, timestamp type, transactional and control
	// flags.
	Attrs BatchAttrs
}

// ControlType is the type of a control record: the marker a transaction
// coordinator writes into a partition when a transaction ends.
type ControlType int16

// Control record types.
const (
	ControlAbort  ControlType = 0 // the transaction was aborted
	ControlCommit ControlType = 1 // the transaction was committed
)

// String returns "abort", "commit" or "ControlType(N)".
func (t ControlType) String() string {
	switch t {
	case ControlAbort:
		return "abort"
	case ControlCommit:
		return "commit"
	}
	return fmt.Sprintf("ControlType(%d)", int16(t))
}

// ControlType reports whether r is a control record (a record of a control
// batch) and, if so, its type. Control records carry no user data; a consumer
// uses them to tell committed transactions from aborted ones.
func (r *Record) ControlType() (ControlType, bool) {
	if !r.Attrs.Control() || len(r.Key) < 4 {
		return 0, false
	}
	return ControlType(int16(binary.BigEndian.Uint16(r.Key[2:]))), true
}

// BatchAttrs are the attributes of a record batch. In message formats v0 and
// v1 the attributes of a message use the same low bits (compression and,
// in v1, timestamp type).
type BatchAttrs int16

// Attribute bits of a record batch besides the compression codec (bits 0-2).
const (
	AttrLogAppendTime BatchAttrs = 1 << 3 // timestamps are the broker's log-append time
	AttrTransactional BatchAttrs = 1 << 4 // the batch is part of a transaction
	AttrControl       BatchAttrs = 1 << 5 // the batch holds a control record
	AttrDeleteHorizon BatchAttrs = 1 << 6 // FirstTimestamp is the compaction delete horizon

	attrCompressionMask BatchAttrs = 0x07
)

// Compression returns the compression codec of the batch.
func (a BatchAttrs) Compression() Compression { return Compression(a & attrCompressionMask) }

// LogAppendTime reports whether timestamps are the broker's log-append time
// rather than the producer's create time.
func (a BatchAttrs) LogAppendTime() bool { return a&AttrLogAppendTime != 0 }

// Transactional reports whether the batch was written by a transactional
// producer.
func (a BatchAttrs) Transactional() bool { return a&AttrTransactional != 0 }

// Control reports whether the batch is a control batch (a transaction marker).
func (a BatchAttrs) Control() bool { return a&AttrControl != 0 }

// DeleteHorizon reports whether the batch's FirstTimestamp was set by log
// compaction as the time after which its tombstones and markers are removed.
func (a BatchAttrs) DeleteHorizon() bool { return a&AttrDeleteHorizon != 0 }

// BatchHeader is the header of a record batch (message format v2).
//
// Decoding also describes each top-level v0/v1 message (a single message, or a
// compressed wrapper message with its inner messages) with a BatchHeader:
// BaseOffset and LastOffsetDelta span its records, FirstTimestamp and
// MaxTimestamp are the message's timestamp (-1 in v0), and the fields that the
// old formats lack (PartitionLeaderEpoch, ProducerID, ProducerEpoch,
// BaseSequence) are -1.
type BatchHeader struct {
	BaseOffset           int64
	BatchLength          int32 // bytes after the BatchLength field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           BatchAttrs
	LastOffsetDelta      int32
	FirstTimestamp       int64 // milliseconds since the Unix epoch
	MaxTimestamp         int64 // milliseconds since the Unix epoch
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// NewBatchHeader returns the header of a batch from a producer that is
// neither idempotent nor transactional: ProducerID, ProducerEpoch,
// BaseSequence and PartitionLeaderEpoch are -1 and everything else is zero.
// Idempotent and transactional producers set ProducerID, ProducerEpoch and
// BaseSequence (and AttrTransactional) on it.
func NewBatchHeader() BatchHeader {
	return BatchHeader{PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
}

// LastOffset returns the offset of the last record of the batch. It may be
// past the last record actually present when compaction removed records; a
// consumer continues fetching from LastOffset()+1.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

const (
	batchHeaderLen  = 61 // baseOffset .. numRecords of a v2 batch
	batchCRCStart   = 21 // first byte covered by the v2 CRC (attributes)
	entryHeaderLen  = 12 // offset + length of a batch or message-set entry
	minRecordLenV2  = 7  // smallest encoded v2 record, length varint included
	messageOverhead = 14 // crc, magic, attributes, key length, value length (v0)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// timestampMs converts t to Kafka milliseconds; the zero Time is -1.
func timestampMs(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

// varintLen returns the length of v in zig-zag varint encoding.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// bytesLenV2 returns the encoded size of a v2 nullable byte field.
func bytesLenV2(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

// recordBodyLenV2 returns the size of a v2 record without its length prefix.
func recordBodyLenV2(r *Record, offsetDelta, tsDelta int64) int {
	n := 1 + varintLen(tsDelta) + varintLen(offsetDelta) + bytesLenV2(r.Key) + bytesLenV2(r.Value) +
		varintLen(int64(len(r.Headers)))
	for i := range r.Headers {
		h := &r.Headers[i]
		n += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLenV2(h.Value)
	}
	return n
}

func appendBytesV2(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 1) // zig-zag -1
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// recordList is what the encoders read records from: a []Record
// (recordSlice), or the producer's pending records, which it encodes in
// place instead of copying each Record into a slice first.
type recordList interface {
	Len() int
	At(i int) *Record
}

// recordSlice is a []Record as a recordList.
type recordSlice []Record

func (s recordSlice) Len() int         { return len(s) }
func (s recordSlice) At(i int) *Record { return &s[i] }

// appendRecordsV2 appends the records of a v2 batch (without the batch
// header), given the batch's first timestamp, and returns the greatest
// timestamp. It reads each record once (records the producer encodes are
// rarely still in the CPU cache) and stops with errBatchTooLarge once the
// batch passes 2 GiB.
func appendRecordsV2[L recordList](dst []byte, recs L, firstTs int64) ([]byte, int64, error) {
	start, maxTs := len(dst), firstTs
	for i := range recs.Len() {
		r := recs.At(i)
		ts := timestampMs(r.Timestamp)
		maxTs = max(maxTs, ts)
		tsDelta := ts - firstTs
		dst = binary.AppendVarint(dst, int64(recordBodyLenV2(r, int64(i), tsDelta)))
		dst = append(dst, 0) // record attributes: unused
		dst = binary.AppendVarint(dst, tsDelta)
		dst = binary.AppendVarint(dst, int64(i))
		dst = appendBytesV2(dst, r.Key)
		dst = appendBytesV2(dst, r.Value)
		dst = binary.AppendVarint(dst, int64(len(r.Headers)))
		for j := range r.Headers {
			h := &r.Headers[j]
			dst = binary.AppendVarint(dst, int64(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = appendBytesV2(dst, h.Value)
		}
		if len(dst)-start > math.MaxInt32-batchHeaderLen {
			return dst, 0, errBatchTooLarge
		}
	}
	return dst, maxTs, nil
}

var errBatchTooLarge = errors.New("kpax: encode record batch: batch larger than 2 GiB")

// BatchEncoder encodes record batches and message sets. It keeps a scratch
// buffer for compression between calls, so that encoding in a loop does not
// allocate. The zero value is ready to use; a BatchEncoder must not be used by
// several goroutines at once.
type BatchEncoder struct {
	buf []byte
}

// AppendRecordBatch appends to dst a record batch (message format v2) holding
// recs, compressed with c at the given level (0 is the codec's default), and
// returns the extended slice. It is new(BatchEncoder).AppendRecordBatch.
func AppendRecordBatch(dst []byte, h BatchHeader, recs []Record, c Compression, level int) ([]byte, error) {
	var e BatchEncoder
	return e.AppendRecordBatch(dst, h, recs, c, level)
}

// AppendMessageSet appends to dst a message set of format v0 or v1 holding
// recs, with offsets from baseOffset on; see BatchEncoder.AppendMessageSet.
// It is new(BatchEncoder).AppendMessageSet.
func AppendMessageSet(dst []byte, magic int8, baseOffset int64, recs []Record, c Compression, level int) ([]byte, error) {
	var e BatchEncoder
	return e.AppendMessageSet(dst, magic, baseOffset, recs, c, level)
}

// AppendRecordBatch appends to dst a record batch (message format v2) holding
// recs, compressed with c at the given level (0 is the codec's default), and
// returns the extended slice, which is the records field of a Produce request
// for one partition (several batches may be appended one after another).
//
// From h it takes BaseOffset, PartitionLeaderEpoch, ProducerID, ProducerEpoch,
// BaseSequence and the attribute flags (the compression bits are replaced by
// c); start from NewBatchHeader. It computes the rest: the record offset
// deltas (0, 1, ...), LastOffsetDelta, FirstTimestamp (the first record's),
// MaxTimestamp, NumRecords, BatchLength and the CRC. For an empty recs, which
// only compaction produces, LastOffsetDelta, FirstTimestamp and MaxTimestamp
// are taken from h. Record fields other than Key, Value, Headers and
// Timestamp are ignored. On error dst is returned unchanged.
func (e *BatchEncoder) AppendRecordBatch(dst []byte, h BatchHeader, recs []Record, c Compression, level int) ([]byte, error) {
	return appendRecordBatch(e, dst, h, recordSlice(recs), c, level)
}

// appendRecordBatch is AppendRecordBatch for any recordList.
func appendRecordBatch[L recordList](e *BatchEncoder, dst []byte, h BatchHeader, recs L, c Compression, level int) ([]byte, error) {
	if c < CompressionNone || c > CompressionZstd {
		return dst, fmt.Errorf("kpax: encode record batch: unknown compression codec %d", c)
	}
	nrecs := recs.Len()
	if nrecs > math.MaxInt32 {
		return dst, errors.New("kpax: encode record batch: too many records")
	}
	h.Magic = 2
	h.Attributes = h.Attributes&^attrCompressionMask | BatchAttrs(c)
	h.NumRecords = int32(nrecs)
	if nrecs > 0 {
		h.LastOffsetDelta = int32(nrecs - 1)
		h.FirstTimestamp = timestampMs(recs.At(0).Timestamp)
		h.MaxTimestamp = h.FirstTimestamp
	}
	// One pass over the records; the header's MaxTimestamp is filled in
	// after it.
	dst0, start := dst, len(dst)
	var err error
	if c == CompressionNone {
		if nrecs > 0 && cap(dst)-len(dst) < batchHeaderLen+nrecs*16 {
			// A fresh buffer: size it from the first record, not by doubling.
			r := recs.At(0)
			dst = slices.Grow(dst, batchHeaderLen+nrecs*(recordBodyLenV2(r, 0, 0)+2))
		}
		dst = appendBatchHeader(dst, &h)
		if dst, h.MaxTimestamp, err = appendRecordsV2(dst, recs, h.FirstTimestamp); err != nil {
			return dst0, err
		}
		binary.BigEndian.PutUint64(dst[start+35:], uint64(h.MaxTimestamp))
	} else {
		if e.buf, h.MaxTimestamp, err = appendRecordsV2(e.buf[:0], recs, h.FirstTimestamp); err != nil {
			return dst0, err
		}
		dst = appendBatchHeader(dst, &h)
		if dst, err = appendCompressed(dst, c, level, e.buf, false); err != nil {
			return dst0, fmt.Errorf("kpax: encode record batch: %w", err)
		}
		if len(dst)-start > math.MaxInt32 {
			return dst0, errBatchTooLarge
		}
	}
	b := dst[start:]
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-entryHeaderLen))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[batchCRCStart:], castagnoli))
	return dst, nil
}

// appendBatchHeader appends the 61-byte v2 batch header of h, with the batch
// length and CRC left for the caller to fill.
func appendBatchHeader(dst []byte, h *BatchHeader) []byte {
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(h.BaseOffset))
	dst = be.AppendUint32(dst, 0) // batch length
	dst = be.AppendUint32(dst, uint32(h.PartitionLeaderEpoch))
	dst = append(dst, 2)          // magic
	dst = be.AppendUint32(dst, 0) // crc
	dst = be.AppendUint16(dst, uint16(h.Attributes))
	dst = be.AppendUint32(dst, uint32(h.LastOffsetDelta))
	dst = be.AppendUint64(dst, uint64(h.FirstTimestamp))
	dst = be.AppendUint64(dst, uint64(h.MaxTimestamp))
	dst = be.AppendUint64(dst, uint64(h.ProducerID))
	dst = be.AppendUint16(dst, uint16(h.ProducerEpoch))
	dst = be.AppendUint32(dst, uint32(h.BaseSequence))
	return be.AppendUint32(dst, uint32(h.NumRecords))
}

// AppendMessageSet appends to dst a message set in message format magic (0 or
// 1) holding recs, and returns the extended slice. Message sets are what
// brokers before 0.11 accept (Produce versions 0 to 2).
//
// Uncompressed, each record becomes one message, with offsets baseOffset,
// baseOffset+1, ... (a producer uses 0; the broker assigns real offsets).
// Compressed with c (gzip, snappy or lz4; zstd needs format v2), the records
// become one wrapper message whose value is the compressed inner message set:
// in v0 the inner offsets are the absolute ones above, in v1 they are relative
// (0, 1, ...); the wrapper's offset is the last record's, baseOffset+len(recs)-1,
// and in v1 its timestamp is the records' greatest. LZ4 in v0 uses the framing
// of Kafka before 0.10. Records must not have headers, and Record fields other
// than Key, Value and Timestamp (v1 only) are ignored. On error dst is
// returned unchanged.
func (e *BatchEncoder) AppendMessageSet(dst []byte, magic int8, baseOffset int64, recs []Record, c Compression, level int) ([]byte, error) {
	return appendMessageSet(e, dst, magic, baseOffset, recordSlice(recs), c, level)
}

// appendMessageSet is AppendMessageSet for any recordList.
func appendMessageSet[L recordList](e *BatchEncoder, dst []byte, magic int8, baseOffset int64, recs L, c Compression, level int) ([]byte, error) {
	if magic != 0 && magic != 1 {
		return dst, fmt.Errorf("kpax: encode message set: magic %d is not 0 or 1", magic)
	}
	if c < CompressionNone || c > CompressionLZ4 {
		return dst, fmt.Errorf("kpax: encode message set: compression codec %d needs message format v2", c)
	}
	nrecs := recs.Len()
	for i := range nrecs {
		if len(recs.At(i).Headers) > 0 {
			return dst, fmt.Errorf("kpax: encode message set: record headers need message format v2 (magic 2), not %d", magic)
		}
	}
	dst0, start := dst, len(dst)
	if c == CompressionNone {
		var err error
		for i := range nrecs {
			r := recs.At(i)
			if dst, err = appendMessage(dst, magic, baseOffset+int64(i), 0, timestampMs(r.Timestamp), r.Key, r.Value); err != nil {
				return dst0, err
			}
		}
		return dst, nil
	}
	if nrecs == 0 {
		return dst, nil
	}
	inner := e.buf[:0]
	maxTs := int64(-1)
	for i := range nrecs {
		r := recs.At(i)
		off := int64(i)
		if magic == 0 {
			off += baseOffset
		}
		ts := timestampMs(r.Timestamp)
		maxTs = max(maxTs, ts)
		var err error
		if inner, err = appendMessage(inner, magic, off, 0, ts, r.Key, r.Value); err != nil {
			e.buf = inner
			return dst, err
		}
	}
	e.buf = inner
	// The wrapper: offset, size, crc, magic, attributes, [timestamp], null
	// key, then the compressed value with its length filled in afterwards.
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(baseOffset+int64(nrecs)-1))
	dst = be.AppendUint32(dst, 0) // size
	dst = be.AppendUint32(dst, 0) // crc
	dst = append(dst, byte(magic), byte(c))
	if magic == 1 {
		dst = be.AppendUint64(dst, uint64(maxTs))
	}
	dst = be.AppendUint32(dst, math.MaxUint32) // null key
	dst = be.AppendUint32(dst, 0)              // value length
	valStart := len(dst)
	var err error
	if dst, err = appendCompressed(dst, c, level, inner, magic == 0); err != nil {
		return dst0, fmt.Errorf("kpax: encode message set: %w", err)
	}
	if len(dst)-start > math.MaxInt32 {
		return dst0, errors.New("kpax: encode message set: message larger than 2 GiB")
	}
	m := dst[start:]
	be.PutUint32(dst[valStart-4:], uint32(len(dst)-valStart))
	be.PutUint32(m[8:], uint32(len(m)-entryHeaderLen))
	be.PutUint32(m[12:], crc32.ChecksumIEEE(m[16:]))
	return dst, nil
}

// appendMessage appends one v0 or v1 message with its offset and size.
func appendMessage(dst []byte, magic int8, offset int64, attrs int8, ts int64, key, value []byte) ([]byte, error) {
	size := messageOverhead + len(key) + len(value)
	if magic == 1 {
		size += 8
	}
	if size > math.MaxInt32 {
		return dst, errors.New("kpax: encode message set: message larger than 2 GiB")
	}
	be := binary.BigEndian
	dst = slices.Grow(dst, entryHeaderLen+size)
	start := len(dst)
	dst = be.AppendUint64(dst, uint64(offset))
	dst = be.AppendUint32(dst, uint32(size))
	dst = be.AppendUint32(dst, 0) // crc
	dst = append(dst, byte(magic), byte(attrs))
	if magic == 1 {
		dst = be.AppendUint64(dst, uint64(ts))
	}
	dst = appendBytes32(dst, key)
	dst = appendBytes32(dst, value)
	be.PutUint32(dst[start+12:], crc32.ChecksumIEEE(dst[start+16:]))
	return dst, nil
}

// appendBytes32 appends a nullable byte field with an int32 length.
func appendBytes32(dst, b []byte) []byte {
	if b == nil {
		return binary.BigEndian.AppendUint32(dst, math.MaxUint32)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}
