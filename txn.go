package kpax

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Transactions (KIP-98). Transaction version 1: a producer with a
// transactional ID gets its producer ID from the transaction coordinator
// (InitProducerId, which fences older instances with the same ID), adds each
// partition to the open transaction before its first batch is written
// (AddPartitionsToTxn, from the sender through txnManager.writable), adds
// consumer offsets (AddOffsetsToTxn + TxnOffsetCommit, txn_group.go) and
// ends it (EndTxn).
//
// Transaction version 2 (KIP-890 part 2), chosen at each BeginTransaction
// where the coordinator reports the transaction.version feature finalized at
// 2 (chooseVersion): Produce v12 and TxnOffsetCommit v5 add their partition
// to the transaction at the broker (no AddPartitionsToTxn, no
// AddOffsetsToTxn), and EndTxn v5 bumps the producer epoch at the end of
// every transaction, returning the new one, which the producer adopts
// (sequence numbers start over). An abort's epoch bump then comes with the
// abort itself.

// Errors of the transactional API. Each is of the abortable class: the call
// did nothing and the producer is still usable.
var (
	// ErrNotTransactional is the error of a transaction call on a producer
	// without WithTransactionalID.
	ErrNotTransactional = classedValue(ClassAbortable, "kpax: the producer has no transactional ID")
	// ErrNoTransaction is the error of Produce on a transactional producer
	// outside a transaction, and of committing or aborting without one;
	// the record is not queued.
	ErrNoTransaction = classedValue(ClassAbortable, "kpax: no transaction is open")
	// ErrTransactionOpen is the error of BeginTransaction while a
	// transaction is open.
	ErrTransactionOpen = classedValue(ClassAbortable, "kpax: a transaction is already open")
	// ErrTransactionBusy is the error of a transaction call while another
	// one (begin, commit, abort, sending offsets) runs.
	ErrTransactionBusy = classedValue(ClassAbortable, "kpax: another transaction call is in progress")
	// ErrTransactionAborted wraps the error of records that were not written
	// because their transaction failed or was aborted, and the error of a
	// commit that found the transaction aborted (by the caller's earlier
	// failure, or by the broker after the transaction timeout).
	ErrTransactionAborted = classedValue(ClassAbortable, "kpax: the transaction was aborted")
)

// WithTransactionalID makes the producer transactional: records are
// produced inside transactions (BeginTransaction, CommitTransaction,
// AbortTransaction), and a new producer with the same ID fences this one
// (the old one's next call fails with an error of ClassFatal). The ID
// should be stable across restarts of the same logical producer. It
// implies idempotence. Close aborts an open transaction (as the Java
// client does); a producer that ends without Close leaves it to the
// coordinator, which aborts it after the transaction timeout, or at once
// when the next producer with the ID begins. Default: none.
func WithTransactionalID(id string) Option {
	return func(c *config) {
		c.in(scopeProducer, "WithTransactionalID")
		c.producer.txnID, c.producer.txnIDSet = id, true
	}
}

// WithTransactionTimeout sets how long the coordinator lets a transaction
// stay open before it aborts it; the broker caps it with
// transaction.max.timeout.ms (15 minutes by default). Default: 60s.
func WithTransactionTimeout(d time.Duration) Option {
	return func(c *config) { c.in(scopeProducer, "WithTransactionTimeout"); c.producer.txnTimeout = d }
}

// validateTxn checks the transactional options; part of producerConfig.validate.
func (c *producerConfig) validateTxn() []error {
	var errs []error
	if c.txnTimeout < time.Millisecond || c.txnTimeout > time.Duration(math.MaxInt32)*time.Millisecond {
		errs = append(errs, fmt.Errorf("transaction timeout %v out of range", c.txnTimeout))
	}
	if !c.txnIDSet {
		return errs
	}
	if c.txnID == "" || len(c.txnID) > math.MaxInt16 {
		errs = append(errs, errors.New("transactional ID must be 1 to 32767 bytes"))
	}
	if c.idempotenceSet && !c.idempotent || c.acks != -1 {
		errs = append(errs, errors.New("a transactional producer needs idempotence and acks=-1 (all)"))
	}
	c.idempotent = true
	return errs
}

// txnProduceMaxVersion is the newest Produce version of a transaction of
// version 1 (v12+ is version 2's implicit add, KIP-890).
const txnProduceMaxVersion = 11

// produceMaxVersion caps the version of the open transaction's Produce
// requests. p.mu is held.
func (tm *txnManager) produceMaxVersion() int16 {
	if tm.v2 {
		return txnV2Version(&ProduceRequest{})
	}
	return txnProduceMaxVersion
}

type txnPhase int8

const (
	txnUninit txnPhase = iota // no producer ID yet
	txnReady                  // between transactions
	txnOpen                   // records may be produced
	txnEnding                 // a commit or abort runs: Produce refused, the transaction's records still sent
	txnFatal                  // unusable
)

// txnManager is a transactional producer's state. Its fields are guarded by
// the producer's mu; the calls that talk to the coordinator run without it,
// one at a time (busy).
type txnManager struct {
	p         *Producer
	id        string
	timeoutMs int32

	phase    txnPhase
	busy     bool
	failed   error // why the open transaction cannot commit (abortable)
	fatal    error
	epochErr bool // a produce was refused for its epoch: ask the coordinator before ending
	aborted  bool // the coordinator already aborted the open transaction
	needBump bool // batches may have failed in doubt: bump the epoch after the abort
	v2       bool // transaction version 2 (KIP-890), chosen at Begin
	bumped   bool // EndTxn v5 bumped the epoch (TV2)

	added  map[topicPartition]bool // in the coordinator's transaction
	want   map[topicPartition]bool // waiting for AddPartitionsToTxn
	adding bool                    // an AddPartitionsToTxn loop runs
	groups map[string]bool         // added with AddOffsetsToTxn
}

func newTxnManager(p *Producer) *txnManager {
	return &txnManager{p: p, id: p.cfg.txnID, timeoutMs: int32(p.cfg.txnTimeout / time.Millisecond),
		added: map[topicPartition]bool{}, want: map[topicPartition]bool{}, groups: map[string]bool{}}
}

// admit reports whether Produce may queue a record. p.mu is held.
func (tm *txnManager) admit() error {
	switch {
	case tm.fatal != nil:
		return tm.fatal
	case tm.phase == txnEnding:
		return withClass(ClassAbortable, fmt.Errorf("%w: the transaction is being committed or aborted", ErrNoTransaction))
	case tm.phase != txnOpen:
		return withClass(ClassAbortable, ErrNoTransaction)
	case tm.failed != nil:
		return withClass(ClassAbortable, fmt.Errorf("%w: %w", ErrTransactionAborted, tm.failed))
	}
	return nil
}

// recordFailed takes the failure of a record of the open transaction: the
// transaction can no longer commit. p.mu is held.
func (tm *txnManager) recordFailed(err error) {
	if tm.failed == nil && !errors.Is(err, ErrTransactionAborted) {
		tm.failed = err
		tm.needBump = true
	}
}

// writable reports whether a partition's records may be written now: the
// partition is in the transaction. Otherwise it asks the coordinator to
// add it (the sender is poked when that is done), or, once the
// transaction has failed, fails the partition's queued records. p.mu is
// held.
func (tm *txnManager) writable(ps *partState) bool {
	if err := tm.stopErr(); err != nil {
		tm.p.dropQueued(ps, err)
		return false
	}
	if tm.added[ps.tp] {
		return true
	}
	if tm.v2 {
		tm.added[ps.tp] = true // the partition leader adds it (Produce v12)
		return true
	}
	tm.want[ps.tp] = true
	if !tm.adding {
		tm.adding = true
		tm.p.wg.Add(1)
		go tm.addLoop()
	}
	return false
}

// stopErr is the error that queued records of the transaction fail with,
// once it cannot commit. p.mu is held.
func (tm *txnManager) stopErr() error {
	if tm.fatal != nil {
		return tm.fatal
	}
	if tm.failed != nil {
		return withClass(ClassAbortable, fmt.Errorf("%w: %w", ErrTransactionAborted, tm.failed))
	}
	return nil
}

// dropQueued fails a partition's records that were not sent, and its
// batches waiting for a retry. p.mu is held.
func (p *Producer) dropQueued(ps *partState, err error) {
	for _, run := range ps.takePending() {
		for _, pr := range run {
			p.finish(pr, err)
		}
	}
	for _, b := range ps.retry {
		if p.txn != nil && b.seq >= 0 {
			p.txn.needBump = true // its sequence numbers are lost
		}
		p.failBatch(b, err)
	}
	ps.retry = nil
}

// setFatal makes the producer unusable. p.mu is held.
func (tm *txnManager) setFatal(err error) error {
	if tm.fatal == nil {
		tm.fatal = withClass(ClassFatal, err)
		tm.phase = txnFatal
		tm.p.poke() // the sender fails what is queued
	}
	return tm.fatal
}

// produceFailed takes a transactional error code of a produce response;
// it reports whether it handled (failed) the batch. p.mu is held.
func (tm *txnManager) produceFailed(b *batch, kerr error) bool {
	tp := b.ps.tp
	perr := &PartitionError{Topic: tp.topic, Partition: tp.partition, Err: kerr}
	switch {
	case errors.Is(kerr, ErrProducerFenced), errors.Is(kerr, ErrTransactionalIdAuthorizationFailed):
		tm.p.failBatch(b, tm.setFatal(perr))
	case errors.Is(kerr, ErrInvalidProducerEpoch):
		// Fenced by a newer producer, or the coordinator aborted the
		// transaction after its timeout: the coordinator says which when
		// the transaction ends.
		tm.epochErr = true
		tm.p.failBatch(b, withClass(ClassAbortable, perr))
	case errors.Is(kerr, ErrUnknownProducerId), errors.Is(kerr, ErrOutOfOrderSequenceNumber),
		errors.Is(kerr, ErrInvalidTxnState), errors.Is(kerr, ErrInvalidProducerIdMapping),
		errors.Is(kerr, ErrTransactionAbortable):
		tm.p.failBatch(b, withClass(ClassAbortable, perr))
	default:
		return false
	}
	return true
}

// BeginTransaction opens a transaction: records produced until
// CommitTransaction or AbortTransaction belong to it. The first call gets
// the producer ID from the transaction coordinator (InitProducerId), which
// fences any older producer with the same transactional ID and aborts its
// open transaction. Each call picks the transaction's version: 2 (KIP-890)
// where the coordinator reports the transaction.version feature finalized
// at 2 (Kafka 4's default), 1 otherwise or where WithMaxVersion keeps
// Produce below v12, EndTxn below v5 or TxnOffsetCommit below v5.
// Beginning while a transaction is open is an error (ErrTransactionOpen).
func (p *Producer) BeginTransaction(ctx context.Context) (err error) {
	defer func() { err = classify(err) }()
	tm, err := p.txnCall()
	if err != nil {
		return err
	}
	defer p.txnDone()
	p.mu.Lock()
	phase := tm.phase
	p.mu.Unlock()
	switch phase {
	case txnOpen, txnEnding:
		return withClass(ClassAbortable, ErrTransactionOpen)
	case txnUninit:
		if err := tm.initPID(ctx, false); err != nil {
			return err
		}
	}
	tm.chooseVersion(ctx)
	p.mu.Lock()
	tm.phase, tm.failed, tm.epochErr, tm.aborted = txnOpen, nil, false, false
	p.mu.Unlock()
	return nil
}

// txnCall starts a transaction call: the producer must be transactional,
// usable and not in another call. p.mu is not held.
func (p *Producer) txnCall() (*txnManager, error) {
	tm := p.txn
	if tm == nil {
		return nil, withClass(ClassAbortable, ErrNotTransactional)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closing:
		return nil, ErrProducerClosed
	case tm.fatal != nil:
		return nil, tm.fatal
	case tm.busy:
		return nil, withClass(ClassAbortable, ErrTransactionBusy)
	}
	tm.busy = true
	return tm, nil
}

func (p *Producer) txnDone() {
	p.mu.Lock()
	p.txn.busy = false
	p.mu.Unlock()
}

// CommitTransaction sends every record of the open transaction, waits for
// their outcomes, and commits it: its records (and consumer offsets sent
// with SendOffsetsToTransaction) become visible to read_committed
// consumers, all together. Produce is refused while it runs.
//
// If a record failed, or the coordinator aborted the transaction (it
// outlived WithTransactionTimeout), it commits nothing and returns an
// error of ClassAbortable: call AbortTransaction, then begin again. An
// error of ClassFatal (ErrProducerFenced: a newer producer has the ID)
// leaves the producer unusable. If ctx ends first, the transaction stays
// open: commit or abort it again.
func (p *Producer) CommitTransaction(ctx context.Context) (err error) {
	defer func() { err = classify(err) }()
	tm, err := p.txnCall()
	if err != nil {
		return err
	}
	defer p.txnDone()
	if err := tm.startEnd(); err != nil {
		return err
	}
	if err := p.Flush(ctx); err != nil {
		tm.reopen()
		return err
	}
	p.mu.Lock()
	failed, epochErr := tm.failed, tm.epochErr
	p.mu.Unlock()
	if epochErr {
		// Fenced (fatal) or aborted by the coordinator: ask it which.
		if err := tm.recoverEpoch(ctx); failed == nil || ClassOf(err) == ClassFatal {
			failed = err
		}
	}
	if failed == nil {
		failed = tm.endTxn(ctx, true)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case tm.fatal != nil:
		return tm.fatal
	case failed == nil:
		tm.reset()
		return nil
	case ClassOf(failed) == ClassRetriable && ctx.Err() != nil:
		tm.phase = txnOpen // try again
		return failed
	}
	tm.phase = txnOpen
	if tm.failed == nil {
		tm.failed = failed
	}
	return withClass(ClassAbortable, fmt.Errorf("%w: %w", ErrTransactionAborted, failed))
}

// AbortTransaction ends the open transaction without committing: records
// not yet sent fail with ErrTransactionAborted, the ones in flight are
// waited for, and the coordinator writes abort markers, so read_committed
// consumers never see the transaction's records. After a failed record it
// also bumps the producer epoch (KIP-360), so that the next transaction
// starts with clean sequence numbers.
func (p *Producer) AbortTransaction(ctx context.Context) (err error) {
	defer func() { err = classify(err) }()
	tm, err := p.txnCall()
	if err != nil {
		return err
	}
	defer p.txnDone()
	return tm.abort(ctx)
}

// abortOnClose aborts the transaction open when Close begins (p.closing
// is set, so that nothing begins or joins it meanwhile). A transaction
// call in progress (a commit, say) is left to end on its own; a fenced
// producer has nothing to abort. The abort gets at most the transaction
// timeout, after which the coordinator aborts the transaction itself: an
// unreachable coordinator does not hold Close forever.
func (p *Producer) abortOnClose(ctx context.Context) error {
	tm := p.txn
	if tm == nil {
		return nil
	}
	p.mu.Lock()
	if tm.busy || tm.fatal != nil || tm.phase != txnOpen {
		p.mu.Unlock()
		return nil
	}
	tm.busy = true
	p.mu.Unlock()
	defer p.txnDone()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.txnTimeout)
	defer cancel()
	if err := tm.abort(ctx); err != nil {
		return fmt.Errorf("kpax: Close: aborting the open transaction: %w", err)
	}
	return nil
}

// abort is AbortTransaction, in a transaction call.
func (tm *txnManager) abort(ctx context.Context) error {
	p := tm.p
	if err := tm.startEnd(); err != nil {
		return err
	}
	p.mu.Lock()
	for _, ps := range p.parts {
		p.dropQueued(ps, withClass(ClassAbortable, ErrTransactionAborted))
	}
	p.mu.Unlock()
	if err := p.Flush(ctx); err != nil {
		tm.reopen()
		return err
	}
	p.mu.Lock()
	epochErr, aborted, bump := tm.epochErr, tm.aborted, tm.needBump
	p.mu.Unlock()
	switch {
	case aborted:
	case epochErr:
		if err := tm.recoverEpoch(ctx); err != nil && ClassOf(err) != ClassAbortable {
			return tm.endFailed(ctx, err)
		}
		bump = false
	default:
		if err := tm.endTxn(ctx, false); err != nil && !errors.Is(err, ErrTransactionAborted) {
			return tm.endFailed(ctx, err)
		}
	}
	p.mu.Lock()
	bump = bump && !tm.bumped // TV2's EndTxn bumped the epoch already
	p.mu.Unlock()
	if bump {
		if err := tm.initPID(ctx, true); err != nil {
			return tm.endFailed(ctx, err)
		}
	}
	p.mu.Lock()
	tm.reset()
	p.mu.Unlock()
	return nil
}

// endFailed takes an abort's failure: fatal stays fatal, otherwise the
// transaction stays open for another try.
func (tm *txnManager) endFailed(ctx context.Context, err error) error {
	p := tm.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if tm.fatal != nil {
		return tm.fatal
	}
	tm.phase = txnOpen
	return err
}

// startEnd moves the open transaction to ending.
func (tm *txnManager) startEnd() error {
	tm.p.mu.Lock()
	defer tm.p.mu.Unlock()
	if tm.phase != txnOpen {
		return withClass(ClassAbortable, ErrNoTransaction)
	}
	tm.phase = txnEnding
	return nil
}

func (tm *txnManager) reopen() {
	tm.p.mu.Lock()
	if tm.phase == txnEnding {
		tm.phase = txnOpen
	}
	tm.p.mu.Unlock()
}

// reset forgets the ended transaction. p.mu is held.
func (tm *txnManager) reset() {
	tm.phase = txnReady
	tm.failed, tm.epochErr, tm.aborted, tm.needBump, tm.bumped = nil, false, false, false, false
	clear(tm.added)
	clear(tm.want)
	clear(tm.groups)
}

// started reports whether the coordinator knows of the open transaction
// (a partition or a group was added). p.mu is held.
func (tm *txnManager) started() bool { return len(tm.added) > 0 || len(tm.groups) > 0 }

// chooseVersion decides the version of the transaction that begins: 2 where
// the coordinator reports the transaction.version feature finalized at 2
// and it and the caps (WithMaxVersion) allow Produce v12, EndTxn v5 and
// TxnOffsetCommit v5; 1 otherwise. The coordinator's connection knows the
// features from its ApiVersions; if it cannot be reached, the last choice
// stays (the transaction's first request then fails or waits anyway).
func (tm *txnManager) chooseVersion(ctx context.Context) {
	cl := tm.p.cl
	node, err := cl.meta.coordinator(ctx, 1, tm.id)
	if err != nil {
		return
	}
	pool, err := cl.pool(node)
	if err != nil {
		return
	}
	c, err := pool.get(ctx, laneDefault)
	if err != nil {
		return
	}
	v2 := c.versions.txnVersion >= 2
	for _, req := range []Request{&ProduceRequest{}, &EndTxnRequest{}, &TxnOffsetCommitRequest{}} {
		v2 = v2 && c.versions.allows(req.APIKey(), txnV2MinVersion(req), cl.cfg.maxVersions)
	}
	tm.p.mu.Lock()
	tm.v2 = v2
	tm.p.mu.Unlock()
}
