package kpax

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultNet puts a TCP proxy in front of every broker a client dials, to
// inject network faults in front of real brokers. Give the client
// WithDialer(fn.Dial): each broker address gets its own proxy listener on
// 127.0.0.1, created on first dial, so addresses from metadata go through
// the proxy too.
//
// Faults apply to one broker address, or to all when addr is "":
//   - Kill closes the live connections (both sides).
//   - DropResponses discards what brokers send back: requests arrive and are
//     acted on, responses never come (the client times out).
//   - Blackhole stalls connections in both directions; new ones hang.
//   - Refuse closes new connections at once.
//   - Chaos kills connections at random intervals until its stop is called.
type faultNet struct {
	t  testing.TB
	mu sync.Mutex
	px map[string]*faultProxy // by broker address

	Dials atomic.Int64 // connections made through the proxies
	Kills atomic.Int64 // connections killed by Kill or Chaos
}

type faultProxy struct {
	fn     *faultNet
	target string
	ln     net.Listener
	mu     sync.Mutex
	pairs  map[*proxyPair]struct{}
	drop   atomic.Bool
	hole   atomic.Bool
	refuse atomic.Bool
	wg     sync.WaitGroup
}

type proxyPair struct {
	client, broker net.Conn
	once           sync.Once
	closed         atomic.Bool
}

func (pp *proxyPair) close() {
	pp.once.Do(func() {
		pp.closed.Store(true)
		pp.client.Close()
		pp.broker.Close()
	})
}

func newFaultNet(t testing.TB) *faultNet {
	fn := &faultNet{t: t, px: make(map[string]*faultProxy)}
	t.Cleanup(fn.close)
	return fn
}

// Dial is a dialer for WithDialer: it connects to addr's proxy.
func (fn *faultNet) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	p, err := fn.proxy(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", p.ln.Addr().String())
}

// Option is WithDialer(fn.Dial).
func (fn *faultNet) Option() Option { return WithDialer(fn.Dial) }

func (fn *faultNet) proxy(addr string) (*faultProxy, error) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if p := fn.px[addr]; p != nil {
		return p, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &faultProxy{fn: fn, target: addr, ln: ln, pairs: make(map[*proxyPair]struct{})}
	fn.px[addr] = p
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// each runs f on the proxy of addr, or on every proxy when addr is "".
func (fn *faultNet) each(addr string, f func(p *faultProxy)) {
	fn.mu.Lock()
	var ps []*faultProxy
	for a, p := range fn.px {
		if addr == "" || a == addr {
			ps = append(ps, p)
		}
	}
	fn.mu.Unlock()
	if addr != "" && len(ps) == 0 {
		// A fault set before the first dial still applies.
		p, err := fn.proxy(addr)
		if err != nil {
			fn.t.Error(err)
			return
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		f(p)
	}
}

// Kill closes the live connections to addr ("" = all) and returns how many.
func (fn *faultNet) Kill(addr string) int {
	n := 0
	fn.each(addr, func(p *faultProxy) {
		p.mu.Lock()
		for pp := range p.pairs {
			pp.close()
			n++
		}
		p.mu.Unlock()
	})
	fn.Kills.Add(int64(n))
	return n
}

// DropResponses makes the proxies of addr discard responses (or stop).
func (fn *faultNet) DropResponses(addr string, on bool) {
	fn.each(addr, func(p *faultProxy) { p.drop.Store(on) })
}

// Blackhole stalls the connections of addr in both directions (or stops).
func (fn *faultNet) Blackhole(addr string, on bool) {
	fn.each(addr, func(p *faultProxy) { p.hole.Store(on) })
}

// Refuse makes new connections to addr close at once (or stops).
func (fn *faultNet) Refuse(addr string, on bool) {
	fn.each(addr, func(p *faultProxy) { p.refuse.Store(on) })
}

// Chaos kills every live connection at random intervals in [lo, hi) until
// the returned stop is called (stop waits for the goroutine).
func (fn *faultNet) Chaos(lo, hi time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			d := lo + time.Duration(rand.Int64N(int64(hi-lo)+1))
			select {
			case <-done:
				return
			case <-time.After(d):
				fn.Kill("")
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

func (fn *faultNet) close() {
	fn.mu.Lock()
	ps := fn.px
	fn.px = map[string]*faultProxy{}
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

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			c.Close()
			continue
		}
		b, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.fn.Dials.Add(1)
		pp := &proxyPair{client: c, broker: b}
		p.mu.Lock()
		p.pairs[pp] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pp, b, c, false)
		go p.pipe(pp, c, b, true)
	}
}

// pipe copies src to dst until either side fails; response is true for the
// broker-to-client direction.
func (p *faultProxy) pipe(pp *proxyPair, dst, src net.Conn, response bool) {
	defer p.wg.Done()
	defer func() {
		pp.close()
		p.mu.Lock()
		delete(p.pairs, pp)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.hole.Load() {
			// Stalled: hold the bytes until the blackhole ends or the pair dies.
			time.Sleep(10 * time.Millisecond)
			if pp.closed.Load() {
				return
			}
		}
		if n > 0 && !(response && p.drop.Load()) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a closed pair
		}
	}
}

// TestFaultNet checks the proxy itself against the real broker: traffic
// passes, Kill breaks connections, DropResponses makes requests time out,
// and the client recovers when the fault ends.
func TestFaultNet(t *testing.T) {
	addr := testBrokers(t)["4.x"]
	if addr == "" {
		t.Skip("no 4.x broker")
	}
	fn := newFaultNet(t)
	cl := newTestClient(t, addr, fn.Option(), WithRequestTimeout(time.Second),
		WithRetryBackoff(10*time.Millisecond, 100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cl.RequestBroker(ctx, -1, metadataFor()); err != nil {
		t.Fatal(err)
	}
	if fn.Dials.Load() == 0 {
		t.Fatal("the client did not dial through the proxy")
	}
	if n := fn.Kill(""); n == 0 {
		t.Fatal("no connection to kill")
	}
	fn.DropResponses("", true)
	start := time.Now()
	if _, err := cl.RequestBroker(ctx, -1, metadataFor()); err == nil {
		t.Fatal("request succeeded with responses dropped")
	} else {
		t.Logf("with responses dropped: %v after %v", err, time.Since(start).Round(time.Millisecond))
	}
	fn.DropResponses("", false)
	if _, err := cl.RequestBroker(ctx, -1, metadataFor()); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}
