package kpax

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Partition selection: the Partitioner interface and the partitioners
// kpax provides, and the producer's side of it: what it knows of each
// topic's partitions (count, leaders, which are available) and how a
// record gets its partition, with no lock held while user code decides.

// A Partitioner chooses the partition of a record that does not name one.
// The producer calls it with the topic's partition count n and the
// partitions that are available now: those with a reachable leader and no
// recent failure (avail is all partitions when none is; it must not be
// changed). It must return a partition in [0, n); another value fails the
// record with ErrUnknownTopicOrPartition.
//
// It is called under no lock of the producer, from Produce's goroutine or,
// for records that move to another partition, from the producer's sender,
// so several calls can run at once and it may call the producer (e.g.
// Produce a copy elsewhere); it must not block waiting on the producer
// (a Produce whose buffer is full waits for the sender it runs on).
type Partitioner interface {
	Partition(r *Record, n int, avail []int32) int32
}

// Murmur2Partitioner returns the partition the Java client (and librdkafka's
// murmur2_random) gives a keyed record: murmur2(key) made positive, modulo
// the partition count. Records with a nil key go to a random available
// partition. It is the default for keyed records.
func Murmur2Partitioner() Partitioner { return murmur2Partitioner{} }

type murmur2Partitioner struct{}

func (murmur2Partitioner) Partition(r *Record, n int, avail []int32) int32 {
	if r.Key == nil {
		return randomAvailable(n, avail)
	}
	return int32(int(murmur2(r.Key)&0x7fffffff) % n)
}

func randomAvailable(n int, avail []int32) int32 {
	if len(avail) > 0 {
		return avail[rand.IntN(len(avail))]
	}
	return int32(rand.IntN(n))
}

// murmur2 is the 32-bit MurmurHash2 with the seed the Java client uses.
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(data))
	n := len(data) / 4
	for i := 0; i < n; i++ {
		k := uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[4*n:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// StickyPartitioner returns the default partitioner: keyed records by
// Murmur2, unkeyed records to one available partition until its batch is
// sent, then to another (KIP-480, KIP-794), which makes larger batches than
// spreading each record.
func StickyPartitioner() Partitioner { return &stickyPartitioner{sticky: map[string]int32{}} }

type stickyPartitioner struct {
	mu     sync.Mutex
	sticky map[string]int32 // by topic: the current partition
}

func (s *stickyPartitioner) Partition(r *Record, n int, avail []int32) int32 {
	if r.Key != nil {
		return int32(int(murmur2(r.Key)&0x7fffffff) % n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.sticky[r.Topic]
	if !ok || p >= int32(n) || !contains(avail, p) {
		p = randomAvailable(n, avail)
		s.sticky[r.Topic] = p
	}
	return p
}

// batchSent tells a sticky partitioner that a batch left: unkeyed records
// move to another partition.
func (s *stickyPartitioner) batchSent(topic string, p int32) {
	s.mu.Lock()
	if q, ok := s.sticky[topic]; ok && q == p {
		delete(s.sticky, topic)
	}
	s.mu.Unlock()
}

func contains(s []int32, p int32) bool {
	if len(s) == 0 {
		return true
	}
	for _, x := range s {
		if x == p {
			return true
		}
	}
	return false
}

// RoundRobinPartitioner returns a partitioner that sends records, keyed or
// not, to the available partitions in turn.
func RoundRobinPartitioner() Partitioner { return &roundRobinPartitioner{} }

type roundRobinPartitioner struct {
	next atomic.Uint64
}

func (p *roundRobinPartitioner) Partition(_ *Record, n int, avail []int32) int32 {
	next := p.next.Add(1)
	if len(avail) > 0 {
		return avail[next%uint64(len(avail))]
	}
	return int32(next % uint64(n))
}

// ManualPartitioner returns a partitioner that keeps Record.Partition as it
// is: the application chooses every partition.
func ManualPartitioner() Partitioner { return manualPartitioner{} }

type manualPartitioner struct{}

func (manualPartitioner) Partition(r *Record, _ int, _ []int32) int32 { return r.Partition }

// KeyStablePartitioner returns a partitioner that keeps keys where they
// were when partitions are added to a topic: it hashes a keyed record
// (murmur2, as Murmur2Partitioner) over the partition count the topic had
// when it first partitioned a record of it, not over the current one, until
// Rebase. Unkeyed records go sticky (as StickyPartitioner) over all the
// partitions, new ones included.
//
// The trade-off: after an expansion, the new partitions get no keyed
// records until Rebase, so keyed load does not spread to them; what it buys
// is that every key stays on its partition, in order with its earlier
// records, and with the state a consumer keeps for it. The Java client (and
// kpax's default) rehashes over the new count at once: a key moves, and
// records of it on the old and new partitions may be processed out of
// order. Call Rebase when the consumers are ready for keys to move (e.g.
// after the old partitions were drained). Pair it with
// WithOnPartitionsChanged to learn of an expansion. One KeyStablePartitioner
// may serve several producers; it is safe for concurrent use.
func KeyStablePartitioner() *StableKeys {
	return &StableKeys{counts: map[string]int{}, sticky: &stickyPartitioner{sticky: map[string]int32{}}}
}

// StableKeys is the partitioner KeyStablePartitioner returns.
type StableKeys struct {
	mu     sync.Mutex
	counts map[string]int // by topic: the count keys are hashed over
	sticky *stickyPartitioner
}

// Partition implements Partitioner.
func (s *StableKeys) Partition(r *Record, n int, avail []int32) int32 {
	if r.Key == nil {
		return s.sticky.Partition(r, n, avail)
	}
	s.mu.Lock()
	base, ok := s.counts[r.Topic]
	if !ok || base > n { // first seen, or fewer partitions than remembered: take the count
		base = n
		s.counts[r.Topic] = n
	}
	s.mu.Unlock()
	return int32(int(murmur2(r.Key)&0x7fffffff) % base)
}

// Rebase makes keyed records of topic hash over the topic's partition count
// of the next record, from then on: keys move to where the default
// partitioner puts them.
func (s *StableKeys) Rebase(topic string) {
	s.mu.Lock()
	delete(s.counts, topic)
	s.mu.Unlock()
}

// Count returns the partition count keys of topic are hashed over, 0 if no
// keyed record of it was partitioned since the last Rebase.
func (s *StableKeys) Count(topic string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[topic]
}

func (s *StableKeys) batchSent(topic string, p int32) { s.sticky.batchSent(topic, p) }

// WithOnPartitionsChanged sets a function called when the partition count
// of a topic the producer writes changes (partitions were added): with the
// count before and after. The producer learns of it from metadata, at
// most the metadata max age (WithMetadataMaxAge) after the change. It runs
// on the goroutine that runs record callbacks, in order with them, under no
// lock of the producer. Default: none. Producer option.
func WithOnPartitionsChanged(f func(topic string, before, after int)) Option {
	return func(c *config) { c.in(scopeProducer, "WithOnPartitionsChanged"); c.producer.onPartitions = f }
}

// topicState is what the producer knows of a topic's partitions.
type topicState struct {
	name    string
	n       int     // partition count, 0 while unknown
	avail   []int32 // partitions not being avoided
	err     error   // a metadata error, for records waiting on the topic
	loading bool
	// reloadAt is when the producer next takes the topic's metadata again:
	// the metadata max age after the last load (partition expansion,
	// leader moves), or sooner when a partition's avoidance period ends.
	reloadAt time.Time
	meta     *TopicMetadata // as last applied (immutable), for new partitions' leaders
}

// topicView is what the Partitioner is given for a topic: its partition
// count and the partitions available now (nil: all). It never changes: a
// change publishes a new one (setAvail).
type topicView struct {
	name  string
	n     int
	avail []int32
}

// viewOf returns the topic's view, nil while the topic is not known. The
// first topic's view is at hand without a map lookup (most producers write
// one topic).
func (p *Producer) viewOf(topic string) *topicView {
	if v := p.firstView.Load(); v != nil && v.name == topic {
		return v
	}
	v, _ := p.views.Load(topic)
	view, _ := v.(*topicView)
	return view
}

// setAvail sets a topic's available partitions and publishes its view;
// avail is not changed afterwards. p.mu is held.
func (p *Producer) setAvail(ts *topicState, avail []int32) {
	ts.avail = avail
	v := &topicView{name: ts.name, n: ts.n, avail: avail}
	p.views.Store(ts.name, v)
	if f := p.firstView.Load(); f == nil || f.name == ts.name {
		p.firstView.Store(v)
	}
}

// place queues a record on the partition the Partitioner chose for it, of a
// topic with n partitions. p.mu is held.
func (p *Producer) place(pr pending, part int32, n int) {
	if p.drained {
		p.finish(pr, ErrProducerClosed)
		return
	}
	if part < 0 || int(part) >= n {
		p.finish(pr, &PartitionError{Topic: pr.rec.Topic, Partition: part, Err: ErrUnknownTopicOrPartition})
		return
	}
	pr.rec.Partition = part
	p.addPending(topicPartition{pr.rec.Topic, part}, pr)
}

// routeLater queues records of a known topic whose partition is to be chosen
// (again): parked until the topic was known, or moving off a failed
// partition. The sender partitions them (routeQueued). p.mu is held.
func (p *Producer) routeLater(prs ...pending) {
	if p.drained {
		for _, pr := range prs {
			p.finish(pr, ErrProducerClosed)
		}
		return
	}
	p.unrouted = append(p.unrouted, prs...)
	p.poke()
}

// routeQueued partitions the records routeLater queued, calling the
// Partitioner with no lock held. The sender runs it before each pass.
// Meanwhile (routing) Produce queues its records behind these, so that a
// key's records keep their order.
func (p *Producer) routeQueued() {
	p.mu.Lock()
	prs := p.unrouted
	p.unrouted, p.routing = nil, len(prs) > 0
	p.mu.Unlock()
	if len(prs) == 0 {
		return
	}
	parts := make([]int32, len(prs))
	ns := make([]int, len(prs))
	for i, pr := range prs {
		parts[i] = -1
		if view := p.viewOf(pr.rec.Topic); view != nil {
			parts[i], ns[i] = p.part.Partition(pr.rec, view.n, view.avail), view.n
		}
	}
	p.mu.Lock()
	for i, pr := range prs {
		p.place(pr, parts[i], ns[i])
	}
	p.routing = false
	p.mu.Unlock()
}

// WithPartitioner sets how records are spread over partitions. Default:
// StickyPartitioner (murmur2 for keyed records, sticky for the others).
// Producer option.
func WithPartitioner(p Partitioner) Option {
	return func(c *config) { c.in(scopeProducer, "WithPartitioner"); c.producer.partitioner = p }
}

// WithPartitionAvoidance sets how long unkeyed records avoid a partition
// whose produce failed, before trying it again. Default: 10s. Producer option.
func WithPartitionAvoidance(d time.Duration) Option {
	return func(c *config) { c.in(scopeProducer, "WithPartitionAvoidance"); c.producer.avoidPeriod = d }
}

// loadTopic loads a topic's partitions in the background. p.mu is held.
func (p *Producer) loadTopic(topic string) {
	ts := p.topics[topic]
	if ts == nil {
		ts = &topicState{name: topic}
		p.topics[topic] = ts
	}
	if ts.loading {
		return
	}
	ts.loading = true
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.ctx, p.cl.cfg.requestTimeout)
		defer cancel()
		tm, err := p.cl.meta.topic(ctx, topic)
		p.mu.Lock()
		defer p.mu.Unlock()
		ts.loading = false
		p.applyTopic(topic, tm, err)
		p.poke()
	}()
}

// applyTopic takes new metadata of a topic: partition count (expansion
// included), leaders, and records parked until the topic was known.
// p.mu is held.
func (p *Producer) applyTopic(topic string, tm *TopicMetadata, err error) {
	ts := p.topics[topic]
	if err != nil {
		ts.err = err
		ts.reloadAt = time.Now().Add(p.cl.cfg.retryBackoffMax) // try again then
		p.nextReload = minTime(p.nextReload, ts.reloadAt)
		return
	}
	ts.err = nil
	if before, after := ts.n, len(tm.Partitions); before > 0 && after != before && p.cfg.onPartitions != nil {
		f := p.cfg.onPartitions
		p.queueOutcome(outcome{cb: func(*Record, error) { f(topic, before, after) }})
	}
	ts.n = len(tm.Partitions)
	ts.meta = tm
	now := time.Now()
	ts.reloadAt = now.Add(p.cl.cfg.metadataMaxAge)
	p.nextReload = minTime(p.nextReload, ts.reloadAt)
	var avail []int32 // a new slice: views share the old one
	for _, pm := range tm.Partitions {
		tp := topicPartition{topic, pm.Partition}
		ps := p.parts[tp]
		if ps != nil {
			p.newLeader(ps, pm)
		}
		switch {
		case pm.Leader < 0:
		case ps == nil || now.After(ps.avoidUntil) && !ps.congested:
			avail = append(avail, pm.Partition)
		case ps.congested: // available again when a batch of it leaves (cutBatch)
		default: // avoided: available again when the period ends
			p.reloadBy(ts, ps.avoidUntil)
		}
	}
	if len(avail) == ts.n {
		avail = nil // all available: no restriction
	}
	p.setAvail(ts, avail)
	if parked := p.parts[topicPartition{topic, -1}]; parked != nil && ts.n > 0 {
		p.routeLater(slices.Concat(parked.takePending()...)...)
	}
}

// newLeader takes a partition's leader from metadata. A newer leader than
// the one its batches failed on ends the retry backoff, and ends the wait
// for requests still in flight to the former leader: their connection is
// closed, so their batches are retried (in doubt, idempotent ones keep
// their sequence numbers) on the new leader rather than after the request
// timeout. p.mu is held.
func (p *Producer) newLeader(ps *partState, pm PartitionMetadata) {
	if pm.Leader < 0 || ps.leader >= 0 && pm.LeaderEpoch < ps.leaderEpoch {
		return
	}
	moved := pm.LeaderEpoch > ps.leaderEpoch || pm.Leader != ps.sentTo
	ps.leader, ps.leaderEpoch = pm.Leader, pm.LeaderEpoch
	if !moved {
		return
	}
	ps.retryAt = time.Time{}
	if ps.inflight > 0 && ps.sentTo != pm.Leader && pm.LeaderEpoch >= 0 {
		if pool, err := p.cl.pool(ps.sentTo); err == nil {
			pool.closeLane(laneDefault, fmt.Errorf("%w: %s/%d moved to broker %d", ErrNotLeaderOrFollower, ps.tp.topic, ps.tp.partition, pm.Leader))
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// reloadTopics takes again the metadata of topics whose reload time has
// come (see topicState.reloadAt): from the client's cache, which refreshes
// itself every metadata max age, so this costs no request in the steady
// state. p.mu is held.
func (p *Producer) reloadTopics(now time.Time) {
	if now.Before(p.nextReload) {
		return
	}
	p.nextReload = now.Add(p.cl.cfg.metadataMaxAge)
	for name, ts := range p.topics {
		if ts.n > 0 && !ts.loading && now.After(ts.reloadAt) {
			p.loadTopic(name) // applyTopic sets the next reloadAt
		} else {
			p.nextReload = minTime(p.nextReload, ts.reloadAt)
		}
	}
}

// reloadBy makes the producer take a topic's metadata again at t at the
// latest. p.mu is held.
func (p *Producer) reloadBy(ts *topicState, t time.Time) {
	ts.reloadAt = minTime(ts.reloadAt, t)
	p.nextReload = minTime(p.nextReload, t)
}
