package kpax

// The zstd codec, with pooled encoders per level and decoders that respect the output limit.
// compress.go has the codec registry and the limits.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

var (
	// zstdEncoders holds free encoders by zstd.EncoderLevel-1: at most
	// zstdEncodersKept each, not a sync.Pool, which the GC empties, so that
	// a busy producer does not allocate new ones (some MiB each) after
	// every collection.
	zstdEncoders = func() (e [zstd.SpeedBestCompression]chan *zstd.Encoder) {
		for i := range e {
			e[i] = make(chan *zstd.Encoder, zstdEncodersKept)
		}
		return e
	}()
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
	free := zstdEncoders[l-1]
	var e *zstd.Encoder
	select {
	case e = <-free:
	default:
		var err error
		// A 1 MiB window (zstd's default is 8 MiB) covers a default batch
		// (WithMaxBatchBytes) whole, and the encoder's history, twice the
		// window, stays 2 MiB instead of 16 (WithMemoryBudget's fixed costs).
		e, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true), zstd.WithWindowSize(zstdEncoderWindow))
		if err != nil {
			return dst, fmt.Errorf("kpax: zstd: %w", err)
		}
	}
	dst = e.EncodeAll(src, dst)
	select {
	case free <- e:
	default:
	}
	return dst, nil
}

// zstdEncoderWindow is the window of the encoders kpax compresses with.
const zstdEncoderWindow = 1 << 20

// zstdEncodersKept is how many free encoders of a level are kept.
const zstdEncodersKept = 2

func newZstdDecoder() (*zstd.Decoder, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
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
