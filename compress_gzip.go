package kpax

// The gzip codec (RFC 1952), with pooled writers per level and pooled readers. compress.go
// has the codec registry and the limits.

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/gzip"
)

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
