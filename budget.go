package kpax

import (
	"fmt"
	"sync"
	"unsafe"
)

// This file is the client's memory budget (WithMemoryBudget): one count of
// bytes that the producers' buffered records and the consumers' fetched
// data (response frames and decompressed batches) draw from together.

// WithMemoryBudget bounds the bytes the client's producers and consumers
// hold together: records buffered for producing (keys, values, headers,
// from Produce until their outcome) and fetched data (read-ahead responses
// and the batches decompressed from them, from the Fetch until the Poll
// after the one that returned them). Decompression is counted by its
// output before it is allocated: a Fetch reserves its share of the budget
// before it is sent, and a batch decompresses only into what is reserved.
//
// When the budget is full Produce blocks (and fails with its ctx's error
// when ctx ends) and fetching pauses. It never deadlocks an application
// that holds polled records while it produces: a producer with nothing
// buffered always takes one record, and the records a consumer holds are
// freed by its next Poll. So the budget may be passed by at most one record
// per producer, by one batch a broker returns beyond a Fetch's max bytes
// (KIP-74: up to the topic's max.message.bytes) per consumer and broker, and by the
// decompression of the first partition of a Fetch, up to an eighth of the
// budget or 1 MiB if that is more (a first batch that decompresses to more
// than that is an error), by the produce requests in flight (at most
// WithMaxInFlight per broker, compressed) and by the records produced from
// callbacks while it is full.
//
// The budget counts a record by its bytes and its own structs (its Record,
// queue entries), from Produce until its callback has returned; a Produce
// called from a callback does not wait for the budget, since its records
// are what frees it. Produce requests are counted from their encoding to
// their response, beyond the budget if need be (their records are in
// already): one encoded into the kept request buffer by its bytes, one in a
// new buffer by the buffer's size. A Fetch response's frame is allocated
// whole, within what its Fetch reserved, and its decoded Records are counted
// with it.
//
// Outside the budget are fixed costs: codec state (a zstd encoder keeps a
// 1 MiB window, about 3.5 MiB in all, at most two kept per level), kept
// buffers (Fetch frames and pending-record arrays, a sixteenth of the
// budget each; one request buffer per broker a producer writes to), and
// the Go runtime's own: goroutine stacks, and the garbage the collector
// has not reclaimed yet, which grows with the allocation rate. So the
// process's peak RSS is the budget plus MemoryBudgetOverhead for one
// producer and one consumer at full speed, provided the application sets
// GOMEMLIMIT (or debug.SetMemoryLimit) to about the budget plus 32 MiB;
// kpax sets no process-wide state. Without a memory limit the collector
// lets the heap grow to twice what is live (GOGC=100) before it collects,
// and the peak RSS approaches twice the budget plus the fixed costs.
//
// n is in bytes, at least 1 MiB; 0, the default, means no shared budget
// (each producer and consumer keeps its own bounds: WithMaxBufferedBytes,
// WithFetchBufferBytes, which still apply under a budget). Client option.
func WithMemoryBudget(n int) Option {
	return func(c *config) { c.in(scopeClient, "WithMemoryBudget"); c.memBudget = n }
}

// MemoryBudgetOverhead is how far the peak RSS of a process with one
// client under WithMemoryBudget, one producer and one consumer at full
// speed on zstd data, may pass the budget when GOMEMLIMIT is the budget
// plus 32 MiB (see WithMemoryBudget; TestMemoryBudgetRSS measures it: 81 to
// 94 MiB above a 64 MiB budget on a 2-core test machine). Each further
// producer, consumer or broker adds its kept buffers and codec state.
const MemoryBudgetOverhead = 104 << 20

// minMemoryBudget is the smallest budget WithMemoryBudget accepts.
const minMemoryBudget = 1 << 20

func validateMemoryBudget(n int) error {
	if n != 0 && n < minMemoryBudget {
		return fmt.Errorf("memory budget %d: want 0 (none) or at least 1 MiB", n)
	}
	return nil
}

// memBudget counts the bytes drawn from a client's budget. Its lock is a
// leaf: callers may hold their own.
type memBudget struct {
	max int

	mu      sync.Mutex
	used    int
	peak    int
	waiting bool
	freed   chan struct{} // closed and replaced when bytes are released while someone waits
}

// newMemBudget returns the budget of max bytes, nil for none.
func newMemBudget(max int) *memBudget {
	if max <= 0 {
		return nil
	}
	return &memBudget{max: max, freed: make(chan struct{})}
}

// tryTake takes n bytes if they fit, or anyway with force. If it does not
// take them it returns a channel closed when bytes are next released
// (checked and armed at once: no release is missed in between).
func (b *memBudget) tryTake(n int, force bool) (freed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !force && b.used+n > b.max {
		b.waiting = true
		return b.freed
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return nil
}

// take takes n bytes, beyond the budget if need be.
func (b *memBudget) take(n int) { b.tryTake(n, true) }

// waitFor returns nil if n bytes are left, else a channel closed when
// bytes are next released.
func (b *memBudget) waitFor(n int) (freed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max-b.used >= n {
		return nil
	}
	b.waiting = true
	return b.freed
}

// release gives n bytes back.
func (b *memBudget) release(n int) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.waiting {
		b.waiting = false
		close(b.freed)
		b.freed = make(chan struct{})
	}
}

// usage returns the bytes taken now and at most so far.
func (b *memBudget) usage() (used, peak int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}

// admit reports whether a record of size bytes fits the buffer limits and
// the client's memory budget, and takes its share of the budget if so; if
// the budget is what it lacks, freed is closed when the budget next frees
// bytes. A producer with nothing buffered always takes one record, so that
// it never waits for memory that only its own outcomes would free. p.mu is
// held.
func (p *Producer) admit(size int) (ok bool, freed <-chan struct{}) {
	records, bytes := p.bufRecords, p.bufBytes
	full := func() bool {
		return records > 0 && (records >= p.cfg.maxBufferedRecords || bytes+size > p.cfg.maxBufferedBytes)
	}
	if full() && p.cbRecords > 0 && p.inCallback() {
		// A callback does not wait for the callbacks queued behind it:
		// their records do not count (the buffer may then hold up to
		// twice its limits).
		records, bytes = records-p.cbRecords, bytes-p.cbBytes
	}
	if full() {
		return false, nil
	}
	empty := p.bufRecords-p.cbRecords == 0 // budget: nothing of it waits for an outcome
	if p.budget == nil {
		return true, nil
	}
	charge := budgetCharge(size)
	if freed = p.budget.tryTake(charge, empty); freed != nil && p.inCallback() {
		// A callback's records are released after it returns: one that
		// produces must not wait for the budget (it is what would free it).
		p.budget.take(charge)
		freed = nil
	}
	return freed == nil, freed
}

// recordOverhead is what a buffered record costs beyond its bytes
// (recordSize): its Record, its pending entry and its queued outcome.
const recordOverhead = int(unsafe.Sizeof(Record{}) + unsafe.Sizeof(pending{}) + unsafe.Sizeof(outcome{}))

// budgetCharge is what a record of size bytes (recordSize) takes from the
// client's memory budget from Produce until its callback has returned.
func budgetCharge(size int) int { return size + recordOverhead }

// charge is budgetCharge without a budget 0.
func (p *Producer) charge(size int) int {
	if p.budget == nil {
		return 0
	}
	return budgetCharge(size)
}

// fetchReserveMin is the least share of the budget a Fetch starts with: a
// consumer waits while less is left.
func fetchReserveMin(b *memBudget) int { return min(64<<10, b.max/16) }

// firstDecompressMax bounds the decompression of a Fetch's first partition
// with data under a budget: it may pass what the Fetch reserved, so that
// every Fetch makes progress.
func firstDecompressMax(b *memBudget) int { return min(DefaultMaxDecompressed, max(b.max/8, 1<<20)) }

// reserveFetch takes the budget's share of a Fetch before it is sent (what
// is left, up to the request's max bytes) and lowers the request's max
// bytes to it; it returns the bytes taken (0 without a budget).
func reserveFetch(b *memBudget, req *FetchRequest) int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := max(min(int(req.MaxBytes), b.max-b.used), fetchReserveMin(b))
	b.used += n
	b.peak = max(b.peak, b.used)
	req.MaxBytes = int32(n)
	return n
}

// settleFetch turns a Fetch's reservation into what its chunk holds: the
// rest goes back, or what the response held beyond it is taken.
func settleFetch(b *memBudget, reserved, held int) {
	switch {
	case b == nil:
	case held < reserved:
		b.release(reserved - held)
	case held > reserved:
		b.take(held - reserved)
	}
}
