package kpax

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"time"
)

// This file holds the protocol's primitive types (see "Protocol Primitive
// Types" in the Kafka protocol guide), used by the generated code in
// protocol_gen.go. Encoding appends to a byte slice; decoding reads through a
// decoder with a sticky error, so a truncated or hostile message yields one
// clear error and never a panic or an allocation larger than the input.

// UUID is a Kafka UUID (topic IDs, directory IDs, ...): 16 bytes in network
// byte order. The zero UUID means "none" in most fields.
type UUID [16]byte

// String returns the UUID in Kafka's URL-safe base64-free hex form
// (8-4-4-4-12 hex digits).
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// TaggedField is a tagged field of a flexible message version that this
// package does not know by name. Decoding keeps such fields so that
// re-encoding a decoded message loses nothing.
type TaggedField struct {
	Tag  uint32
	Data []byte
}

// ErrMalformed is wrapped by every error that reports bytes which do not
// follow the protocol (truncated data, impossible lengths, bad varints).
var ErrMalformed = classedValue(ClassRetriable, "kpax: malformed protocol data")

// --- encoding ---

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendInt8(b []byte, v int8) []byte { return append(b, byte(v)) }

func appendInt16(b []byte, v int16) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }

func appendUint16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }

func appendInt32(b []byte, v int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) }

func appendInt64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

func appendFloat64(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
}

func appendUUID(b []byte, v UUID) []byte { return append(b, v[:]...) }

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// appendLen writes a length prefix: compact (N+1 as unsigned varint, 0 for
// null) in flexible versions, else int16 or int32 (-1 for null).
func appendLen(b []byte, n int, null, compact, wide bool) []byte {
	switch {
	case compact && null:
		return append(b, 0)
	case compact:
		return binary.AppendUvarint(b, uint64(n)+1)
	case null && wide:
		return appendInt32(b, -1)
	case null:
		return appendInt16(b, -1)
	case wide:
		return appendInt32(b, int32(n))
	default:
		return appendInt16(b, int16(n))
	}
}

func appendString(b []byte, s string, compact bool) []byte {
	b = appendLen(b, len(s), false, compact, false)
	return append(b, s...)
}

func appendNullableString(b []byte, s *string, compact bool) []byte {
	if s == nil {
		return appendLen(b, 0, true, compact, false)
	}
	return appendString(b, *s, compact)
}

func appendBytes(b []byte, v []byte, compact bool) []byte {
	b = appendLen(b, len(v), false, compact, true)
	return append(b, v...)
}

func appendNullableBytes(b []byte, v []byte, compact bool) []byte {
	if v == nil {
		return appendLen(b, 0, true, compact, true)
	}
	return appendBytes(b, v, compact)
}

// appendArrayLen writes an array's length; a nil array is written as null
// only where the field is nullable, else as empty.
func appendArrayLen(b []byte, n int, isNil, nullable, compact bool) []byte {
	return appendLen(b, n, isNil && nullable, compact, true)
}

// appendTagged writes one tagged field whose value was appended to b from
// start on: it inserts the tag and the value's size in front of the value.
func appendTagged(b []byte, start int, tag uint32) []byte {
	size := len(b) - start
	var hdr [2 * binary.MaxVarintLen32]byte
	h := binary.AppendUvarint(hdr[:0], uint64(tag))
	h = binary.AppendUvarint(h, uint64(size))
	b = append(b, h...)
	copy(b[start+len(h):], b[start:start+size])
	copy(b[start:], h)
	return b
}

// appendUnknownTagsBelow appends tags[i:] while their tag is below limit, so
// unknown fields interleave with known ones in tag order.
func appendUnknownTagsBelow(b []byte, tags []TaggedField, i int, limit uint32) ([]byte, int) {
	for ; i < len(tags) && tags[i].Tag < limit; i++ {
		b = appendUnknownTags(b, tags[i:i+1])
	}
	return b, i
}

func appendUnknownTags(b []byte, tags []TaggedField) []byte {
	for _, t := range tags {
		b = binary.AppendUvarint(b, uint64(t.Tag))
		b = binary.AppendUvarint(b, uint64(len(t.Data)))
		b = append(b, t.Data...)
	}
	return b
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// --- decoding ---

// decoder reads primitives from b. The first failure is kept in err and
// every later read returns zero values, so generated code checks once.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > d.remaining() {
		d.fail("%s needs %d bytes at offset %d, %d left", what, n, d.off, d.remaining())
		return nil
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

func (d *decoder) bool() bool {
	p := d.take(1, "boolean")
	return p != nil && p[0] != 0
}

func (d *decoder) int8() int8 {
	if p := d.take(1, "int8"); p != nil {
		return int8(p[0])
	}
	return 0
}

func (d *decoder) int16() int16 {
	if p := d.take(2, "int16"); p != nil {
		return int16(binary.BigEndian.Uint16(p))
	}
	return 0
}

func (d *decoder) uint16() uint16 {
	if p := d.take(2, "uint16"); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) int32() int32 {
	if p := d.take(4, "int32"); p != nil {
		return int32(binary.BigEndian.Uint32(p))
	}
	return 0
}

func (d *decoder) int64() int64 {
	if p := d.take(8, "int64"); p != nil {
		return int64(binary.BigEndian.Uint64(p))
	}
	return 0
}

func (d *decoder) float64() float64 {
	if p := d.take(8, "float64"); p != nil {
		return math.Float64frombits(binary.BigEndian.Uint64(p))
	}
	return 0
}

func (d *decoder) uuid() (u UUID) {
	if p := d.take(16, "uuid"); p != nil {
		copy(u[:], p)
	}
	return u
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad unsigned varint at offset %d", d.off)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint at offset %d", d.off)
		return 0
	}
	d.off += n
	return v
}

// length reads a length prefix and returns -1 for null. A length that
// cannot fit in the bytes left is an error.
func (d *decoder) length(compact, wide bool, what string) int {
	if d.err != nil {
		return -1
	}
	var n int64
	switch {
	case compact:
		u := d.uvarint()
		if u > math.MaxInt32 {
			d.fail("%s length %d too large", what, u)
			return -1
		}
		n = int64(u) - 1
	case wide:
		n = int64(d.int32())
	default:
		n = int64(d.int16())
	}
	if d.err != nil || n == -1 {
		return -1
	}
	if n < -1 {
		d.fail("%s has negative length %d", what, n)
		return -1
	}
	return int(n)
}

func (d *decoder) string(compact bool) string {
	n := d.length(compact, false, "string")
	if n < 0 {
		if d.err == nil {
			d.fail("null in a non-nullable string at offset %d", d.off)
		}
		return ""
	}
	return string(d.take(n, "string"))
}

func (d *decoder) nullableString(compact bool) *string {
	n := d.length(compact, false, "string")
	if n < 0 {
		return nil
	}
	p := d.take(n, "string")
	if p == nil {
		return nil
	}
	s := string(p)
	return &s
}

// bytes returns a slice that aliases the decoded buffer.
func (d *decoder) bytes(compact bool) []byte {
	n := d.length(compact, true, "bytes")
	if n < 0 {
		if d.err == nil {
			d.fail("null in non-nullable bytes at offset %d", d.off)
		}
		return nil
	}
	return d.take(n, "bytes")
}

// nullableBytes returns nil for null, else a slice aliasing the buffer.
func (d *decoder) nullableBytes(compact bool) []byte {
	n := d.length(compact, true, "bytes")
	if n < 0 {
		return nil
	}
	return d.take(n, "bytes")
}

// arrayLen reads an array length (-1 for null). minSize is the smallest
// encoding of one element, so a hostile count cannot make the caller
// allocate more than the bytes that actually arrived can describe.
func (d *decoder) arrayLen(compact bool, minSize int) int {
	n := d.length(compact, true, "array")
	if n > 0 && n > d.remaining()/max(minSize, 1) {
		d.fail("array of %d elements cannot fit in %d bytes at offset %d", n, d.remaining(), d.off)
		return -1
	}
	return n
}

// tagCount reads the number of tagged fields that follow. Each takes at
// least two bytes, which bounds a hostile count.
func (d *decoder) tagCount() int {
	n := d.uvarint()
	if d.err == nil && n > uint64(d.remaining()/2) {
		d.fail("%d tagged fields cannot fit in %d bytes", n, d.remaining())
		return 0
	}
	return int(n)
}

// tag reads one tagged field: its tag and its data, which aliases the buffer.
func (d *decoder) tag() (uint32, []byte) {
	tag := d.uvarint()
	size := d.uvarint()
	if d.err != nil {
		return 0, nil
	}
	if tag > math.MaxUint32 {
		d.fail("tag %d out of range", tag)
		return 0, nil
	}
	if size > uint64(d.remaining()) {
		d.fail("tagged field %d of %d bytes, %d left", tag, size, d.remaining())
		return 0, nil
	}
	return uint32(tag), d.take(int(size), "tagged field")
}

// sub takes the error of a decoder that read a known tagged field.
func (d *decoder) sub(fd *decoder, tag uint32) {
	if fd.err != nil && d.err == nil {
		d.err = fmt.Errorf("tagged field %d: %w", tag, fd.err)
	}
}

func ptr[T any](v T) *T { return &v }

// millis32 is d in whole milliseconds for a protocol's INT32 timeout field,
// capped at its largest value.
func millis32(d time.Duration) int32 {
	return int32(min(max(d/time.Millisecond, 0), math.MaxInt32))
}
