package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress keeps a line on stderr up to date with a count of records, for
// long produce and consume runs. It exists only when stderr is a terminal;
// its methods do nothing on a nil *progress.
type progress struct {
	w     io.Writer
	verb  string
	start time.Time
	n     atomic.Int64
	stop  chan struct{}
	done  sync.WaitGroup
}

// startProgress starts the progress line of e's command, or returns nil when
// stderr is not a terminal, or when the command writes to stdout (records)
// and stdout is a terminal: the records show the progress then.
func (e *env) startProgress(verb string, writesStdout bool) *progress {
	if !e.stderrTTY || (writesStdout && e.stdoutTTY) {
		return nil
	}
	p := &progress{w: e.stderr, verb: verb, start: time.Now(), stop: make(chan struct{})}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.print("")
			}
		}
	}()
	return p
}

func (p *progress) add(n int) {
	if p != nil {
		p.n.Add(int64(n))
	}
}

func (p *progress) print(end string) {
	secs := time.Since(p.start).Seconds()
	n := p.n.Load()
	rate := 0.0
	if secs > 0 {
		rate = float64(n) / secs
	}
	// \r and "erase line" keep it on one line of the terminal.
	fmt.Fprintf(p.w, "\r\x1b[K%s %d records in %.0fs (%.0f/s)%s", p.verb, n, secs, rate, end)
}

// finish stops the updates and ends the line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.done.Wait()
	p.print("\n")
}
