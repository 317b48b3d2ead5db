package kpax

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A conn is one connection to a broker, used as an asynchronous, pipelined
// round tripper: many requests may be in flight at once. Callers hand their
// request to the writer goroutine, which encodes everything queued into one
// buffer and writes it with one system call (writes coalesce under load);
// one reader goroutine reads the responses, which Kafka sends in request
// order, and matches each with the oldest request in flight by correlation
// ID. The caller decodes its own response, so decoding runs in parallel.
//
// Any error closes the connection: requests in flight and queued fail at
// once with that error (wrapped in a *BrokerError), both goroutines end, and
// the pool dials a new connection for the next request. A caller whose
// context ends stops waiting without harming the connection (the response,
// when it comes, is dropped); a caller whose request times out closes the
// connection, since the broker is not answering it.
type conn struct {
	addr   string
	nodeID int32
	nc     net.Conn
	cfg    *config

	versions apiVersions // what the broker supports, from ApiVersions

	queue  chan *call // to the writer
	done   chan struct{}
	wg     sync.WaitGroup
	parent *sync.WaitGroup // the client's, to wait for every connection on Close

	mu       sync.Mutex
	inflight []*call // written, waiting for a response, in write order
	corr     int32
	err      error // why the connection closed

	// rawTokens is set while SASL runs with SaslHandshake v0: tokens go
	// with only a size prefix, and responses (even empty) have no header.
	rawTokens atomic.Bool
	// renewAt is when the pool replaces the connection, before its SASL
	// session expires (KIP-368); zero for none. Set while dialing.
	renewAt time.Time
	// retired is set when the pool has replaced the connection: it closes
	// once its last request is answered (sasl.go).
	retired atomic.Bool
}

// call is one request on a connection.
type call struct {
	req      Request
	version  int16
	noResp   bool // Produce with acks 0: the broker sends nothing back
	corr     int32
	frame    []byte // the response, without its size
	err      error
	done     chan struct{}
	start    time.Time // when it was queued, for Hooks.OnRequest
	written  int
	received int
	raw      bool // a SASL token framed by its size alone (sasl.go)
	token    []byte
	pre      []byte        // the request's frame, encoded by the caller (sendFrame)
	preFree  chan<- []byte // where the writer gives pre back once written
}

// apiVersions holds a broker's version range per API key; a missing key has
// max -1.
type apiVersions struct {
	min, max [128]int16
	legacy   bool      // the broker predates ApiVersions (Kafka 0.8.2 - 0.9)
	era      legacyEra // which of them (legacy.go)
	// txnVersion is the cluster's finalized transaction.version feature
	// level as the broker reported it (0: none; 2 is KIP-890's, txn.go).
	txnVersion int16
}

func newAPIVersions() apiVersions {
	var v apiVersions
	for i := range v.max {
		v.max[i] = -1
	}
	return v
}

// pick returns the version to send req at: the highest that the broker,
// this package and the configured cap all allow.
func (v *apiVersions) pick(req Request, caps map[int16]int16) (int16, error) {
	key := req.APIKey()
	if key < 0 || int(key) >= len(v.max) || v.max[key] < 0 {
		return 0, v.unsupported(key)
	}
	hi := min(v.max[key], req.MaxVersion(), pathMaxVersion(req))
	if c, ok := caps[key]; ok {
		hi = min(hi, c)
	}
	lo := max(v.min[key], req.MinVersion())
	if hi < lo {
		return 0, fmt.Errorf("%w: %s: the broker (%s) supports v%d-%d, the client v%d-%d (capped at %d)",
			ErrUnsupportedVersion, APIName(key), v.describe(), v.min[key], v.max[key], req.MinVersion(), req.MaxVersion(), hi)
	}
	return hi, nil
}

// DefaultMaxResponseBytes is the default of WithMaxResponseBytes: twice
// the default fetch max bytes (WithFetchMaxBytes), room for a fetch response
// that the broker lets exceed the request's MaxBytes by one batch.
const DefaultMaxResponseBytes = 100 << 20

// ErrResponseTooLarge is wrapped by the error of a request whose response
// the broker announced larger than WithMaxResponseBytes allows. The client
// refuses it before reading or allocating it and closes the connection.
var ErrResponseTooLarge = errors.New("kpax: response too large")

// maxFrameSize is past any response size Kafka sends (a broker's
// socket.request.max.bytes and fetch limits are far below): a size prefix
// above it is not Kafka at all (an HTTP or TLS answer, say), whatever
// WithMaxResponseBytes allows.
const maxFrameSize = 1 << 30

// WithMaxResponseBytes bounds the size of a response the client reads
// (DefaultMaxResponseBytes by default; at least 64 KiB and the fetch max
// bytes). A broker announcing more is refused before a byte of it is
// allocated: the request fails with an error wrapping ErrResponseTooLarge
// and that connection closes. Raise it with WithFetchMaxBytes, or for
// topics whose max.message.bytes exceeds it.
func WithMaxResponseBytes(n int) Option {
	return func(c *config) { c.in(scopeClient, "WithMaxResponseBytes"); c.maxResponseBytes = n }
}

// readChunk is how much of a frame is read (and allocated) at a time, so a
// huge size prefix costs only what actually arrives.
const readChunk = 1 << 20

// dialConn connects to a broker and negotiates versions and security. The
// connection is ready for requests when it returns. With legacy other than
// eraModern it asks no ApiVersions and talks v0 (legacy.go). modern says the
// broker at addr has answered ApiVersions before: one silent now is paused or
// overloaded, not old, and gets the whole request timeout to answer.
func dialConn(ctx context.Context, cfg *config, nodeID int32, addr string, legacy legacyEra, modern bool, parent *sync.WaitGroup) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.dialTimeout)
	defer cancel()
	dial := cfg.dialer
	if dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if cfg.tls != nil {
		tc := cfg.tls.Clone()
		if tc.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			tc.ServerName = host
		}
		tlsConn := tls.Client(nc, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			nc.Close()
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("TLS handshake: %w (the broker hung up: is the listener plain TCP?)", err)
			}
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc = tlsConn
	}
	c := &conn{addr: addr, nodeID: nodeID, nc: nc, cfg: cfg, queue: make(chan *call, 64), done: make(chan struct{}), parent: parent}
	c.wg.Add(2)
	if parent != nil {
		parent.Add(2)
	}
	go c.writeLoop()
	go c.readLoop()
	if legacy != eraModern {
		c.versions = legacyVersions(legacy)
	} else if err := c.negotiate(ctx, modern); err != nil {
		c.close(err)
		c.wait()
		return nil, err
	}
	if cfg.sasl != nil {
		if err := c.authenticate(ctx); err != nil {
			c.close(err)
			c.wait()
			return nil, err
		}
	}
	return c, nil
}

// errLegacyBroker reports a broker that closed the connection on
// ApiVersions: one older than Kafka 0.10.
var errLegacyBroker = errors.New("the broker closed the connection on ApiVersions: it predates Kafka 0.10")

// negotiate asks the broker which versions it supports. A broker that does
// not know our ApiVersions version answers v0 with UNSUPPORTED_VERSION and
// its own range, and we ask again at its newest version. A broker not known
// to be modern is given apiVersionsSilence to answer, and one silent that
// long may be Kafka 0.9 (errSilentBroker); a modern one gets the request
// timeout, like any request.
func (c *conn) negotiate(ctx context.Context, modern bool) error {
	req := &ApiVersionsRequest{ClientSoftwareName: c.cfg.softwareName, ClientSoftwareVersion: c.cfg.softwareVer, NodeID: -1}
	v := min(req.MaxVersion(), pathMaxVersion(req))
	if capV, ok := c.cfg.maxVersions[apiKeyApiVersions]; ok {
		v = max(min(v, capV), 0)
	}
	wait := apiVersionsSilence(c.cfg)
	if modern {
		wait = c.cfg.requestTimeout
	}
	for attempt := 0; attempt < 2; attempt++ {
		cl, err := c.send(ctx, req, v, false)
		if err == nil {
			if err = c.wait1(ctx, cl, wait); err != nil {
				c.report(cl, nil, err)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				return fmt.Errorf("%w: %w", errLegacyBroker, err)
			}
			if errors.Is(err, ErrResponseTimeout) && !modern {
				return fmt.Errorf("%w: %w", errSilentBroker, err)
			}
			return fmt.Errorf("ApiVersions v%d: %w", v, unwrapBroker(err))
		}
		resp, err := decodeApiVersions(cl.frame, req, v)
		c.report(cl, resp, err)
		if err != nil {
			return err
		}
		if resp.ErrorCode == ErrUnsupportedVersion.code {
			next := int16(0)
			for _, k := range resp.ApiKeys {
				if k.ApiKey == apiKeyApiVersions {
					next = min(k.MaxVersion, v-1)
				}
			}
			v = max(next, 0)
			continue
		}
		if err := ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("ApiVersions v%d: %w", v, err)
		}
		vs := newAPIVersions()
		for _, k := range resp.ApiKeys {
			if k.ApiKey >= 0 && int(k.ApiKey) < len(vs.max) && k.MinVersion <= k.MaxVersion {
				vs.min[k.ApiKey], vs.max[k.ApiKey] = k.MinVersion, k.MaxVersion
			}
		}
		if vs.max[apiKeyApiVersions] < 0 {
			// A broker that answers ApiVersions lists it; a list without it
			// is garbage that would leave the connection unable to send
			// anything, so the connection goes and the next one asks again.
			return fmt.Errorf("ApiVersions v%d: %w: the answer lists %d APIs, not ApiVersions itself", v, ErrMalformed, len(resp.ApiKeys))
		}
		for _, f := range resp.FinalizedFeatures {
			if f.Name == "transaction.version" {
				vs.txnVersion = f.MaxVersionLevel
			}
		}
		c.versions = vs
		return nil
	}
	return fmt.Errorf("ApiVersions: the broker rejected v%d and older", v)
}

// decodeApiVersions decodes the answer to ApiVersions at version v. A broker
// that does not support v answers at v0 with UNSUPPORTED_VERSION; any other
// answer that does not decode at v is malformed, even if it happens to
// decode at v0 (a cut-short flexible body often does, as "no API").
func decodeApiVersions(frame []byte, req *ApiVersionsRequest, v int16) (*ApiVersionsResponse, error) {
	resp := &ApiVersionsResponse{}
	derr := decodeResponse(frame, req, v, resp)
	if derr == nil && resp.ErrorCode != ErrUnsupportedVersion.code || v == 0 {
		if derr != nil {
			return nil, fmt.Errorf("ApiVersions: %w", derr)
		}
		return resp, nil
	}
	v0 := &ApiVersionsResponse{}
	if err := decodeResponse(frame, req, 0, v0); err != nil || v0.ErrorCode != ErrUnsupportedVersion.code {
		if derr == nil {
			derr = err
		}
		if derr == nil {
			derr = fmt.Errorf("%w: UNSUPPORTED_VERSION at v%d, but not at v0", ErrMalformed, v)
		}
		return nil, fmt.Errorf("ApiVersions: %w", derr)
	}
	return v0, nil
}

// send queues a request for writing. A request that fails here was not
// sent, but Hooks.OnRequest sees it with its error.
func (c *conn) send(ctx context.Context, req Request, version int16, noResp bool) (*call, error) {
	return c.sendFrame(ctx, req, version, noResp, nil, nil)
}

// sendFrame is send for a request whose whole frame is encoded already
// (pre, with its correlation ID at produceFrameCorr, which the writer sets;
// sender_frame.go): the writer writes pre as it is, without copying it.
// Once sendFrame returns a call, pre is the writer's: when it has written
// it, it gives it to free (if free has room) for another request. On an
// error pre is still the caller's. With pre nil the writer encodes req.
func (c *conn) sendFrame(ctx context.Context, req Request, version int16, noResp bool, pre []byte, free chan<- []byte) (*call, error) {
	cl := &call{req: req, version: version, noResp: noResp, done: make(chan struct{}), start: time.Now(), pre: pre, preFree: free}
	var err error
	select {
	case c.queue <- cl:
		return cl, nil
	case <-c.done:
		err = c.closedErr()
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.report(cl, nil, err)
	return nil, err
}

// report calls Hooks.OnRequest for a call that ended (resp is nil on error).
// Every request of the client passes here, whichever part sent it (the
// client, a producer's sinks, a consumer's fetchers, dialing), on the
// caller's goroutine and with no lock held.
func (c *conn) report(cl *call, resp Response, err error) {
	h := c.cfg.hooks.OnRequest
	if h == nil || cl.raw {
		return
	}
	info := RequestInfo{NodeID: c.nodeID, Addr: c.addr, APIKey: cl.req.APIKey(), Version: cl.version,
		Latency: time.Since(cl.start), Err: err, Response: resp}
	select {
	case <-cl.done: // the byte counts are final (and safe to read)
		info.BytesWritten, info.BytesRead = cl.written, cl.received
	default: // abandoned (context, timeout): the writer may still count
	}
	h(info)
}

// wait1 waits for a call's response. On timeout it closes the connection.
func (c *conn) wait1(ctx context.Context, cl *call, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-cl.done:
		return cl.err
	case <-c.done:
		select {
		case <-cl.done:
			return cl.err
		default:
			return c.closedErr()
		}
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		err := fmt.Errorf("%w: no response to %s v%d within %v", ErrResponseTimeout, APIName(cl.req.APIKey()), cl.version, timeout)
		c.close(err)
		return err
	}
}

// roundTrip sends req at the version and returns its decoded response (nil
// for a request without one). A malformed response closes the connection.
func (c *conn) roundTrip(ctx context.Context, req Request, version int16, timeout time.Duration) (Response, *call, error) {
	cl, err := c.send(ctx, req, version, expectsNoResponse(req))
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.await(ctx, cl, timeout)
	return resp, cl, err
}

// expectsNoResponse reports a Produce with acks 0.
func expectsNoResponse(req Request) bool {
	p, ok := req.(*ProduceRequest)
	return ok && p.Acks == 0
}

// await waits for a call sent with send and decodes its response.
func (c *conn) await(ctx context.Context, cl *call, timeout time.Duration) (Response, error) {
	resp, err := c.await1(ctx, cl, timeout)
	c.report(cl, resp, err)
	return resp, err
}

func (c *conn) await1(ctx context.Context, cl *call, timeout time.Duration) (Response, error) {
	if err := c.wait1(ctx, cl, timeout); err != nil {
		return nil, err
	}
	if cl.noResp {
		return nil, nil
	}
	resp := cl.req.NewResponse()
	if err := decodeResponse(cl.frame, cl.req, cl.version, resp); err != nil {
		c.close(err)
		return nil, err
	}
	return resp, nil
}

// exit marks the end of one of the connection's goroutines.
func (c *conn) exit() {
	c.wg.Done()
	if c.parent != nil {
		c.parent.Done()
	}
}

func (c *conn) writeLoop() {
	defer c.exit()
	w := frameWriter{}
	batch := make([]*call, 0, 64)
	for {
		var first *call
		select {
		case first = <-c.queue:
		case <-c.done:
			return
		}
		batch = append(batch[:0], first)
	more:
		for len(batch) < cap(batch) {
			select {
			case cl := <-c.queue:
				batch = append(batch, cl)
			default:
				break more
			}
		}
		c.mu.Lock()
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			for _, cl := range batch {
				cl.finish(err)
			}
			return
		}
		w.reset()
		for _, cl := range batch {
			if !cl.raw {
				c.corr++
				cl.corr = c.corr
			}
			cl.written = w.add(cl, c.cfg.clientID)
			if !cl.noResp {
				c.inflight = append(c.inflight, cl)
			}
		}
		c.mu.Unlock()
		c.nc.SetWriteDeadline(time.Now().Add(c.cfg.requestTimeout))
		err := w.writeTo(c.nc)
		if err != nil {
			c.close(fmt.Errorf("write: %w", err))
		}
		for _, cl := range batch {
			if cl.noResp {
				if err != nil {
					cl.finish(c.closedErr())
				} else {
					cl.finish(nil)
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *conn) readLoop() {
	defer c.exit()
	var size [4]byte
	first := true
	for {
		if _, err := io.ReadFull(c.nc, size[:]); err != nil {
			c.close(readErr(err))
			return
		}
		if first && isTLSRecord(size) {
			// A TLS alert or handshake where a small first response belongs.
			c.close(fmt.Errorf("%w: the broker answered with TLS (record % x): use WithTLS for this listener", ErrMalformed, size))
			return
		}
		first = false
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 4 && !(n >= 0 && c.rawTokens.Load()) || n > maxFrameSize {
			c.close(fmt.Errorf("%w: response size %d", ErrMalformed, n))
			return
		}
		if int(n) > c.cfg.maxResponseBytes {
			c.close(fmt.Errorf("%w: the broker announced %d bytes, over the limit of %d (WithMaxResponseBytes)", ErrResponseTooLarge, n, c.cfg.maxResponseBytes))
			return
		}
		frame, err := readFrame(c.nc, int(n), c.spareFrame(int(n)))
		if err != nil {
			c.close(readErr(err))
			return
		}
		var corr int32
		if len(frame) >= 4 {
			corr = int32(binary.BigEndian.Uint32(frame))
		}
		c.mu.Lock()
		if len(c.inflight) == 0 {
			c.mu.Unlock()
			c.close(fmt.Errorf("%w: response with correlation ID %d to no request", ErrMalformed, corr))
			return
		}
		cl := c.inflight[0]
		c.inflight[0] = nil
		c.inflight = c.inflight[1:]
		c.mu.Unlock()
		if cl.raw {
			cl.frame = frame
			cl.received = int(n) + 4
			cl.finish(nil)
			continue
		}
		if cl.corr != corr || len(frame) < 4 {
			err := fmt.Errorf("%w: correlation ID %d, want %d", ErrMalformed, corr, cl.corr)
			cl.finish(err)
			c.close(err)
			return
		}
		cl.frame = frame
		cl.received = int(n) + 4
		cl.finish(nil)
		if c.retired.Load() && c.idle() {
			c.close(errRetired)
			return
		}
	}
}

// isTLSRecord reports whether b starts a TLS record (change cipher spec,
// alert, handshake or data; protocol version 3.x). As the size of the first
// response on a connection, it would claim more than 300 MiB.
func isTLSRecord(b [4]byte) bool {
	return b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 3 && b[2] <= 4
}

// spareFrame returns a pooled buffer of at least n bytes for the response
// about to be read, if it answers a Fetch (whose buffer the consumer gives
// back once its records are released), or nil.
func (c *conn) spareFrame(n int) []byte {
	if c.cfg.frames == nil {
		return nil
	}
	c.mu.Lock()
	var req *FetchRequest
	if len(c.inflight) > 0 && !c.inflight[0].raw {
		req, _ = c.inflight[0].req.(*FetchRequest)
	}
	c.mu.Unlock()
	if req == nil {
		return nil
	}
	if b := c.cfg.frames.get(n); b != nil {
		return b
	}
	if c.cfg.budget != nil && n <= int(req.MaxBytes)+fetchFrameSlack {
		// Under a memory budget the Fetch reserved its max bytes before it
		// was sent (reserveFetch): allocate the frame whole rather than
		// grow it, which would leave up to as much again to the collector.
		return make([]byte, n)
	}
	return nil
}

// fetchFrameSlack is what a Fetch response may hold beyond its max bytes
// and still be allocated at once under a memory budget: its headers.
const fetchFrameSlack = 64 << 10

// readFrame reads n bytes. Into spare when it is large enough (a pooled
// buffer: one read fills it); otherwise into a buffer grown as bytes arrive,
// so that a lying size prefix cannot make us allocate memory the peer never
// sends.
func readFrame(r io.Reader, n int, spare []byte) ([]byte, error) {
	if cap(spare) >= n {
		buf := spare[:n]
		if m, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("response cut short after %d of %d bytes: %w", m, n, err)
		}
		return buf, nil
	}
	buf := make([]byte, 0, min(n, readChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(n-len(buf), len(buf)))...)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("response cut short after %d of %d bytes: %w", len(buf), n, err)
		}
	}
	return buf, nil
}

// framePool keeps the buffers of Fetch responses for reuse, so that a
// consumer in its steady state reads each response into a buffer that is
// already there instead of growing a new one. The consumer puts a buffer
// back when the records that alias it are released (at the next Poll).
// It keeps at most framePoolMax buffers and max bytes in all.
type framePool struct {
	mu   sync.Mutex
	max  int
	free [][]byte
	kept int
}

const framePoolMax = 4

func newFramePool(maxBytes int) *framePool { return &framePool{max: maxBytes} }

// get returns the smallest kept buffer of at least n bytes, or nil.
func (p *framePool) get(n int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	best := -1
	for i, b := range p.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(p.free[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	b := p.free[best]
	p.free[best] = p.free[len(p.free)-1]
	p.free[len(p.free)-1] = nil
	p.free = p.free[:len(p.free)-1]
	p.kept -= cap(b)
	return b
}

// put keeps b for reuse, dropping smaller buffers to stay within the bounds.
func (p *framePool) put(b []byte) {
	if p == nil || cap(b) == 0 || cap(b) > p.max {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.free) > 0 && (len(p.free) >= framePoolMax || p.kept+cap(b) > p.max) {
		small := 0
		for i := range p.free {
			if cap(p.free[i]) < cap(p.free[small]) {
				small = i
			}
		}
		if cap(p.free[small]) >= cap(b) {
			return // b is the smallest: drop it
		}
		p.kept -= cap(p.free[small])
		p.free[small] = p.free[len(p.free)-1]
		p.free[len(p.free)-1] = nil
		p.free = p.free[:len(p.free)-1]
	}
	p.free = append(p.free, b[:0])
	p.kept += cap(b)
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the broker closed the connection", io.EOF)
	}
	return fmt.Errorf("read: %w", err)
}

func (cl *call) finish(err error) {
	cl.err = err
	close(cl.done)
}

// close closes the connection for the reason err, once, and fails every
// request in flight.
func (c *conn) close(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := c.inflight
	c.inflight = nil
	c.mu.Unlock()
	close(c.done)
	c.nc.Close()
	berr := c.closedErr()
	for _, cl := range pending {
		cl.finish(berr)
	}
	// Calls still queued are failed by the writer or seen through c.done by
	// their callers; drain what is there now.
	for {
		select {
		case cl := <-c.queue:
			cl.finish(berr)
		default:
			return
		}
	}
}

// wait waits for the connection's goroutines to end after close.
func (c *conn) wait() { c.wg.Wait() }

func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *conn) closedErr() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err == nil {
		err = net.ErrClosed
	}
	return &BrokerError{NodeID: c.nodeID, Addr: c.addr, Err: err}
}

// numInflight returns the requests waiting for a response.
func (c *conn) numInflight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight)
}
