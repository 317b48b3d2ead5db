package kpax

import (
	"context"
	"errors"
	"sync"
)

// errNilContext is the error of a call given a nil context.
var errNilContext = classedValue(ClassAbortable, "kpax: nil context")

// A ProduceWaiter waits for the outcomes of many asynchronous Produce calls
// and keeps the first error, so that producing a set of records and
// waiting for all of them needs no WaitGroup or error bookkeeping (it is
// what franz-go calls a FirstErrPromise). The zero value is ready to use; a
// ProduceWaiter must not be copied after first use. It is safe for
// concurrent use: many goroutines may Produce through one waiter.
type ProduceWaiter struct {
	mu      sync.Mutex
	pending int
	first   error
	done    chan struct{} // closed when pending drops to 0 while Wait waits
}

// Produce queues r on p (see Producer.Produce) and counts its outcome. An
// error of Produce itself (ctx ended while the buffer was full, a closed
// producer, a bad record) is counted as r's outcome, and returned so that a
// loop can stop.
func (w *ProduceWaiter) Produce(ctx context.Context, p *Producer, r *Record) error {
	if p == nil {
		err := withClass(ClassAbortable, errors.New("kpax: ProduceWaiter.Produce: nil producer"))
		w.record(err)
		return err
	}
	w.mu.Lock()
	w.pending++
	w.mu.Unlock()
	err := p.Produce(ctx, r, func(_ *Record, err error) { w.finish(err) })
	if err != nil {
		w.finish(err)
	}
	return err
}

// record keeps err if it is the first error.
func (w *ProduceWaiter) record(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first == nil {
		w.first = err
	}
}

// finish counts one outcome.
func (w *ProduceWaiter) finish(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && w.first == nil {
		w.first = err
	}
	w.pending--
	if w.pending == 0 && w.done != nil {
		close(w.done)
		w.done = nil
	}
}

// Wait waits until every record given to Produce so far has its outcome,
// and returns the first error among them (nil if all were written), or
// ctx's error if ctx ends first (the records are still sent; a later Wait
// can wait for them again).
func (w *ProduceWaiter) Wait(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	w.mu.Lock()
	if w.pending == 0 {
		err := w.first
		w.mu.Unlock()
		return err
	}
	if w.done == nil {
		w.done = make(chan struct{})
	}
	done := w.done
	w.mu.Unlock()
	select {
	case <-done:
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.first
	case <-ctx.Done():
		return classify(ctx.Err())
	}
}
