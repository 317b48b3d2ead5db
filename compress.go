package kpax

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression is a Kafka compression codec, as stored in the low 3 bits of the attributes of a
// record batch (v2) or of a message (v0/v1). The zero value is CompressionNone.
type Compression int8

// The compression codecs that Kafka defines.
const (
	// CompressionNone stores records uncompressed.
	CompressionNone Compression = 0
	// CompressionGzip is DEFLATE in gzip framing (RFC 1952).
	CompressionGzip Compression = 1
	// CompressionSnappy is Snappy. kpax writes the xerial framing that the Java client writes and
	// reads both that and raw Snappy blocks (what librdkafka and some Go clients write).
	CompressionSnappy Compression = 2
	// CompressionLZ4 is the LZ4 frame format. Message set v0 uses a broken frame header checksum
	// (KAFKA-3160); kpax writes it there and accepts it everywhere.
	CompressionLZ4 Compression = 3
	// CompressionZstd is Zstandard (needs brokers >= 2.1 and record batch v2).
	CompressionZstd Compression = 4
)

// String returns the codec's Kafka name ("none", "gzip", "snappy", "lz4", "zstd"), or
// "compression(N)" for a value Kafka does not define.
func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionSnappy:
		return "snappy"
	case CompressionLZ4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return "compression(" + strconv.Itoa(int(c)) + ")"
}

// ParseCompression returns the codec with the given Kafka name, as in the compression.type
// setting: "none", "gzip", "snappy", "lz4" or "zstd", in any case.
func ParseCompression(s string) (Compression, error) {
	for c := CompressionNone; c <= CompressionZstd; c++ {
		if strings.EqualFold(s, c.String()) {
			return c, nil
		}
	}
	return 0, fmt.Errorf("kpax: unknown compression %q (want none, gzip, snappy, lz4 or zstd)", s)
}

// ErrDecompressedTooLarge is returned, wrapped, when decompressing would produce more bytes than the
// caller's limit, as a compression bomb would. Decompression stops there without allocating more.
var ErrDecompressedTooLarge = errors.New("kpax: decompressed data too large")

// ErrCorruptCompressed is returned, wrapped with the codec's own error where there is one, when
// compressed data is truncated or malformed.
var ErrCorruptCompressed = errors.New("kpax: corrupt compressed data")

// Compression levels, as in Kafka's compression.<codec>.level settings (KIP-390). Level 0 always
// means the codec's default.
const (
	gzipMinLevel, gzipMaxLevel, gzipDefaultLevel = 1, 9, 6
	lz4MinLevel, lz4MaxLevel                     = 1, 17 // 1 is the fast compressor, 2..17 LZ4HC
	zstdMinLevel, zstdMaxLevel                   = -131072, 22
)

// validCompressionLevel reports whether level is valid for c: 0 (the codec's default) for every
// codec; 1..9 for gzip; 1..17 for lz4 (1 is the fast compressor, the default; 2..17 high
// compression, slower with each level); -131072..22 for zstd (negative levels are the fastest).
func validCompressionLevel(c Compression, level int) error {
	lo, hi := 0, 0
	switch c {
	case CompressionNone, CompressionSnappy:
	case CompressionGzip:
		lo, hi = gzipMinLevel, gzipMaxLevel
	case CompressionLZ4:
		lo, hi = lz4MinLevel, lz4MaxLevel
	case CompressionZstd:
		lo, hi = zstdMinLevel, zstdMaxLevel
	default:
		return unknownCompression(c)
	}
	if level == 0 || (lo <= level && level <= hi) {
		return nil
	}
	if lo == hi {
		return fmt.Errorf("kpax: %v has no compression levels, got %d (want 0)", c, level)
	}
	return fmt.Errorf("kpax: %v compression level %d out of range [%d, %d] (0 means the default)", c, level, lo, hi)
}

func unknownCompression(c Compression) error {
	return fmt.Errorf("kpax: unsupported compression codec %d", int(c))
}

func overLimit(c Compression, limit int) error {
	return fmt.Errorf("%w: %v output exceeds the limit of %d bytes", ErrDecompressedTooLarge, c, limit)
}

func corruptInput(c Compression, what string) error {
	return fmt.Errorf("%w: %v: %s", ErrCorruptCompressed, c, what)
}

func corruptInputErr(c Compression, err error) error {
	return fmt.Errorf("%w: %v: %w", ErrCorruptCompressed, c, err)
}

// appendCompressed appends src compressed with c at level to dst and returns the extended slice.
// level 0 means the codec's default. legacyLZ4 selects the broken LZ4 frame header checksum that
// Kafka's magic-0 message sets use (KAFKA-3160 / KIP-57).
func appendCompressed(dst []byte, c Compression, level int, src []byte, legacyLZ4 bool) ([]byte, error) {
	if err := validCompressionLevel(c, level); err != nil {
		return dst, err
	}
	switch c {
	case CompressionNone:
		return append(dst, src...), nil
	case CompressionGzip:
		return gzipCompress(dst, level, src)
	case CompressionSnappy:
		return xerialCompress(dst, src), nil
	case CompressionLZ4:
		return lz4Compress(dst, level, src, legacyLZ4)
	default: // CompressionZstd; validCompressionLevel rejected unknown codecs.
		return zstdCompress(dst, level, src)
	}
}

// appendDecompressed appends the decompressed src to dst. It fails with an error wrapping
// ErrDecompressedTooLarge once more than limit bytes would be produced (a compression bomb gives
// an error, never an OOM), and with one wrapping ErrCorruptCompressed for corrupt input.
// For LZ4 it accepts both the correct and the legacy (magic 0) header checksum, whatever
// legacyLZ4 says, as Kafka does.
//
// On error it returns dst unchanged (bytes past its length may have been written). Memory
// allocated is bounded by limit and len(src), never by sizes that the input declares.
func appendDecompressed(dst []byte, c Compression, src []byte, limit int, legacyLZ4 bool) ([]byte, error) {
	limit = max(limit, 0)
	if c != CompressionNone && len(src) == 0 {
		if c < CompressionNone || c > CompressionZstd {
			return dst, unknownCompression(c)
		}
		return dst, corruptInput(c, "empty input")
	}
	var out []byte
	var err error
	switch c {
	case CompressionNone:
		if len(src) > limit {
			return dst, overLimit(c, limit)
		}
		return append(dst, src...), nil
	case CompressionGzip:
		out, err = gzipDecompress(dst, src, limit)
	case CompressionSnappy:
		out, err = snappyDecompress(dst, src, limit)
	case CompressionLZ4:
		out, err = lz4Decompress(dst, src, limit)
	case CompressionZstd:
		out, err = zstdDecompress(dst, src, limit)
	default:
		return dst, unknownCompression(c)
	}
	if err != nil {
		return dst, err
	}
	if len(out)-len(dst) > limit { // Defence in depth: every codec checks as it goes.
		return dst, overLimit(c, limit)
	}
	return out, nil
}

// --- gzip ---

// gzipWriters holds pooled *gzipWriter by level (index 0 unused: level 0 means gzipDefaultLevel).
var gzipWriters [gzipMaxLevel + 1]sync.Pool

// gzipReaders holds pooled *gzipReader.
var gzipReaders sync.Pool

type gzipWriter struct {
	sw compressSink
	zw *gzip.Writer
}

type gzipReader struct {
	br bytes.Reader
	zr gzip.Reader
}

// compressSink is an io.Writer that appends to a byte slice.
type compressSink struct{ b []byte }

func (w *compressSink) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func gzipCompress(dst []byte, level int, src []byte) ([]byte, error) {
	if level == 0 {
		level = gzipDefaultLevel
	}
	pool := &gzipWriters[level]
	w, _ := pool.Get().(*gzipWriter)
	if w == nil {
		w = new(gzipWriter)
		zw, err := gzip.NewWriterLevel(&w.sw, level)
		if err != nil {
			return dst, fmt.Errorf("kpax: gzip: %w", err)
		}
		w.zw = zw
	} else {
		w.zw.Reset(&w.sw)
	}
	w.sw.b = dst
	_, err := w.zw.Write(src)
	if err == nil {
		err = w.zw.Close()
	}
	out := w.sw.b
	w.sw.b = nil
	pool.Put(w)
	if err != nil {
		return dst, fmt.Errorf("kpax: gzip: %w", err)
	}
	return out, nil
}

func gzipDecompress(dst, src []byte, limit int) ([]byte, error) {
	r, _ := gzipReaders.Get().(*gzipReader)
	if r == nil {
		r = new(gzipReader)
	}
	defer func() {
		r.br.Reset(nil) // Keep no reference to src in the pool.
		gzipReaders.Put(r)
	}()
	r.br.Reset(src)
	if err := r.zr.Reset(&r.br); err != nil {
		return dst, corruptInputErr(CompressionGzip, err)
	}
	r.zr.Multistream(true) // Concatenated members, as Java's GZIPInputStream reads them.
	out, err := readDecompressed(dst, &r.zr, limit, 3*len(src))
	if err == errOverLimit {
		return dst, overLimit(CompressionGzip, limit)
	}
	if err != nil {
		return dst, corruptInputErr(CompressionGzip, err)
	}
	return out, nil
}

var errOverLimit = errors.New("limit") // internal signal from readDecompressed, never returned to callers

// satAdd adds two non-negative ints, saturating at math.MaxInt.
func satAdd(a, b int) int {
	if b > math.MaxInt-a {
		return math.MaxInt
	}
	return a + b
}

// growOutput makes room in dst for n more bytes. When it must reallocate it at least doubles the
// capacity, so that appending T bytes in steps allocates about 2T in all, but not past ceiling
// unless the n bytes need it.
func growOutput(dst []byte, n, ceiling int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	b := make([]byte, len(dst), max(len(dst)+n, min(2*cap(dst), ceiling)))
	copy(b, dst)
	return b
}

// readDecompressed appends what r produces to dst until io.EOF, failing with errOverLimit once more than
// limit bytes come. It grows dst geometrically from hint, never past limit+1 new bytes.
func readDecompressed(dst []byte, r io.Reader, limit, hint int) ([]byte, error) {
	start := len(dst)
	want := start + limit + 1 // One byte past the limit proves the limit is exceeded.
	if limit == math.MaxInt || want < start {
		want = math.MaxInt
	}
	for {
		if len(dst) == cap(dst) {
			dst = growOutput(dst, min(max(cap(dst)-start, hint, 512), want-len(dst)), want)
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), want)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst, errOverLimit
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// --- snappy ---

// xerialHeader starts the xerial snappy-java framing that Kafka's Java client writes: magic
// 0x82 "SNAPPY" 0x00, big-endian int32 version 1 and int32 minimum compatible version 1. Chunks
// follow, each a big-endian int32 length and a raw Snappy block.
var xerialHeader = [16]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}

// xerialBlockSize is the uncompressed size of a chunk, snappy-java's default.
const xerialBlockSize = 32 << 10

func isXerial(src []byte) bool {
	return len(src) >= 8 && string(src[:8]) == string(xerialHeader[:8])
}

func xerialCompress(dst, src []byte) []byte {
	dst = append(dst, xerialHeader[:]...)
	for len(src) > 0 {
		chunk := src[:min(len(src), xerialBlockSize)]
		src = src[len(chunk):]
		n := s2.MaxEncodedLen(len(chunk))
		dst = growOutput(dst, 4+n, math.MaxInt)
		at := len(dst)
		enc := s2.EncodeSnappy(dst[at+4:at+4+n], chunk)
		binary.BigEndian.PutUint32(dst[at:at+4], uint32(len(enc)))
		dst = dst[:at+4+len(enc)]
	}
	return dst
}

func snappyDecompress(dst, src []byte, limit int) ([]byte, error) {
	if !isXerial(src) {
		out, err := snappyBlock(dst, src, limit)
		if err == errOverLimit {
			return dst, overLimit(CompressionSnappy, limit)
		}
		return out, err
	}
	out := dst
	for len(src) > 0 {
		if isXerial(src) { // The header, or that of a concatenated stream (snappy-java reads both).
			if len(src) < len(xerialHeader) {
				return dst, corruptInput(CompressionSnappy, "truncated xerial header")
			}
			if v := int32(binary.BigEndian.Uint32(src[12:16])); v < 1 { // As snappy-java checks.
				return dst, corruptInput(CompressionSnappy, "bad xerial compatible version "+strconv.Itoa(int(v)))
			}
			src = src[len(xerialHeader):]
			continue
		}
		if len(src) < 4 {
			return dst, corruptInput(CompressionSnappy, "truncated xerial chunk length")
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return dst, corruptInput(CompressionSnappy, "xerial chunk longer than the input")
		}
		var err error
		out, err = snappyBlock(out, src[:n], limit-(len(out)-len(dst)))
		if err == errOverLimit {
			return dst, overLimit(CompressionSnappy, limit)
		}
		if err != nil {
			return dst, err
		}
		src = src[n:]
	}
	return out, nil
}

// snappyBlock appends the decoding of one raw Snappy block to dst, checking its declared length
// against limit before allocating: if it is larger, it fails with errOverLimit.
func snappyBlock(dst, src []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return dst, corruptInputErr(CompressionSnappy, err)
	}
	if n > limit {
		return dst, errOverLimit
	}
	dst = growOutput(dst, n, satAdd(len(dst), limit))
	at := len(dst)
	if _, err := s2.Decode(dst[at:at+n], src); err != nil {
		return dst, corruptInputErr(CompressionSnappy, err)
	}
	return dst[:at+n], nil
}

// --- lz4 ---

// LZ4 frame format constants (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md).
const (
	lz4Magic          = 0x184D2204
	lz4SkipMagic      = 0x184D2A50 // The low 4 bits are free.
	lz4FlagVersion    = 0x40       // FLG bits 7-6 = 01.
	lz4FlagIndep      = 0x20
	lz4FlagBlockSum   = 0x10
	lz4FlagSize       = 0x08
	lz4FlagContentSum = 0x04
	lz4FlagDictID     = 0x01
	lz4BD64KB         = 4 << 4 // BD: block maximum size 64 KiB.
	lz4BlockSize      = 64 << 10
	lz4Uncompressed   = 1 << 31 // Block size high bit: the block is stored.
)

var (
	lz4Fast sync.Pool // *lz4.Compressor
	lz4HC   sync.Pool // *lz4.CompressorHC
)

// lz4Compress writes one frame the way Kafka's Java client does: independent 64 KiB blocks,
// without block or content checksums or content size.
func lz4Compress(dst []byte, level int, src []byte, legacy bool) ([]byte, error) {
	hdr := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, lz4Magic)
	dst = append(dst, lz4FlagVersion|lz4FlagIndep, lz4BD64KB)
	sum := dst[hdr+4:] // The header checksum covers the descriptor...
	if legacy {
		sum = dst[hdr:] // ...or, in Kafka's magic 0 message sets, the magic number too.
	}
	dst = append(dst, byte(xxhash32(sum, 0)>>8))

	var fast *lz4.Compressor
	var hc *lz4.CompressorHC
	if level <= 1 {
		fast, _ = lz4Fast.Get().(*lz4.Compressor)
		if fast == nil {
			fast = new(lz4.Compressor)
		}
		defer lz4Fast.Put(fast)
	} else {
		hc, _ = lz4HC.Get().(*lz4.CompressorHC)
		if hc == nil {
			hc = new(lz4.CompressorHC)
		}
		// Search depth: 4 at level 2, which already compresses better than the fast compressor,
		// up to the whole 64 KiB window at levels 16 and 17.
		hc.Level = lz4.CompressionLevel(1) << min(level, 16)
		defer lz4HC.Put(hc)
	}
	for len(src) > 0 {
		block := src[:min(len(src), lz4BlockSize)]
		src = src[len(block):]
		bound := lz4.CompressBlockBound(len(block))
		dst = growOutput(dst, 4+bound, math.MaxInt)
		at := len(dst)
		out := dst[at+4 : at+4+bound]
		var n int
		var err error
		if fast != nil {
			n, err = fast.CompressBlock(block, out)
		} else {
			n, err = hc.CompressBlock(block, out)
		}
		if err != nil {
			return dst[:hdr], fmt.Errorf("kpax: lz4: %w", err)
		}
		if n == 0 || n >= len(block) { // Incompressible: store it.
			n = copy(out, block)
			binary.LittleEndian.PutUint32(dst[at:at+4], uint32(n)|lz4Uncompressed)
		} else {
			binary.LittleEndian.PutUint32(dst[at:at+4], uint32(n))
		}
		dst = dst[:at+4+n]
	}
	return binary.LittleEndian.AppendUint32(dst, 0), nil // End mark.
}

// lz4Decompress decodes one or more LZ4 frames (and skips skippable frames). Block dependency,
// block and content checksums and content size are supported; dictionaries are not. The header
// checksum may be the correct one or Kafka's legacy one, which also covers the magic number.
func lz4Decompress(dst, src []byte, limit int) ([]byte, error) {
	const c = CompressionLZ4
	out := dst
	for len(src) > 0 {
		if len(src) < 4 {
			return dst, corruptInput(c, "truncated frame magic")
		}
		magic := binary.LittleEndian.Uint32(src)
		if magic&^0xF == lz4SkipMagic {
			if len(src) < 8 {
				return dst, corruptInput(c, "truncated skippable frame")
			}
			n := binary.LittleEndian.Uint32(src[4:])
			if uint64(n) > uint64(len(src)-8) {
				return dst, corruptInput(c, "skippable frame longer than the input")
			}
			src = src[8+n:]
			continue
		}
		if magic != lz4Magic {
			return dst, corruptInput(c, fmt.Sprintf("bad frame magic %#08x", magic))
		}
		var err error
		out, src, err = lz4Frame(out, src, limit-(len(out)-len(dst)))
		if err == errOverLimit {
			return dst, overLimit(c, limit)
		}
		if err != nil {
			return dst, err
		}
	}
	return out, nil
}

// lz4Frame decodes the frame at the start of src, which starts with the frame magic, and returns
// the rest of src.
func lz4Frame(dst, src []byte, limit int) (_, rest []byte, _ error) {
	const c = CompressionLZ4
	if len(src) < 7 {
		return dst, nil, corruptInput(c, "truncated frame header")
	}
	flg, bd := src[4], src[5]
	if flg>>6 != 1 {
		return dst, nil, corruptInput(c, fmt.Sprintf("unsupported frame version %d", flg>>6))
	}
	if flg&0x02 != 0 || bd&0x8F != 0 {
		return dst, nil, corruptInput(c, "reserved frame descriptor bits set")
	}
	if flg&lz4FlagDictID != 0 {
		return dst, nil, corruptInput(c, "frame needs a dictionary")
	}
	if bd>>4 < 4 {
		return dst, nil, corruptInput(c, fmt.Sprintf("bad block maximum size code %d", bd>>4))
	}
	blockMax := 1 << (2*int(bd>>4) + 8) // 4: 64 KiB, 5: 256 KiB, 6: 1 MiB, 7: 4 MiB.
	hlen := 7
	if flg&lz4FlagSize != 0 {
		hlen += 8
	}
	if len(src) < hlen {
		return dst, nil, corruptInput(c, "truncated frame header")
	}
	if hc := src[hlen-1]; hc != byte(xxhash32(src[4:hlen-1], 0)>>8) && hc != byte(xxhash32(src[:hlen-1], 0)>>8) {
		return dst, nil, corruptInput(c, "bad frame header checksum")
	}
	start := len(dst)
	var contentSize uint64
	if flg&lz4FlagSize != 0 {
		contentSize = binary.LittleEndian.Uint64(src[6:])
		if contentSize > uint64(limit) {
			return dst, nil, errOverLimit
		}
		dst = growOutput(dst, int(contentSize), satAdd(start, limit)) // Bounded by limit.
	}
	src = src[hlen:]
	for {
		if len(src) < 4 {
			return dst, nil, corruptInput(c, "truncated block size")
		}
		bsize := binary.LittleEndian.Uint32(src)
		src = src[4:]
		if bsize == 0 {
			break // End mark.
		}
		stored := bsize&lz4Uncompressed != 0
		n := int(bsize &^ lz4Uncompressed)
		if n > blockMax {
			return dst, nil, corruptInput(c, "block larger than the frame's maximum")
		}
		if n > len(src) {
			return dst, nil, corruptInput(c, "truncated block")
		}
		block := src[:n]
		src = src[n:]
		if flg&lz4FlagBlockSum != 0 {
			if len(src) < 4 {
				return dst, nil, corruptInput(c, "truncated block checksum")
			}
			if binary.LittleEndian.Uint32(src) != xxhash32(block, 0) {
				return dst, nil, corruptInput(c, "bad block checksum")
			}
			src = src[4:]
		}
		left := limit - (len(dst) - start)
		if stored {
			if n > left {
				return dst, nil, errOverLimit
			}
			dst = append(growOutput(dst, n, satAdd(start, limit)), block...)
			continue
		}
		size, err := lz4BlockLen(block, min(left, blockMax))
		if err != nil {
			if err == errOverLimit && left < blockMax {
				return dst, nil, errOverLimit
			}
			return dst, nil, corruptInput(c, err.Error())
		}
		dst = growOutput(dst, size, satAdd(start, limit))
		at := len(dst)
		var got int
		if flg&lz4FlagIndep != 0 {
			got, err = lz4.UncompressBlock(block, dst[at:at+size])
		} else { // Linked blocks: the previous 64 KiB of this frame's output is the dictionary.
			got, err = lz4.UncompressBlockWithDict(block, dst[at:at+size], dst[max(start, at-64<<10):at])
		}
		if err != nil {
			return dst, nil, corruptInputErr(c, err)
		}
		if got != size {
			return dst, nil, corruptInput(c, "block decoded to an unexpected size")
		}
		dst = dst[:at+size]
	}
	if flg&lz4FlagSize != 0 && uint64(len(dst)-start) != contentSize {
		return dst, nil, corruptInput(c, "content size mismatch")
	}
	if flg&lz4FlagContentSum != 0 {
		if len(src) < 4 {
			return dst, nil, corruptInput(c, "truncated content checksum")
		}
		if binary.LittleEndian.Uint32(src) != xxhash32(dst[start:], 0) {
			return dst, nil, corruptInput(c, "bad content checksum")
		}
		src = src[4:]
	}
	return dst, src, nil
}

// lz4BlockLen returns the decoded length of an LZ4 block by walking its sequences, without
// decoding it. It fails with errOverLimit once the length exceeds max, and with a description of
// the problem when the block is malformed.
func lz4BlockLen(b []byte, max int) (int, error) {
	n, i := 0, 0
	for {
		if i >= len(b) {
			return 0, errors.New("truncated block")
		}
		tok := b[i]
		i++
		lit := int(tok >> 4)
		if lit == 15 {
			for {
				if i >= len(b) {
					return 0, errors.New("truncated literal length")
				}
				x := b[i]
				i++
				lit += int(x)
				if x != 255 {
					break
				}
			}
		}
		if lit > len(b)-i {
			return 0, errors.New("literals past the end of the block")
		}
		i += lit
		n += lit
		if n > max {
			return 0, errOverLimit
		}
		if i == len(b) {
			return n, nil // The last sequence has literals only.
		}
		if len(b)-i < 2 {
			return 0, errors.New("truncated match offset")
		}
		if b[i] == 0 && b[i+1] == 0 {
			return 0, errors.New("zero match offset")
		}
		i += 2
		ml := int(tok&15) + 4
		if tok&15 == 15 {
			for {
				if i >= len(b) {
					return 0, errors.New("truncated match length")
				}
				x := b[i]
				i++
				ml += int(x)
				if x != 255 {
					break
				}
			}
		}
		n += ml
		if n > max {
			return 0, errOverLimit
		}
	}
}

// xxhash32 is the 32-bit xxHash of b, which the LZ4 frame format uses for its checksums.
func xxhash32(b []byte, seed uint32) uint32 {
	const (
		p1 uint32 = 2654435761
		p2 uint32 = 2246822519
		p3 uint32 = 3266489917
		p4 uint32 = 668265263
		p5 uint32 = 374761393
	)
	round := func(acc, in uint32) uint32 { return bits.RotateLeft32(acc+in*p2, 13) * p1 }
	n := len(b)
	var h uint32
	if n >= 16 {
		v1, v2, v3, v4 := seed+p1+p2, seed+p2, seed, seed-p1
		for ; len(b) >= 16; b = b[16:] {
			v1 = round(v1, binary.LittleEndian.Uint32(b[0:]))
			v2 = round(v2, binary.LittleEndian.Uint32(b[4:]))
			v3 = round(v3, binary.LittleEndian.Uint32(b[8:]))
			v4 = round(v4, binary.LittleEndian.Uint32(b[12:]))
		}
		h = bits.RotateLeft32(v1, 1) + bits.RotateLeft32(v2, 7) + bits.RotateLeft32(v3, 12) + bits.RotateLeft32(v4, 18)
	} else {
		h = seed + p5
	}
	h += uint32(n)
	for ; len(b) >= 4; b = b[4:] {
		h = bits.RotateLeft32(h+binary.LittleEndian.Uint32(b)*p3, 17) * p4
	}
	for _, x := range b {
		h = bits.RotateLeft32(h+uint32(x)*p5, 11) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	h ^= h >> 16
	return h
}

// --- zstd ---

var (
	// zstdEncoders holds pooled *zstd.Encoder by zstd.EncoderLevel-1.
	zstdEncoders [zstd.SpeedBestCompression]sync.Pool
	// zstdDecoders holds pooled *zstd.Decoder with the default (no) size limit, used when a scan
	// of the input proves that the output fits the caller's limit.
	zstdDecoders sync.Pool
	// zstdLimitedDecoders holds pooled *zstd.Decoder whose size limit is set for each use.
	zstdLimitedDecoders sync.Pool
)

func zstdCompress(dst []byte, level int, src []byte) ([]byte, error) {
	if level == 0 {
		level = 3 // zstd's default.
	}
	l := zstd.EncoderLevelFromZstd(level)
	pool := &zstdEncoders[l-1]
	e, _ := pool.Get().(*zstd.Encoder)
	if e == nil {
		var err error
		e, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true))
		if err != nil {
			return dst, fmt.Errorf("kpax: zstd: %w", err)
		}
	}
	dst = e.EncodeAll(src, dst)
	pool.Put(e)
	return dst, nil
}

func newZstdDecoder() (*zstd.Decoder, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("kpax: zstd: %w", err)
	}
	return d, nil
}

func zstdDecompress(dst, src []byte, limit int) ([]byte, error) {
	const c = CompressionZstd
	lower, upper, exact, err := zstdScan(src, nil, 0)
	if err != nil {
		return dst, err
	}
	if lower > uint64(limit) {
		return dst, overLimit(c, limit)
	}
	var d *zstd.Decoder
	if upper <= uint64(limit) {
		// The output fits whatever the blocks hold: decode without a limit.
		d, _ = zstdDecoders.Get().(*zstd.Decoder)
		if d == nil {
			if d, err = newZstdDecoder(); err != nil {
				return dst, err
			}
		}
		defer zstdDecoders.Put(d)
		if exact {
			dst = slices.Grow(dst, int(upper))
		}
	} else {
		// Compressed blocks may hold up to 128 KiB each, and frames without a content size
		// may hold any number of them: let the decoder stop near the limit. It caps windows at
		// that too, though it does not allocate them, so lower larger declared windows (which
		// could only serve data past the limit) to it, in a copy of src.
		wd, maxMem := zstdWindowAtLeast(uint64(max(limit, zstdMaxBlockSize)))
		d, _ = zstdLimitedDecoders.Get().(*zstd.Decoder)
		if d == nil {
			if d, err = newZstdDecoder(); err != nil {
				return dst, err
			}
		}
		defer zstdLimitedDecoders.Put(d)
		if err := d.ResetWithOptions(nil, zstd.WithDecoderMaxMemory(maxMem)); err != nil {
			return dst, fmt.Errorf("kpax: zstd: %w", err)
		}
		patched := bytes.Clone(src)
		if _, _, _, err := zstdScan(src, patched, wd); err != nil {
			return dst, err
		}
		src = patched
		// The decoder stops after the block that goes past maxMem. Make room for all of it at
		// once rather than let the decoder grow dst in small steps, unless the input is small
		// for that: then the decoder grows dst as the output comes.
		dst = slices.Grow(dst, int(min(maxMem+zstdMaxBlockSize+64, uint64(len(src))*8+1<<20)))
	}
	out, err := d.DecodeAll(src, dst)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || len(out)-len(dst) > limit {
		return dst, overLimit(c, limit)
	}
	if err != nil {
		return dst, corruptInputErr(c, err)
	}
	return out, nil
}

// zstd frame format constants (RFC 8878).
const (
	zstdMagic        = 0xFD2FB528
	zstdSkipMagic    = 0x184D2A50 // The low 4 bits are free.
	zstdMaxBlockSize = 128 << 10
)

// zstdWindow returns the window size that a frame's window descriptor declares.
func zstdWindow(wd byte) uint64 {
	base := uint64(1) << (10 + wd>>3)
	return base + base/8*uint64(wd&7)
}

// zstdWindowAtLeast returns the smallest window that a window descriptor can declare that is at
// least x (at most 1/8 more), with the descriptor.
func zstdWindowAtLeast(x uint64) (wd byte, window uint64) {
	const maxExp = 31 // 5 bits of exponent above 1 KiB.
	x = max(x, 1<<10)
	e := uint64(bits.Len64(x) - 1)
	if e-10 > maxExp {
		return maxExp<<3 | 7, zstdWindow(maxExp<<3 | 7)
	}
	base := uint64(1) << e
	m := ((x-base)*8 + base - 1) / base // ceil((x-base)/(base/8)), for base >= 1024.
	if m == 8 {
		e, m = e+1, 0
	}
	if e-10 > maxExp {
		return maxExp<<3 | 7, zstdWindow(maxExp<<3 | 7)
	}
	wd = byte(e-10)<<3 | byte(m)
	return wd, zstdWindow(wd)
}

// zstdScan walks the frames and block headers of src without decoding anything. It returns
// bounds of the decoded size: lower counts declared frame content sizes and raw and RLE blocks,
// upper adds the most that each compressed block can hold. exact reports that every frame
// declares its content size, so that lower == upper. Both saturate at math.MaxUint64.
//
// If patch is not nil, it is a copy of src in which zstdScan lowers the window of each frame
// whose window is larger than the one that window descriptor wd declares to that.
func zstdScan(src, patch []byte, wd byte) (lower, upper uint64, exact bool, err error) {
	const c = CompressionZstd
	add := func(a, b uint64) uint64 {
		s, carry := bits.Add64(a, b, 0)
		if carry != 0 {
			return math.MaxUint64
		}
		return s
	}
	exact = true
	for len(src) > 0 {
		if len(src) < 4 {
			return 0, 0, false, corruptInput(c, "truncated frame magic")
		}
		magic := binary.LittleEndian.Uint32(src)
		if magic&^0xF == zstdSkipMagic {
			if len(src) < 8 {
				return 0, 0, false, corruptInput(c, "truncated skippable frame")
			}
			n := binary.LittleEndian.Uint32(src[4:])
			if uint64(n) > uint64(len(src)-8) {
				return 0, 0, false, corruptInput(c, "skippable frame longer than the input")
			}
			src = src[8+n:]
			continue
		}
		if magic != zstdMagic {
			return 0, 0, false, corruptInput(c, fmt.Sprintf("bad frame magic %#08x", magic))
		}
		if len(src) < 5 {
			return 0, 0, false, corruptInput(c, "truncated frame header")
		}
		fhd := src[4]
		single := fhd&0x20 != 0
		if fhd&0x08 != 0 {
			return 0, 0, false, corruptInput(c, "reserved frame header bit set")
		}
		fcsLen := [4]int{0, 2, 4, 8}[fhd>>6]
		if fcsLen == 0 && single {
			fcsLen = 1
		}
		hlen := 5 + [4]int{0, 1, 2, 4}[fhd&3] + fcsLen
		if !single {
			hlen++
		}
		if len(src) < hlen {
			return 0, 0, false, corruptInput(c, "truncated frame header")
		}
		var window uint64
		if !single {
			window = zstdWindow(src[5])
			if patch != nil && window > zstdWindow(wd) {
				patch[len(patch)-len(src)+5] = wd
			}
		}
		var fcs uint64
		hasFCS := fcsLen > 0
		fcsAt := src[hlen-fcsLen : hlen]
		switch fcsLen {
		case 1:
			fcs = uint64(fcsAt[0])
		case 2:
			fcs = uint64(binary.LittleEndian.Uint16(fcsAt)) + 256
		case 4:
			fcs = uint64(binary.LittleEndian.Uint32(fcsAt))
		case 8:
			fcs = binary.LittleEndian.Uint64(fcsAt)
		}
		if single {
			window = fcs
		}
		blockMax := min(window, zstdMaxBlockSize)
		src = src[hlen:]
		var fLower, fUpper uint64
		for {
			if len(src) < 3 {
				return 0, 0, false, corruptInput(c, "truncated block header")
			}
			bh := uint32(src[0]) | uint32(src[1])<<8 | uint32(src[2])<<16
			src = src[3:]
			size := uint64(bh >> 3)
			switch (bh >> 1) & 3 {
			case 0: // Raw.
				if size > uint64(len(src)) {
					return 0, 0, false, corruptInput(c, "truncated raw block")
				}
				src = src[size:]
				fLower += size
				fUpper += size
			case 1: // RLE.
				if len(src) < 1 {
					return 0, 0, false, corruptInput(c, "truncated RLE block")
				}
				src = src[1:]
				fLower += size
				fUpper += size
			case 2: // Compressed.
				if size > uint64(len(src)) {
					return 0, 0, false, corruptInput(c, "truncated compressed block")
				}
				src = src[size:]
				fUpper += blockMax
			default:
				return 0, 0, false, corruptInput(c, "reserved block type")
			}
			if bh&1 != 0 {
				break // Last block.
			}
		}
		if fhd&0x04 != 0 {
			if len(src) < 4 {
				return 0, 0, false, corruptInput(c, "truncated content checksum")
			}
			src = src[4:]
		}
		if hasFCS {
			fLower, fUpper = fcs, fcs // The decoder checks that the blocks match it.
		} else {
			exact = false
		}
		lower, upper = add(lower, fLower), add(upper, fUpper)
	}
	return lower, upper, exact, nil
}
