package kpax

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"time"
)

// This file decodes record data: the records field of a Fetch response (or a
// Produce request), which holds record batches (magic 2) and message-set
// entries (magic 0 and 1) one after another, usually ending with a batch the
// broker cut short at the response size limit.

// ErrCorruptRecords is matched (with errors.Is) by every error that reports
// record data that does not follow the record formats: a bad CRC, impossible
// lengths or counts, bad varints, undecompressable data.
var ErrCorruptRecords = classedValue(ClassAbortable, "kpax: corrupt record data")

// CorruptRecordsError reports record data that could not be decoded. It
// matches ErrCorruptRecords with errors.Is, and unwraps to the underlying
// cause when there is one (such as a decompression error wrapping
// ErrDecompressedTooLarge).
type CorruptRecordsError struct {
	Pos    int    // byte position, in the decoded input, of the bad batch or message
	Offset int64  // base offset the bad batch or message claims
	Reason string // what is wrong
	Err    error  // underlying cause, or nil
}

// Error describes the corruption, where it is, and its cause.
func (e *CorruptRecordsError) Error() string {
	s := fmt.Sprintf("kpax: corrupt record data at byte %d (offset %d): %s", e.Pos, e.Offset, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause, or nil.
func (e *CorruptRecordsError) Unwrap() error { return e.Err }

// Is reports whether target is ErrCorruptRecords, or ErrAbortable where
// the cause has no class of its own.
func (e *CorruptRecordsError) Is(target error) bool {
	return target == ErrCorruptRecords || defaultClassIs(e, target, e.Err)
}

// DefaultMaxDecompressed is the RecordReader's default bound on the bytes it
// decompresses from one input.
const DefaultMaxDecompressed = 256 << 20

// maxScratchKept is the largest decompression buffer Reset keeps for reuse.
const maxScratchKept = 32 << 20

// RecordReader decodes record data: the records field of a Fetch response
// partition, a sequence of record batches (message format v2) and message-set
// entries (v0, v1, with compressed wrapper messages), in any mix. A trailing
// batch that the broker cut short is not an error: reading stops before it
// (see Remaining). A bad CRC or malformed data is a *CorruptRecordsError.
//
// The zero value is ready to use after Reset. A RecordReader reuses its
// buffers: decoded keys, values and header values alias the input or the
// reader's decompression buffer, and headers share a backing array, so
// decoded records stay valid only until the next Reset. Copy what must live
// longer, or use a new RecordReader (or DecodeRecords) per input.
// Allocation is bounded by the input size and MaxDecompressed, never by
// counts or lengths claimed inside the data.
type RecordReader struct {
	// Topic and Partition are copied into every decoded record.
	Topic     string
	Partition int32

	// MaxDecompressed bounds the total bytes decompressed from one input;
	// 0 means DefaultMaxDecompressed. Going past it is an error that wraps
	// ErrDecompressedTooLarge.
	MaxDecompressed int

	// KeepControl makes Next and ReadAll return control batches (transaction
	// markers) too; by default they are skipped. A read_committed consumer
	// sets it to see the markers (Record.ControlType).
	KeepControl bool

	src     []byte
	pos     int
	err     error
	scratch []byte            // decompressed data of the current input
	hdrs    []Header          // headers of the current input
	keys    map[string]string // interned header keys
}

// DecodeRecords decodes all records of src (a Fetch response's records
// field) and appends them to dst, skipping control batches and a truncated
// trailing batch. It returns the records decoded before any error together
// with the error. The records alias src; it uses a new RecordReader, so
// nothing is reused between calls.
func DecodeRecords(dst []Record, src []byte) ([]Record, error) {
	var r RecordReader
	r.Reset(src)
	return r.ReadAll(dst)
}

// Reset makes r decode src from its start. Records decoded before may be
// overwritten from now on.
func (r *RecordReader) Reset(src []byte) {
	r.src, r.pos, r.err = src, 0, nil
	if cap(r.scratch) > maxScratchKept {
		r.scratch = nil
	}
	r.scratch = r.scratch[:0]
	clear(r.hdrs)
	r.hdrs = r.hdrs[:0]
}

// Remaining returns the number of input bytes not yet decoded. After Next or
// ReadAll reached the end, it is the size of the truncated trailing batch the
// broker cut short (0 if none): a fetch that returns no records but leaves
// bytes means the next batch is larger than the fetch size allowed.
func (r *RecordReader) Remaining() int { return len(r.src) - r.pos }

// ReadAll decodes the rest of the input and appends its records to dst. At
// the end of the input (or a truncated trailing batch) it returns a nil
// error; on corrupt data it returns the records decoded before it with the
// error.
func (r *RecordReader) ReadAll(dst []Record) ([]Record, error) {
	for {
		var err error
		if _, dst, err = r.Next(dst); err != nil {
			if err == io.EOF {
				err = nil
			}
			return dst, err
		}
	}
}

// Next decodes the next batch (or top-level v0/v1 message) and appends its
// records to dst. It returns the batch header, for the consumer's
// bookkeeping: continue fetching from LastOffset()+1 even when the batch has
// no records left after compaction; filter aborted transactions by ProducerID
// and the Transactional and Control attributes. It returns io.EOF at the end
// of the input or at a truncated trailing batch, and after an error it keeps
// returning that error.
func (r *RecordReader) Next(dst []Record) (BatchHeader, []Record, error) {
	for r.err == nil {
		rest := r.src[r.pos:]
		if len(rest) < 17 { // up to the magic byte
			r.err = io.EOF
			break
		}
		length := int32(binary.BigEndian.Uint32(rest[8:]))
		magic := int8(rest[16])
		var minLen int32
		switch magic {
		case 0:
			minLen = messageOverhead
		case 1:
			minLen = messageOverhead + 8
		case 2:
			minLen = batchHeaderLen - entryHeaderLen
		default:
			r.err = r.corrupt(rest, fmt.Sprintf("unknown magic %d", magic), nil)
			return BatchHeader{}, dst, r.err
		}
		if length < minLen {
			r.err = r.corrupt(rest, fmt.Sprintf("length %d below the minimum %d for magic %d", length, minLen, magic), nil)
			return BatchHeader{}, dst, r.err
		}
		if int64(length) > int64(len(rest)-entryHeaderLen) {
			r.err = io.EOF // truncated by the broker
			break
		}
		entry := rest[:entryHeaderLen+int(length)]
		n0 := len(dst)
		var h BatchHeader
		var err error
		if magic == 2 {
			h, dst, err = r.readBatch(dst, entry)
		} else {
			h, dst, err = r.readMessage(dst, entry)
		}
		if err != nil {
			clear(dst[n0:])
			r.err = err
			return BatchHeader{}, dst[:n0], err
		}
		r.pos += len(entry)
		if h.Attributes.Control() && !r.KeepControl {
			clear(dst[n0:])
			dst = dst[:n0]
			continue
		}
		return h, dst, nil
	}
	return BatchHeader{}, dst, r.err
}

// corrupt returns a *CorruptRecordsError for the entry starting at b.
func (r *RecordReader) corrupt(b []byte, reason string, err error) error {
	off := int64(-1)
	if len(b) >= 8 {
		off = int64(binary.BigEndian.Uint64(b))
	}
	return &CorruptRecordsError{Pos: r.pos, Offset: off, Reason: reason, Err: err}
}

// decompress appends the decompression of src to the scratch buffer and
// returns the appended part.
func (r *RecordReader) decompress(c Compression, src []byte, legacyLZ4 bool) ([]byte, error) {
	limit := r.MaxDecompressed
	if limit <= 0 {
		limit = DefaultMaxDecompressed
	}
	start := len(r.scratch)
	out, err := appendDecompressed(r.scratch, c, src, max(limit-start, 0), legacyLZ4)
	if err != nil {
		return nil, err
	}
	r.scratch = out
	return out[start:len(out):len(out)], nil
}

// readBatch decodes the v2 batch b (complete, from its base offset on).
func (r *RecordReader) readBatch(dst []Record, b []byte) (BatchHeader, []Record, error) {
	be := binary.BigEndian
	h := BatchHeader{
		BaseOffset:           int64(be.Uint64(b[0:])),
		BatchLength:          int32(be.Uint32(b[8:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[12:])),
		Magic:                2,
		CRC:                  be.Uint32(b[17:]),
		Attributes:           BatchAttrs(be.Uint16(b[21:])),
		LastOffsetDelta:      int32(be.Uint32(b[23:])),
		FirstTimestamp:       int64(be.Uint64(b[27:])),
		MaxTimestamp:         int64(be.Uint64(b[35:])),
		ProducerID:           int64(be.Uint64(b[43:])),
		ProducerEpoch:        int16(be.Uint16(b[51:])),
		BaseSequence:         int32(be.Uint32(b[53:])),
		NumRecords:           int32(be.Uint32(b[57:])),
	}
	if crc := crc32.Checksum(b[batchCRCStart:], castagnoli); crc != h.CRC {
		return h, dst, r.corrupt(b, fmt.Sprintf("batch CRC-32C is %#08x, computed %#08x", h.CRC, crc), nil)
	}
	data := b[batchHeaderLen:]
	if c := h.Attributes.Compression(); c != CompressionNone && (len(data) > 0 || h.NumRecords != 0) {
		if c > CompressionZstd {
			return h, dst, r.corrupt(b, fmt.Sprintf("unknown compression codec %d", c), nil)
		}
		var err error
		if data, err = r.decompress(c, data, false); err != nil {
			return h, dst, r.corrupt(b, "decompressing the batch", err)
		}
	}
	if h.NumRecords < 0 || int(h.NumRecords) > len(data)/minRecordLenV2 {
		return h, dst, r.corrupt(b, fmt.Sprintf("%d records cannot be in %d bytes", h.NumRecords, len(data)), nil)
	}
	var reason string
	if dst, reason = r.readRecordsV2(dst, &h, data); reason != "" {
		return h, dst, r.corrupt(b, reason, nil)
	}
	return h, dst, nil
}

// readVarint reads the zig-zag varint at b[p:] and returns it with the
// position after it, or a negative position if it is truncated or overflows.
func readVarint(b []byte, p int) (int64, int) {
	if uint(p) < uint(len(b)) { // also false for a negative p from a failed read
		if c := b[p]; c < 0x80 {
			return int64(c>>1) ^ -int64(c&1), p + 1
		}
		if v, n := binary.Varint(b[p:]); n > 0 {
			return v, p + n
		}
	}
	return 0, -1
}

// readBytesV2 reads a v2 nullable byte field (varint length, -1 for null) at
// b[p:], or returns a negative position.
func readBytesV2(b []byte, p int) ([]byte, int) {
	n, p := readVarint(b, p)
	switch {
	case p < 0 || n < -1 || n > int64(len(b)-p):
		return nil, -1
	case n == -1:
		return nil, p
	}
	e := p + int(n)
	return b[p:e:e], e
}

// msTime converts Kafka milliseconds to a Time; -1 (no timestamp) is the
// zero Time.
func msTime(ms int64) time.Time {
	if ms == -1 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// readRecordsV2 appends the h.NumRecords records in data (the uncompressed
// records of the batch h) to dst. It returns a non-empty reason if the data
// is malformed. The caller has checked that NumRecords fits in data.
func (r *RecordReader) readRecordsV2(dst []Record, h *BatchHeader, data []byte) ([]Record, string) {
	n := int(h.NumRecords)
	base := len(dst)
	dst = slices.Grow(dst, n)[:base+n]
	logAppend := h.Attributes.LogAppendTime()
	control := h.Attributes.Control()
	var appendTime time.Time
	if logAppend {
		appendTime = msTime(h.MaxTimestamp)
	}
	p := 0
	for i := base; i < base+n; i++ {
		l, q := readVarint(data, p)
		if q < 0 || l < minRecordLenV2-1 || l > int64(len(data)-q) {
			return dst[:i], "bad record length"
		}
		p = q + int(l)
		body := data[q:p]
		tsDelta, q := readVarint(body, 1) // after the unused attributes byte
		offDelta, q := readVarint(body, q)
		if q < 0 {
			return dst[:i], "bad record timestamp or offset delta"
		}
		key, q := readBytesV2(body, q)
		if q < 0 {
			return dst[:i], "bad record key length"
		}
		val, q := readBytesV2(body, q)
		if q < 0 {
			return dst[:i], "bad record value length"
		}
		hc, q := readVarint(body, q)
		if q < 0 || hc < 0 || hc > int64(len(body)-q)/2 {
			return dst[:i], "bad record header count"
		}
		var hdrs []Header
		if hc > 0 {
			hs := len(r.hdrs)
			for range hc {
				var kl int64
				if kl, q = readVarint(body, q); q < 0 || kl < 0 || kl > int64(len(body)-q) {
					return dst[:i], "bad header key length"
				}
				k := r.intern(body[q : q+int(kl)])
				var v []byte
				if v, q = readBytesV2(body, q+int(kl)); q < 0 {
					return dst[:i], "bad header value length"
				}
				r.hdrs = append(r.hdrs, Header{Key: k, Value: v})
			}
			hdrs = r.hdrs[hs:len(r.hdrs):len(r.hdrs)]
		}
		if q != len(body) {
			return dst[:i], "record length does not match its fields"
		}
		if control && len(key) < 4 {
			return dst[:i], "control record key shorter than 4 bytes"
		}
		ts := appendTime
		if !logAppend {
			ts = msTime(h.FirstTimestamp + tsDelta)
		}
		dst[i] = Record{
			Topic:         r.Topic,
			Partition:     r.Partition,
			LeaderEpoch:   h.PartitionLeaderEpoch,
			Offset:        h.BaseOffset + offDelta,
			Key:           key,
			Value:         val,
			Headers:       hdrs,
			Timestamp:     ts,
			ProducerID:    h.ProducerID,
			ProducerEpoch: h.ProducerEpoch,
			Attrs:         h.Attributes,
		}
	}
	if p != len(data) {
		return dst, "bytes after the last record"
	}
	return dst, ""
}

// maxInterned bounds the header keys a RecordReader interns.
const (
	maxInterned      = 1024
	maxInternedBytes = 128
)

// intern returns b as a string, without allocating for the header keys seen
// before (most topics use a handful).
func (r *RecordReader) intern(b []byte) string {
	if s, ok := r.keys[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(r.keys) < maxInterned && len(b) <= maxInternedBytes {
		if r.keys == nil {
			r.keys = make(map[string]string)
		}
		r.keys[s] = s
	}
	return s
}

// legacyMessage is a decoded v0 or v1 message.
type legacyMessage struct {
	offset int64
	crc    uint32
	magic  int8
	attrs  BatchAttrs
	ts     int64
	key    []byte
	value  []byte
}

// parseMessage decodes the v0/v1 message entry b (offset, size, message; the
// caller cut b to the size). It returns a non-empty reason if it is malformed.
func parseMessage(b []byte) (m legacyMessage, reason string) {
	if len(b) < entryHeaderLen+messageOverhead {
		return m, "message shorter than its fixed fields"
	}
	be := binary.BigEndian
	m.offset = int64(be.Uint64(b))
	m.crc = be.Uint32(b[12:])
	m.magic = int8(b[16])
	m.ts = -1
	p := 18
	switch m.magic {
	case 0:
		m.attrs = BatchAttrs(b[17]) & attrCompressionMask
	case 1:
		if len(b) < entryHeaderLen+messageOverhead+8 {
			return m, "message shorter than its fixed fields"
		}
		m.attrs = BatchAttrs(b[17]) & (attrCompressionMask | AttrLogAppendTime)
		m.ts = int64(be.Uint64(b[18:]))
		p = 26
	default:
		return m, "message magic is not 0 or 1"
	}
	if crc32.ChecksumIEEE(b[16:]) != m.crc {
		return m, "message CRC mismatch"
	}
	if m.key, p = readBytes32(b, p); p < 0 {
		return m, "bad message key length"
	}
	if m.value, p = readBytes32(b, p); p < 0 {
		return m, "bad message value length"
	}
	if p != len(b) {
		return m, "message size does not match its fields"
	}
	return m, ""
}

// readBytes32 reads a nullable byte field with an int32 length at b[p:], or
// returns a negative position.
func readBytes32(b []byte, p int) ([]byte, int) {
	if p < 0 || len(b)-p < 4 {
		return nil, -1
	}
	n := int64(int32(binary.BigEndian.Uint32(b[p:])))
	p += 4
	switch {
	case n == -1:
		return nil, p
	case n < -1 || n > int64(len(b)-p):
		return nil, -1
	}
	e := p + int(n)
	return b[p:e:e], e
}

// readMessage decodes the top-level v0/v1 message entry b, a plain message or
// a compressed wrapper of inner messages.
func (r *RecordReader) readMessage(dst []Record, b []byte) (BatchHeader, []Record, error) {
	m, reason := parseMessage(b)
	if reason != "" {
		return BatchHeader{}, dst, r.corrupt(b, reason, nil)
	}
	h := BatchHeader{
		BaseOffset:           m.offset,
		BatchLength:          int32(len(b) - entryHeaderLen),
		PartitionLeaderEpoch: -1,
		Magic:                m.magic,
		CRC:                  m.crc,
		Attributes:           m.attrs,
		FirstTimestamp:       m.ts,
		MaxTimestamp:         m.ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		NumRecords:           1,
	}
	rec := Record{
		Topic: r.Topic, Partition: r.Partition, LeaderEpoch: -1, Offset: m.offset,
		Key: m.key, Value: m.value, Timestamp: msTime(m.ts),
		ProducerID: -1, ProducerEpoch: -1, Attrs: m.attrs,
	}
	c := m.attrs.Compression()
	if c == CompressionNone {
		return h, append(dst, rec), nil
	}
	if c > CompressionLZ4 {
		return h, dst, r.corrupt(b, fmt.Sprintf("compression codec %d in message format v%d", c, m.magic), nil)
	}
	if m.value == nil {
		return h, dst, r.corrupt(b, "compressed wrapper message has a null value", nil)
	}
	data, err := r.decompress(c, m.value, m.magic == 0)
	if err != nil {
		return h, dst, r.corrupt(b, "decompressing the wrapper message", err)
	}
	base := len(dst)
	for p := 0; p < len(data); {
		rest := data[p:]
		if len(rest) < entryHeaderLen {
			return h, dst, r.corrupt(b, "truncated inner message", nil)
		}
		size := int64(int32(binary.BigEndian.Uint32(rest[8:])))
		if size < 0 || size > int64(len(rest)-entryHeaderLen) {
			return h, dst, r.corrupt(b, "truncated inner message", nil)
		}
		p += entryHeaderLen + int(size)
		im, reason := parseMessage(rest[:entryHeaderLen+size])
		switch {
		case reason != "":
			return h, dst, r.corrupt(b, "inner message: "+reason, nil)
		case im.magic != m.magic:
			return h, dst, r.corrupt(b, "inner message magic differs from the wrapper's", nil)
		case im.attrs.Compression() != CompressionNone:
			return h, dst, r.corrupt(b, "compressed inner message", nil)
		}
		rec.Offset, rec.Key, rec.Value = im.offset, im.key, im.value
		if !m.attrs.LogAppendTime() {
			rec.Timestamp = msTime(im.ts)
		}
		dst = append(dst, rec)
	}
	if len(dst) == base {
		h.NumRecords = 0
		return h, dst, nil
	}
	if m.magic == 1 {
		// Inner offsets are relative; the wrapper has the last one's
		// absolute offset.
		delta := m.offset - dst[len(dst)-1].Offset
		for i := base; i < len(dst); i++ {
			dst[i].Offset += delta
		}
	}
	h.BaseOffset = dst[base].Offset
	h.LastOffsetDelta = int32(dst[len(dst)-1].Offset - h.BaseOffset)
	h.NumRecords = int32(len(dst) - base)
	return h, dst, nil
}

// recordsHint is how many records the v2 batches in data hold, as far as
// their headers say and their bytes could hold uncompressed: a hint to size
// a records slice once (so bounded by the bytes received), not a count.
// It stops at the first batch that is not a whole v2 batch.
func recordsHint(data []byte) int {
	const hdr = 61 // a v2 batch header, up to and including NumRecords
	n := 0
	for len(data) >= hdr && data[16] == 2 {
		size := int64(binary.BigEndian.Uint32(data[8:12])) + 12 // BatchLength counts from after itself
		if size < hdr || size > int64(len(data)) {
			break
		}
		nr := int64(int32(binary.BigEndian.Uint32(data[57:61])))
		n += int(max(0, min(nr, (size-hdr)/minRecordLenV2)))
		data = data[size:]
	}
	return n
}
