package main

// Scaling runs: produce (acks=1, no compression, on the sink) while one
// dimension of the work grows, the partitions (1 to 1000), the producing
// goroutines (1 to 64) or the value size (10 B to 1 MB), so that the
// growth of CPU per record and peak RSS with the work shows, kpax next to
// franz-go (the other peers do not run them).

import (
	"fmt"
	"math/rand"
)

// scaleBytes bounds the bytes a value-size run sends (N shrinks as values
// grow) and, through the records buffered, what either client may hold.
const (
	scaleBytes    = 256 << 20
	scaleBuffered = 64 << 20
	scaleReps     = 3
	// scaleMaxValue is the "1 MB" value: the largest that fits a batch of
	// maxBatchBytes with its record overhead, for both clients.
	scaleMaxValue = maxBatchBytes - 1000
)

func scaleSpec(name string, parts, goroutines, size int) workload {
	return workload{name: "scale " + name, reps: scaleReps, spec: Spec{Kind: "scale", Name: "scale " + name,
		Partitions: parts, Acks: 1, Compression: "none", Linger: lingerThroughput,
		Goroutines: goroutines, ValueSize: size}}
}

// scaleWorkloads are the scaling runs, for the sink only.
func scaleWorkloads() []workload {
	var ws []workload
	for _, p := range []int{1, 10, 100, 1000} {
		ws = append(ws, scaleSpec(fmt.Sprintf("partitions p%d", p), p, producers, 100))
	}
	for _, g := range []int{1, 16, 64} {
		ws = append(ws, scaleSpec(fmt.Sprintf("goroutines g%d p6", g), 6, g, 100))
	}
	for _, v := range []int{10, 1000, 10_000, 100_000, scaleMaxValue} {
		ws = append(ws, scaleSpec(fmt.Sprintf("value %s p6", sizeName(v)), 6, producers, v))
	}
	return ws
}

func sizeName(v int) string {
	switch {
	case v >= scaleMaxValue:
		return "1MB"
	case v >= 1000:
		return fmt.Sprintf("%dKB", v/1000)
	}
	return fmt.Sprintf("%dB", v)
}

// fillScale sizes a scaling run: fewer records as values grow, and a
// record limit on both clients' buffers that keeps what they hold alike.
func fillScale(s *Spec) {
	size := max(s.ValueSize, 1)
	s.N = min(s.N, scaleBytes/size)
	s.MaxBuffered = min(s.MaxBuffered, max(scaleBuffered/size, 16))
	s.Warmup = min(s.Warmup, max(s.N/10, 1))
}

// payloadsOf is payloads for values of size bytes (100 when 0): 30% random
// bytes, the rest text, as many distinct values as fit 64 MiB (4096 at
// most, 16 at least).
func payloadsOf(size int) [][]byte {
	if size <= 0 {
		size = 100
	}
	rng := rand.New(rand.NewSource(7))
	const text = "kpax benchmark payload, the same for every client. "
	vals := make([][]byte, max(16, min(4096, (64<<20)/size)))
	for i := range vals {
		v := make([]byte, size)
		for j := range v {
			v[j] = text[(i+j)%len(text)]
		}
		if size <= 4096 {
			for _, j := range rng.Perm(size)[:size*3/10] {
				v[j] = byte(rng.Intn(256))
			}
		} else { // large values: random runs, not a permutation of each
			for k := 0; k < size*3/10; k += 64 {
				rng.Read(v[rng.Intn(size-64):][:64])
			}
		}
		vals[i] = v
	}
	return vals
}
