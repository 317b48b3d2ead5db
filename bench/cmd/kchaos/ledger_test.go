package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"h12.me/kpax"
)

// fakeProducer answers each record at once: acked at the next offset of
// partition 0, or failed for the sequence numbers in fail.
type fakeProducer struct {
	next int64
	fail map[int]bool
	n    int
}

func (f *fakeProducer) produce(_ context.Context, _, _ []byte, cb func(int32, int64, error)) error {
	i := f.n
	f.n++
	if f.fail[i] {
		cb(0, -1, errors.New("boom"))
		return nil
	}
	cb(0, f.next, nil)
	f.next++
	return nil
}

func (f *fakeProducer) flush(context.Context) error { return nil }
func (f *fakeProducer) close()                      {}

func rec(off int64, seq int, key string) kpax.Record {
	return kpax.Record{Partition: 0, Offset: off, Key: []byte(key), Value: fmt.Appendf(nil, "seq-%d-xx", seq)}
}

// TestLedgerCheck: lost, duplicated, reordered, misplaced and failed records
// are told apart.
func TestLedgerCheck(t *testing.T) {
	cases := []struct {
		name string
		fail map[int]bool
		log  []kpax.Record // records 0, 1, 2 with keys a, a, b
		want figures
	}{
		{"clean", nil, []kpax.Record{rec(0, 0, "a"), rec(1, 1, "a"), rec(2, 2, "b")},
			figures{produced: 3, acked: 3}},
		{"lost", nil, []kpax.Record{rec(0, 0, "a"), rec(2, 2, "b")},
			figures{produced: 3, acked: 3, lost: 1}},
		{"duplicate", nil, []kpax.Record{rec(0, 0, "a"), rec(1, 1, "a"), rec(2, 2, "b"), rec(3, 2, "b")},
			figures{produced: 3, acked: 3, dups: 1}},
		{"reorder and wrong offsets", nil, []kpax.Record{rec(0, 1, "a"), rec(1, 0, "a"), rec(2, 2, "b")},
			figures{produced: 3, acked: 3, reorders: 1, badOffset: 2}},
		{"reorder across keys is none", nil, []kpax.Record{rec(0, 0, "a"), rec(1, 2, "b"), rec(2, 1, "a")},
			figures{produced: 3, acked: 3, badOffset: 2}},
		{"failed, in the log", map[int]bool{1: true}, []kpax.Record{rec(0, 0, "a"), rec(1, 1, "a"), rec(2, 2, "b")},
			figures{produced: 3, acked: 2, errors: 1, failedInLog: 1, badOffset: 1, firstErrs: []string{"boom"}}},
		{"stranger", nil, []kpax.Record{rec(0, 0, "a"), rec(1, 1, "a"), rec(2, 2, "b"), rec(3, 7, "a"), rec(4, 2, "a")},
			figures{produced: 3, acked: 3, strangers: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := &ledger{}
			p := &fakeProducer{fail: c.fail}
			for _, k := range []string{"a", "a", "b"} {
				l.produce(context.Background(), p, []byte(k), 2)
			}
			got := l.check(map[int32][]kpax.Record{0: c.log})
			got.p50, got.p99, got.p999, got.max = 0, 0, 0, 0
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestQuantiles: p50/p99/p99.9/max of the acked records' latencies.
func TestQuantiles(t *testing.T) {
	l := &ledger{}
	start := time.Now()
	for i := range 1000 {
		l.keys = append(l.keys, []byte("k"))
		l.sentAt = append(l.sentAt, start)
		l.ackAt = append(l.ackAt, start.Add(time.Duration(i+1)*time.Millisecond))
		l.outcomes = append(l.outcomes, 1)
		l.errs = append(l.errs, nil)
		l.parts = append(l.parts, 0)
		l.offsets = append(l.offsets, int64(i))
	}
	f := l.check(nil)
	if f.p50 != 501*time.Millisecond || f.p99 != 991*time.Millisecond || f.p999 != 1000*time.Millisecond || f.max != time.Second {
		t.Fatalf("p50 %v p99 %v p99.9 %v max %v", f.p50, f.p99, f.p999, f.max)
	}
	if f.lost != 1000 {
		t.Fatalf("lost %d, want 1000 (empty log)", f.lost)
	}
}
