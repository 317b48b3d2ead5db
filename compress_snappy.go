package kpax

// The snappy codec: raw Snappy blocks and the xerial-framed stream that Kafka's Java client
// writes. compress.go has the codec registry and the limits.

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/klauspost/compress/s2"
)

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
