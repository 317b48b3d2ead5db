package kpax

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// The transaction coordinator's requests: InitProducerId, AddPartitionsToTxn
// and EndTxn, each retried while its error is retriable.

// txnBackoff is the first pause before a transactional request is tried
// again: CONCURRENT_TRANSACTIONS right after a transaction ended clears in
// milliseconds.
const txnBackoff = 10 * time.Millisecond

// retry runs do until it succeeds, fails with a non-retriable error, or
// ctx ends.
func (tm *txnManager) retry(ctx context.Context, do func(context.Context) error) error {
	backoff := txnBackoff
	for {
		err := do(ctx)
		if err == nil || ClassOf(err) != ClassRetriable || ctx.Err() != nil {
			return err
		}
		if !sleep(ctx, backoff) {
			return err
		}
		backoff = min(2*backoff, tm.p.cl.cfg.retryBackoffMax)
	}
}

// initPID gets a producer ID and epoch for the transactional ID. With bump,
// it asks for the current ID's epoch to be bumped (KIP-360/KIP-588): the
// coordinator grants it unless a newer producer took the ID, which is
// fatal. A new epoch starts every partition's sequence numbers over.
func (tm *txnManager) initPID(ctx context.Context, bump bool) error {
	p := tm.p
	p.mu.Lock()
	pid := p.pid
	p.mu.Unlock()
	if !bump {
		pid = producerID{-1, -1}
	}
	return tm.fatalIfFenced(tm.initPIDFrom(ctx, pid))
}

// fatalIfFenced makes a fencing (or another fatal) error the producer's
// fatal error.
func (tm *txnManager) fatalIfFenced(err error) error {
	if err == nil || !errors.Is(err, ErrProducerFenced) && !errors.Is(err, ErrInvalidProducerEpoch) && ClassOf(err) != ClassFatal {
		return err
	}
	tm.p.mu.Lock()
	defer tm.p.mu.Unlock()
	return tm.setFatal(err)
}

// initPIDFrom is initPID expecting the coordinator's current producer ID
// and epoch to be pid (-1: none expected).
func (tm *txnManager) initPIDFrom(ctx context.Context, pid producerID) error {
	p := tm.p
	req := &InitProducerIdRequest{TransactionalID: &tm.id, TransactionTimeoutMs: tm.timeoutMs, ProducerID: pid.id, ProducerEpoch: pid.epoch}
	var resp *InitProducerIdResponse
	err := tm.retry(ctx, func(ctx context.Context) error {
		r, err := p.cl.Request(ctx, req)
		if err != nil {
			return err
		}
		resp = r.(*InitProducerIdResponse)
		return ErrorForCode(resp.ErrorCode)
	})
	if err != nil {
		return fmt.Errorf("kpax: InitProducerId for transactional ID %q: %w", tm.id, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	tm.setPID(producerID{resp.ProducerID, resp.ProducerEpoch})
	if tm.phase == txnUninit {
		tm.phase = txnReady
	}
	return nil
}

// setPID adopts a producer ID and epoch: every partition's sequence numbers
// start over. No partition's leader has state for them yet: under a new ID it
// takes any first sequence, under a bumped epoch (TV2 bumps it at every
// commit) only sequence 0, and refuses the batches pipelined behind a first
// one that failed (a retriable CONCURRENT_TRANSACTIONS, say) as out of
// order, which would abort the transaction. So, like a fresh partition, each
// has one batch in flight until its first is acknowledged (partitionLimit).
// p.mu is held.
func (tm *txnManager) setPID(pid producerID) {
	p := tm.p
	p.pid = pid
	for _, ps := range p.parts {
		ps.seq, ps.ackedNext, ps.settled = 0, 0, 0
		for _, b := range ps.retry {
			b.seq = -1
		}
	}
}

// recoverEpoch asks the coordinator, after an epoch error, whether the
// producer was fenced (fatal) or its transaction aborted after its timeout:
// then the producer continues with a bumped epoch, and the error, of
// ClassAbortable, says that the transaction was aborted.
func (tm *txnManager) recoverEpoch(ctx context.Context) error {
	p := tm.p
	p.mu.Lock()
	pid, started := p.pid, tm.started()
	p.mu.Unlock()
	err := tm.initPIDFrom(ctx, pid)
	if errors.Is(err, ErrProducerFenced) && started && pid.epoch < math.MaxInt16 && tm.timedOut(ctx, pid) {
		// Kafka 3.x refuses the old epoch after a timeout abort, but
		// then the epoch is exactly one above ours (a newer producer
		// would have bumped it twice, fencing the transaction first):
		// ask for the bump from there (at 32767, the coordinator's
		// epochs are exhausted, and it gives a new producer ID). A
		// newer producer that came meanwhile makes this fail, fenced.
		// No epoch is above 32767: a producer holding it (no broker
		// hands it out) stays fenced.
		err = tm.initPIDFrom(ctx, producerID{pid.id, pid.epoch + 1})
	}
	if err != nil {
		return tm.fatalIfFenced(err)
	}
	p.mu.Lock()
	tm.aborted, tm.epochErr, tm.needBump = true, false, false
	p.mu.Unlock()
	return withClass(ClassAbortable, fmt.Errorf("%w by the coordinator (did it outlive the transaction timeout?)", ErrTransactionAborted))
}

// timedOut reports whether the coordinator aborted the transaction of pid
// after its timeout: the transaction the producer had started (so a newer
// producer's InitProducerId would have fenced it and then bumped the epoch
// again) is aborted with the epoch just one above pid's.
func (tm *txnManager) timedOut(ctx context.Context, pid producerID) bool {
	var st *DescribeTransactionsResponseTransactionState
	err := tm.retry(ctx, func(ctx context.Context) error {
		node, err := tm.p.cl.meta.coordinator(ctx, 1, tm.id)
		if err != nil {
			return err
		}
		r, err := tm.p.cl.RequestBroker(ctx, node, &DescribeTransactionsRequest{TransactionalIDs: []string{tm.id}})
		if err != nil {
			return err
		}
		resp := r.(*DescribeTransactionsResponse)
		if len(resp.TransactionStates) != 1 {
			return fmt.Errorf("%w: DescribeTransactions: %d states", ErrMalformed, len(resp.TransactionStates))
		}
		st = &resp.TransactionStates[0]
		if err := ErrorForCode(st.ErrorCode); err != nil {
			if errors.Is(err, ErrNotCoordinator) || errors.Is(err, ErrCoordinatorNotAvailable) {
				tm.p.cl.meta.invalidateCoordinator(1, tm.id)
			}
			return err
		}
		if st.TransactionState == "PrepareAbort" || st.TransactionState == "PrepareEpochFence" {
			return ErrConcurrentTransactions // wait for CompleteAbort
		}
		return nil
	})
	return err == nil && pid.epoch < math.MaxInt16 && st.ProducerID == pid.id && st.ProducerEpoch == pid.epoch+1 && st.TransactionState == "CompleteAbort"
}

// endTxn commits or aborts the open transaction at the coordinator.
func (tm *txnManager) endTxn(ctx context.Context, commit bool) error {
	p := tm.p
	p.mu.Lock()
	started, pid, v2 := tm.started(), p.pid, tm.v2
	p.mu.Unlock()
	if !started {
		return nil // the coordinator has nothing to end
	}
	if v2 {
		ctx = withTxnV2(ctx)
	}
	req := &EndTxnRequest{TransactionalID: tm.id, ProducerID: pid.id, ProducerEpoch: pid.epoch, Committed: commit}
	next := producerID{-1, -1}
	err := tm.retry(ctx, func(ctx context.Context) error {
		r, v, err := p.cl.request(ctx, req)
		if err != nil {
			return err
		}
		resp := r.(*EndTxnResponse)
		if v >= 5 {
			next = producerID{resp.ProducerID, resp.ProducerEpoch}
		}
		return ErrorForCode(resp.ErrorCode)
	})
	switch {
	case err == nil:
		if next.id >= 0 {
			// TV2: the coordinator bumped the epoch (or, at its end,
			// gave a new producer ID) for the next transaction.
			p.mu.Lock()
			tm.setPID(next)
			tm.bumped = true
			p.mu.Unlock()
		}
		return nil
	case errors.Is(err, ErrProducerFenced), errors.Is(err, ErrInvalidProducerEpoch):
		return tm.recoverEpoch(ctx)
	case v2 && commit && errors.Is(err, ErrInvalidTxnState) && tm.timedOut(ctx, pid):
		// TV2's answer to the commit of a transaction the coordinator
		// aborted (bumping the epoch); the abort that follows gets the
		// new epoch.
		return withClass(ClassAbortable, fmt.Errorf("%w by the coordinator after the transaction timeout: %w", ErrTransactionAborted, err))
	case ClassOf(err) == ClassFatal:
		p.mu.Lock()
		defer p.mu.Unlock()
		return tm.setFatal(fmt.Errorf("kpax: EndTxn: %w", err))
	}
	return fmt.Errorf("kpax: EndTxn: %w", err)
}

// addLoop adds the partitions the sender wants to the transaction, batched
// into one AddPartitionsToTxn, until none is wanted or the transaction
// fails.
func (tm *txnManager) addLoop() {
	p := tm.p
	defer p.wg.Done()
	backoff := txnBackoff
	for {
		p.mu.Lock()
		if len(tm.want) == 0 || tm.stopErr() != nil || p.ctx.Err() != nil {
			clear(tm.want)
			tm.adding = false
			p.mu.Unlock()
			p.poke()
			return
		}
		tps := slices.SortedFunc(maps.Keys(tm.want), compareTP)
		clear(tm.want)
		pid := p.pid
		p.mu.Unlock()
		req := &AddPartitionsToTxnRequest{V3AndBelowTransactionalID: tm.id, V3AndBelowProducerID: pid.id, V3AndBelowProducerEpoch: pid.epoch}
		for _, tp := range tps {
			if n := len(req.V3AndBelowTopics); n > 0 && req.V3AndBelowTopics[n-1].Name == tp.topic {
				req.V3AndBelowTopics[n-1].Partitions = append(req.V3AndBelowTopics[n-1].Partitions, tp.partition)
			} else {
				req.V3AndBelowTopics = append(req.V3AndBelowTopics, AddPartitionsToTxnRequestV3AndBelowTopic{Name: tp.topic, Partitions: []int32{tp.partition}})
			}
		}
		ctx, cancel := context.WithTimeout(p.ctx, p.cl.cfg.requestTimeout)
		r, err := p.cl.Request(ctx, req)
		cancel()
		p.mu.Lock()
		retry := tm.addResult(tps, r, err)
		p.mu.Unlock()
		p.poke()
		if !retry {
			backoff = txnBackoff
			continue
		}
		if !sleep(p.ctx, backoff) {
			continue // the loop ends at the top
		}
		backoff = min(2*backoff, p.cl.cfg.retryBackoffMax)
	}
}

// addResult takes an AddPartitionsToTxn outcome: added partitions, ones to
// ask for again (it returns true then), or the transaction's failure.
// p.mu is held.
func (tm *txnManager) addResult(tps []topicPartition, r Response, err error) bool {
	again := func() bool {
		for _, tp := range tps {
			tm.want[tp] = true
		}
		return true
	}
	if err != nil {
		return again() // the coordinator is unreachable or moved: records wait
	}
	var fail error
	retry := false
	for _, t := range r.(*AddPartitionsToTxnResponse).ResultsByTopicV3AndBelow {
		for _, pr := range t.ResultsByPartition {
			tp := topicPartition{t.Name, pr.PartitionIndex}
			kerr := ErrorForCode(pr.PartitionErrorCode)
			switch {
			case kerr == nil:
				tm.added[tp] = true
			case errors.Is(kerr, ErrOperationNotAttempted), ClassOf(kerr) == ClassRetriable:
				tm.want[tp] = true
				retry = true
			default:
				fail = errors.Join(fail, &PartitionError{Topic: t.Name, Partition: pr.PartitionIndex, Err: kerr})
			}
		}
	}
	switch {
	case fail == nil:
	case ClassOf(fail) == ClassFatal && !errors.Is(fail, ErrProducerFenced):
		tm.setFatal(fmt.Errorf("kpax: AddPartitionsToTxn: %w", fail))
	default:
		// An epoch error means fenced, or the transaction aborted after
		// its timeout: the coordinator says which when it ends.
		tm.epochErr = tm.epochErr || errors.Is(fail, ErrProducerFenced) || errors.Is(fail, ErrInvalidProducerEpoch)
		if tm.failed == nil {
			tm.failed = withClass(ClassAbortable, fmt.Errorf("kpax: AddPartitionsToTxn: %w", fail))
		}
	}
	return retry && fail == nil
}
