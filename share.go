package kpax

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// This file holds the share consumer (share groups, KIP-932, Kafka 4.1+):
// its API, options, Poll, acknowledgements and Close. Membership
// (ShareGroupHeartbeat) lives in share_member.go, the share sessions with
// the partition leaders (ShareFetch, ShareAcknowledge) in share_session.go.

// AckType is how a share consumer settles a record it was given (see
// ShareConsumer.Acknowledge).
type AckType int8

const (
	// AckAccept: the record was processed; it is never delivered again.
	AckAccept AckType = 1
	// AckRelease: give the record back; it is delivered again (to this
	// consumer or another), with a delivery count one higher, until the
	// group's delivery count limit (group.share.delivery.count.limit, 5 by
	// default) makes the broker archive it.
	AckRelease AckType = 2
	// AckReject: the record cannot be processed; it is never delivered again.
	AckReject AckType = 3
)

// ackGap settles an acquired offset that holds no record for the consumer
// (a transaction marker, a compacted record).
const ackGap = 0

// String returns "accept", "release", "reject" or "AckType(N)".
func (t AckType) String() string {
	switch t {
	case AckAccept:
		return "accept"
	case AckRelease:
		return "release"
	case AckReject:
		return "reject"
	}
	return fmt.Sprintf("AckType(%d)", int8(t))
}

// ShareAckMode says what happens to the records of a Poll that the
// application did not acknowledge (WithShareAckMode).
type ShareAckMode int8

const (
	// ShareAckImplicit, the default (Java's implicit mode): the next Poll,
	// and Close, accept every record of the previous Poll that was not
	// acknowledged; Acknowledge may still release or reject some before.
	ShareAckImplicit ShareAckMode = iota
	// ShareAckExplicit: the application acknowledges every record; Poll
	// returns ErrShareUnacknowledged while records of an earlier Poll are
	// not, and Close gives them back to the group (released by the broker
	// when the share sessions close).
	ShareAckExplicit
)

var (
	// ErrShareUnacknowledged is returned by Poll in ShareAckExplicit mode
	// while records of an earlier Poll are not acknowledged.
	ErrShareUnacknowledged = classedValue(ClassAbortable, "kpax: share consumer: records of an earlier Poll are not acknowledged (explicit acknowledgement mode)")
	// ErrShareAcknowledged is matched (errors.Is) by the error of
	// Acknowledge for a record already acknowledged (or settled by an
	// implicit acceptance).
	ErrShareAcknowledged = classedValue(ClassAbortable, "kpax: share record already acknowledged")
	// ErrShareForeignRecord is matched by the error of Acknowledge for a
	// record that this share consumer did not deliver.
	ErrShareForeignRecord = classedValue(ClassAbortable, "kpax: share record not delivered by this share consumer")
	// ErrShareAckFailed is matched by the error (a *PartitionError) that
	// reports acknowledgements the broker did not apply: the records are
	// delivered again (e.g. after their acquisition lock timed out, or when
	// a share session was lost), so nothing is lost, but processing may
	// repeat. When the error also matches ErrMaybePersisted, the request
	// reached the broker (or may have) and no answer came back, e.g. the
	// broker died: the broker may have applied the acknowledgements, and
	// then those records are not delivered again.
	ErrShareAckFailed = errors.New("kpax: share acknowledgement failed")
)

// ShareAcquireMode is how a broker bounds the records one ShareFetch
// acquires for the consumer (WithShareAcquireMode; KIP-1206, Java's
// share.acquire.mode).
type ShareAcquireMode int8

const (
	// ShareAcquireBatchOptimized, the default (Java's batch_optimized): the
	// broker acquires whole record batches, so one fetch may bring more
	// than WithShareMaxRecords, and a topic written in a few big batches
	// goes to few consumers at a time.
	ShareAcquireBatchOptimized ShareAcquireMode = 0
	// ShareAcquireRecordLimit (Java's record_limit): the broker acquires
	// at most WithShareMaxRecords records per fetch, splitting batches, so
	// that the records spread over the consumers. It needs ShareFetch v2
	// (Kafka 4.2+): as in Java, a fetch from a broker with older versions
	// is not sent, and Poll reports an error matching ErrUnsupportedVersion
	// for it.
	ShareAcquireRecordLimit ShareAcquireMode = 1
)

// String returns "batch_optimized", "record_limit" or "ShareAcquireMode(N)".
func (m ShareAcquireMode) String() string {
	switch m {
	case ShareAcquireBatchOptimized:
		return "batch_optimized"
	case ShareAcquireRecordLimit:
		return "record_limit"
	}
	return fmt.Sprintf("ShareAcquireMode(%d)", int8(m))
}

// shareConfig holds the share consumer's options; its defaults are part
// of defaultConfig and its checks part of validate.
type shareConfig struct {
	ackMode     ShareAckMode
	acquireMode ShareAcquireMode
	maxRecords  int32
}

func defaultShareConfig() shareConfig {
	return shareConfig{ackMode: ShareAckImplicit, acquireMode: ShareAcquireBatchOptimized, maxRecords: 500}
}

func (c *shareConfig) validate() []error {
	var errs []error
	if c.ackMode != ShareAckImplicit && c.ackMode != ShareAckExplicit {
		errs = append(errs, fmt.Errorf("unknown share acknowledgement mode %d", c.ackMode))
	}
	if c.acquireMode != ShareAcquireBatchOptimized && c.acquireMode != ShareAcquireRecordLimit {
		errs = append(errs, fmt.Errorf("unknown share acquire mode %d", c.acquireMode))
	}
	if c.maxRecords <= 0 {
		errs = append(errs, fmt.Errorf("share max records %d must be positive", c.maxRecords))
	}
	return errs
}

// WithShareAckMode sets what happens to records the application does not
// acknowledge (see ShareAckMode). Default: ShareAckImplicit. Share option.
func WithShareAckMode(m ShareAckMode) Option {
	return func(c *config) { c.in(scopeShare, "WithShareAckMode"); c.share.ackMode = m }
}

// WithShareAcquireMode sets how the brokers bound the records one fetch
// acquires (see ShareAcquireMode). Default: ShareAcquireBatchOptimized.
// Share option.
func WithShareAcquireMode(m ShareAcquireMode) Option {
	return func(c *config) { c.in(scopeShare, "WithShareAcquireMode"); c.share.acquireMode = m }
}

// WithShareMaxRecords bounds the records one ShareFetch acquires from a
// broker (Java's max.poll.records): ShareFetch's MaxRecords, and its
// BatchSize, the size of the acquired batches the broker aims at. The
// broker may exceed it to keep a batch whole, unless the acquire mode is
// ShareAcquireRecordLimit (WithShareAcquireMode). Default: 500. Share
// option.
func WithShareMaxRecords(n int) Option {
	return func(c *config) {
		c.in(scopeShare, "WithShareMaxRecords")
		c.share.maxRecords = int32(min(max(n, -1), 1<<31-1))
	}
}

// ShareRecord is a record delivered to a share consumer: it is acquired
// by this consumer (locked against delivery to others) until it is
// acknowledged or the acquisition lock times out.
type ShareRecord struct {
	Record
	// DeliveryCount is how many times the record has been delivered,
	// counting this delivery: 1 the first time, 2 after a release or a
	// lock timeout, ...
	DeliveryCount int16
	// LockedUntil is when the broker's acquisition lock on the record runs
	// out (from the time the ShareFetch was sent; ShareConsumer.Renew
	// moves it): after it, the record may go to another consumer and
	// acknowledging it fails.
	LockedUntil time.Time

	part *sharePart // nil for a record this package did not deliver
	idx  int32      // the record's offset - part.first
}

// ShareFetch is what one ShareConsumer.Poll returns: records and the
// errors met, each a *PartitionError (a fetch error of the partition, or
// ErrShareAckFailed for acknowledgements) or a *GroupError.
type ShareFetch struct {
	Records []ShareRecord
	Errors  []error
}

// sharePart is the records one Poll delivered from one partition: the
// acknowledgement state of each offset from first (see the ack* states).
type sharePart struct {
	owner *ShareConsumer
	tp    topicPartition
	id    UUID
	node  int32
	first int64
	acks  []int8
}

// States of an offset in sharePart.acks besides AckType values (and ackGap):
// not for us, delivered and waiting, and sent (ackSent + the type).
const (
	ackNone    = -2
	ackPending = -1
	ackSent    = 8
)

// ShareConsumer is a member of a share group (KIP-932, Kafka 4.1+): the
// members read the same partitions, the brokers give each record to one of
// them at a time, and each record is acknowledged one by one (accept,
// release, reject). Membership heartbeats run on the consumer's own
// goroutine; Poll fetches from the partitions' leaders, sending the
// acknowledgements made since the last one along. Poll and Commit are meant
// for one goroutine; Acknowledge is safe for concurrent use, and so is
// Close: a Poll in progress then returns ErrConsumerClosed (within the fetch
// max wait), giving back the records it was fetching.
//
// Where a share group starts reading a partition is a group config
// (share.auto.offset.reset, "latest" by default: records written before the
// group first fetches are not delivered); Admin.AlterConfigs with a
// ConfigGroup resource changes it, as it does the acquisition lock
// (share.record.lock.duration.ms).
type ShareConsumer struct {
	cl     *Client
	conf   config
	cfg    shareConfig
	group  string
	topics []string
	member string

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	io       sync.Mutex              // held by Poll, Commit and Close while they use the sessions
	sessions map[int32]*shareSession // by node; share_session.go

	mu       sync.Mutex
	epoch    int32
	assigned map[topicPartition]UUID
	wake     chan struct{} // closed and replaced when the assignment changes or a fatal error comes
	parts    []*sharePart  // delivered records not all settled and sent
	errs     []error       // group errors for the next Poll
	fatal    error
	closing  bool // Close was called: a waiting Poll returns
	closed   bool
	backoff  bool // the last fetch round brought errors only: wait before the next
}

// NewShareConsumer joins the share group and consumes the topics. It is
// configured by the share options given to New, overridden by opts, which
// must be share options (WithShareAckMode, WithShareAcquireMode,
// WithShareMaxRecords) or the fetch options WithFetchMaxWait,
// WithFetchMinBytes and WithFetchMaxBytes; any other option is an error
// (see Option). The brokers must have share groups enabled (Kafka 4.1+
// with the share.version feature; on by default from 4.2); otherwise Poll
// returns an error that says so. Close it to leave the group.
func (cl *Client) NewShareConsumer(group string, topics []string, opts ...Option) (*ShareConsumer, error) {
	cfg, err := applyOptionsFor(cl.cfg, opts, scopeShare)
	if err != nil {
		return nil, err
	}
	if group == "" || len(group) > 32767 {
		return nil, errors.New("kpax: NewShareConsumer: the group ID must be 1 to 32767 bytes")
	}
	ts := slices.Clone(topics)
	slices.Sort(ts)
	ts = slices.Compact(ts)
	if len(ts) == 0 || slices.Contains(ts, "") {
		return nil, errors.New("kpax: NewShareConsumer: no topics, or an empty topic name")
	}
	if cl.isClosed() {
		return nil, ErrClientClosed
	}
	var id [16]byte
	rand.Read(id[:])
	s := &ShareConsumer{
		cl: cl, conf: cfg, cfg: cfg.share, group: group, topics: ts,
		member:   base64.RawURLEncoding.EncodeToString(id[:]),
		sessions: map[int32]*shareSession{}, assigned: map[topicPartition]UUID{}, wake: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(cl.ctx)
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// MemberID returns the member ID the consumer generated for itself.
func (s *ShareConsumer) MemberID() string { return s.member }

// Assigned returns the partitions the coordinator assigned to the member,
// by topic, sorted.
func (s *ShareConsumer) Assigned() map[string][]int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]int32{}
	for tp := range s.assigned {
		out[tp.topic] = append(out[tp.topic], tp.partition)
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}

// Acknowledge settles a record that Poll returned: AckAccept, AckRelease
// or AckReject. It is sent with the next Poll (or Commit, or Close). A
// record acknowledged twice (also one already accepted implicitly), one
// that another consumer delivered, a bad type and a closed consumer are
// errors; nothing is sent for them.
func (s *ShareConsumer) Acknowledge(r *ShareRecord, t AckType) error {
	if r == nil {
		return errors.New("kpax: Acknowledge: nil record")
	}
	if t != AckAccept && t != AckRelease && t != AckReject {
		return fmt.Errorf("kpax: Acknowledge: bad acknowledgement type %v", t)
	}
	if r.part == nil || r.part.owner != s || r.idx < 0 || int(r.idx) >= len(r.part.acks) {
		return fmt.Errorf("%w: %s/%d offset %d", ErrShareForeignRecord, r.Topic, r.Partition, r.Offset)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrConsumerClosed
	}
	if st := r.part.acks[r.idx]; st != ackPending {
		return fmt.Errorf("%w: %s/%d offset %d", ErrShareAcknowledged, r.Topic, r.Partition, r.Offset)
	}
	r.part.acks[r.idx] = int8(t)
	return nil
}

// Poll sends the acknowledgements made since the last call, then waits
// until records or errors are ready, or ctx ends, and returns them. In
// ShareAckImplicit mode it first accepts the records of the previous Poll
// that were not acknowledged. A fatal group error (no share groups on the
// broker, authorization) is Poll's error.
func (s *ShareConsumer) Poll(ctx context.Context) (ShareFetch, error) {
	if ctx == nil {
		return ShareFetch{}, errNilContext
	}
	s.io.Lock()
	defer s.io.Unlock()
	if err := s.settlePolled(); err != nil {
		return ShareFetch{}, err
	}
	for {
		s.mu.Lock()
		closed, closing, fatal, wake, errs := s.closed, s.closing, s.fatal, s.wake, s.errs
		s.errs = nil
		assigned := len(s.assigned) > 0
		s.mu.Unlock()
		switch {
		case closed || closing:
			return ShareFetch{}, ErrConsumerClosed
		case fatal != nil:
			return ShareFetch{Errors: errs}, fatal
		case len(errs) > 0:
			return ShareFetch{Errors: errs}, nil
		}
		if !assigned {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return ShareFetch{}, ctx.Err()
			}
		}
		if s.backoff && !sleep(ctx, s.conf.retryBackoff) {
			return ShareFetch{}, ctx.Err()
		}
		f := s.fetchRound()
		s.backoff = len(f.Records) == 0 && len(f.Errors) > 0
		if s.releaseIfClosing(f.Records) {
			return ShareFetch{}, ErrConsumerClosed
		}
		if len(f.Records) > 0 || len(f.Errors) > 0 {
			return f, nil
		}
		if err := ctx.Err(); err != nil {
			return ShareFetch{}, err
		}
		if s.cl.isClosed() {
			return ShareFetch{}, ErrClientClosed
		}
	}
}

// releaseIfClosing gives recs back to the group when Close was called
// while they were fetched: the application never sees them.
func (s *ShareConsumer) releaseIfClosing(recs []ShareRecord) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		return false
	}
	for i := range recs {
		if r := &recs[i]; r.part.acks[r.idx] == ackPending {
			r.part.acks[r.idx] = int8(AckRelease)
		}
	}
	return true
}

// settlePolled ends the previous Poll's turn: implicitly accepts what it
// left pending, or, in explicit mode, refuses to go on while records are.
func (s *ShareConsumer) settlePolled() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.parts {
		for i, st := range p.acks {
			if st != ackPending {
				continue
			}
			if s.cfg.ackMode == ShareAckExplicit {
				return ErrShareUnacknowledged
			}
			p.acks[i] = int8(AckAccept)
		}
	}
	return nil
}

// Commit sends the acknowledgements made since the last Poll (or Commit)
// now, with ShareAcknowledge, and returns the failures, each a
// *PartitionError matching ErrShareAckFailed. Poll sends them anyway; Commit
// is for an application that must know they were applied.
func (s *ShareConsumer) Commit(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	s.io.Lock()
	defer s.io.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrConsumerClosed
	}
	return errors.Join(s.acknowledgeAll(ctx, false, nil)...)
}

// Close leaves the share group: in ShareAckImplicit mode it accepts the
// records of the last Poll that were not acknowledged, sends every pending
// acknowledgement and closes the share sessions (the broker gives the
// records still acquired back to the group), stops the heartbeats and
// tells the coordinator the member leaves. It returns within ctx, with the
// acknowledgement failures; what is left undone then is settled by the
// brokers' timeouts (acquisition lock, session timeout).
func (s *ShareConsumer) Close(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	s.mu.Lock()
	s.closing = true // a Poll waiting for an assignment returns, and lets go of s.io
	s.wakeLocked()
	s.mu.Unlock()
	s.io.Lock()
	defer s.io.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	if s.cfg.ackMode == ShareAckImplicit {
		for _, p := range s.parts {
			for i, st := range p.acks {
				if st == ackPending {
					p.acks[i] = int8(AckAccept)
				}
			}
		}
	}
	s.closed = true
	s.mu.Unlock()
	errs := s.acknowledgeAll(ctx, true, nil)
	s.cancel()
	s.wg.Wait()
	if err := s.leave(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// report queues a group error for the next Poll; s.mu is held.
func (s *ShareConsumer) report(err error) {
	if len(s.errs) < 100 {
		s.errs = append(s.errs, err)
	}
}

// wakeLocked wakes a Poll waiting for an assignment; s.mu is held.
func (s *ShareConsumer) wakeLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}
