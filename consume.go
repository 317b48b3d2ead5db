package kpax

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// This file holds the Consumer's API, options and bookkeeping; the fetching
// itself (one Fetch loop per broker, ListOffsets, leader epochs, decoding)
// lives in fetch.go.

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

// String describes the start point, e.g. "earliest" or "offset 42".
func (o Offset) String() string {
	switch o.kind {
	case offsetEarliest:
		return "earliest"
	case offsetLatest:
		return "latest"
	case offsetExact:
		return fmt.Sprintf("offset %d", o.at)
	default:
		return "time " + o.ts.Format(time.RFC3339Nano)
	}
}

// ErrLogTruncated is matched (errors.Is) by the *PartitionError the consumer
// reports when a partition's log lost records it had already returned: after
// a leader change the new leader's log ends before the consumer's position
// (an unclean leader election, KIP-320). The consumer goes on from where the
// new log diverges, so the lost offsets will hold different records.
var ErrLogTruncated = classedValue(ClassAbortable, "kpax: log truncated below the consumer's position")

// ErrConsumerClosed is returned by Poll on a closed Consumer.
var ErrConsumerClosed = classedValue(ClassFatal, "kpax: consumer closed")

// IsolationLevel says which transactional records a consumer sees.
type IsolationLevel int8

const (
	// ReadUncommitted returns every record, including those of transactions
	// that are still open or were aborted. It is the default.
	ReadUncommitted IsolationLevel = 0
	// ReadCommitted returns only records of committed transactions (and
	// non-transactional ones), up to the last stable offset.
	ReadCommitted IsolationLevel = 1
)

// OffsetReset says what the consumer does when its position is not in the
// partition's log (OFFSET_OUT_OF_RANGE), e.g. after retention deleted it.
type OffsetReset int8

const (
	// ResetEarliest goes on from the first offset still in the log (the
	// default).
	ResetEarliest OffsetReset = iota
	// ResetLatest goes on from the end of the log.
	ResetLatest
	// ResetNone stops consuming the partition and reports a *PartitionError
	// wrapping ErrOffsetOutOfRange in Fetch.Errors; Assign it again to go on.
	ResetNone
)

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

// Consumer reads records from chosen topic partitions. Fetching runs in the
// background, one Fetch request per broker for all the partitions it leads,
// ahead of the application within a memory budget (WithFetchBufferBytes);
// Poll hands over what arrived. Poll is meant to be called from one
// goroutine; the other methods are safe for concurrent use. Make one with
// Client.NewConsumer.
type Consumer struct {
	cl  *Client
	cfg consumerConfig

	mu       sync.Mutex
	parts    map[topicPartition]*fetchPart
	fetchers map[int32]*fetcher
	ready    []*fetchChunk // decoded responses, oldest first
	cur      *fetchChunk   // returned by the last Poll, released by the next
	free     []*fetchChunk
	errs     []error
	buffered int           // bytes held by ready and cur
	space    chan struct{} // closed and replaced when buffered shrinks
	wake     chan struct{} // cap 1: wakes Poll
	kick     chan struct{} // cap 1: wakes the manager (fetch.go)
	closed   bool
	polled   uint64 // Polls that returned records (group.go's pollCount)

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup
}

// consumerConfig holds the consumer's options; its defaults are part of
// defaultConfig and its checks part of validate.
type consumerConfig struct {
	maxWait           time.Duration
	minBytes          int32
	maxBytes          int32
	maxPartitionBytes int32
	bufferBytes       int
	isolation         IsolationLevel
	reset             OffsetReset
}

func defaultConsumerConfig() consumerConfig {
	return consumerConfig{
		maxWait:           500 * time.Millisecond,
		minBytes:          1,
		maxBytes:          50 << 20,
		maxPartitionBytes: 1 << 20,
		bufferBytes:       100 << 20,
		isolation:         ReadUncommitted,
		reset:             ResetEarliest,
	}
}

func (c *consumerConfig) validate() []error {
	var errs []error
	if c.maxWait < 0 || c.maxWait > time.Duration(1<<31-1)*time.Millisecond {
		errs = append(errs, fmt.Errorf("fetch max wait %v out of range", c.maxWait))
	}
	if c.minBytes < 0 {
		errs = append(errs, fmt.Errorf("negative fetch min bytes %d", c.minBytes))
	}
	if c.maxBytes < 1024 {
		errs = append(errs, fmt.Errorf("fetch max bytes %d: want at least 1 KiB", c.maxBytes))
	}
	if c.maxPartitionBytes < 1024 || c.maxPartitionBytes > c.maxBytes {
		errs = append(errs, fmt.Errorf("fetch max partition bytes %d: want 1 KiB to the fetch max bytes (%d)", c.maxPartitionBytes, c.maxBytes))
	}
	if c.bufferBytes < 1024 {
		errs = append(errs, fmt.Errorf("fetch buffer bytes %d: want at least 1 KiB", c.bufferBytes))
	}
	if c.isolation != ReadUncommitted && c.isolation != ReadCommitted {
		errs = append(errs, fmt.Errorf("unknown isolation level %d", c.isolation))
	}
	if c.reset != ResetEarliest && c.reset != ResetLatest && c.reset != ResetNone {
		errs = append(errs, fmt.Errorf("unknown offset reset policy %d", c.reset))
	}
	return errs
}

// WithFetchMaxWait sets how long a broker may hold a Fetch request while it
// has less than the min bytes to return (Fetch MaxWaitMs). Default: 500ms.
// Consumer and share option.
func WithFetchMaxWait(d time.Duration) Option {
	return func(c *config) { c.in(scopeConsumer|scopeShare, "WithFetchMaxWait"); c.consumer.maxWait = d }
}

// WithFetchMinBytes sets how many bytes a broker waits for (up to the max
// wait) before answering a Fetch. Default: 1. Consumer and share
// option.
func WithFetchMinBytes(n int32) Option {
	return func(c *config) { c.in(scopeConsumer|scopeShare, "WithFetchMinBytes"); c.consumer.minBytes = n }
}

// WithFetchMaxBytes caps the record bytes of one Fetch response; a broker
// still returns a first batch larger than that (KIP-74). Default: 50 MiB.
// Consumer and share option.
func WithFetchMaxBytes(n int32) Option {
	return func(c *config) { c.in(scopeConsumer|scopeShare, "WithFetchMaxBytes"); c.consumer.maxBytes = n }
}

// WithFetchMaxPartitionBytes caps the record bytes one partition adds to a
// Fetch response. Default: 1 MiB. Consumer option.
func WithFetchMaxPartitionBytes(n int32) Option {
	return func(c *config) { c.in(scopeConsumer, "WithFetchMaxPartitionBytes"); c.consumer.maxPartitionBytes = n }
}

// WithFetchBufferBytes bounds the memory of fetched records that Poll has
// not yet handed over or whose Fetch is still in use, compressed and
// decompressed bytes together: fetching pauses while it is reached. A
// Fetch request asks for no more than what is left of it. Default: 100 MiB.
// Consumer option.
func WithFetchBufferBytes(n int) Option {
	return func(c *config) { c.in(scopeConsumer, "WithFetchBufferBytes"); c.consumer.bufferBytes = n }
}

// WithIsolationLevel sets which transactional records the consumer returns.
// Default: ReadUncommitted. Consumer option.
func WithIsolationLevel(l IsolationLevel) Option {
	return func(c *config) { c.in(scopeConsumer, "WithIsolationLevel"); c.consumer.isolation = l }
}

// WithOffsetReset sets what happens when a partition's position is out of
// its log's range. Default: ResetEarliest. Consumer option.
func WithOffsetReset(r OffsetReset) Option {
	return func(c *config) { c.in(scopeConsumer, "WithOffsetReset"); c.consumer.reset = r }
}

// NewConsumer returns a consumer configured by the consumer options given
// to New, overridden by opts, which must be consumer options (a client,
// producer or group option is an error, see Option). It consumes nothing
// until Assign. Close it to stop its goroutines.
func (cl *Client) NewConsumer(opts ...Option) (*Consumer, error) {
	cfg, err := applyOptionsFor(cl.cfg, opts, scopeConsumer)
	if err != nil {
		return nil, err
	}
	return cl.newConsumer(cfg)
}

// newConsumer returns a consumer with the (validated) configuration.
func (cl *Client) newConsumer(cfg config) (*Consumer, error) {
	if cl.isClosed() {
		return nil, ErrClientClosed
	}
	ctx, cancel := context.WithCancel(cl.ctx)
	c := &Consumer{
		cl: cl, cfg: cfg.consumer,
		parts: map[topicPartition]*fetchPart{}, fetchers: map[int32]*fetcher{},
		space: make(chan struct{}), wake: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	c.wg.Add(1)
	go c.manage()
	return c, nil
}

// Assign adds partitions to consume, each from its start point:
// parts[topic][partition]. A partition already assigned restarts from the
// new start point. It returns an error, and assigns nothing, for an empty
// topic name, a negative partition or offset, or a closed consumer.
func (c *Consumer) Assign(parts map[string]map[int32]Offset) error {
	tps := make(map[topicPartition]Offset)
	for t, ps := range parts {
		for p, o := range ps {
			if err := checkAssign(t, p, o); err != nil {
				return err
			}
			tps[topicPartition{t, p}] = o
		}
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrConsumerClosed
	}
	c.assign(tps)
	return nil
}

// checkAssign checks one partition given to Assign.
func checkAssign(topic string, partition int32, o Offset) error {
	switch {
	case topic == "":
		return errors.New("kpax: Assign: empty topic name")
	case partition < 0:
		return fmt.Errorf("kpax: Assign: %s: negative partition %d", topic, partition)
	case o.kind == offsetExact && o.at < 0:
		return fmt.Errorf("kpax: Assign: %s/%d: negative offset %d", topic, partition, o.at)
	case o.kind < offsetEarliest || o.kind > offsetTime:
		return fmt.Errorf("kpax: Assign: %s/%d: bad Offset", topic, partition)
	}
	return nil
}

// Unassign stops consuming the partitions; Poll returns no more of their
// records.
func (c *Consumer) Unassign(topic string, partitions ...int32) {
	tps := make([]topicPartition, len(partitions))
	for i, p := range partitions {
		tps[i] = topicPartition{topic, p}
	}
	c.unassign(tps)
}

// Pause stops fetching the partitions (all assigned partitions of the topic
// when none is given) and drops what was fetched of them and not yet
// returned: Poll returns none of their records until Resume, which goes on
// from the record after the last one returned.
func (c *Consumer) Pause(topic string, partitions ...int32) { c.setPaused(topic, partitions, true) }

// Resume fetches paused partitions again (all of the topic when none is
// given).
func (c *Consumer) Resume(topic string, partitions ...int32) { c.setPaused(topic, partitions, false) }

func (c *Consumer) setPaused(topic string, partitions []int32, paused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for tp, fp := range c.parts {
		if tp.topic != topic || (len(partitions) > 0 && !containsInt32(partitions, tp.partition)) || fp.paused == paused {
			continue
		}
		fp.paused = paused
		fp.restart()
	}
	c.kickAll()
}

func containsInt32(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Position returns the next offset Poll will return of a partition (the
// offset after the last record returned), and false if the partition is not
// assigned or its start point is not resolved yet.
func (c *Consumer) Position(topic string, partition int32) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fp := c.parts[topicPartition{topic, partition}]
	if fp == nil || fp.state == partNeedOffset {
		return 0, false
	}
	return fp.pos.offset, true
}

// Poll waits until records or errors are ready, or ctx ends, and returns
// them. Each call releases the records of the previous one.
func (c *Consumer) Poll(ctx context.Context) (Fetch, error) {
	if ctx == nil {
		return Fetch{}, errNilContext
	}
	c.mu.Lock()
	c.releaseCur()
	for {
		if c.closed {
			c.mu.Unlock()
			return Fetch{}, ErrConsumerClosed
		}
		for len(c.ready) > 0 {
			ch := c.ready[0]
			c.ready[0] = nil
			c.ready = c.ready[1:]
			if recs := c.take(ch); len(recs) > 0 {
				c.cur = ch
				c.polled++
				f := Fetch{Records: recs, Errors: c.errs}
				c.errs = nil
				c.mu.Unlock()
				return f, nil
			}
			c.release(ch)
		}
		if len(c.errs) > 0 {
			f := Fetch{Errors: c.errs}
			c.errs = nil
			c.mu.Unlock()
			return f, nil
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-ctx.Done():
			return Fetch{}, ctx.Err()
		case <-c.done:
		case <-c.cl.closed:
			return Fetch{}, ErrClientClosed
		}
		c.mu.Lock()
	}
}

// take returns the records of ch that Poll may return, moving the positions
// of their partitions past them; c.mu is held.
func (c *Consumer) take(ch *fetchChunk) []Record {
	// Compaction below moves records down: ranges must go in the order of
	// their records, which need not be the order they were added in (the
	// broker orders a fetch session's partitions its own way).
	slices.SortFunc(ch.ranges, func(a, b chunkRange) int { return a.start - b.start })
	n := 0
	for i := range ch.ranges {
		r := &ch.ranges[i]
		fp := c.parts[r.part.tp]
		if fp != r.part || fp.gen != r.gen || fp.paused {
			continue
		}
		fp.pos = position{offset: r.next, epoch: r.epoch}
		if r.end > r.start {
			fp.returned = true
		}
		if r.start != n {
			copy(ch.recs[n:], ch.recs[r.start:r.end])
		}
		n += r.end - r.start
	}
	clear(ch.recs[n:])
	ch.recs = ch.recs[:n]
	return ch.recs
}

// releaseCur releases the chunk of the last Poll; c.mu is held.
func (c *Consumer) releaseCur() {
	if c.cur != nil {
		c.release(c.cur)
		c.cur = nil
	}
}

// release returns a chunk's bytes to the budget and the chunk to the free
// list; c.mu is held.
func (c *Consumer) release(ch *fetchChunk) {
	c.buffered -= ch.bytes
	if b := c.cl.cfg.budget; b != nil {
		b.release(ch.bytes)
		for i := range ch.readers { // kept, they would hold memory outside the budget
			ch.readers[i].scratch = nil
		}
	}
	frame := ch.frame
	ch.reset() // nothing aliases the frame any more
	c.cl.cfg.frames.put(frame)
	if len(c.free) < 4 {
		c.free = append(c.free, ch)
	}
	close(c.space)
	c.space = make(chan struct{})
}

// Close stops fetching and releases the consumer's goroutines, waiting for
// them until ctx ends. Records of the last Poll are invalid afterwards.
func (c *Consumer) Close(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.cancel()
		close(c.done)
	}
	c.mu.Unlock()
	ended := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseCur()
	for _, ch := range c.ready {
		c.release(ch)
	}
	c.ready = nil
	return nil
}

// --- internal hooks used by group.go ---

// position is the next offset to consume in a partition, with the leader
// epoch of the last record returned (-1 if unknown): what a commit stores.
type position struct {
	offset int64
	epoch  int32
}

// assign starts fetching the given partitions from their start points
// (already-assigned partitions keep their position unless listed).
func (c *Consumer) assign(tps map[topicPartition]Offset) { c.assignPaused(tps, nil) }

// assignPaused is assign, with the partitions in paused started paused.
func (c *Consumer) assignPaused(tps map[topicPartition]Offset, paused map[topicPartition]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for tp, o := range tps {
		fp := c.parts[tp]
		if fp == nil {
			fp = &fetchPart{tp: tp, leader: -1, leaderEpoch: -1}
			c.parts[tp] = fp
		}
		fp.start(o)
		fp.paused = paused[tp]
	}
	c.kickManager()
}

// unassign stops fetching tps and drops what is buffered for them; after it
// returns, Poll returns no record of tps. It returns the positions of tps
// (after the records Poll already returned), for a commit on revoke: those
// that positions would return.
func (c *Consumer) unassign(tps []topicPartition) map[topicPartition]position {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[topicPartition]position, len(tps))
	for _, tp := range tps {
		fp := c.parts[tp]
		if fp == nil {
			continue
		}
		if fp.hasPosition() {
			out[tp] = fp.pos
		}
		fp.gen++
		delete(c.parts, tp)
	}
	// Records of the last Poll stay valid; only later ones are filtered
	// (take checks that the partition is still the same).
	return out
}

// positions returns the current position of every assigned partition that
// has returned at least one record or was started at an exact offset.
func (c *Consumer) positions() map[topicPartition]position {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[topicPartition]position, len(c.parts))
	for tp, fp := range c.parts {
		if fp.hasPosition() {
			out[tp] = fp.pos
		}
	}
	return out
}

// pollCount returns how many Polls returned records. Read after unassign
// or positions, it covers every Poll that returned records they account for.
func (c *Consumer) pollCount() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.polled
}

// kickManager wakes the manager goroutine; c.mu need not be held.
func (c *Consumer) kickManager() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// kickAll wakes the manager and every fetcher; c.mu is held.
func (c *Consumer) kickAll() {
	c.kickManager()
	for _, f := range c.fetchers {
		f.wakeUp()
	}
}

// wakePoll wakes a waiting Poll.
func (c *Consumer) wakePoll() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// report queues a problem for the next Poll; c.mu is held.
func (c *Consumer) report(err error) {
	const maxQueued = 1000 // a Poll-less application must not grow this forever
	if len(c.errs) < maxQueued {
		c.errs = append(c.errs, err)
	}
	c.wakePoll()
}
