package kpax

import (
	"math/rand/v2"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// compressScattered is data like kbench's values: records of 100 bytes of text with 30 random
// bytes scattered through each, so few 4-byte repeats between them.
func compressScattered(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	const text = "kpax benchmark payload, the same for every client. "
	b := make([]byte, 0, n+107)
	v := make([]byte, 100)
	for i := 0; len(b) < n; i++ {
		for j := range v {
			v[j] = text[(i+j)%len(text)]
		}
		for _, j := range r.Perm(100)[:30] {
			v[j] = byte(r.Uint32())
		}
		b = append(b, 0x90, 0x01, 0, byte(i), 0, 0xc8, 0x01) // A record's varint header, roughly.
		b = append(b, v...)
	}
	return b[:n]
}

// BenchmarkCompress compresses 1 MiB of JSON lines and 1 MiB of kbench's values (text with
// scattered random bytes, compressScattered) with each codec.
func BenchmarkCompress(b *testing.B) {
	for _, c := range compressCodecs {
		for _, in := range []struct {
			name string
			data []byte
		}{{"json", compressRecords(1<<20, 12)}, {"scattered", compressScattered(1<<20, 12)}} {
			b.Run(c.String()+"/"+in.name, func(b *testing.B) {
				dst := make([]byte, 0, 2<<20)
				var err error
				b.SetBytes(int64(len(in.data)))
				b.ReportAllocs()
				for b.Loop() {
					if dst, err = appendCompressed(dst[:0], c, 0, in.data, false); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(in.data))/float64(len(dst)), "ratio")
			})
		}
	}
}

func BenchmarkDecompress(b *testing.B) {
	data := compressRecords(1<<20, 12)
	for _, c := range compressCodecs {
		b.Run(c.String(), func(b *testing.B) {
			comp, err := appendCompressed(nil, c, 0, data, false)
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, len(data))
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if dst, err = appendDecompressed(dst[:0], c, comp, len(data), false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLZ4Block compares kpax's LZ4 block encoder with pierrec/lz4's fast one, block by
// block (64 KiB, as in Kafka's frames), on the inputs of BenchmarkCompress.
func BenchmarkLZ4Block(b *testing.B) {
	for _, in := range []struct {
		name string
		data []byte
	}{{"json", compressRecords(1<<20, 12)}, {"scattered", compressScattered(1<<20, 12)}} {
		dst := make([]byte, lz4.CompressBlockBound(lz4BlockSize))
		var e lz4Encoder
		var c lz4.Compressor
		for _, enc := range []struct {
			name     string
			compress func(src []byte) int
		}{
			{"kpax", func(src []byte) int { return e.compress(src, dst) }},
			{"pierrec", func(src []byte) int { n, _ := c.CompressBlock(src, dst); return n }},
		} {
			b.Run(enc.name+"/"+in.name, func(b *testing.B) {
				b.SetBytes(int64(len(in.data)))
				out := 0
				for b.Loop() {
					out = 0
					for d := in.data; len(d) > 0; d = d[min(len(d), lz4BlockSize):] {
						blk := d[:min(len(d), lz4BlockSize)]
						if n := enc.compress(blk); n > 0 {
							out += n
						} else {
							out += len(blk)
						}
					}
				}
				b.ReportMetric(float64(len(in.data))/float64(out), "ratio")
			})
		}
	}
}
