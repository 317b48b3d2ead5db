package kpax

import (
	"runtime"
)

// Record callbacks run on one goroutine of the producer (deliver), never
// under an internal lock: a callback may call Produce, Flush or Close. They
// run in the order the outcomes were decided, so a partition's callbacks
// keep the order of its records.

// outcome is a record's callback waiting to run.
type outcome struct {
	cb     func(*Record, error)
	rec    *Record
	err    error
	charge int // the record's share of the client's memory budget, released after cb
}

// deliver runs the callbacks queued by finish until Close stops it and the
// queue is empty.
func (p *Producer) deliver() {
	defer close(p.cbDone)
	p.cbG.Store(goid())
	var run []outcome
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
		for i := range run {
			run[i].cb(run[i].rec, run[i].err)
			if n := run[i].charge; n > 0 {
				p.budget.release(n) // the record is the application's again
			}
			run[i] = outcome{}
		}
		p.mu.Lock()
		p.cbRunning = 0
		p.signalSpace()
		p.mu.Unlock()
	}
}

// queueOutcome queues a record's callback for deliver. p.mu is held.
func (p *Producer) queueOutcome(o outcome) {
	p.cbq = append(p.cbq, o)
	if len(p.cbq) == 1 {
		select {
		case p.cbWake <- struct{}{}:
		default:
		}
	}
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
