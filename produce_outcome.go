package kpax

import (
	"runtime"
)

// Record callbacks run on one goroutine of the producer (deliver), never
// under an internal lock: a callback may call Produce, Flush or Close. They
// run in the order the outcomes were decided, so a partition's callbacks
// keep the order of its records.

// outcome is a record's callback waiting to run. The record counts against
// the buffer limits until its callback has run (as in the Java client and
// franz-go): the application's records stay bounded however slow its
// callbacks are.
type outcome struct {
	cb      func(*Record, error)
	rec     *Record
	err     error
	size    int
	counted bool // a record's, in bufRecords (not an event's, see applyTopic)
}

// cbChunk is how many callbacks run between two releases of their records'
// buffer space.
const cbChunk = 1024

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
		for i := 0; i < len(run); i += cbChunk {
			chunk := run[i:min(i+cbChunk, len(run))]
			n, size := 0, 0
			for j := range chunk {
				chunk[j].cb(chunk[j].rec, chunk[j].err)
				if chunk[j].counted {
					n, size = n+1, size+chunk[j].size
				}
				chunk[j] = outcome{}
			}
			p.mu.Lock()
			p.bufRecords -= n
			p.bufBytes -= size
			p.cbRecords -= n
			p.cbBytes -= size
			p.signalSpace()
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.cbRunning = 0
		p.signalSpace()
		p.mu.Unlock()
	}
}

// queueOutcome queues a callback for deliver: a record's (size > 0), which
// leaves the buffer's count when it has run, or an event's. p.mu is held.
func (p *Producer) queueOutcome(cb func(*Record, error), r *Record, err error, size int) {
	p.cbq = append(p.cbq, outcome{cb, r, err, size, size > 0})
	if size > 0 {
		p.cbRecords++
		p.cbBytes += size
	}
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
