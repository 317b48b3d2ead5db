package kpax

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// This file is the machinery of GroupConsumer.Process (group_parallel.go):
// one polling goroutine registers every polled record with its partition's
// progress (procPart) and hands copies to lanes (one per key or
// partition); workers run the head of each ready lane. A partition's
// progress is the offset after its contiguous finished records, and every
// commit of the group is lowered to it (limit). The group calls
// revoking, assigned and lost around rebalances. The handler and the error
// policy are never called with p.mu held.

// processor is the state of one Process call; after Process returns it
// stays attached to its GroupConsumer, so that later commits (Close's)
// still cover only what was processed.
type processor struct {
	g   *GroupConsumer
	cfg processConfig
	h   func(context.Context, *Record) error
	log *slog.Logger

	runCtx    context.Context // handlers' and error policies'; canceled when Process gives up on them
	cancelRun context.CancelFunc
	wg        sync.WaitGroup // workers

	mu       sync.Mutex
	work     *sync.Cond // a lane is ready, or the workers must quit
	parts    map[topicPartition]*procPart
	lanes    map[topicPartition]*partLanes
	ready    []*lane       // lanes with records and no worker, oldest first
	inflight int           // records handed to lanes and not finished
	waiting  bool          // someone waits on changed
	changed  chan struct{} // closed and replaced when a record is retired
	roomWait bool          // the poll loop waits on room
	room     chan struct{} // closed and replaced when inflight falls to the low-water mark
	halt     bool          // drop records that have not started (a stop)
	halted   chan struct{} // closed when halt is set
	quit     bool          // workers return once no lane is ready
	err      error         // what stopped processing
	free     []*procItem
	freeLane []*lane

	// The last Poll's records (valid until the next Poll, which waits
	// until all are handed over), their progress slots, and the lanes
	// with some of them not yet handed over (copied).
	chunk      []Record
	refs       []procRef
	backlogged []*lane
}

// procPart is the progress of one assignment of a partition: the records
// registered and not yet retired, in offset order, and the offset after
// the contiguous finished ones.
type procPart struct {
	tp          topicPartition
	dead        bool       // revoked past the drain timeout, lost, or replaced: its records that have not started are dropped
	cut         bool       // being revoked: records at or past handed are dropped, not handed over
	handed      uint64     // one past the highest sequence number handed over to a lane
	slots       []procSlot // slots[head:] are registered records not yet retired
	head        int
	base        uint64 // sequence number of slots[0]
	next        uint64 // sequence number of the next record registered
	commit      int64  // the offset after the contiguous finished records, -1 while none
	commitEpoch int32
	pending     int // registered records not finished (in a lane, in a handler, or not yet handed over)
}

type procSlot struct {
	offset int64
	epoch  int32
	done   bool
}

type procRef struct {
	part *procPart
	seq  uint64
}

// partLanes are the lanes of one partition: with OrderByKey one per key
// and one for nil keys, with OrderByPartition only the latter. Lanes are
// per partition, not per assignment of it: a record of a new assignment
// waits for one of the same key still in a handler.
type partLanes struct {
	byKey   map[string]*lane
	unkeyed *lane
}

// lane is the records of one key (or partition) in offset order: copies
// (items), then records of the last Poll not yet copied (backlog, indices
// in p.chunk). A worker runs its head item; a lane is in p.ready while it
// has items and no worker.
type lane struct {
	tp      topicPartition
	keyed   bool
	key     string
	items   []*procItem
	backlog []int32
}

// procItem is a copy of one record, valid until it is finished.
type procItem struct {
	rec  Record
	buf  []byte
	hdrs []Header
	ref  procRef
}

func newProcessor(g *GroupConsumer, cfg processConfig, h func(context.Context, *Record) error) *processor {
	p := &processor{g: g, cfg: cfg, h: h, log: g.conf.logger,
		parts: map[topicPartition]*procPart{}, lanes: map[topicPartition]*partLanes{},
		changed: make(chan struct{}), room: make(chan struct{}), halted: make(chan struct{})}
	p.work = sync.NewCond(&p.mu)
	return p
}

// run is Process once the processor is attached: it polls until ctx ends
// or processing stops, then drains, commits and stops the workers.
func (p *processor) run(ctx context.Context) error {
	p.runCtx, p.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	defer p.cancelRun()
	for range p.cfg.concurrency {
		p.wg.Add(1)
		go p.worker()
	}
	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	go func() { // a stop policy interrupts Poll
		select {
		case <-loopCtx.Done():
		case <-p.halted:
			stopLoop()
		}
	}()
	err := p.pollLoop(loopCtx)
	return errors.Join(p.finish(ctx), p.stopErr(err, ctx))
}

// stopErr is what run returns besides the final commit's error: the stop
// policy's error, or a failure of Poll other than ctx ending.
func (p *processor) stopErr(pollErr error, ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if ctx.Err() != nil {
		return nil
	}
	return pollErr
}

// pollLoop polls, registers and hands over records until ctx ends or Poll
// fails.
func (p *processor) pollLoop(ctx context.Context) error {
	for ctx.Err() == nil {
		f, err := p.g.Poll(ctx)
		if err != nil {
			return err
		}
		for _, e := range f.Errors {
			if p.cfg.fetchErrors != nil {
				p.cfg.fetchErrors(e)
			} else {
				p.log.Warn("kpax: process: fetch", "group", p.g.group, "err", e)
			}
		}
		if len(f.Records) == 0 {
			continue
		}
		p.register(f.Records)
		// Every record of this Poll is accounted for: the group need not
		// wait for the next Poll to commit or revoke (limit keeps commits
		// behind what is processed).
		n := p.g.c.pollCount()
		p.g.mu.Lock()
		p.g.setDone(n)
		p.g.mu.Unlock()
		p.handOver(ctx)
	}
	return ctx.Err()
}

// register gives each record a slot in its partition's progress, in
// order, and puts it in its lane's backlog, before any is handed over.
func (p *processor) register(recs []Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.chunk = recs
	p.refs = p.refs[:0]
	var last *procPart
	for i := range recs {
		r := &recs[i]
		pp := last
		if pp == nil || pp.tp.topic != r.Topic || pp.tp.partition != r.Partition {
			tp := topicPartition{r.Topic, r.Partition}
			pp = p.parts[tp]
			if pp == nil || pp.dead {
				pp = newProcPart(tp)
				p.parts[tp] = pp
			}
			last = pp
		}
		if pp.head > 64 && pp.head >= len(pp.slots)/2 {
			n := copy(pp.slots, pp.slots[pp.head:])
			pp.slots = pp.slots[:n]
			pp.base += uint64(pp.head)
			pp.head = 0
		}
		pp.slots = append(pp.slots, procSlot{offset: r.Offset, epoch: r.LeaderEpoch})
		p.refs = append(p.refs, procRef{part: pp, seq: pp.next})
		pp.next++
		pp.pending++
		ln := p.laneLocked(pp.tp, p.cfg.order == OrderByKey && r.Key != nil, r.Key)
		if len(ln.backlog) == 0 {
			p.backlogged = append(p.backlogged, ln)
		}
		ln.backlog = append(ln.backlog, int32(i))
	}
}

func newProcPart(tp topicPartition) *procPart { return &procPart{tp: tp, commit: -1} }

// cutOff reports whether the record with sequence number seq, not handed
// over, is dropped by the partition's revocation (cutLocked).
func (pp *procPart) cutOff(seq uint64) bool { return pp.cut && seq >= pp.handed }

// handOver copies the backlogs of the last Poll into their lanes, each
// lane up to laneRoom records and all of them up to the max in flight,
// waiting for room as needed, until the backlogs are empty or ctx ends or
// processing stops (then the rest is dropped).
func (p *processor) handOver(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		p.fillLocked()
		if len(p.backlogged) == 0 {
			break
		}
		p.roomWait = true
		room := p.room
		p.mu.Unlock()
		select {
		case <-room:
		case <-p.halted:
		case <-ctx.Done():
		}
		p.mu.Lock()
		if p.halt || ctx.Err() != nil {
			p.dropBacklogLocked()
			break
		}
	}
	p.chunk = nil
}

// laneRoom is how many copies one lane may hold: enough to keep its
// worker busy, few enough that the max in flight spreads over many keys
// (a Poll's records often come partition by partition).
func (p *processor) laneRoom() int {
	return min(max(p.cfg.maxInFlight/(2*p.cfg.concurrency), 2), 64)
}

// partWindow is how far past a partition's oldest unfinished record its
// records may be handed over: a bound on the records processed ahead of
// what can be committed (each is processed again by the next owner if the
// partition moves), and what keeps a key whose records come late in a
// Poll from starving behind those that come first.
func (p *processor) partWindow() uint64 {
	return uint64(max(p.cfg.maxInFlight, 2*p.laneRoom()))
}

// fillLocked moves records from backlogs to lanes as far as there is
// room, each partition's within its window. p.mu is held.
func (p *processor) fillLocked() {
	room, win := p.laneRoom(), p.partWindow()
	kept := p.backlogged[:0]
	for _, ln := range p.backlogged {
		n := 0
		for n < len(ln.backlog) && len(ln.items) < room && p.inflight < p.cfg.maxInFlight {
			i := ln.backlog[n]
			ref := p.refs[i]
			pp := ref.part
			if pp.dead || p.halt || pp.cutOff(ref.seq) {
				n++
				p.retireLocked(ref, false)
				continue
			}
			if ref.seq >= pp.base+uint64(pp.head)+win {
				break // the partition's oldest records first
			}
			n++
			pp.handed = max(pp.handed, ref.seq+1)
			it := p.takeItemLocked()
			it.fill(&p.chunk[i], ref)
			p.inflight++
			ln.items = append(ln.items, it)
			if len(ln.items) == 1 {
				p.ready = append(p.ready, ln)
				p.work.Signal()
			}
		}
		ln.backlog = ln.backlog[:copy(ln.backlog, ln.backlog[n:])]
		if len(ln.backlog) > 0 {
			kept = append(kept, ln)
		} else if len(ln.items) == 0 {
			p.freeLaneLocked(ln)
		}
	}
	clear(p.backlogged[len(kept):])
	p.backlogged = kept
}

// dropBacklogLocked retires the records not handed over. p.mu is held.
func (p *processor) dropBacklogLocked() {
	for _, ln := range p.backlogged {
		for _, i := range ln.backlog {
			p.retireLocked(p.refs[i], false)
		}
		ln.backlog = ln.backlog[:0]
		if len(ln.items) == 0 {
			p.freeLaneLocked(ln)
		}
	}
	clear(p.backlogged)
	p.backlogged = p.backlogged[:0]
}

// laneLocked returns the lane of a key (or of the partition if not
// keyed), new and empty if it has no records. p.mu is held.
func (p *processor) laneLocked(tp topicPartition, keyed bool, key []byte) *lane {
	pl := p.lanes[tp]
	if pl == nil {
		pl = &partLanes{byKey: map[string]*lane{}}
		p.lanes[tp] = pl
	}
	var ln *lane
	if keyed {
		ln = pl.byKey[string(key)]
	} else {
		ln = pl.unkeyed
	}
	if ln != nil {
		return ln
	}
	if n := len(p.freeLane); n > 0 {
		ln = p.freeLane[n-1]
		p.freeLane = p.freeLane[:n-1]
	} else {
		ln = &lane{}
	}
	ln.tp, ln.keyed = tp, keyed
	if keyed {
		ln.key = string(key)
		pl.byKey[ln.key] = ln
	} else {
		pl.unkeyed = ln
	}
	return ln
}

// freeLaneLocked removes an empty lane from its partition. p.mu is held.
func (p *processor) freeLaneLocked(ln *lane) {
	if pl := p.lanes[ln.tp]; pl != nil {
		if ln.keyed {
			delete(pl.byKey, ln.key)
		} else {
			pl.unkeyed = nil
		}
	}
	ln.key = ""
	if len(p.freeLane) < 1024 {
		p.freeLane = append(p.freeLane, ln)
	}
}

// retireLocked ends a registered record: done (processed or skipped)
// records let the partition's progress move over them; others hold it.
// p.mu is held.
func (p *processor) retireLocked(ref procRef, done bool) {
	pp := ref.part
	pp.pending--
	if done {
		pp.slots[ref.seq-pp.base].done = true
		for pp.head < len(pp.slots) && pp.slots[pp.head].done {
			s := pp.slots[pp.head]
			pp.commit, pp.commitEpoch = s.offset+1, s.epoch
			pp.head++
		}
	}
	p.wakeLocked()
}

// wakeRoomLocked wakes handOver if it waits for room. p.mu is held.
func (p *processor) wakeRoomLocked() {
	if p.roomWait {
		p.roomWait = false
		close(p.room)
		p.room = make(chan struct{})
	}
}

// wakeLocked wakes whoever waits for a change; p.mu is held.
func (p *processor) wakeLocked() {
	if p.waiting {
		p.waiting = false
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// waitChangeLocked waits, with p.mu released meanwhile, until a record is
// retired or processing stops, or until done or timer fires (either may be
// nil); it returns false for the latter two. p.mu is held.
func (p *processor) waitChangeLocked(done <-chan struct{}, timer <-chan time.Time) bool {
	p.waiting = true
	ch := p.changed
	p.mu.Unlock()
	defer p.mu.Lock()
	select {
	case <-ch:
		return true
	case <-done:
		return false
	case <-timer:
		return false
	}
}

func (p *processor) takeItemLocked() *procItem {
	if n := len(p.free); n > 0 {
		it := p.free[n-1]
		p.free = p.free[:n-1]
		return it
	}
	return &procItem{}
}

// fill copies r into it: key, value and header values in one buffer.
func (it *procItem) fill(r *Record, ref procRef) {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Value)
	}
	if cap(it.buf) < n {
		it.buf = make([]byte, 0, n)
	}
	buf := it.buf[:0]
	it.rec = *r
	it.rec.Key, buf = appendCopy(buf, r.Key)
	it.rec.Value, buf = appendCopy(buf, r.Value)
	it.hdrs = it.hdrs[:0]
	for _, h := range r.Headers {
		var v []byte
		v, buf = appendCopy(buf, h.Value)
		it.hdrs = append(it.hdrs, Header{Key: h.Key, Value: v})
	}
	it.rec.Headers = nil
	if len(r.Headers) > 0 {
		it.rec.Headers = it.hdrs
	}
	it.buf = buf
	it.ref = ref
}

// appendCopy appends b to buf and returns the copy (nil for nil) and buf.
func appendCopy(buf, b []byte) ([]byte, []byte) {
	if b == nil {
		return nil, buf
	}
	start := len(buf)
	buf = append(buf, b...)
	return buf[start:len(buf):len(buf)], buf
}

// worker runs the head record of ready lanes until quit.
func (p *processor) worker() {
	defer p.wg.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for len(p.ready) == 0 && !p.quit {
			p.work.Wait()
		}
		if len(p.ready) == 0 {
			return
		}
		ln := p.ready[0]
		p.ready[0] = nil
		p.ready = p.ready[1:]
		it := ln.items[0]
		done := false
		if !it.ref.part.dead && !p.halt {
			p.mu.Unlock()
			done = p.handle(it)
			p.mu.Lock()
		}
		p.finishLocked(ln, it, done)
	}
}

// finishLocked retires a lane's head record and passes the lane on to the
// next worker, or frees it. p.mu is held.
func (p *processor) finishLocked(ln *lane, it *procItem, done bool) {
	p.retireLocked(it.ref, done)
	p.inflight--
	copy(ln.items, ln.items[1:])
	ln.items[len(ln.items)-1] = nil
	ln.items = ln.items[:len(ln.items)-1]
	if p.inflight <= p.cfg.maxInFlight-max(p.cfg.maxInFlight/8, 1) ||
		len(ln.backlog) > 0 && len(ln.items) <= p.laneRoom()/2 {
		p.wakeRoomLocked()
	}
	switch {
	case len(ln.items) > 0:
		p.ready = append(p.ready, ln)
		p.work.Signal()
	case len(ln.backlog) == 0:
		p.freeLaneLocked(ln)
	}
	it.rec, it.ref = Record{}, procRef{}
	clear(it.hdrs)
	if len(p.free) < p.cfg.maxInFlight {
		p.free = append(p.free, it)
	}
}

// handle calls the handler until it succeeds or the error policy says
// otherwise; it reports whether the record counts as processed.
func (p *processor) handle(it *procItem) bool {
	for attempt := 1; ; attempt++ {
		err := p.h(p.runCtx, &it.rec)
		if err == nil {
			return true
		}
		act := p.cfg.onError(p.runCtx, &it.rec, err, attempt)
		switch act.kind {
		case actionSkip:
			p.log.Debug("kpax: process: record skipped", "topic", it.rec.Topic, "partition", it.rec.Partition,
				"offset", it.rec.Offset, "err", err)
			return true
		case actionRetry:
			if !p.sleepRetry(it, act.after) {
				return false
			}
		default:
			p.stop(&ProcessError{Topic: it.rec.Topic, Partition: it.rec.Partition, Offset: it.rec.Offset, Attempts: attempt, Err: err})
			return false
		}
	}
}

// sleepRetry waits d before a retry; false if processing stopped
// meanwhile or the record's partition was given up.
func (p *processor) sleepRetry(it *procItem, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.halted:
	case <-p.runCtx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !it.ref.part.dead && !p.halt && p.runCtx.Err() == nil
}

// stop records the error that stops processing: records that have not
// started are dropped, those in handlers finish.
func (p *processor) stop(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
		p.log.Warn("kpax: process: stopped by the error policy", "group", p.g.group, "err", err)
	}
	p.haltLocked()
}

// haltLocked makes the workers drop the records that have not started.
// p.mu is held.
func (p *processor) haltLocked() {
	if !p.halt {
		p.halt = true
		close(p.halted)
	}
	p.wakeLocked()
}

// finish ends a Process call: it lets the records in flight finish (up to
// the drain timeout, then cancels the handlers' context and waits for
// them), stops the workers, commits the progress and tells the group that
// nothing polled is held any more.
func (p *processor) finish(ctx context.Context) error {
	p.mu.Lock()
	t := time.NewTimer(p.cfg.drain)
	for p.inflight > 0 && p.waitChangeLocked(nil, t.C) {
	}
	t.Stop()
	if p.inflight > 0 {
		p.log.Warn("kpax: process: records still in flight after the drain timeout", "group", p.g.group, "records", p.inflight)
		p.haltLocked()
	}
	p.quit = true
	p.wakeLocked()
	p.work.Broadcast()
	p.mu.Unlock()
	p.cancelRun()
	p.wg.Wait()
	n := p.g.c.pollCount()
	p.g.mu.Lock()
	p.g.setDone(n)
	closed := p.g.closed || p.g.fatal != nil
	p.g.mu.Unlock()
	if closed {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.g.conf.requestTimeout)
	defer cancel()
	if err := p.g.Commit(cctx); err != nil && !errors.Is(err, ErrConsumerClosed) && !errors.Is(err, ErrClientClosed) {
		return err
	}
	return nil
}

// --- hooks called by the group (group.go, group_join.go, group_commit.go) ---

// revoking waits, up to the drain timeout or ctx, until the records of
// tps taken so far are finished; after that, those that have not started
// are dropped. Their progress stays for the revocation's commit.
func (p *processor) revoking(ctx context.Context, tps []topicPartition) {
	if p == nil || len(tps) == 0 {
		return
	}
	t := time.NewTimer(p.cfg.drain)
	defer t.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutLocked(tps)
	for {
		left := 0
		for _, tp := range tps {
			if pp := p.parts[tp]; pp != nil {
				left += pp.pending
			}
		}
		if left == 0 {
			return
		}
		if !p.waitChangeLocked(ctx.Done(), t.C) {
			p.log.Warn("kpax: process: revoked partitions' records still in flight after the drain timeout",
				"group", p.g.group, "records", left)
			for _, tp := range tps {
				if pp := p.parts[tp]; pp != nil {
					pp.dead = true
				}
			}
			p.wakeLocked()
			return
		}
	}
}

// cutLocked drops the records of partitions being revoked that have not
// been handed over and come after every one that has: the next owner
// processes them, and nothing processed here is lost to the commit. Those
// before a handed-over one (another key's lane was ahead) are still
// handed over, so that the revocation's commit covers it. p.mu is held.
func (p *processor) cutLocked(tps []topicPartition) {
	for _, tp := range tps {
		if pp := p.parts[tp]; pp != nil {
			pp.cut = true
		}
	}
	for _, ln := range p.backlogged {
		keep := 0
		for _, i := range ln.backlog {
			ref := p.refs[i]
			if ref.part.cutOff(ref.seq) {
				p.retireLocked(ref, false)
				continue
			}
			ln.backlog[keep] = i
			keep++
		}
		ln.backlog = ln.backlog[:keep]
	}
	p.wakeRoomLocked() // handOver may have nothing left to wait for
}

// assigned starts new progress for partitions the member gains; records
// of an earlier assignment still queued are dropped.
func (p *processor) assigned(tps []topicPartition) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tp := range tps {
		if pp := p.parts[tp]; pp != nil {
			pp.dead = true
		}
		p.parts[tp] = newProcPart(tp)
	}
	p.wakeLocked()
}

// lost forgets partitions taken away without a revocation: their records
// that have not started are dropped and nothing of them is committed.
func (p *processor) lost(tps []topicPartition) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tp := range tps {
		if pp := p.parts[tp]; pp != nil {
			pp.dead = true
			delete(p.parts, tp)
		}
	}
	p.wakeLocked()
}

// limit lowers the offsets of a commit to the processed progress of the
// partitions Process tracks, and removes those with no progress yet.
func (p *processor) limit(offs map[topicPartition]position) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for tp, pos := range offs {
		pp := p.parts[tp]
		switch {
		case pp == nil:
		case pp.commit < 0:
			delete(offs, tp)
		case pp.commit < pos.offset:
			offs[tp] = position{offset: pp.commit, epoch: pp.commitEpoch}
		}
	}
}
