package kpax

// The codec registry: the Compression type, levels, the limits on decompressed size and the
// errors. Each codec has its file: compress_gzip.go, compress_snappy.go, compress_lz4.go and
// compress_zstd.go.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
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
var ErrDecompressedTooLarge = classedValue(ClassAbortable, "kpax: decompressed data too large")

// ErrCorruptCompressed is returned, wrapped with the codec's own error where there is one, when
// compressed data is truncated or malformed.
var ErrCorruptCompressed = classedValue(ClassAbortable, "kpax: corrupt compressed data")

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
