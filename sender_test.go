package kpax

import (
	"math"
	"slices"
	"testing"
	"time"
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

// TestAddPendingWakes: the sender is woken for a partition run's first record and when the run
// first holds a full batch, not for each record after that.
func TestAddPendingWakes(t *testing.T) {
	p := &Producer{cl: &Client{cfg: defaultConfig()}, cfg: defaultProducerConfig(), wake: make(chan struct{}, 1), parts: map[topicPartition]*partState{}, epoch: time.Now()}
	p.cfg.maxBatchBytes = 1000
	var woke []int
	for i := range 50 { // 100 bytes each: the run holds a batch at the 10th
		p.addPending(topicPartition{"t", 0}, pending{size: 100})
		select {
		case <-p.wake:
			woke = append(woke, i)
		default:
		}
	}
	if want := []int{0, 9}; !slices.Equal(woke, want) {
		t.Errorf("woken at records %v, want %v", woke, want)
	}
}
