package kpax

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// This file holds the API of parallel processing inside a group:
// GroupConsumer.Process, its options, the error policies and the
// dead-letter helpers. The machinery (poll loop, lanes, workers, the
// per-partition progress that bounds commits, the rebalance hooks) lives
// in group_parallel_run.go.

// ProcessOrder says which records Process keeps in order.
type ProcessOrder int8

const (
	// OrderByKey processes the records of one partition that have equal
	// keys one at a time, in offset order, and records of different keys
	// in parallel. Records with a nil key keep the order of their
	// partition. The default.
	OrderByKey ProcessOrder = iota
	// OrderByPartition processes the records of one partition one at a
	// time, in offset order, and partitions in parallel.
	OrderByPartition
)

// ErrorAction is what Process does with a record whose handler returned an
// error: an ErrorPolicy returns one of RetryAfter, SkipRecord and
// StopProcessing.
type ErrorAction struct {
	kind  int8
	after time.Duration
}

const (
	actionStop int8 = iota
	actionRetry
	actionSkip
)

// RetryAfter calls the handler with the record again after d. The record's
// key (or partition, with OrderByPartition) waits meanwhile: order holds.
func RetryAfter(d time.Duration) ErrorAction { return ErrorAction{kind: actionRetry, after: max(d, 0)} }

// SkipRecord counts the record as processed: commits may pass it. Use it
// after the record was saved elsewhere (see DeadLetterPolicy) or when
// losing it is acceptable.
func SkipRecord() ErrorAction { return ErrorAction{kind: actionSkip} }

// StopProcessing makes Process return a *ProcessError wrapping the
// handler's error. Commits never pass the record: a new member starts from
// it.
func StopProcessing() ErrorAction { return ErrorAction{kind: actionStop} }

// An ErrorPolicy decides what happens to a record whose handler failed.
// attempt is how many times the handler failed on it (1 after the first
// failure). It is called on the worker goroutine that ran the handler,
// never under a lock of the client, so it may block (e.g. to write the
// record to a dead-letter topic); ctx ends when Process gives up on the
// records in flight.
type ErrorPolicy func(ctx context.Context, r *Record, err error, attempt int) ErrorAction

// RetryPolicy retries a failed record up to retries times (forever if
// retries <= 0), waiting backoff after the first failure and twice as long
// after each next one, up to maxBackoff; then it leaves the record to then,
// or stops processing if then is nil.
func RetryPolicy(retries int, backoff, maxBackoff time.Duration, then ErrorPolicy) ErrorPolicy {
	return func(ctx context.Context, r *Record, err error, attempt int) ErrorAction {
		if retries <= 0 || attempt <= retries {
			d := backoff << min(attempt-1, 30)
			if d > maxBackoff || d < 0 {
				d = maxBackoff
			}
			return RetryAfter(d)
		}
		if then == nil {
			return StopProcessing()
		}
		return then(ctx, r, err, attempt)
	}
}

// Header keys of the records DeadLetterRecord makes.
const (
	DeadLetterErrorHeader     = "kpax-dlq-error"     // the handler's error text
	DeadLetterTopicHeader     = "kpax-dlq-topic"     // the failed record's topic
	DeadLetterPartitionHeader = "kpax-dlq-partition" // its partition, in decimal
	DeadLetterOffsetHeader    = "kpax-dlq-offset"    // its offset, in decimal
	DeadLetterAttemptsHeader  = "kpax-dlq-attempts"  // how many times the handler failed on it
)

// DeadLetterRecord returns a copy of r for topic, with r's key, value,
// timestamp and headers, followed by headers that say where r came from and
// why it failed (the DeadLetter*Header keys).
func DeadLetterRecord(topic string, r *Record, err error, attempts int) *Record {
	msg := "<nil>"
	if err != nil {
		msg = err.Error()
	}
	hs := make([]Header, 0, len(r.Headers)+5)
	for _, h := range r.Headers {
		hs = append(hs, Header{Key: h.Key, Value: cloneBytes(h.Value)})
	}
	hs = append(hs,
		Header{Key: DeadLetterErrorHeader, Value: []byte(msg)},
		Header{Key: DeadLetterTopicHeader, Value: []byte(r.Topic)},
		Header{Key: DeadLetterPartitionHeader, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		Header{Key: DeadLetterOffsetHeader, Value: strconv.AppendInt(nil, r.Offset, 10)},
		Header{Key: DeadLetterAttemptsHeader, Value: strconv.AppendInt(nil, int64(attempts), 10)})
	return &Record{Topic: topic, Key: cloneBytes(r.Key), Value: cloneBytes(r.Value), Headers: hs, Timestamp: r.Timestamp}
}

// cloneBytes copies b, keeping nil nil.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// DeadLetterPolicy writes a failed record to topic with p (DeadLetterRecord),
// waits for the write to be acknowledged and skips the record. If the write
// fails it stops processing, so that the record is neither lost nor
// committed past. Combine it with RetryPolicy to retry first.
func DeadLetterPolicy(p *Producer, topic string) ErrorPolicy {
	return func(ctx context.Context, r *Record, err error, attempt int) ErrorAction {
		if p == nil || topic == "" {
			return StopProcessing()
		}
		if perr := p.ProduceSync(ctx, DeadLetterRecord(topic, r, err, attempt)); perr != nil {
			return StopProcessing()
		}
		return SkipRecord()
	}
}

// ProcessError is the error Process returns when the error policy stopped
// processing: the record's place, how often the handler failed on it, and
// its last error.
type ProcessError struct {
	Topic     string
	Partition int32
	Offset    int64
	Attempts  int
	Err       error
}

// Error describes the failed record and the handler's error.
func (e *ProcessError) Error() string {
	return fmt.Sprintf("kpax: processing %s[%d]@%d failed after %d attempts: %v", e.Topic, e.Partition, e.Offset, e.Attempts, e.Err)
}

// Unwrap returns the handler's error.
func (e *ProcessError) Unwrap() error { return e.Err }

// Is reports whether target is ErrAbortable where the handler's error has
// no class of its own; errors.Is finds its class in it otherwise.
func (e *ProcessError) Is(target error) bool { return defaultClassIs(e, target, e.Err) }

// A ProcessOption configures one call of GroupConsumer.Process.
type ProcessOption func(*processConfig)

// processConfig holds Process's options; defaultProcessConfig and
// validate are its only constructor and check.
type processConfig struct {
	concurrency int
	maxInFlight int
	order       ProcessOrder
	onError     ErrorPolicy
	drain       time.Duration
	fetchErrors func(error)
}

func defaultProcessConfig(rebalance time.Duration) processConfig {
	return processConfig{
		concurrency: 16,
		maxInFlight: 1024,
		order:       OrderByKey,
		onError:     RetryPolicy(3, 100*time.Millisecond, 2*time.Second, nil),
		drain:       rebalance / 2,
	}
}

func (c *processConfig) validate() error {
	var errs []error
	if c.concurrency < 1 || c.concurrency > 1<<16 {
		errs = append(errs, fmt.Errorf("concurrency %d: want 1 to 65536", c.concurrency))
	}
	if c.maxInFlight < 1 || c.maxInFlight > 1<<24 {
		errs = append(errs, fmt.Errorf("max in flight %d: want 1 to 16777216", c.maxInFlight))
	}
	if c.order != OrderByKey && c.order != OrderByPartition {
		errs = append(errs, fmt.Errorf("unknown process order %d", c.order))
	}
	if c.onError == nil {
		errs = append(errs, errors.New("nil error policy"))
	}
	if c.drain < 0 {
		errs = append(errs, fmt.Errorf("negative drain timeout %v", c.drain))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kpax: bad process options: %w", err)
	}
	return nil
}

// WithProcessConcurrency sets how many handler calls run at once at most.
// Default: 16.
func WithProcessConcurrency(n int) ProcessOption { return func(c *processConfig) { c.concurrency = n } }

// WithProcessMaxInFlight bounds the records taken from the consumer and not
// yet done with (waiting for their key, or in the handler). When it is
// reached Process stops polling, the consumer's fetch buffer fills
// (WithFetchBufferBytes) and fetching pauses: no queue grows without bound.
// The records of one Poll are registered at once, so the bound is exceeded
// by at most one Poll's records, which wait in the consumer's buffer, not
// copied. Default: 1024.
func WithProcessMaxInFlight(n int) ProcessOption { return func(c *processConfig) { c.maxInFlight = n } }

// WithProcessOrder sets which records are processed in order. Default:
// OrderByKey.
func WithProcessOrder(o ProcessOrder) ProcessOption { return func(c *processConfig) { c.order = o } }

// WithProcessErrorPolicy sets what happens to a record whose handler
// failed. Default: RetryPolicy(3, 100*time.Millisecond, 2*time.Second, nil):
// three retries, then Process stops.
func WithProcessErrorPolicy(p ErrorPolicy) ProcessOption {
	return func(c *processConfig) { c.onError = p }
}

// WithProcessDrainTimeout sets how long a revocation (and the end of
// Process) waits for the records in flight of the partitions it gives up
// before it commits what is done and drops the rest (a later owner
// processes them again). Default: half the group's rebalance timeout.
func WithProcessDrainTimeout(d time.Duration) ProcessOption {
	return func(c *processConfig) { c.drain = d }
}

// WithProcessFetchErrors sets a function called with the problems Poll
// reports (Fetch.Errors: *PartitionError and *GroupError values the client
// keeps retrying). It runs on Process's polling goroutine, never under a
// lock. Default: they are logged at Warn level.
func WithProcessFetchErrors(f func(error)) ProcessOption {
	return func(c *processConfig) { c.fetchErrors = f }
}

// ErrProcessStarted is returned by Process on a GroupConsumer that Process
// already ran on.
var ErrProcessStarted = classedValue(ClassAbortable, "kpax: Process already called on this group consumer")

// Process consumes the member's share of the group's partitions and calls h
// for each record, from up to WithProcessConcurrency goroutines at once:
// records of one key (WithProcessOrder: or of one partition) one at a time
// in offset order, the others in parallel. It returns when ctx ends (nil),
// when the error policy stops it (a *ProcessError), or on a fatal error
// of the group or its client; Process runs at most once per GroupConsumer,
// which should be closed after it returns.
//
// h must not keep r or the slices it refers to after it returns, and must
// return when its ctx ends. Process's ctx ending lets the records in flight
// finish (up to WithProcessDrainTimeout), commits, and returns.
//
// Commits, whatever their kind (automatic, Commit, on revocation, on
// Close), cover only each partition's highest contiguous processed offset:
// a record still in the handler, waiting, retried or failed is never
// committed past. Delivery is at least once: after a crash, a member's
// records processed since its last commit are processed again elsewhere.
// A revocation drops the revoked partitions' records not yet started
// that no started one follows (their next owner processes them), waits
// for the others (up to WithProcessDrainTimeout) and then commits their
// progress; the records of a lost partition are not committed. A record
// whose key is busy holds its partition's other keys to at most
// WithProcessMaxInFlight records past it, so a rebalance or crash
// processes few records again however far one key lags. Do not call Poll
// while Process runs.
func (g *GroupConsumer) Process(ctx context.Context, h func(ctx context.Context, r *Record) error, opts ...ProcessOption) error {
	if h == nil {
		return errors.New("kpax: Process: nil handler")
	}
	cfg := defaultProcessConfig(g.cfg.rebalance)
	for _, o := range opts {
		if o == nil {
			return errors.New("kpax: bad process options: nil ProcessOption")
		}
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	p := newProcessor(g, cfg, h)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrConsumerClosed
	}
	if !g.proc.CompareAndSwap(nil, p) {
		g.mu.Unlock()
		return ErrProcessStarted
	}
	owned := g.ownedList()
	g.mu.Unlock()
	p.assigned(owned)
	return p.run(ctx)
}
