package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"h12.me/kpax"
)

// faultNet is the dialer both clients get (kpax.WithDialer, kgo.Dialer): every
// broker address a client dials gets a TCP proxy on 127.0.0.1, made on first
// dial, and Kill closes the live connections through one broker's proxy (or
// all), both sides, as the kpax suite's fault proxy does. Dials are bounded by
// dialTimeout, because franz-go applies its DialTimeout only to its own dialer.
type faultNet struct {
	mu sync.Mutex
	px map[string]*proxy // by broker address

	dials, kills atomic.Int64
}

const dialTimeout = time.Second

type proxy struct {
	target string
	ln     net.Listener
	mu     sync.Mutex
	pairs  map[*pair]struct{}
	wg     sync.WaitGroup
}

type pair struct {
	client, broker net.Conn
	once           sync.Once
}

func (p *pair) close() { p.once.Do(func() { p.client.Close(); p.broker.Close() }) }

func newFaultNet() *faultNet { return &faultNet{px: map[string]*proxy{}} }

// Dial connects to addr's proxy.
func (fn *faultNet) Dial(ctx context.Context, _, addr string) (net.Conn, error) {
	p, err := fn.proxy(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", p.ln.Addr().String())
}

func (fn *faultNet) proxy(addr string) (*proxy, error) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if p := fn.px[addr]; p != nil {
		return p, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{target: addr, ln: ln, pairs: map[*pair]struct{}{}}
	fn.px[addr] = p
	p.wg.Add(1)
	go p.accept(fn)
	return p, nil
}

// Kill closes the live connections to addr ("" = every broker).
func (fn *faultNet) Kill(addr string) {
	fn.mu.Lock()
	ps := make([]*proxy, 0, len(fn.px))
	for a, p := range fn.px {
		if addr == "" || a == addr {
			ps = append(ps, p)
		}
	}
	fn.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		for pp := range p.pairs {
			pp.close()
			fn.kills.Add(1)
		}
		p.mu.Unlock()
	}
}

// Close stops every proxy and waits for their goroutines.
func (fn *faultNet) Close() {
	fn.mu.Lock()
	ps := fn.px
	fn.px = map[string]*proxy{}
	fn.mu.Unlock()
	for _, p := range ps {
		p.ln.Close()
		p.mu.Lock()
		for pp := range p.pairs {
			pp.close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	}
}

func (p *proxy) accept(fn *faultNet) {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		fn.dials.Add(1)
		pp := &pair{client: c, broker: b}
		p.mu.Lock()
		p.pairs[pp] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pp, b, c)
		go p.pipe(pp, c, b)
	}
}

func (p *proxy) pipe(pp *pair, dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	pp.close()
	p.mu.Lock()
	delete(p.pairs, pp)
	p.mu.Unlock()
}

// loop calls f every lo-hi (drawn from rnd) until stop; stop returns how many
// calls f counted as done.
func loop(rnd *rand.Rand, lo, hi time.Duration, f func(*rand.Rand) bool) (stop func() int) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	n := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(lo + time.Duration(rnd.Int64N(int64(hi-lo)+1))):
			}
			if f(rnd) {
				n++
			}
		}
	}()
	return func() int { close(done); wg.Wait(); return n }
}

// killLoop kills, every 50-300ms on a schedule drawn from seed, the
// connections of one broker of addrs or of all of them (the kpax suite's
// killLoop).
func killLoop(fn *faultNet, seed uint64, addrs []string) (stop func() int) {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return loop(rnd, 50*time.Millisecond, 300*time.Millisecond, func(rnd *rand.Rand) bool {
		if i := rnd.IntN(len(addrs) + 1); i < len(addrs) {
			fn.Kill(addrs[i])
		} else {
			fn.Kill("")
		}
		return true
	})
}

// moveLoop moves the leader of a partition of topic every 0.5-1.5s, on a
// schedule drawn from seed, through kpax's Admin on a client of its own that
// bypasses the proxies (the kpax suite's moveLoop). stop returns how many
// moves succeeded; failures go to logf.
func moveLoop(cl *kpax.Client, topic string, parts int32, seed uint64, logf func(string, ...any)) (stop func() int) {
	rnd := rand.New(rand.NewPCG(seed, seed^0x7f4a7c159e3779b9))
	return loop(rnd, 500*time.Millisecond, 1500*time.Millisecond, func(rnd *rand.Rand) bool {
		part := rnd.Int32N(parts)
		if err := moveLeader(cl, topic, part, 1+rnd.IntN(2)); err != nil {
			logf("moving the leader of %s/%d: %v", topic, part, err)
			return false
		}
		return true
	})
}

// moveLeader rotates a partition's replica list by k (a reassignment to the
// same brokers, another one first) and elects the preferred leader.
func moveLeader(cl *kpax.Client, topic string, part int32, k int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	md, err := cl.Metadata(ctx, topic)
	if err != nil {
		return err
	}
	if len(md.Topics) != 1 || int(part) >= len(md.Topics[0].Partitions) {
		return fmt.Errorf("no partition %d in the metadata", part)
	}
	rs := md.Topics[0].Partitions[part].Replicas
	if len(rs) < 2 {
		return fmt.Errorf("replicas %v: nowhere to move", rs)
	}
	k %= len(rs)
	rotated := append(slices.Clone(rs[k:]), rs[:k]...)
	a := cl.Admin()
	if _, err := a.AlterPartitionReassignments(ctx, kpax.Reassignment{Topic: topic, Partition: part, Replicas: rotated}); err != nil {
		return err
	}
	for {
		_, err := a.ElectLeaders(ctx, false, kpax.TopicPartitions{topic: {part}})
		if err == nil || !errors.Is(err, kpax.ErrPreferredLeaderNotAvailable) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond) // the reassignment is not applied yet
	}
}
