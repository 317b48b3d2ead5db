package kpax

import (
	"math"
	"testing"
)

// TestSeqAfter: sequence numbers wrap after MaxInt32 to 0, as Kafka's
// DefaultRecordBatch.incrementSequence does.
func TestSeqAfter(t *testing.T) {
	for _, tt := range []struct {
		seq  int32
		n    int
		want int32
	}{
		{0, 1, 1},
		{0, 3, 3},
		{100, 10, 110},
		{math.MaxInt32 - 3, 3, math.MaxInt32},
		{math.MaxInt32 - 1, 2, 0},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 1, 5, 3},
	} {
		b := &batch{seq: tt.seq, recs: make([]pending, tt.n)}
		if got := seqAfter(b); got != tt.want {
			t.Errorf("seqAfter(seq %d, %d records) = %d, want %d", tt.seq, tt.n, got, tt.want)
		}
	}
}
