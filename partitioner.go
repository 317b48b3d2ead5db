package kpax

import (
	"math/rand/v2"
	"sync"
)

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

// topicView is what the Partitioner is given for a topic: its partition
// count and the partitions available now (nil: all). It never changes: a
// change publishes a new one (setAvail).
type topicView struct {
	n     int
	avail []int32
}

// viewOf returns the topic's view, nil while the topic is not known.
func (p *Producer) viewOf(topic string) *topicView {
	v, _ := p.views.Load(topic)
	view, _ := v.(*topicView)
	return view
}

// setAvail sets a topic's available partitions and publishes its view;
// avail is not changed afterwards. p.mu is held.
func (p *Producer) setAvail(ts *topicState, avail []int32) {
	ts.avail = avail
	p.views.Store(ts.name, &topicView{n: ts.n, avail: avail})
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
