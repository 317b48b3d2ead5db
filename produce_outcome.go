package kpax

import (
	"runtime"
)

// Record callbacks run on one goroutine of the producer (deliver), never
// under an internal lock: a callback may call Produce, Flush or Close. They
// run in the order the outcomes were decided, so a partition's callbacks
// keep the order of its records.

// outcome is a callback waiting to run: a record's, an event's, or those of
// a whole acknowledged batch (recs). Records count against the buffer
// limits until their callback has run (as in the Java client and
// franz-go): the application's records stay bounded however slow its
// callbacks are.
type outcome struct {
	cb      func(*Record, error)
	rec     *Record
	err     error
	recs    []pending // an acknowledged batch's records, in order (queueBatch)
	part    int32     // recs' partition
	base    int64     // recs' first offset, -1 if not known
	size    int
	counted bool // a record's or batch's, in bufRecords (not an event's, see applyTopic)
	charge  int  // its share of the client's memory budget, released after the callbacks
}

// cbChunk is how many single callbacks run between two releases of their
// records' buffer space (a batch's is released after its callbacks).
const cbChunk = 1024

// deliver runs the callbacks queued by finish and queueBatch until Close
// stops it and the queue is empty.
func (p *Producer) deliver() {
	defer close(p.cbDone)
	p.cbG.Store(goid())
	var run []outcome
	var ran [][]pending // batches whose callbacks ran, for putRecs
	for {
		p.mu.Lock()
		for len(p.cbq) == 0 {
			if p.cbStop {
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			<-p.cbWake
			p.mu.Lock()
		}
		run, p.cbq = p.cbq, run[:0]
		p.cbRunning = len(run)
		p.mu.Unlock()
		n, size, charge := 0, 0, 0
		for i := range run {
			o := &run[i]
			if o.recs != nil {
				o.runBatch()
				n, size, ran = n+len(o.recs), size+o.size, append(ran, o.recs)
				charge += o.charge
			} else {
				o.cb(o.rec, o.err)
				if o.counted {
					n, size = n+1, size+o.size
				}
				charge += o.charge
			}
			batch := o.recs != nil
			*o = outcome{}
			if batch || n >= cbChunk || i == len(run)-1 {
				p.ranCallbacks(n, size, charge, ran)
				clear(ran)
				n, size, charge, ran = 0, 0, 0, ran[:0]
			}
		}
		p.mu.Lock()
		p.cbRunning = 0
		p.signalSpace()
		p.mu.Unlock()
	}
}

// runBatch gives an acknowledged batch's records their partition and
// offset and runs their callbacks.
func (o *outcome) runBatch() {
	for j := range o.recs {
		pr := &o.recs[j]
		pr.rec.Partition, pr.rec.Offset = o.part, -1
		if o.base >= 0 {
			pr.rec.Offset = o.base + int64(j)
		}
		if pr.cb != nil {
			pr.cb(pr.rec, nil)
		}
	}
}

// ranCallbacks releases the buffer space of n records of size bytes whose
// callbacks ran, and their charge of the budget (the records are the
// application's again), and keeps their batches' slices for reuse.
func (p *Producer) ranCallbacks(n, size, charge int, ran [][]pending) {
	if charge > 0 {
		p.budget.release(charge)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bufRecords -= n
	p.bufBytes -= size
	p.cbRecords -= n
	p.cbBytes -= size
	for _, recs := range ran {
		p.putRecs(recs)
	}
	p.signalSpace()
}

// queueBatch queues the callbacks of an acknowledged batch's records for
// deliver, as one outcome, and gives recs to it (putRecs once they ran);
// base is the first record's offset (-1: not known). p.mu is held.
func (p *Producer) queueBatch(recs []pending, part int32, base int64) {
	if len(recs) == 0 {
		return
	}
	size := 0
	for i := range recs {
		size += recs[i].size
	}
	charge := 0
	if p.budget != nil {
		charge = size + len(recs)*recordOverhead // budgetCharge of each
	}
	p.cbq = append(p.cbq, outcome{recs: recs, part: part, base: base, size: size, counted: true, charge: charge})
	p.cbRecords += len(recs)
	p.cbBytes += size
	p.wakeDeliver()
	p.signalSpace() // a Flush in a callback waits for outcomes only
}

// wakeDeliver wakes deliver for the first outcome queued. p.mu is held.
func (p *Producer) wakeDeliver() {
	if len(p.cbq) == 1 {
		select {
		case p.cbWake <- struct{}{}:
		default:
		}
	}
}

// queueOutcome queues a callback for deliver: a record's (counted), which
// leaves the buffer's count when it has run, or an event's. p.mu is held.
func (p *Producer) queueOutcome(o outcome) {
	p.cbq = append(p.cbq, o)
	if o.counted {
		p.cbRecords++
		p.cbBytes += o.size
	}
	p.wakeDeliver()
}

// callbacksPending reports whether callbacks are queued or running, unless
// the caller is a callback itself: it cannot wait for itself, nor for the
// callbacks queued behind it. p.mu is held.
func (p *Producer) callbacksPending() bool {
	if len(p.cbq) == 0 && p.cbRunning == 0 {
		return false
	}
	return !p.inCallback()
}

// inCallback reports whether the caller runs on the callbacks' goroutine.
func (p *Producer) inCallback() bool { return goid() == p.cbG.Load() }

// stopDelivery makes deliver end once the queue is empty and waits for it,
// unless called from a callback (deliver then ends after it returns).
func (p *Producer) stopDelivery() {
	p.mu.Lock()
	p.cbStop = true
	p.mu.Unlock()
	select {
	case p.cbWake <- struct{}{}:
	default:
	}
	if !p.inCallback() {
		<-p.cbDone
	}
}

// signalSpace wakes the Produce and Flush calls waiting for buffer space or
// outcomes. p.mu is held.
func (p *Producer) signalSpace() {
	if p.spaceWait {
		close(p.space)
		p.space = make(chan struct{})
		p.spaceWait = false
	}
}

// goid is the calling goroutine's ID, from the first line of its stack
// ("goroutine 42 [running]:"): Go has no other way to tell that Flush is
// called from a callback, which must not wait for callbacks.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return 0
	}
	var id uint64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
