package kpax

import (
	"math/rand/v2"
	"sync"
)

// A Partitioner chooses the partition of a record that does not name one.
// The producer calls it with the topic's partition count n and the
// partitions that are available now: those with a reachable leader and no
// recent failure (avail is all partitions when none is). It must return a
// partition in [0, n). It is called with the producer's lock held, so it
// must be fast and must not call the producer.
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
	mu   sync.Mutex
	next int
}

func (p *roundRobinPartitioner) Partition(_ *Record, n int, avail []int32) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	if len(avail) > 0 {
		return avail[p.next%len(avail)]
	}
	return int32(p.next % n)
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
