package kpax

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

var compressCodecs = []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}

// compressLevels are the levels of each codec that the round trip tests use.
var compressLevels = map[Compression][]int{
	CompressionNone:   {0},
	CompressionGzip:   {0, 1, 9},
	CompressionSnappy: {0},
	CompressionLZ4:    {0, 1, 2, 9, 17},
	CompressionZstd:   {0, -5, 1, 3, 7, 22},
}

// compressRecords returns about n bytes of newline-separated JSON-ish records of about 100 bytes, with
// the entropy of real events: ids, timestamps, a few enumerated strings, numbers.
func compressRecords(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	events := []string{"click", "view", "purchase", "signup", "logout"}
	countries := []string{"DE", "US", "FR", "JP", "BR", "IN"}
	b := make([]byte, 0, n+200)
	for id := 0; len(b) < n; id++ {
		b = fmt.Appendf(b, `{"id":%d,"user":"user-%05d","event":"%s","ts":%d,"value":%.4f,"country":"%s"}`+"\n",
			id, r.IntN(100000), events[r.IntN(len(events))], 1700000000000+int64(id)*37+r.Int64N(37),
			r.Float64()*1000, countries[r.IntN(len(countries))])
	}
	return b[:n]
}

func compressRandom(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestCompressionStringAndParse(t *testing.T) {
	tests := []struct {
		c    Compression
		name string
	}{
		{CompressionNone, "none"},
		{CompressionGzip, "gzip"},
		{CompressionSnappy, "snappy"},
		{CompressionLZ4, "lz4"},
		{CompressionZstd, "zstd"},
		{Compression(5), "compression(5)"},
		{Compression(-1), "compression(-1)"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.name {
			t.Errorf("Compression(%d).String() = %q, want %q", int(tt.c), got, tt.name)
		}
	}
	parse := []struct {
		in      string
		want    Compression
		wantErr bool
	}{
		{"none", CompressionNone, false},
		{"gzip", CompressionGzip, false},
		{"GZIP", CompressionGzip, false},
		{"snappy", CompressionSnappy, false},
		{"lz4", CompressionLZ4, false},
		{"Zstd", CompressionZstd, false},
		{"", 0, true},
		{"zstd ", 0, true},
		{"producer", 0, true},
		{"compression(5)", 0, true},
		{"brotli", 0, true},
	}
	for _, tt := range parse {
		got, err := ParseCompression(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestValidCompressionLevel(t *testing.T) {
	tests := []struct {
		c     Compression
		level int
		ok    bool
	}{
		{CompressionNone, 0, true},
		{CompressionNone, 1, false},
		{CompressionSnappy, 0, true},
		{CompressionSnappy, 1, false},
		{CompressionGzip, 0, true},
		{CompressionGzip, 1, true},
		{CompressionGzip, 9, true},
		{CompressionGzip, 10, false},
		{CompressionGzip, -1, false},
		{CompressionLZ4, 1, true},
		{CompressionLZ4, 17, true},
		{CompressionLZ4, 18, false},
		{CompressionLZ4, -1, false},
		{CompressionZstd, -131072, true},
		{CompressionZstd, -131073, false},
		{CompressionZstd, 22, true},
		{CompressionZstd, 23, false},
		{Compression(5), 0, false},
		{Compression(-1), 0, false},
	}
	for _, tt := range tests {
		err := validCompressionLevel(tt.c, tt.level)
		if (err == nil) != tt.ok {
			t.Errorf("validCompressionLevel(%v, %d) = %v, want ok=%v", tt.c, tt.level, err, tt.ok)
		}
		if _, err2 := appendCompressed(nil, tt.c, tt.level, []byte("x"), false); (err2 == nil) != tt.ok {
			t.Errorf("appendCompressed(%v, level %d) error = %v, want ok=%v", tt.c, tt.level, err2, tt.ok)
		}
	}
}

func TestCompressRoundTrip(t *testing.T) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"1B", []byte{'x'}},
		{"100B", compressRecords(100, 1)},
		{"1MiB-random", compressRandom(1<<20, 2)},
		{"1MiB-records", compressRecords(1<<20, 3)},
		{"1MiB+1-zeros", make([]byte, 1<<20+1)},
	}
	prefix := []byte("prefix")
	for _, c := range compressCodecs {
		for _, level := range compressLevels[c] {
			for _, in := range inputs {
				t.Run(fmt.Sprintf("%v/%d/%s", c, level, in.name), func(t *testing.T) {
					comp, err := appendCompressed(bytes.Clone(prefix), c, level, in.data, false)
					if err != nil {
						t.Fatalf("compress: %v", err)
					}
					if !bytes.HasPrefix(comp, prefix) {
						t.Fatalf("compress did not append to dst")
					}
					comp = comp[len(prefix):]
					got, err := appendDecompressed(bytes.Clone(prefix), c, comp, len(in.data), false)
					if err != nil {
						t.Fatalf("decompress: %v", err)
					}
					if want := append(bytes.Clone(prefix), in.data...); !bytes.Equal(want, got) {
						if len(want) < 1000 {
							t.Fatalf("round trip mismatch (-want +got):\n%s", cmp.Diff(want, got))
						}
						t.Fatalf("round trip mismatch: got %d bytes, want %d", len(got)-len(prefix), len(in.data))
					}
					if len(in.data) > 0 {
						_, err := appendDecompressed(nil, c, comp, len(in.data)-1, false)
						if !errors.Is(err, ErrDecompressedTooLarge) {
							t.Fatalf("decompress with limit %d: err = %v, want ErrDecompressedTooLarge", len(in.data)-1, err)
						}
						if want := fmt.Sprintf("%v output exceeds the limit of %d bytes", c, len(in.data)-1); !strings.Contains(err.Error(), want) {
							t.Errorf("error %q does not say %q", err, want)
						}
					}
					if in.name == "1MiB-records" {
						t.Logf("%v level %d: %d -> %d bytes", c, level, len(in.data), len(comp))
					}
				})
			}
		}
	}
}

// TestCompressInterop checks the output against the other implementations in the dependencies
// (the readers that Sarama and franz-go use) and decodes theirs.
func TestCompressInterop(t *testing.T) {
	data := compressRecords(300<<10, 4)
	for _, c := range []Compression{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(c.String(), func(t *testing.T) {
			comp, err := appendCompressed(nil, c, 0, data, false)
			if err != nil {
				t.Fatal(err)
			}
			var theirs []byte
			var foreign [][]byte // Their encodings of data.
			switch c {
			case CompressionGzip:
				zr, err := gzip.NewReader(bytes.NewReader(comp))
				if err != nil {
					t.Fatal(err)
				}
				theirs, err = io.ReadAll(zr)
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf)
				zw.Write(data)
				zw.Close()
				foreign = append(foreign, buf.Bytes())
			case CompressionSnappy:
				theirs, err = xerial.Decode(comp)
				if err != nil {
					t.Fatal(err)
				}
				foreign = append(foreign, xerial.Encode(nil, data), s2.EncodeSnappy(nil, data))
			case CompressionLZ4:
				theirs, err = io.ReadAll(lz4.NewReader(bytes.NewReader(comp)))
				if err != nil {
					t.Fatal(err)
				}
				for _, opts := range [][]lz4.Option{
					nil,
					{lz4.BlockChecksumOption(true), lz4.ChecksumOption(true)},
					{lz4.SizeOption(uint64(len(data))), lz4.BlockSizeOption(lz4.Block4Mb)},
					{lz4.BlockSizeOption(lz4.Block256Kb), lz4.CompressionLevelOption(lz4.Level5), lz4.ChecksumOption(false)},
				} {
					var buf bytes.Buffer
					zw := lz4.NewWriter(&buf)
					if err := zw.Apply(opts...); err != nil {
						t.Fatal(err)
					}
					zw.Write(data)
					zw.Close()
					foreign = append(foreign, buf.Bytes())
				}
			case CompressionZstd:
				zr, err := zstd.NewReader(nil)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				theirs, err = zr.DecodeAll(comp, nil)
				if err != nil {
					t.Fatal(err)
				}
				zw, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(false))
				foreign = append(foreign, zw.EncodeAll(data, nil))
				// A stream (no content size in the frame header), as Java's ZstdOutputStream writes.
				var buf bytes.Buffer
				zw.Reset(&buf)
				zw.Write(data[:len(data)/2])
				zw.Flush()
				zw.Write(data[len(data)/2:])
				zw.Close()
				foreign = append(foreign, buf.Bytes())
			}
			if !bytes.Equal(theirs, data) {
				t.Errorf("their decoder got %d bytes, want %d", len(theirs), len(data))
			}
			for i, f := range foreign {
				got, err := appendDecompressed(nil, c, f, len(data), false)
				if err != nil {
					t.Errorf("decoding their encoding #%d: %v", i, err)
				} else if !bytes.Equal(got, data) {
					t.Errorf("decoding their encoding #%d: got %d bytes, want %d", i, len(got), len(data))
				}
				if _, err := appendDecompressed(nil, c, f, len(data)-1, false); !errors.Is(err, ErrDecompressedTooLarge) {
					t.Errorf("decoding their encoding #%d with a short limit: err = %v, want ErrDecompressedTooLarge", i, err)
				}
			}
		})
	}
}

func TestCompressLZ4LegacyHeaderChecksum(t *testing.T) {
	data := compressRecords(200<<10, 5)
	good, err := appendCompressed(nil, CompressionLZ4, 0, data, false)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := appendCompressed(nil, CompressionLZ4, 0, data, true)
	if err != nil {
		t.Fatal(err)
	}
	// Only the header checksum differs: FLG, BD and HC follow the 4-byte magic.
	if !bytes.Equal(good[:6], legacy[:6]) || !bytes.Equal(good[7:], legacy[7:]) || good[6] == legacy[6] {
		t.Fatalf("legacy frame differs beyond the header checksum: % x vs % x", good[:8], legacy[:8])
	}
	if want := byte(xxhash32(legacy[:6], 0) >> 8); legacy[6] != want {
		t.Errorf("legacy header checksum = %#x, want xxhash32(magic+descriptor)>>8 = %#x", legacy[6], want)
	}
	// The spec's reader takes the good frame and rejects the legacy one, proving they differ
	// where it matters.
	if _, err := io.ReadAll(lz4.NewReader(bytes.NewReader(legacy))); !errors.Is(err, lz4.ErrInvalidHeaderChecksum) {
		t.Errorf("pierrec/lz4 reading the legacy frame: err = %v, want ErrInvalidHeaderChecksum", err)
	}
	// kpax accepts both, whatever the caller expects.
	for _, frame := range [][]byte{good, legacy} {
		for _, legacyFlag := range []bool{false, true} {
			got, err := appendDecompressed(nil, CompressionLZ4, frame, len(data), legacyFlag)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("decode (legacy flag %v): %d bytes, err %v", legacyFlag, len(got), err)
			}
		}
	}
	// A checksum that is neither is rejected.
	bad := bytes.Clone(good)
	for bad[6] == good[6] || bad[6] == legacy[6] {
		bad[6]++
	}
	if _, err := appendDecompressed(nil, CompressionLZ4, bad, len(data), true); !errors.Is(err, ErrCorruptCompressed) {
		t.Errorf("bad header checksum: err = %v, want ErrCorruptCompressed", err)
	}
	// Kafka's Java client writes FLG 0x60 (version 1, independent blocks) and BD 0x40 (64 KiB).
	if want := []byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x40}; !bytes.Equal(good[:6], want) {
		t.Errorf("frame header = % x, want % x", good[:6], want)
	}
}

// TestCompressLZ4LinkedBlocks decodes a hand-built frame whose second block refers to the first.
func TestCompressLZ4LinkedBlocks(t *testing.T) {
	frame := []byte{0x04, 0x22, 0x4d, 0x18, 0x40, 0x40, 0} // FLG without block independence.
	frame[6] = byte(xxhash32(frame[4:6], 0) >> 8)
	frame = binary.LittleEndian.AppendUint32(frame, 8|lz4Uncompressed)
	frame = append(frame, "abcdefgh"...)
	// Match of 8 at offset 8 (into the previous block), then 5 literals.
	block := []byte{0x04, 8, 0, 0x50, 'V', 'W', 'X', 'Y', 'Z'}
	frame = binary.LittleEndian.AppendUint32(frame, uint32(len(block)))
	frame = append(frame, block...)
	frame = binary.LittleEndian.AppendUint32(frame, 0)
	got, err := appendDecompressed([]byte("ctx"), CompressionLZ4, frame, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "ctxabcdefghabcdefghVWXYZ"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// With independent blocks the same match points before the block: corrupt.
	frame[4] |= lz4FlagIndep
	frame[6] = byte(xxhash32(frame[4:6], 0) >> 8)
	if _, err := appendDecompressed(nil, CompressionLZ4, frame, 100, false); !errors.Is(err, ErrCorruptCompressed) {
		t.Errorf("independent blocks: err = %v, want ErrCorruptCompressed", err)
	}
}

func TestCompressSnappyFormats(t *testing.T) {
	data := compressRecords(100<<10, 6)
	// The xerial header, byte for byte: magic, version 1, compatible 1.
	hdr := []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}
	ours, err := appendCompressed(nil, CompressionSnappy, 0, data, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours[:16], hdr) {
		t.Fatalf("header = % x, want % x", ours[:16], hdr)
	}
	// Chunks are snappy blocks of 32 KiB of input, as snappy-java writes.
	chunks := 0
	for rest := ours[16:]; len(rest) > 0; chunks++ {
		n := binary.BigEndian.Uint32(rest)
		dl, err := s2.DecodedLen(rest[4 : 4+n])
		if err != nil || dl != min(32<<10, len(data)-chunks*32<<10) {
			t.Fatalf("chunk %d decodes to %d bytes (%v)", chunks, dl, err)
		}
		rest = rest[4+n:]
	}
	if want := (len(data) + 32<<10 - 1) / (32 << 10); chunks != want {
		t.Errorf("%d chunks, want %d", chunks, want)
	}
	if empty, _ := appendCompressed(nil, CompressionSnappy, 0, nil, false); !bytes.Equal(empty, hdr) {
		t.Errorf("empty input compresses to % x, want the bare header", empty)
	}

	// Hand-built xerial streams: odd chunk sizes, and two concatenated streams.
	var hand []byte
	hand = append(hand, hdr...)
	for _, piece := range [][]byte{data[:1000], data[1000:70000]} {
		enc := s2.EncodeSnappy(nil, piece)
		hand = binary.BigEndian.AppendUint32(hand, uint32(len(enc)))
		hand = append(hand, enc...)
	}
	hand = append(hand, hdr...)
	enc := s2.EncodeSnappy(nil, data[70000:])
	hand = binary.BigEndian.AppendUint32(hand, uint32(len(enc)))
	hand = append(hand, enc...)

	tests := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr error
	}{
		{"xerial", ours, data, nil},
		{"hand-built xerial", hand, data, nil},
		{"raw", s2.EncodeSnappy(nil, data), data, nil},
		{"raw empty", []byte{0}, nil, nil},
		{"xerial empty", hdr, nil, nil},
		{"truncated header", hdr[:12], nil, ErrCorruptCompressed},
		{"truncated chunk length", append(bytes.Clone(hdr), 0, 0), nil, ErrCorruptCompressed},
		{"chunk past the end", append(bytes.Clone(hdr), 0, 0, 0, 9, 1, 2), nil, ErrCorruptCompressed},
		{"negative chunk length", append(bytes.Clone(hdr), 0xff, 0xff, 0xff, 0xff), nil, ErrCorruptCompressed},
		{"compatible version 0", append(bytes.Clone(hdr[:15]), 0), nil, ErrCorruptCompressed},
		{"raw garbage", []byte{5, 0xff, 0xff}, nil, ErrCorruptCompressed},
		{"raw declares 4 GiB", []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0}, nil, ErrDecompressedTooLarge},
	}
	for _, tt := range tests {
		got, err := appendDecompressed(nil, CompressionSnappy, tt.in, len(data), false)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("%s: got %d bytes, err %v; want %d bytes", tt.name, len(got), err, len(tt.want))
		}
	}
}

// compressMeasure runs f and returns how long it took and how many bytes it allocated.
func compressMeasure(f func()) (time.Duration, uint64) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	f()
	d := time.Since(start)
	runtime.ReadMemStats(&m1)
	return d, m1.TotalAlloc - m0.TotalAlloc
}

// compressBombs returns, per codec, inputs that decompress to at least gib bytes (or declare so),
// a multiple of 64 MiB.
func compressBombs(t *testing.T, gib int) map[Compression]map[string][]byte {
	zeros := make([]byte, 64<<20)
	out := map[Compression]map[string][]byte{}

	// gzip: 16 members of 64 MiB of zeros each (Java's GZIPInputStream reads them all).
	member, err := appendCompressed(nil, CompressionGzip, 9, zeros, false)
	if err != nil {
		t.Fatal(err)
	}
	out[CompressionGzip] = map[string][]byte{"16 members": bytes.Repeat(member, gib/len(zeros))}

	// snappy: a raw block that declares 1 GiB, and a xerial stream of 32768 chunks of 32 KiB zeros.
	chunk := s2.EncodeSnappy(nil, zeros[:32<<10])
	x := append([]byte(nil), xerialHeader[:]...)
	for range gib / (32 << 10) {
		x = binary.BigEndian.AppendUint32(x, uint32(len(chunk)))
		x = append(x, chunk...)
	}
	raw := binary.AppendUvarint(nil, uint64(gib))
	raw = append(raw, 0)
	out[CompressionSnappy] = map[string][]byte{"xerial": x, "raw declared": raw}

	// lz4: 16384 copies of a block of 64 KiB of zeros (about 255:1, LZ4's best), and a frame
	// that declares a content size of 1 GiB.
	one, err := appendCompressed(nil, CompressionLZ4, 0, zeros[:64<<10], false)
	if err != nil {
		t.Fatal(err)
	}
	block := one[7 : len(one)-4]
	l := bytes.Clone(one[:7])
	for range gib / (64 << 10) {
		l = append(l, block...)
	}
	l = binary.LittleEndian.AppendUint32(l, 0)
	sized := []byte{0x04, 0x22, 0x4d, 0x18, 0x60 | lz4FlagSize, 0x40}
	sized = binary.LittleEndian.AppendUint64(sized, uint64(gib))
	sized = append(sized, byte(xxhash32(sized[4:], 0)>>8))
	sized = append(sized, block...)
	sized = binary.LittleEndian.AppendUint32(sized, 0)
	out[CompressionLZ4] = map[string][]byte{"blocks": l, "declared": sized}

	// zstd: a stream without content size (as Java writes), 1 GiB of zeros in a few KB; a frame
	// of RLE blocks; a frame that declares 1 GiB.
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	for range gib / len(zeros) {
		zw.Write(zeros)
	}
	zw.Close()
	stream := buf.Bytes()
	rle := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58} // No FCS, not single segment, window 8 MiB.
	for i := range gib / (128 << 10) {
		last := uint32(0)
		if i == gib/(128<<10)-1 {
			last = 1
		}
		h := 128<<10<<3 | 1<<1 | last
		rle = append(rle, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	// Single segment, 4-byte FCS of 1 GiB - 1, then one RLE block.
	declared := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xa0}
	declared = binary.LittleEndian.AppendUint32(declared, uint32(gib-1))
	h := 128<<10<<3 | 1<<1 | 1
	declared = append(declared, byte(h), byte(h>>8), byte(h>>16), 0)
	out[CompressionZstd] = map[string][]byte{"stream": stream, "rle": rle, "declared": declared}
	return out
}

func TestCompressBombs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 1 GiB bombs")
	}
	const limit = 1 << 20
	size := 1 << 30
	if !compressPoolsKeep() { // The race detector: building 1 GiB bombs would take long.
		size = 64 << 20
	}
	for c, inputs := range compressBombs(t, size) {
		for name, bomb := range inputs {
			var err error
			d, alloc := compressMeasure(func() {
				_, err = appendDecompressed(nil, c, bomb, limit, false)
			})
			t.Logf("%v %s: %d byte bomb rejected in %v, %d bytes allocated", c, name, len(bomb), d, alloc)
			if !errors.Is(err, ErrDecompressedTooLarge) {
				t.Errorf("%v %s: err = %v, want ErrDecompressedTooLarge", c, name, err)
			}
			if alloc > 4*limit+uint64(len(bomb)) {
				t.Errorf("%v %s: allocated %d bytes with a limit of %d", c, name, alloc, limit)
			}
			if d > 10*time.Second {
				t.Errorf("%v %s: took %v", c, name, d)
			}
		}
	}
}

func TestCompressCorruptInput(t *testing.T) {
	data := compressRecords(100<<10, 7)
	for _, c := range []Compression{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(c.String(), func(t *testing.T) {
			comp, err := appendCompressed(nil, c, 0, data, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := appendDecompressed(nil, c, nil, len(data), false); !errors.Is(err, ErrCorruptCompressed) {
				t.Errorf("empty input: err = %v, want ErrCorruptCompressed", err)
			}
			// Every truncation fails, except for xerial snappy at a chunk boundary, which has no
			// end mark: there it must give a prefix of the data.
			for n := 1; n < len(comp); n += 1 + n/64 {
				got, err := appendDecompressed(nil, c, comp[:n], len(data), false)
				if err == nil {
					if c == CompressionSnappy && bytes.HasPrefix(data, got) {
						continue
					}
					t.Fatalf("truncated to %d of %d bytes: no error, %d bytes", n, len(comp), len(got))
				}
				if !errors.Is(err, ErrCorruptCompressed) {
					t.Fatalf("truncated to %d bytes: err = %v, want ErrCorruptCompressed", n, err)
				}
			}
			// Trailing garbage fails too.
			if _, err := appendDecompressed(nil, c, append(bytes.Clone(comp), 1, 2, 3, 4, 5, 6, 7, 8, 9), len(data), false); err == nil {
				t.Errorf("trailing garbage: no error")
			}
			// Bit flips never panic and either fail or stay within the limit.
			r := rand.New(rand.NewPCG(1, 2))
			for range 2000 {
				bad := bytes.Clone(comp)
				for range 1 + r.IntN(3) {
					bad[r.IntN(len(bad))] ^= 1 << r.IntN(8)
				}
				got, err := appendDecompressed(nil, c, bad, len(data), false)
				if err == nil && len(got) > len(data) {
					t.Fatalf("bit flip: %d bytes over a limit of %d", len(got), len(data))
				}
			}
		})
	}
	if _, err := appendDecompressed(nil, Compression(6), []byte{1}, 10, false); err == nil {
		t.Error("unknown codec: no error")
	}
}

// compressPoolsKeep reports whether sync.Pool keeps what is put in it; the race detector makes it
// drop objects at random, and allocation counts mean nothing then.
func compressPoolsKeep() bool {
	var p sync.Pool
	for range 100 {
		x := new(int)
		p.Put(x)
		if p.Get() != x {
			return false
		}
	}
	return true
}

func TestCompressSteadyStateAllocs(t *testing.T) {
	data := compressRecords(16<<10, 8)
	for _, c := range compressCodecs {
		comp := make([]byte, 0, 64<<10)
		plain := make([]byte, 0, 64<<10)
		var err error
		allocs := testing.AllocsPerRun(200, func() {
			comp, err = appendCompressed(comp[:0], c, 0, data, false)
			if err != nil {
				t.Fatal(err)
			}
			plain, err = appendDecompressed(plain[:0], c, comp, len(data), false)
			if err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%v: %.2f allocs per compress+decompress of 16 KiB", c, allocs)
		if !bytes.Equal(plain, data) {
			t.Fatalf("%v: round trip mismatch", c)
		}
		if allocs > 0.5 && compressPoolsKeep() {
			t.Errorf("%v: %.2f allocs per compress+decompress of 16 KiB, want 0", c, allocs)
		}
	}
}

// compressJavaGolden is what testdata/compress_java_*.bin hold, compressed by Kafka's Java client.
func compressJavaGolden() []byte { return compressRecords(100<<10, 9) }

// TestCompressJavaGolden decodes what Kafka's own Java client (kafka-clients) compressed: see
// testdata/compress_java_README.md for how the files were made.
func TestCompressJavaGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/compress_java_*.bin")
	if len(files) == 0 {
		t.Skip("no golden files")
	}
	codecs := map[string]Compression{"gzip": CompressionGzip, "snappy": CompressionSnappy,
		"lz4": CompressionLZ4, "lz4legacy": CompressionLZ4, "zstd": CompressionZstd}
	want := compressJavaGolden()
	for _, f := range files {
		name := f[len("testdata/compress_java_") : len(f)-len(".bin")]
		c, ok := codecs[name]
		if !ok {
			t.Errorf("%s: unknown codec", f)
			continue
		}
		comp, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if name == "lz4legacy" && comp[6] != byte(xxhash32(comp[:6], 0)>>8) {
			t.Errorf("%s: header checksum %#x is not the legacy one", f, comp[6])
		}
		got, err := appendDecompressed(nil, c, comp, len(want), name == "lz4legacy")
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: got %d bytes, err %v; want %d bytes", f, len(got), err, len(want))
		}
	}
}

// compressFuzzLimit bounds the fuzzers' output, small enough to keep them fast.
const compressFuzzLimit = 1 << 20

func fuzzCompressCodec(f *testing.F, c Compression) {
	for i, seed := range [][]byte{nil, {0}, []byte("hello, hello, hello"), compressRecords(5000, 10), compressRandom(300, 11)} {
		for _, level := range compressLevels[c] {
			comp, err := appendCompressed(nil, c, level, seed, i%2 == 0)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(comp)
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// As compressed input: no panic, output within the limit, and what decodes re-encodes.
		out, err := appendDecompressed(nil, c, in, compressFuzzLimit, false)
		if err == nil {
			if len(out) > compressFuzzLimit {
				t.Fatalf("%d bytes out, over the limit of %d", len(out), compressFuzzLimit)
			}
			if _, err := appendDecompressed(nil, c, in, len(out), true); err != nil {
				t.Fatalf("decodes to %d bytes but not with that limit: %v", len(out), err)
			}
			if len(out) > 0 {
				if _, err := appendDecompressed(nil, c, in, len(out)-1, false); !errors.Is(err, ErrDecompressedTooLarge) {
					t.Fatalf("decodes to %d bytes, but with a limit of one less: %v", len(out), err)
				}
			}
		} else if !errors.Is(err, ErrCorruptCompressed) && !errors.Is(err, ErrDecompressedTooLarge) {
			t.Fatalf("error wraps neither sentinel: %v", err)
		}
		// As plain input: it round trips.
		comp, err := appendCompressed(nil, c, 0, in, false)
		if err != nil {
			t.Fatal(err)
		}
		back, err := appendDecompressed(nil, c, comp, len(in), false)
		if err != nil || !bytes.Equal(back, in) {
			t.Fatalf("round trip of %d bytes: %d bytes, err %v", len(in), len(back), err)
		}
	})
}

func FuzzDecompressGzip(f *testing.F)   { fuzzCompressCodec(f, CompressionGzip) }
func FuzzDecompressSnappy(f *testing.F) { fuzzCompressCodec(f, CompressionSnappy) }
func FuzzDecompressLZ4(f *testing.F)    { fuzzCompressCodec(f, CompressionLZ4) }
func FuzzDecompressZstd(f *testing.F)   { fuzzCompressCodec(f, CompressionZstd) }

// TestCompressZstdLimitedPath decodes streams without a content size (as Java's ZstdOutputStream writes
// them, with windows far above their size) with limits that make the decoder stop at the limit.
func TestCompressZstdLimitedPath(t *testing.T) {
	for _, n := range []int{1, 1000, 200 << 10, 1<<20 + 5} {
		data := compressRecords(n, uint64(n))
		var buf bytes.Buffer
		zw, err := zstd.NewWriter(&buf, zstd.WithWindowSize(8<<20), zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i += 50 << 10 { // Many blocks.
			zw.Write(data[i:min(n, i+50<<10)])
			zw.Flush()
		}
		zw.Close()
		comp := buf.Bytes()
		for _, limit := range []int{n, n + 1, 2 * n} {
			got, err := appendDecompressed([]byte("p"), CompressionZstd, comp, limit, false)
			if err != nil || !bytes.Equal(got[1:], data) {
				t.Errorf("%d bytes, limit %d: got %d bytes, err %v", n, limit, len(got)-1, err)
			}
		}
		if _, err := appendDecompressed(nil, CompressionZstd, comp, n-1, false); !errors.Is(err, ErrDecompressedTooLarge) {
			t.Errorf("%d bytes, limit %d: err = %v, want ErrDecompressedTooLarge", n, n-1, err)
		}
	}
}

func TestCompressZstdWindowAtLeast(t *testing.T) {
	for _, x := range []uint64{0, 1, 1023, 1024, 1025, 1152, 1153, 128 << 10, 1<<20 + 1, 3 << 29, 1 << 41, 1 << 50} {
		wd, w := zstdWindowAtLeast(x)
		if w != zstdWindow(wd) {
			t.Errorf("zstdWindowAtLeast(%d) = %#x, %d; the descriptor declares %d", x, wd, w, zstdWindow(wd))
		}
		if x <= 1<<41 && (w < max(x, 1024) || w > max(x, 1024)+max(x, 1024)/8) {
			t.Errorf("zstdWindowAtLeast(%d) = %d, want within [x, 9x/8]", x, w)
		}
	}
}
