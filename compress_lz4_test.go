package kpax

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// lz4BlockCases are inputs at the block encoder's edges: too short to hold a match, lengths
// whose literal or match counts cross 15 and 15+255, a whole 64 KiB block of one byte, repeats
// at the largest offset, and data without repeats.
func lz4BlockCases() map[string][]byte {
	r := rand.New(rand.NewPCG(4, 4))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	far := random(1 << 16)
	copy(far[len(far)-4000:], far[:4000]) // a match 61536 bytes back
	cases := map[string][]byte{
		"empty":                   nil,
		"12 bytes":                []byte("abcdabcdabcd"),
		"13 bytes":                []byte("abcdabcdabcda"),
		"64 KiB of one byte":      bytes.Repeat([]byte{7}, 1<<16),
		"random 64 KiB":           random(1 << 16),
		"match at 61536":          far,
		"json":                    compressRecords(1<<16, 1),
		"scattered":               compressScattered(1<<16, 1),
		"literals then one match": append(random(300), bytes.Repeat([]byte("xyz"), 200)...),
	}
	for _, lits := range []int{14, 15, 16, 269, 270, 271, 525} {
		for _, m := range []int{4, 18, 19, 20, 273, 274, 275, 600} {
			b := append(random(lits), bytes.Repeat([]byte{'m'}, m+1)...)
			cases["lits "+strconv.Itoa(lits)+" match "+strconv.Itoa(m)] = append(b, random(20)...)
		}
	}
	return cases
}

// TestLZ4Block: what kpax's block encoder writes decodes, with pierrec/lz4's decoder, to the
// input; an input it cannot shrink is reported as such (0), never as a larger block.
func TestLZ4Block(t *testing.T) {
	var e lz4Encoder
	for name, in := range lz4BlockCases() {
		n := checkLZ4Block(t, &e, name, in)
		if shrinks := name == "64 KiB of one byte" || name == "json" || name == "match at 61536"; shrinks && n == 0 {
			t.Errorf("%s: not compressed", name)
		}
	}
}

func checkLZ4Block(t *testing.T, e *lz4Encoder, name string, in []byte) int {
	t.Helper()
	dst := make([]byte, lz4.CompressBlockBound(len(in)))
	for i := range dst {
		dst[i] = 0xAA // what a reused buffer holds: the encoder must not depend on zeros
	}
	n := e.compress(in, dst)
	if n == 0 {
		return 0
	}
	if n >= len(in) {
		t.Fatalf("%s: a block of %d bytes for %d", name, n, len(in))
	}
	got := make([]byte, len(in))
	m, err := lz4.UncompressBlock(dst[:n], got)
	if err != nil || m != len(in) || !bytes.Equal(got[:m], in) {
		t.Fatalf("%s: decodes to %d of %d bytes (%v), or to other bytes", name, m, len(in), err)
	}
	return n
}

// FuzzLZ4Block checks the block encoder on any input of up to a block, with the frame
// round trip of FuzzDecompressLZ4 besides.
func FuzzLZ4Block(f *testing.F) {
	for _, in := range lz4BlockCases() {
		f.Add(in)
	}
	var e lz4Encoder
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			in = in[:1<<16]
		}
		checkLZ4Block(t, &e, "fuzz", in)
	})
}
