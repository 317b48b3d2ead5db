package kpax

import (
	"time"
	"unsafe"
)

// A partition's pending records (partState.pending and full): runs of at
// most a batch each, which cutBatch (sender.go) takes whole, and the pool of
// the slices they are kept in, reused from completed batches.

// takePending returns a partition's records not yet in a batch, as runs in
// Produce order, and leaves it none.
func (ps *partState) takePending() [][]pending {
	runs := append(ps.full, ps.pending)
	ps.pending, ps.full, ps.pendBytes, ps.runBytes = nil, nil, 0, 0
	return runs
}

// addPending adds a record to its partition's current run, which first
// becomes a full one when the record does not fit in it. p.mu is held.
func (p *Producer) addPending(tp topicPartition, pr pending) {
	ps := p.lastPS
	if ps == nil || ps.tp != tp {
		ps = p.parts[tp]
		if ps == nil {
			ps = &partState{tp: tp, leader: -1, backoff: p.cl.cfg.retryBackoff}
			if ts := p.topics[tp.topic]; ts != nil && ts.meta != nil && tp.partition >= 0 && int(tp.partition) < len(ts.meta.Partitions) {
				// The leader as known: a partition's first records need
				// not wait for a metadata load (which a dead broker can
				// hold up while unkeyed records pile up here).
				pm := ts.meta.Partitions[tp.partition]
				ps.leader, ps.leaderEpoch = pm.Leader, pm.LeaderEpoch
			}
			p.parts[tp] = ps
		}
		p.lastPS = ps
	}
	if len(ps.pending) == 0 {
		ps.firstAt = time.Now()
		p.setClock(ps.firstAt)
	}
	if pr.deadline == 0 { // from Produce
		// A new run above reads the clock; in a run, p.clock may be one
		// sender pass old, so a record may expire that much early.
		pr.deadline = p.clockDeadline
	}
	if len(ps.pending) > 0 && ps.runBytes+pr.size > p.cfg.maxBatchBytes {
		// The run is a full batch: a new one starts, as long as it.
		ps.full = append(ps.full, ps.pending)
		ps.pending, ps.runBytes = p.takeRecs(len(ps.pending)), 0
	}
	if len(ps.pending) == cap(ps.pending) {
		grown := append(p.takeRecs(2*len(ps.pending)), ps.pending...)
		p.putRecs(ps.pending)
		ps.pending = grown
	}
	ps.pending = append(ps.pending, pr)
	ps.pendBytes += pr.size
	ps.runBytes += pr.size
	// The sender wakes for a run's first record (its linger starts), and when the run first
	// holds a full batch; not for every record after that (the sender cuts again while a full
	// batch is left, and a finished request wakes it).
	if len(ps.pending) == 1 && len(ps.full) == 0 || p.cfg.linger == 0 ||
		(ps.pendBytes >= p.cfg.maxBatchBytes && ps.pendBytes-pr.size < p.cfg.maxBatchBytes) {
		p.poke()
	}
}

// takeRecs returns an empty pending slice with room for at least n records:
// the smallest such free one (from a completed batch), or a new one. A run
// that follows a full one asks for as many as that one holds; for n == 0
// (a partition's first run, when none was pending) it returns the largest
// free one, since that one will grow. p.mu is held.
func (p *Producer) takeRecs(n int) []pending {
	best := -1
	for i, s := range p.freeRecs {
		if cap(s) >= n && (best < 0 || (n == 0) == (cap(s) > cap(p.freeRecs[best]))) {
			best = i
		}
	}
	if best < 0 {
		// As large as asked (a batch's records), and a pending run's
		// from 16 (many partitions make many small runs; a run that
		// grows doubles, into free slices once there are some).
		return make([]pending, 0, max(n, 16))
	}
	return p.dropFreeRecs(best)
}

// dropFreeRecs removes the i-th free pending slice and returns it.
func (p *Producer) dropFreeRecs(i int) []pending {
	s := p.freeRecs[i]
	last := len(p.freeRecs) - 1
	p.freeRecs[i] = p.freeRecs[last]
	p.freeRecs[last] = nil
	p.freeRecs = p.freeRecs[:last]
	p.freeRecsCap -= cap(s)
	return s
}

// putRecs keeps the pending slice of a completed batch for reuse, cleared so
// that it holds no record. What it keeps is bounded: at most 64 slices of
// maxBufferedRecords records in all (under a memory budget, a sixteenth
// of it), the larger ones first (a run that follows a full one needs as many).
// p.mu is held.
func (p *Producer) putRecs(s []pending) {
	limit := p.cfg.maxBufferedRecords
	if p.budget != nil { // outside the budget: kept to a sixteenth of it
		limit = min(limit, p.budget.max/16/int(unsafe.Sizeof(pending{})))
	}
	if cap(s) == 0 || cap(s) > limit {
		return
	}
	for len(p.freeRecs) >= 64 || p.freeRecsCap+cap(s) > limit {
		small := 0
		for i, f := range p.freeRecs {
			if cap(f) < cap(p.freeRecs[small]) {
				small = i
			}
		}
		if len(p.freeRecs) == 0 || cap(p.freeRecs[small]) >= cap(s) {
			return
		}
		p.dropFreeRecs(small)
	}
	clear(s)
	p.freeRecs = append(p.freeRecs, s[:0])
	p.freeRecsCap += cap(s)
}
