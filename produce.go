package kpax

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrMaybePersisted wraps the error of a record whose request reached the
// broker (or may have) without an acknowledgement coming back: the record
// may or may not be in the log. It is never reported as a plain failure.
// A share consumer's acknowledgement failure (ErrShareAckFailed) wraps it
// likewise when the broker may have applied the acknowledgements.
var ErrMaybePersisted = classedValue(ClassRetriable, "kpax: the record may have been persisted")

// ErrProducerClosed is the error of records given to a closed producer, and
// of records still buffered when Close gave up.
var ErrProducerClosed = classedValue(ClassFatal, "kpax: producer closed")

// Producer sends records to Kafka in batches: per partition, many
// partitions' batches in one Produce request per broker, several requests in
// flight per broker. Every record given to Produce gets exactly one outcome,
// through its callback. A Producer is safe for concurrent use. Make one
// with Client.NewProducer; Close it to flush and release it.
//
// By default the producer is idempotent (where the broker supports it, with
// acks=all): retries never duplicate or reorder records within a partition.
// On a broker without idempotent producers (before Kafka 0.11) the default
// goes on without, with a warning; WithIdempotence(true) fails every record.
type Producer struct {
	cl   *Client
	cfg  producerConfig
	part Partitioner

	mu         sync.Mutex
	parts      map[topicPartition]*partState
	topics     map[string]*topicState
	brokers    map[int32]*sink
	bufRecords int // records buffered, until their callback has run
	bufBytes   int
	cbRecords  int // of which their outcome is decided, their callback queued
	cbBytes    int
	budget     *memBudget    // the client's (WithMemoryBudget), or nil; bufBytes are drawn from it
	space      chan struct{} // closed and replaced when buffer space frees, if spaceWait
	spaceWait  bool          // someone waits on space: finish must signal it
	flushing   int           // Flush calls in progress: linger is ignored
	closing    bool
	pid        producerID
	pidAsking  bool        // the one InitProducerId is in flight
	resetPID   bool        // get a new producer ID once nothing is in flight or in doubt
	idemErr    error       // WithIdempotence(true) on a broker without it: every record fails
	txn        *txnManager // transactional state (txn.go); nil without WithTransactionalID

	// Hot-path caches, under mu: the partition last queued to (parts never
	// loses an entry), and pending slices of completed batches for reuse
	// (freeRecsCap is their total capacity; see putRecs).
	lastPS *partState

	// views holds each known topic's *topicView, which Produce gives the
	// Partitioner before taking mu: user code never runs under the lock.
	// firstView is the first topic's, kept current by setAvail (under mu).
	views     sync.Map
	firstView atomic.Pointer[topicView]
	unrouted  []pending // records to partition again, by the sender (routeQueued)
	routing   bool      // routeQueued is partitioning records taken from unrouted
	drained   bool      // Close failed what was left: records routed later fail too

	nextReload time.Time // the earliest topicState.reloadAt (see reloadTopics)

	freeRecs    [][]pending
	freeRecsCap int

	// clock is a recent time.Now for record deadlines (reading the clock
	// costs a fair share of a record's budget): it is read when a
	// partition's pending run starts and by collect, so it is at most one
	// sender pass (≤100ms) old. Set it with setClock, which keeps
	// clockDeadline, a record's delivery deadline from it (as p.since).
	clock         time.Time
	clockDeadline int64
	// epoch is when the producer was made: record deadlines are kept as
	// nanoseconds since (since), which holds no pointer for the garbage
	// collector to follow, unlike a time.Time.
	epoch time.Time

	// Callbacks waiting for deliver (produce_outcome.go), and how many it
	// is running; cbStop ends it (Close), cbDone is closed when it has.
	cbq       []outcome
	cbRunning int
	cbStop    bool
	cbWake    chan struct{}
	cbDone    chan struct{}
	cbG       atomic.Uint64 // deliver's goroutine ID

	wake   chan struct{}   // wakes the sender
	quit   chan struct{}   // closed by Close when everything is done or abandoned
	ctx    context.Context // canceled by Close, after the flush
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type topicPartition struct {
	topic     string
	partition int32
}

type producerID struct {
	id    int64
	epoch int16
}

// partState is one partition's records: not yet batched, waiting for a
// retry, and in flight.
type partState struct {
	tp topicPartition
	// Records not yet in a batch, in Produce order, as runs of at most a batch each: full
	// holds the full runs (oldest first), pending the one that fills (never empty while full
	// is not). A batch takes a run whole (cutBatch), so no record is copied into it.
	pending   []pending
	full      [][]pending
	pendBytes int       // of every run
	runBytes  int       // of pending
	firstAt   time.Time // when the oldest pending record arrived
	retry     []*batch  // failed batches, in cut (and sequence) order
	inflight  int
	sentTo    int32  // the broker of the batches in flight
	cuts      uint64 // batches cut so far: the next batch's order
	leader    int32  // -1 while unknown
	seq       int32  // next sequence number (idempotent)
	ackedNext int32  // the sequence after the last settled batch (see settle)
	settled   uint64 // order+1 of the last settled batch
	// refused: the leader proved the batches from refusedOrder on, under
	// refusedPID, are not in its log (see isRefused).
	refused      bool
	refusedPID   producerID
	refusedOrder uint64
	backoff      time.Duration
	retryAt      time.Time
	avoidUntil   time.Time
	congested    bool // ready records wait for room in the broker's pipeline
	failures     int
	leaderEpoch  int32
}

type pending struct {
	rec      *Record
	cb       func(*Record, error)
	size     int
	deadline int64 // delivery deadline, from p.clock (see addPending), as p.since; 0: not set
}

// batch is records sent together to one partition.
type batch struct {
	ps         *partState
	recs       []pending
	bytes      int
	seq        int32  // base sequence, -1 until dispatched (idempotent)
	order      uint64 // the partition's cut count when it was cut: retries keep this order
	pid        producerID
	attempts   int
	maybeSent  bool // a request holding it may have reached the broker
	sentBefore bool // maybeSent before the latest request (see flight.notWritten)
	lastErr    error
}

// NewProducer returns a producer configured by the producer options given
// to New, overridden by opts, which must be producer options (a client,
// consumer or group option is an error, see Option; so is a bad value).
// Close it to send what is buffered and release its goroutines.
func (cl *Client) NewProducer(opts ...Option) (*Producer, error) {
	cfg, err := applyOptionsFor(cl.cfg, opts, scopeProducer)
	if err != nil {
		return nil, err
	}
	if cl.isClosed() {
		return nil, ErrClientClosed
	}
	p := &Producer{
		cl: cl, cfg: cfg.producer, part: cfg.producer.partitioner, budget: cfg.budget,
		parts: map[topicPartition]*partState{}, topics: map[string]*topicState{}, brokers: map[int32]*sink{},
		space: make(chan struct{}), wake: make(chan struct{}, 1), quit: make(chan struct{}),
		pid: producerID{id: -1, epoch: -1}, clock: time.Now(),
		cbWake: make(chan struct{}, 1), cbDone: make(chan struct{}),
	}
	p.epoch = p.clock
	p.setClock(p.clock)
	if p.part == nil {
		p.part = StickyPartitioner()
	}
	if cfg.producer.txnIDSet {
		p.txn = newTxnManager(p)
	}
	p.ctx, p.cancel = context.WithCancel(cl.ctx)
	p.wg.Add(1)
	go p.sender()
	go p.deliver()
	return p, nil
}

// recordSize is what a record counts against the buffer limits.
func recordSize(r *Record) int {
	n := len(r.Key) + len(r.Value) + 24
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}

// Produce queues r for sending and returns; cb (which may be nil) is called
// exactly once with r (its Partition and Offset set) and the outcome, from a
// producer goroutine. r must not be changed until then. r.Partition is used
// only with ManualPartitioner.
//
// Callbacks run one at a time, in the order of the outcomes (so a
// partition's in the order of its records), and under no lock of the
// producer: a callback may call Produce, Flush and Close. It must not wait
// for another record's callback (ProduceSync does), which runs after it.
//
// A record with a zero Timestamp gets the current time (its create time, as
// in the Java client; the wall clock without a monotonic reading, to the
// microsecond or finer): Produce sets r.Timestamp, so a Record reused for
// another Produce keeps it unless reset. An explicit Timestamp is sent as
// it is. (A topic with message.timestamp.type=LogAppendTime replaces both
// with the broker's time.)
//
// When the buffer is full (WithMaxBufferedRecords, WithMaxBufferedBytes,
// the client's WithMemoryBudget) Produce blocks until there is room or ctx ends, and then returns ctx's
// error without queueing r (cb is not called). It returns an error without
// queueing for a nil record, a record without a topic, a closed producer or
// a record larger than the max batch size.
func (p *Producer) Produce(ctx context.Context, r *Record, cb func(*Record, error)) error {
	if r == nil || r.Topic == "" || ctx == nil {
		return badProduce(ctx, r)
	}
	if r.Timestamp.IsZero() {
		r.Timestamp = recordNow() // one clock read per record, outside the lock
	}
	size := recordSize(r)
	if size > p.cfg.maxBatchBytes {
		return fmt.Errorf("%w: record of %d bytes, max batch size %d", ErrMessageTooLarge, size, p.cfg.maxBatchBytes)
	}
	// The partition is chosen before the lock: the Partitioner is user code.
	view := p.viewOf(r.Topic)
	part := int32(-1)
	if view != nil {
		part = p.part.Partition(r, view.n, view.avail)
	}
	p.mu.Lock()
	for {
		if p.closing {
			p.mu.Unlock()
			return ErrProducerClosed
		}
		if p.txn != nil {
			if err := p.txn.admit(); err != nil {
				p.mu.Unlock()
				return err
			}
		}
		ok, freed := p.admit(size)
		if ok {
			break
		}
		p.spaceWait = true
		space := p.space
		p.mu.Unlock()
		select {
		case <-space:
		case <-freed:
		case <-ctx.Done():
			return classify(ctx.Err())
		}
		p.mu.Lock()
	}
	p.bufRecords++
	p.bufBytes += size
	pr := pending{rec: r, cb: cb, size: size} // addPending sets the deadline
	switch {
	case view != nil && len(p.unrouted) == 0 && !p.routing:
		p.place(pr, part, view.n)
	case view != nil || p.viewOf(r.Topic) != nil:
		// After the records waiting for a partition (a key's order), or
		// the topic became known meanwhile.
		p.routeLater(pr)
	default:
		// The topic is not known yet: park the record on partition -1 of
		// the topic until metadata comes.
		p.addPending(topicPartition{r.Topic, -1}, pr)
		p.loadTopic(r.Topic)
	}
	p.mu.Unlock()
	return nil
}

// badProduce is Produce's error for a nil context or record, or a record
// without a topic.
func badProduce(ctx context.Context, r *Record) error {
	switch {
	case ctx == nil:
		return withClass(ClassAbortable, errors.New("kpax: Produce: nil context"))
	case r == nil:
		return withClass(ClassAbortable, errors.New("kpax: Produce: nil record"))
	}
	return withClass(ClassAbortable, errors.New("kpax: record without a topic"))
}

// setClock sets p.clock and the deadline of a record produced at it. p.mu
// is held.
func (p *Producer) setClock(now time.Time) {
	p.clock, p.clockDeadline = now, p.since(now.Add(p.cfg.deliveryTimeout))
}

// since is t as a record deadline: nanoseconds since the producer's epoch
// (monotonic), at least 1 (0 is no deadline).
func (p *Producer) since(t time.Time) int64 { return max(int64(t.Sub(p.epoch)), 1) }

func (p *Producer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// ProduceSync sends the records and waits for all of them; it returns the
// first error (records already queued are still sent when ctx ends first).
// It is a ProduceWaiter's Produce and Wait.
func (p *Producer) ProduceSync(ctx context.Context, rs ...*Record) error {
	var w ProduceWaiter
	for _, r := range rs {
		if err := w.Produce(ctx, p, r); err != nil {
			break
		}
	}
	return w.Wait(ctx)
}

// Flush sends every buffered record without waiting for the linger and
// returns when all of them have their outcome and their callbacks have run,
// or ctx's error when it ends first. Called from a callback, it waits for
// the outcomes only: the callbacks run after the caller's, and an
// acknowledged record gets its Partition and Offset just before its own
// callback would run (a record without one too).
func (p *Producer) Flush(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	p.mu.Lock()
	p.flushing++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.flushing--
		p.mu.Unlock()
	}()
	p.poke()
	for {
		p.mu.Lock()
		// Records whose callbacks are queued are the callbacks' to wait for.
		busy, space := p.bufRecords > p.cbRecords || p.callbacksPending(), p.space
		if busy {
			p.spaceWait = true
		}
		p.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-space:
		case <-ctx.Done():
			return classify(ctx.Err())
		}
	}
}

// Close stops accepting records, sends what is buffered, and waits for every
// outcome until ctx ends; records still without one then fail with
// ErrProducerClosed (wrapped in ErrMaybePersisted where they may have been
// sent). A transactional producer first aborts its open transaction, as
// AbortTransaction does (its unsent records fail with
// ErrTransactionAborted), giving it at most WithTransactionTimeout; the
// error says if that failed. All of the producer's goroutines have ended
// when it returns.
func (p *Producer) Close(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		<-p.quit
		return nil
	}
	p.closing = true
	p.mu.Unlock()
	aerr := p.abortOnClose(ctx) // txn.go
	err := classify(errors.Join(aerr, p.Flush(ctx)))
	p.mu.Lock()
	// Fail what is left, in flight included: its responses are ignored.
	for _, ps := range p.parts {
		for _, run := range ps.takePending() {
			for _, pr := range run {
				p.finish(pr, ErrProducerClosed)
			}
		}
		for _, b := range ps.retry {
			p.failBatch(b, ErrProducerClosed)
		}
		ps.retry = nil
	}
	for _, pr := range p.unrouted {
		p.finish(pr, ErrProducerClosed)
	}
	p.unrouted, p.drained = nil, true
	sinks := p.brokers
	p.mu.Unlock()
	close(p.quit)
	p.cancel()
	for _, s := range sinks {
		s.stop()
	}
	p.wg.Wait()
	p.mu.Lock()
	for _, s := range sinks {
		for _, f := range s.abandoned {
			if f.unwritten() {
				f.notWritten()
			}
			for _, b := range f.batches {
				p.failBatch(b, ErrProducerClosed)
			}
		}
	}
	p.mu.Unlock()
	p.stopDelivery()
	return err
}

// finish gives a record its outcome, frees its buffer space and queues its
// callback (run by deliver, outside the lock). p.mu is held.
func (p *Producer) finish(pr pending, err error) {
	err = classify(err)
	if err != nil && p.txn != nil {
		p.txn.recordFailed(err)
	}
	if pr.cb != nil {
		// Counted, and its share of the budget held, until it has run.
		p.queueOutcome(outcome{cb: pr.cb, rec: pr.rec, err: err, size: pr.size, counted: true, charge: p.charge(pr.size)})
		p.signalSpace() // a Flush in a callback waits for outcomes only
		return
	}
	if p.budget != nil {
		p.budget.release(budgetCharge(pr.size))
	}
	p.bufRecords--
	p.bufBytes -= pr.size
	p.signalSpace()
}

// failBatch fails every record of a batch; one that may have been sent is
// reported as maybe persisted. p.mu is held.
func (p *Producer) failBatch(b *batch, err error) {
	p.settle(b)
	if b.maybeSent && !errors.Is(err, ErrMaybePersisted) {
		err = classify(fmt.Errorf("%w: %w", ErrMaybePersisted, err)) // of the cause's class, retriable if none
	}
	for _, pr := range b.recs {
		p.finish(pr, err)
	}
	b.recs = nil
}

// partitionLimit is how many batches of the partition may be in flight:
// with idempotence the broker keeps their order (up to 5); without it a
// retry can reorder them, so one at a time unless the user allowed more
// (WithMaxInFlight). An idempotent partition sends one at a time until its
// first batch under the producer ID and epoch is acknowledged: a leader with
// no state for the ID takes any first sequence, so a batch pipelined behind a
// first one it refused (NOT_LEADER_OR_FOLLOWER from a just-created partition,
// say) would be appended first, and the first would never fit again; one
// with no state for a bumped epoch takes sequence 0 only and refuses the
// batches behind a refused first (see txnManager.setPID). Nil ps gives the
// limit of an acknowledged partition. p.mu is held.
func (p *Producer) partitionLimit(ps *partState) int {
	if p.cfg.idempotent && ps != nil && ps.settled == 0 {
		return 1
	}
	if p.cfg.idempotent || p.cfg.maxInFlightSet {
		return p.cfg.maxInFlight
	}
	return 1
}

// producerConfig holds the producer's options; its defaults are part of
// defaultConfig and its checks part of validate.
type producerConfig struct {
	acks               int16
	linger             time.Duration
	maxBatchBytes      int
	maxInFlight        int
	maxInFlightSet     bool // WithMaxInFlight was given (see partitionLimit)
	compression        Compression
	compressionLevel   int
	produceTimeout     time.Duration
	deliveryTimeout    time.Duration
	maxBufferedRecords int
	maxBufferedBytes   int
	idempotent         bool
	idempotenceSet     bool
	partitioner        Partitioner
	onPartitions       func(topic string, before, after int) // WithOnPartitionsChanged
	avoidPeriod        time.Duration
	txnID              string        // txn.go
	txnIDSet           bool          // WithTransactionalID was given
	txnTimeout         time.Duration // txn.go
}

func defaultProducerConfig() producerConfig {
	return producerConfig{
		acks:               -1,
		linger:             5 * time.Millisecond,
		maxBatchBytes:      1000000,
		maxInFlight:        5,
		produceTimeout:     30 * time.Second,
		deliveryTimeout:    2 * time.Minute,
		maxBufferedRecords: 100000,
		maxBufferedBytes:   64 << 20,
		idempotent:         true,
		avoidPeriod:        10 * time.Second,
		txnTimeout:         time.Minute,
	}
}

func (c *producerConfig) validate() []error {
	var errs []error
	if c.acks != 0 && c.acks != 1 && c.acks != -1 {
		errs = append(errs, fmt.Errorf("acks %d: want AcksNone (0), AcksLeader (1) or AcksAll (-1)", c.acks))
	}
	if c.idempotent && c.acks != -1 {
		if c.idempotenceSet {
			errs = append(errs, fmt.Errorf("idempotence needs acks=-1 (all), not %d", c.acks))
		} else {
			c.idempotent = false // the default follows acks, as in the Java client
		}
	}
	if c.linger < 0 {
		errs = append(errs, fmt.Errorf("negative linger %v", c.linger))
	}
	if c.maxBatchBytes < 512 || c.maxBatchBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("max batch bytes %d: want 512 to 1 GiB", c.maxBatchBytes))
	}
	if c.maxInFlight < 1 || (c.idempotent && c.maxInFlight > 5) {
		errs = append(errs, fmt.Errorf("max in-flight requests %d: want 1 to 5 with idempotence, at least 1 without", c.maxInFlight))
	}
	if err := validCompressionLevel(c.compression, c.compressionLevel); err != nil {
		errs = append(errs, err)
	}
	if c.produceTimeout <= 0 || c.produceTimeout > time.Duration(1<<31-1)*time.Millisecond {
		errs = append(errs, fmt.Errorf("produce timeout %v out of range", c.produceTimeout))
	}
	if c.deliveryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("delivery timeout %v must be positive", c.deliveryTimeout))
	}
	if c.maxBufferedRecords < 1 || c.maxBufferedBytes < c.maxBatchBytes {
		errs = append(errs, fmt.Errorf("buffer limits %d records, %d bytes: want ≥1 record and at least the max batch bytes", c.maxBufferedRecords, c.maxBufferedBytes))
	}
	if c.avoidPeriod < 0 {
		errs = append(errs, fmt.Errorf("negative partition avoidance period %v", c.avoidPeriod))
	}
	errs = append(errs, c.validateTxn()...)
	return errs
}

// Acks is how many replicas must have a record before the broker
// acknowledges it (the Produce request's acks): AcksNone, AcksLeader or
// AcksAll.
type Acks int16

const (
	// AcksAll waits for every in-sync replica (acks=-1 or "all"). The
	// default, and the only setting the idempotent producer allows.
	AcksAll Acks = -1
	// AcksNone gets no response at all (acks=0): a record's outcome is
	// known as soon as its request is written, and its Offset stays unknown
	// (-1).
	AcksNone Acks = 0
	// AcksLeader waits for the partition's leader only (acks=1): a record
	// is lost if the leader fails before a follower copied it.
	AcksLeader Acks = 1
)

// WithAcks sets how many replicas must have a record before the broker
// acknowledges it. Default: AcksAll. Producer option.
func WithAcks(acks Acks) Option {
	return func(c *config) { c.in(scopeProducer, "WithAcks"); c.producer.acks = int16(acks) }
}

// WithLinger sets how long a partition's first record waits for more to
// fill its batch. Default: 5ms. Producer option.
func WithLinger(d time.Duration) Option {
	return func(c *config) { c.in(scopeProducer, "WithLinger"); c.producer.linger = d }
}

// WithMaxBatchBytes caps a batch's size (records before compression); it must
// stay under the broker's message.max.bytes. Default: 1,000,000.
// Producer option.
func WithMaxBatchBytes(n int) Option {
	return func(c *config) { c.in(scopeProducer, "WithMaxBatchBytes"); c.producer.maxBatchBytes = n }
}

// WithMaxInFlight sets how many Produce requests may wait for a response per
// broker (and batches per partition); at most 5 with idempotence. Without
// idempotence a partition has one batch in flight at a time, so that a
// retry cannot reorder its records, unless this option is given: then up to
// n, accepting that risk (as max.in.flight.requests.per.connection does in
// the Java client). Default: 5 (per partition: 5 with idempotence, 1
// without). Producer option.
func WithMaxInFlight(n int) Option {
	return func(c *config) {
		c.in(scopeProducer, "WithMaxInFlight")
		c.producer.maxInFlight, c.producer.maxInFlightSet = n, true
	}
}

// WithCompression compresses batches with the codec at its default level.
// Default: CompressionNone. Producer option.
func WithCompression(codec Compression) Option {
	return func(c *config) {
		c.in(scopeProducer, "WithCompression")
		c.producer.compression, c.producer.compressionLevel = codec, 0
	}
}

// WithCompressionLevel compresses batches with the codec at the level: 1 to 9
// for gzip, 1 to 17 for LZ4 (1 the fast compressor, the higher ones its
// high-compression mode), -131072 to 22 for zstd (negative: the fastest); 0
// is the codec's default, and snappy has no levels. Default: CompressionNone.
// Producer option.
func WithCompressionLevel(codec Compression, level int) Option {
	return func(c *config) {
		c.in(scopeProducer, "WithCompressionLevel")
		c.producer.compression, c.producer.compressionLevel = codec, level
	}
}

// WithProduceTimeout sets the time the broker may take to get the acks
// (a Produce request's TimeoutMs). Default: 30s. Producer option.
func WithProduceTimeout(d time.Duration) Option {
	return func(c *config) { c.in(scopeProducer, "WithProduceTimeout"); c.producer.produceTimeout = d }
}

// WithDeliveryTimeout bounds the time from Produce to a record's outcome,
// retries included. The producer reads the clock once per batch rather than
// per record, so a record may expire up to one sender pass early: at most
// the linger while its partition sends, 100ms while it cannot. Default: 2m.
// Producer option.
func WithDeliveryTimeout(d time.Duration) Option {
	return func(c *config) { c.in(scopeProducer, "WithDeliveryTimeout"); c.producer.deliveryTimeout = d }
}

// WithMaxBufferedRecords caps the records waiting for their outcome; Produce
// blocks when it is reached (backpressure). Default: 100,000. Producer option.
func WithMaxBufferedRecords(n int) Option {
	return func(c *config) { c.in(scopeProducer, "WithMaxBufferedRecords"); c.producer.maxBufferedRecords = n }
}

// WithMaxBufferedBytes caps the bytes (keys, values, headers) waiting for
// their outcome; Produce blocks when it is reached. Default: 64 MiB.
// Producer option.
func WithMaxBufferedBytes(n int) Option {
	return func(c *config) { c.in(scopeProducer, "WithMaxBufferedBytes"); c.producer.maxBufferedBytes = n }
}

// WithIdempotence turns the idempotent producer on or off. On, retries
// never duplicate or reorder records in a partition; it needs acks=-1.
// Default: on when acks is -1 and the broker supports it (Kafka 0.11+);
// before 0.11 the default is off, while WithIdempotence(true) makes every
// record fail with an error that says the broker lacks it. Producer option.
func WithIdempotence(on bool) Option {
	return func(c *config) {
		c.in(scopeProducer, "WithIdempotence")
		c.producer.idempotent, c.producer.idempotenceSet = on, true
	}
}
