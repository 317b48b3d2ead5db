package kpax

// CONTRACT SKELETON (to be filled by the consumer work; group.go builds on
// the internal methods at the end, whose signatures are fixed).

import (
	"context"
	"time"
)

// Offset is where consumption of a partition starts: Earliest(), Latest(),
// AtOffset(n) or AtTime(t).
type Offset struct {
	at   int64 // an exact offset when kind == offsetExact
	kind int8
	ts   time.Time
	// epoch is the leader epoch of the record before at, or -1 (KIP-320).
	epoch int32
}

const (
	offsetEarliest int8 = iota
	offsetLatest
	offsetExact
	offsetTime
)

// Earliest starts at the first offset still in the log.
func Earliest() Offset { return Offset{kind: offsetEarliest, epoch: -1} }

// Latest starts at the end of the log: only records produced from now on.
func Latest() Offset { return Offset{kind: offsetLatest, epoch: -1} }

// AtOffset starts at offset n.
func AtOffset(n int64) Offset { return Offset{kind: offsetExact, at: n, epoch: -1} }

// AtTime starts at the first record whose timestamp is at or after t
// (ListOffsets); if there is none, at the end of the log.
func AtTime(t time.Time) Offset { return Offset{kind: offsetTime, ts: t, epoch: -1} }

// Fetch is what one Poll returns: records, in order per partition, and the
// problems met since the previous Poll.
type Fetch struct {
	// Records are valid until the next call of Poll: their Key, Value and
	// Headers alias the consumer's buffers. Copy what you keep.
	Records []Record
	// Errors are per-partition problems (each a *PartitionError): fatal ones
	// for the partition (e.g. OFFSET_OUT_OF_RANGE with no reset policy, a
	// detected log truncation) and retriable ones the consumer keeps retrying.
	Errors []error
}

// Consumer reads records from chosen topic partitions.
type Consumer struct {
	cl  *Client
	cfg consumerConfig
}

// consumerConfig holds the consumer's options; its defaults are part of
// defaultConfig and its checks part of validate.
type consumerConfig struct{}

func defaultConsumerConfig() consumerConfig { return consumerConfig{} }

func (c *consumerConfig) validate() []error { return nil }

// NewConsumer returns a consumer that uses the client's consumer options,
// overridden by opts. It consumes nothing until Assign.
func (cl *Client) NewConsumer(opts ...Option) (*Consumer, error) {
	return &Consumer{cl: cl}, nil
}

// Assign adds partitions to consume, each from its start point:
// parts[topic][partition].
func (c *Consumer) Assign(parts map[string]map[int32]Offset) {}

// Poll waits until records or errors are ready, or ctx ends, and returns
// them.
func (c *Consumer) Poll(ctx context.Context) (Fetch, error) { return Fetch{}, nil }

// Close stops fetching and releases the consumer's goroutines.
func (c *Consumer) Close(ctx context.Context) error { return nil }

// --- internal hooks used by group.go ---

// position is the next offset to consume in a partition, with the leader
// epoch of the last record returned (-1 if unknown): what a commit stores.
type position struct {
	offset int64
	epoch  int32
}

// assign starts fetching the given partitions from their start points
// (already-assigned partitions keep their position unless listed).
func (c *Consumer) assign(tps map[topicPartition]Offset) {}

// unassign stops fetching tps and drops what is buffered for them; after it
// returns, Poll returns no record of tps. It returns the positions of tps
// (after the records Poll already returned), for a commit on revoke.
func (c *Consumer) unassign(tps []topicPartition) map[topicPartition]position { return nil }

// positions returns the current position of every assigned partition that
// has returned at least one record or was started at an exact offset.
func (c *Consumer) positions() map[topicPartition]position { return nil }
