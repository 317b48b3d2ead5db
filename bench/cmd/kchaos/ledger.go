package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"h12.me/kpax"
)

// ledger records what a producer reported for each record: records are
// numbered in Produce order and carry the number in their value
// ("seq-N-xxx"), so the log read back can be checked against the outcomes.
type ledger struct {
	mu       sync.Mutex
	keys     [][]byte
	sentAt   []time.Time
	ackAt    []time.Time
	outcomes []int // callbacks per record: must end at exactly 1; -1: not queued
	errs     []error
	parts    []int32
	offsets  []int64
}

// produce sends record number len(l.keys) with the key.
func (l *ledger) produce(ctx context.Context, p producer, key []byte, pad int) {
	l.mu.Lock()
	i := len(l.keys)
	l.keys = append(l.keys, key)
	l.sentAt = append(l.sentAt, time.Now())
	l.ackAt = append(l.ackAt, time.Time{})
	l.outcomes = append(l.outcomes, 0)
	l.errs = append(l.errs, nil)
	l.parts = append(l.parts, -1)
	l.offsets = append(l.offsets, -1)
	l.mu.Unlock()
	value := fmt.Appendf(nil, "seq-%d-%s", i, strings.Repeat("x", pad))
	err := p.produce(ctx, key, value, func(part int32, off int64, err error) {
		now := time.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		l.outcomes[i]++
		if l.outcomes[i] == 1 {
			l.ackAt[i], l.errs[i], l.parts[i], l.offsets[i] = now, err, part, off
		}
	})
	if err != nil {
		l.mu.Lock()
		l.outcomes[i], l.errs[i] = -1, err
		l.mu.Unlock()
	}
}

// figures is one run's result.
type figures struct {
	produced, acked, errors  int
	lost, dups, reorders     int
	badOffset, multi, silent int // acked at an offset holding another record; several outcomes; none
	failedInLog, strangers   int // failed records found in the log; values not from the ledger
	p50, p99, p999, max      time.Duration
	firstErrs                []string
}

func seqOf(v []byte) int {
	s, ok := strings.CutPrefix(string(v), "seq-")
	if !ok {
		return -1
	}
	s, _, _ = strings.Cut(s, "-")
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// check compares the log (per partition, in offset order) with the ledger.
// A reorder is a record of the log that follows, for its key, a record
// produced after it.
func (l *ledger) check(log map[int32][]kpax.Record) figures {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := figures{produced: len(l.keys)}
	seen := make([]int, len(l.keys))
	at := map[[2]int64]int{} // partition, offset: record number
	for part, rs := range log {
		last := map[string]int{}
		for _, r := range rs {
			n := seqOf(r.Value)
			if n < 0 || n >= len(l.keys) || !bytes.Equal(r.Key, l.keys[n]) {
				f.strangers++
				continue
			}
			seen[n]++
			if prev, ok := last[string(r.Key)]; ok && n < prev {
				f.reorders++
			}
			last[string(r.Key)] = max(last[string(r.Key)], n)
			at[[2]int64{int64(part), r.Offset}] = n
		}
	}
	var lat []time.Duration
	for i := range l.keys {
		if seen[i] > 1 {
			f.dups += seen[i] - 1
		}
		switch {
		case l.outcomes[i] == 0:
			f.silent++
		case l.outcomes[i] > 1:
			f.multi++
		}
		if l.outcomes[i] != 0 && l.errs[i] != nil {
			f.errors++
			if seen[i] > 0 {
				f.failedInLog++
			}
			if e := l.errs[i].Error(); len(f.firstErrs) < 3 && !slices.Contains(f.firstErrs, e) {
				f.firstErrs = append(f.firstErrs, e)
			}
			continue
		}
		if l.outcomes[i] <= 0 {
			continue
		}
		f.acked++
		lat = append(lat, l.ackAt[i].Sub(l.sentAt[i]))
		if seen[i] == 0 {
			f.lost++
		} else if n, ok := at[[2]int64{int64(l.parts[i]), l.offsets[i]}]; !ok || n != i {
			f.badOffset++
		}
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	f.p50, f.p99, f.p999, f.max = q(0.5), q(0.99), q(0.999), q(1)
	return f
}

// readBack reads every partition of topic from the start to its end offset
// with a kpax consumer (on a client that bypasses the proxies).
func readBack(ctx context.Context, cl *kpax.Client, topic string) (map[int32][]kpax.Record, error) {
	ends, err := cl.Admin().ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	c, err := cl.NewConsumer()
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	assign := map[int32]kpax.Offset{}
	for _, e := range ends {
		if e.Err != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, e.Partition, e.Err)
		}
		assign[e.Partition] = kpax.Earliest()
	}
	if err := c.Assign(map[string]map[int32]kpax.Offset{topic: assign}); err != nil {
		return nil, err
	}
	done := func() bool {
		for _, e := range ends {
			if pos, ok := c.Position(topic, e.Partition); e.Offset > 0 && (!ok || pos < e.Offset) {
				return false
			}
		}
		return true
	}
	out := map[int32][]kpax.Record{}
	for !done() {
		f, err := c.Poll(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range f.Records {
			r.Key, r.Value, r.Headers = bytes.Clone(r.Key), bytes.Clone(r.Value), nil
			out[r.Partition] = append(out[r.Partition], r)
		}
	}
	return out, nil
}
