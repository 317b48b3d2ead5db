package kpax

import (
	"context"
	"errors"
	"time"
)

// The idempotent producer's producer ID and sequence bookkeeping; the rules
// are in the comment block "Idempotence" in sender.go.

// initProducerID starts the one InitProducerId the producer has in flight;
// until it answers, the producer sends nothing. p.mu is held.
func (p *Producer) initProducerID() {
	if p.pidAsking {
		return
	}
	p.pidAsking = true
	p.wg.Add(1)
	go p.askProducerID()
}

// askProducerID asks for a producer ID until a broker gives one, the broker
// turns out to have no idempotent producer, or the producer closes.
func (p *Producer) askProducerID() {
	defer p.wg.Done()
	backoff := p.cl.cfg.retryBackoff
	for {
		ctx, cancel := context.WithTimeout(p.ctx, p.cl.cfg.requestTimeout)
		r, err := p.cl.Request(ctx, &InitProducerIdRequest{TransactionTimeoutMs: 60000, ProducerID: -1, ProducerEpoch: -1})
		cancel()
		if err == nil {
			resp := r.(*InitProducerIdResponse)
			if err = ErrorForCode(resp.ErrorCode); err == nil {
				p.mu.Lock()
				p.pidAsking = false
				p.applyProducerID(producerID{resp.ProducerID, resp.ProducerEpoch})
				p.mu.Unlock()
				p.poke()
				return
			}
		}
		if errors.Is(err, ErrUnsupportedVersion) {
			p.mu.Lock()
			p.pidAsking = false
			if p.cfg.idempotenceSet { // asked for: no silent downgrade
				p.idemErr = errIdempotenceUnsupported(err)
			} else {
				p.cfg.idempotent = false
			}
			p.mu.Unlock()
			if !p.cfg.idempotenceSet {
				p.cl.cfg.logger.Warn("kpax: the broker has no idempotent producer; continuing without", "err", err)
			}
			p.poke()
			return
		}
		p.cl.cfg.logger.Warn("kpax: InitProducerId", "err", err)
		select {
		case <-time.After(backoff):
		case <-p.quit:
			p.mu.Lock()
			p.pidAsking = false
			p.mu.Unlock()
			return
		}
		backoff = min(2*backoff, p.cl.cfg.retryBackoffMax)
	}
}

// applyProducerID takes a new producer ID: every partition starts again at
// sequence 0 and the batches waiting to retry are renumbered. It is only
// asked for when no batch is in doubt and none is in flight, and nothing is
// sent while it is asked for; an answer that would still replace an ID
// under which a batch may be in the log is dropped (the next sender pass
// asks again once that is settled). p.mu is held.
func (p *Producer) applyProducerID(id producerID) {
	if p.pid.id >= 0 && (!p.resetPID || p.totalInflight() > 0 || p.inDoubt()) {
		return
	}
	p.pid, p.resetPID = id, false
	for _, ps := range p.parts {
		ps.seq, ps.ackedNext, ps.settled, ps.refused = 0, 0, 0, false
		for _, b := range ps.retry {
			b.seq = -1 // numbered under the new ID when dispatched
		}
	}
}

// inDoubt reports whether a batch waiting to retry may be in a log under
// its producer ID: written at least once and not refused since. In-flight
// batches count too; callers check totalInflight. p.mu is held.
func (p *Producer) inDoubt() bool {
	for _, ps := range p.parts {
		for _, b := range ps.retry {
			if b.maybeSent && b.seq >= 0 && !ps.isRefused(b) {
				return true
			}
		}
	}
	return false
}

// isRefused reports whether the partition's leader proved that b is not in
// its log and never will be under b's producer ID: b, or a batch before it,
// was refused for its sequence or its producer ID.
func (ps *partState) isRefused(b *batch) bool {
	return ps.refused && b.pid == ps.refusedPID && b.order >= ps.refusedOrder
}

// refuse marks b and every later batch of its partition under its producer
// ID as refused (see isRefused), and asks for a new producer ID. p.mu is held.
func (p *Producer) refuse(b *batch) {
	ps := b.ps
	if !ps.refused || ps.refusedPID != b.pid || b.order < ps.refusedOrder {
		ps.refused, ps.refusedPID, ps.refusedOrder = true, b.pid, b.order
	}
	p.resetPID = true
}

// settle notes that a numbered batch has its outcome (acknowledged, or
// failed for good): the partition's leader must have the sequence after
// it next, once the batches before it have settled too. p.mu is held.
func (p *Producer) settle(b *batch) {
	ps := b.ps
	if b.seq < 0 || b.pid != p.pid || b.order+1 <= ps.settled {
		return
	}
	ps.ackedNext, ps.settled = seqAfter(b), b.order+1
}

// sequenceError handles a partition's answer that concerns the producer's
// state (KIP-360), and reports whether it was one:
//   - UNKNOWN_PRODUCER_ID with the log start known: the leader has no state
//     for the producer ID (its batches left the log, or never reached this
//     leader's log), so none of the partition's batches under that ID are
//     in the log: they are refused, and renumbered under a new ID. Without
//     the log start (a leader in transition) the batch is retried as it is.
//   - OUT_OF_ORDER_SEQUENCE_NUMBER for the batch right after everything
//     settled: a real gap (the leader lost acknowledged batches, or a batch
//     that expired in doubt never made it); refused, as above. For a later
//     batch the gap is an earlier batch still unsettled: retried as it is,
//     after that one.
//   - INVALID_PRODUCER_EPOCH: the ID was fenced; refused.
//
// p.mu is held.
func (p *Producer) sequenceError(b *batch, kerr error, logStart int64) bool {
	switch {
	case errors.Is(kerr, ErrUnknownProducerId):
		if logStart >= 0 && b.pid == p.pid {
			p.refuse(b)
		}
	case errors.Is(kerr, ErrOutOfOrderSequenceNumber):
		if b.pid == p.pid && b.seq == b.ps.ackedNext {
			p.refuse(b)
		}
	case errors.Is(kerr, ErrInvalidProducerEpoch):
		if b.pid == p.pid {
			p.refuse(b)
		}
	default:
		return false
	}
	p.retryBatch(b, kerr, false)
	return true
}
