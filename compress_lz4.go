package kpax

// The lz4 codec: LZ4 frames as Kafka's Java client writes them, with the legacy header checksum
// of message set v0, and a bounded frame decoder. compress.go has the codec registry and the limits.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/pierrec/lz4/v4"
)

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
	lz4Fast sync.Pool // *lz4Encoder
	lz4HC   sync.Pool // *lz4.CompressorHC
)

// lz4Compress writes one frame the way Kafka's Java client does: independent 64 KiB blocks,
// without block or content checksums or content size. Level 0 and 1 use kpax's block encoder
// (below), higher levels pierrec/lz4's high-compression one.
func lz4Compress(dst []byte, level int, src []byte, legacy bool) ([]byte, error) {
	hdr := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, lz4Magic)
	dst = append(dst, lz4FlagVersion|lz4FlagIndep, lz4BD64KB)
	sum := dst[hdr+4:] // The header checksum covers the descriptor...
	if legacy {
		sum = dst[hdr:] // ...or, in Kafka's magic 0 message sets, the magic number too.
	}
	dst = append(dst, byte(xxhash32(sum, 0)>>8))

	var fast *lz4Encoder
	var hc *lz4.CompressorHC
	if level <= 1 {
		fast, _ = lz4Fast.Get().(*lz4Encoder)
		if fast == nil {
			fast = new(lz4Encoder)
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
			n = fast.compress(block, out)
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

// The fast LZ4 block encoder. Kafka's frames hold independent blocks of at most 64 KiB, so a
// position in a block fits in 16 bits and the hash table of 4-byte sequences takes 16 KiB, which
// stays in the L1 cache; it is cleared for each block. The search is the LZ4 format's usual
// greedy one: a match of 4 bytes or more at the last position with the same hash, extended both
// ways, and a step that grows after every 64 failed positions, so that input without repeats is
// crossed quickly.
const (
	lz4HashLog     = 13
	lz4MinMatch    = 4
	lz4MFLimit     = 12 // a match starts at least this far before the block's end
	lz4LastLits    = 5  // and ends at least this far before it (the format's rules)
	lz4SkipTrigger = 6
)

type lz4Encoder struct {
	table [1 << lz4HashLog]uint16
}

func lz4Hash(v uint64) uint32 { return uint32((v << 16) * 227718039650203 >> (64 - lz4HashLog)) }

// compress writes src, at most 64 KiB, as one LZ4 block into dst and returns the block's length,
// or 0 when the block would not be smaller than src (which is then stored as it is).
func (e *lz4Encoder) compress(src, dst []byte) int {
	n := len(src)
	if n <= lz4MFLimit || n > 1<<16 {
		return 0
	}
	clear(e.table[:])
	sLimit, mLimit := n-lz4MFLimit, n-lz4LastLits
	anchor, si, di := 0, 1, 0
outer:
	for si < sLimit {
		var ref int
		for tries := 1 << lz4SkipTrigger; ; tries++ {
			v := binary.LittleEndian.Uint64(src[si:])
			h := lz4Hash(v)
			ref = int(e.table[h])
			e.table[h] = uint16(si)
			if binary.LittleEndian.Uint32(src[ref:]) == uint32(v) && ref < si {
				break
			}
			if si += tries >> lz4SkipTrigger; si >= sLimit {
				break outer
			}
		}
		for si > anchor && ref > 0 && src[si-1] == src[ref-1] {
			si, ref = si-1, ref-1
		}
		mlen := lz4MatchLen(src[:mLimit], si, ref)
		if lits, ml := si-anchor, mlen-lz4MinMatch; lits < 15 && ml < 15 && di+19 <= len(dst) && anchor+16 <= n {
			// The usual short sequence: its token, and its literals copied 16 bytes at
			// once (the bytes past them are overwritten next).
			dst[di] = byte(lits<<4 | ml)
			binary.LittleEndian.PutUint64(dst[di+1:], binary.LittleEndian.Uint64(src[anchor:]))
			binary.LittleEndian.PutUint64(dst[di+9:], binary.LittleEndian.Uint64(src[anchor+8:]))
			di += 1 + lits
			dst[di], dst[di+1] = byte(si-ref), byte((si-ref)>>8)
			di += 2
		} else {
			var ok bool
			if di, ok = lz4Sequence(dst, di, src[anchor:si], si-ref, mlen); !ok {
				return 0
			}
		}
		if di >= n {
			return 0
		}
		si += mlen
		anchor = si
		if si < sLimit {
			e.table[lz4Hash(binary.LittleEndian.Uint64(src[si-2:]))] = uint16(si - 2)
		}
	}
	lits := src[anchor:]
	if di+1+len(lits)/255+1+len(lits) >= min(n, len(dst)+1) {
		return 0
	}
	tok := di
	dst[tok] = 0
	di = lz4Length(dst, di+1, len(lits), 4, &dst[tok])
	return di + copy(dst[di:], lits)
}

// lz4MatchLen is how many bytes from si equal those from ref (ref < si), at least lz4MinMatch,
// up to the end of src.
func lz4MatchLen(src []byte, si, ref int) int {
	m := lz4MinMatch
	for si+m+8 <= len(src) {
		if x := binary.LittleEndian.Uint64(src[si+m:]) ^ binary.LittleEndian.Uint64(src[ref+m:]); x != 0 {
			return m + bits.TrailingZeros64(x)>>3
		}
		m += 8
	}
	for si+m < len(src) && src[si+m] == src[ref+m] {
		m++
	}
	return m
}

// lz4Sequence writes one sequence at dst[di:]: its literals, then a match of mlen bytes at the
// offset back. It reports false when dst has no room for it.
func lz4Sequence(dst []byte, di int, lits []byte, offset, mlen int) (int, bool) {
	if di+len(lits)+len(lits)/255+mlen/255+6 > len(dst) {
		return di, false
	}
	tok := di
	dst[tok] = 0
	di = lz4Length(dst, di+1, len(lits), 4, &dst[tok])
	di += copy(dst[di:], lits)
	dst[di], dst[di+1] = byte(offset), byte(offset>>8)
	return lz4Length(dst, di+2, mlen-lz4MinMatch, 0, &dst[tok]), true
}

// lz4Length puts a length in the token's nibble at shift (15 for more) and writes what is
// beyond 15 at dst[di:] in bytes of 255 and a last one below it. The caller has checked the room.
func lz4Length(dst []byte, di, n, shift int, tok *byte) int {
	if n < 15 {
		*tok |= byte(n << shift)
		return di
	}
	*tok |= 15 << shift
	for n -= 15; n >= 255; n -= 255 {
		dst[di] = 255
		di++
	}
	dst[di] = byte(n)
	return di + 1
}
