package kpax

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file tests connections against hand-written fake brokers, for what a
// real broker does not do on demand: wrong correlation IDs, lying size
// prefixes, truncated frames, garbage, silence, a broker older than
// ApiVersions. It also holds the TCP fault proxy that client_fault_test.go
// puts in front of real brokers.

// --- fake broker ---

// fakeBroker is a broker on 127.0.0.1 that speaks just enough Kafka:
// ApiVersions (advertising fb.versions) and Metadata (naming itself as the
// only broker and leader of every topic asked for). Its handle function sees
// every request first, in order per connection, and can misbehave; it
// returns false to let the default answer go out.
type fakeBroker struct {
	tb       testing.TB
	ln       net.Listener
	addr     string
	port     int32
	nodeID   int32
	handle   func(fc *fakeConn, r *fakeRequest) bool
	versions []ApiVersionsResponseApiKey

	accepts atomic.Int32
	counts  [128]atomic.Int32 // requests received per API key

	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[*fakeConn]bool
	seen  []fakeSeen
}

// fakeSeen records a request for assertions.
type fakeSeen struct {
	key, version int16
	conn         int
}

// fakeRequest is a request as the fake broker read it.
type fakeRequest struct {
	key, version int16
	corr         int32
	clientID     string
	req          Request // decoded body
	n            int32   // 1 for the first request of this API key the broker got, ...
}

// fakeConn is one client connection to a fake broker.
type fakeConn struct {
	fb   *fakeBroker
	nc   net.Conn
	seq  int // 1 for the broker's first connection, ...
	bw   *bufio.Writer
	reqs chan *fakeRequest
	gone chan struct{} // closed when the client's side is read to its end
}

// fakeDefaultVersions is what a fake broker advertises unless told otherwise.
var fakeDefaultVersions = []ApiVersionsResponseApiKey{
	{ApiKey: apiKeyApiVersions, MinVersion: 0, MaxVersion: 4},
	{ApiKey: 3, MinVersion: 0, MaxVersion: 12}, // Metadata
}

// newFakeBroker starts a fake broker that the test's cleanup stops. handle
// may be nil for a well-behaved broker.
func newFakeBroker(tb testing.TB, handle func(fc *fakeConn, r *fakeRequest) bool) *fakeBroker {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	fb := &fakeBroker{tb: tb, ln: ln, addr: ln.Addr().String(), port: int32(ln.Addr().(*net.TCPAddr).Port),
		handle: handle, versions: fakeDefaultVersions, done: make(chan struct{}), conns: map[*fakeConn]bool{}}
	if fb.handle == nil {
		fb.handle = func(*fakeConn, *fakeRequest) bool { return false }
	}
	fb.wg.Add(1)
	go fb.accept()
	tb.Cleanup(fb.close)
	return fb
}

func (fb *fakeBroker) accept() {
	defer fb.wg.Done()
	for {
		nc, err := fb.ln.Accept()
		if err != nil {
			return
		}
		fc := &fakeConn{fb: fb, nc: nc, seq: int(fb.accepts.Add(1)), bw: bufio.NewWriterSize(nc, 64<<10),
			reqs: make(chan *fakeRequest, 4096), gone: make(chan struct{})}
		fb.mu.Lock()
		select {
		case <-fb.done:
			fb.mu.Unlock()
			nc.Close()
			return
		default:
		}
		fb.conns[fc] = true
		fb.mu.Unlock()
		fb.wg.Add(2)
		go fc.readLoop()
		go fc.serveLoop()
	}
}

// close stops the broker and waits for its goroutines.
func (fb *fakeBroker) close() {
	fb.mu.Lock()
	select {
	case <-fb.done:
		fb.mu.Unlock()
		return
	default:
	}
	close(fb.done)
	fb.ln.Close()
	for fc := range fb.conns {
		fc.nc.Close()
	}
	fb.mu.Unlock()
	fb.wg.Wait()
}

// count returns how many requests of the API key the broker received.
func (fb *fakeBroker) count(key int16) int32 { return fb.counts[key].Load() }

// requests returns the requests received so far.
func (fb *fakeBroker) requests() []fakeSeen {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return append([]fakeSeen(nil), fb.seen...)
}

func (fc *fakeConn) readLoop() {
	defer fc.fb.wg.Done()
	defer close(fc.reqs)
	defer close(fc.gone)
	br := bufio.NewReaderSize(fc.nc, 64<<10)
	var size [4]byte
	for {
		if _, err := io.ReadFull(br, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > 1<<20 {
			fc.nc.Close()
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(br, frame); err != nil {
			return
		}
		r, err := parseFakeRequest(frame)
		if err != nil {
			fc.fb.tb.Errorf("fake broker: bad request: %v", err)
			fc.nc.Close()
			return
		}
		r.n = fc.fb.counts[r.key].Add(1)
		fc.fb.mu.Lock()
		fc.fb.seen = append(fc.fb.seen, fakeSeen{r.key, r.version, fc.seq})
		fc.fb.mu.Unlock()
		fc.reqs <- r
	}
}

func (fc *fakeConn) serveLoop() {
	defer fc.fb.wg.Done()
	defer fc.nc.Close()
	for r := range fc.reqs {
		if !fc.fb.handle(fc, r) {
			fc.fb.answer(fc, r)
		}
		if len(fc.reqs) == 0 {
			fc.bw.Flush()
		}
	}
}

func parseFakeRequest(frame []byte) (*fakeRequest, error) {
	d := decoder{b: frame}
	r := &fakeRequest{key: d.int16(), version: d.int16(), corr: d.int32()}
	if d.err != nil {
		return nil, d.err
	}
	r.req = NewRequest(r.key)
	if r.req == nil || r.key < 0 || r.key >= 128 {
		return nil, fmt.Errorf("unknown API key %d", r.key)
	}
	if hv := requestHeaderVersion(r.req, r.version); hv >= 1 {
		r.clientID = deref(d.nullableString(false))
		if hv >= 2 {
			for n := d.tagCount(); n > 0 && d.err == nil; n-- {
				d.tag()
			}
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("%s v%d header: %w", APIName(r.key), r.version, d.err)
	}
	if err := r.req.Decode(frame[d.off:], r.version); err != nil {
		return nil, fmt.Errorf("%s v%d: %w", APIName(r.key), r.version, err)
	}
	return r, nil
}

// answer is what a well-behaved fake broker does with a request.
func (fb *fakeBroker) answer(fc *fakeConn, r *fakeRequest) {
	switch req := r.req.(type) {
	case *ApiVersionsRequest:
		if r.version > (&ApiVersionsResponse{}).MaxVersion() {
			fc.replyAt(r, 0, &ApiVersionsResponse{ErrorCode: ErrUnsupportedVersion.Code(), ApiKeys: fb.versions})
			return
		}
		fc.reply(r, &ApiVersionsResponse{ApiKeys: fb.versions})
	case *MetadataRequest:
		fc.reply(r, fb.metadata(req))
	default:
		fc.close()
	}
}

// metadata is the fake broker's answer to a Metadata request: itself, and
// one partition led by itself for each topic asked for.
func (fb *fakeBroker) metadata(req *MetadataRequest) *MetadataResponse {
	resp := &MetadataResponse{
		Brokers:      []MetadataResponseBroker{{NodeID: fb.nodeID, Host: "127.0.0.1", Port: fb.port}},
		ClusterID:    ptr("fake"),
		ControllerID: fb.nodeID,
	}
	for _, t := range req.Topics {
		resp.Topics = append(resp.Topics, MetadataResponseTopic{Name: t.Name, Partitions: []MetadataResponseTopicPartition{{
			LeaderID: fb.nodeID, ReplicaNodes: []int32{fb.nodeID}, ISRNodes: []int32{fb.nodeID}}}})
	}
	return resp
}

// reply sends resp, encoded at the request's version.
func (fc *fakeConn) reply(r *fakeRequest, resp Response) { fc.replyAt(r, r.version, resp) }

// replyAt sends resp encoded at version v, with the header the request's
// version calls for.
func (fc *fakeConn) replyAt(r *fakeRequest, v int16, resp Response) {
	fc.write(fc.frame(r, r.corr, v, resp))
}

// frame returns a whole response frame with the correlation ID.
func (fc *fakeConn) frame(r *fakeRequest, corr int32, v int16, resp Response) []byte {
	b := make([]byte, 4, 256)
	b = appendInt32(b, corr)
	if responseHeaderVersion(r.req, r.version) >= 1 {
		b = append(b, 0)
	}
	b = resp.AppendTo(b, v)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// write sends raw bytes (buffered until the connection's queue is empty or
// flush).
func (fc *fakeConn) write(b []byte) { fc.bw.Write(b) }

func (fc *fakeConn) flush() { fc.bw.Flush() }

// close flushes what was written and closes the connection.
func (fc *fakeConn) close() {
	fc.bw.Flush()
	fc.nc.Close()
}

// hold blocks until ch closes (true), or the client hangs up or the broker
// stops (false).
func (fc *fakeConn) hold(ch <-chan struct{}) bool {
	fc.bw.Flush()
	select {
	case <-ch:
		return true
	case <-fc.gone:
		return false
	case <-fc.fb.done:
		return false
	}
}

// --- helpers ---

// wantBrokerError checks that err is a *BrokerError for the address that
// wraps each of targets.
func wantBrokerError(t *testing.T, err error, addr string, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var be *BrokerError
	if !errors.As(err, &be) {
		t.Fatalf("error %q (%T) is not a *BrokerError", err, err)
	}
	if be.Addr != addr {
		t.Errorf("BrokerError.Addr %q, want %q", be.Addr, addr)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("error %q does not wrap %q", err, target)
		}
	}
}

func metadataFor(topics ...string) *MetadataRequest {
	req := &MetadataRequest{Topics: []MetadataRequestTopic{}}
	for i := range topics {
		req.Topics = append(req.Topics, MetadataRequestTopic{Name: &topics[i]})
	}
	return req
}

// mustMetadata sends a Metadata request to the node and checks the answer.
func mustMetadata(t *testing.T, cl *Client, nodeID int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cl.RequestBroker(ctx, nodeID, metadataFor("t"))
	if err != nil {
		t.Fatalf("node %d: %v", nodeID, err)
	}
	if md := r.(*MetadataResponse); len(md.Brokers) != 1 || len(md.Topics) != 1 || deref(md.Topics[0].Name) != "t" {
		t.Fatalf("node %d: bad metadata %+v", nodeID, md)
	}
}

func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// --- tests ---

// TestFakeBrokerControl is the control of the fault tests: the fake broker,
// behaving, serves requests sent to it directly and through routing.
func TestFakeBrokerControl(t *testing.T) {
	fb := newFakeBroker(t, nil)
	cl := newTestClient(t, fb.addr)
	mustMetadata(t, cl, -1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := cl.Metadata(ctx, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Addr() != fb.addr || len(md.Topics) != 2 {
		t.Fatalf("metadata %+v", md)
	}
	var vs []int16
	for _, s := range fb.requests() {
		if s.key == 3 {
			vs = append(vs, s.version)
		}
	}
	if len(vs) == 0 || vs[0] != 12 {
		t.Fatalf("Metadata versions %v, want 12 (the fake's and our max)", vs)
	}
}

// TestFakeFaults sends a request to a fake broker that misbehaves once, in
// each way a table lists: the request fails with a clear error, within the
// request timeout when the broker is silent, allocating little whatever the
// size prefix claims; another broker of the same client keeps working
// meanwhile; and the next request to the faulty broker dials again and
// succeeds.
func TestFakeFaults(t *testing.T) {
	const timeout = 500 * time.Millisecond
	payload := make([]byte, 512<<10) // allocated here, not in the measured window
	huge := func(size uint32, then func(fc *fakeConn)) func(fc *fakeConn, r *fakeRequest) {
		return func(fc *fakeConn, r *fakeRequest) {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], size)
			fc.write(b[:])
			then(fc)
		}
	}
	silence := func(fc *fakeConn) { fc.hold(nil) }
	closeConn := func(fc *fakeConn) { fc.close() }
	// brokersCount answers Metadata with the brokers array's length prefix
	// as given (int32 at v8, compact at v12), then a few bytes.
	brokersCount := func(prefix ...byte) func(fc *fakeConn, r *fakeRequest) {
		return func(fc *fakeConn, r *fakeRequest) {
			var body []byte
			body = binary.BigEndian.AppendUint32(body, uint32(r.corr))
			if r.version >= 9 {
				body = append(body, 0) // no tagged fields in the header
			}
			body = append(body, 0, 0, 0, 0) // throttle time
			body = append(body, prefix...)
			body = append(body, make([]byte, 16)...)
			fc.write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
		}
	}
	v8 := []Option{WithMaxVersion(apiKeyMetadata, 8)}
	tests := []struct {
		name    string
		key     int16 // the API key whose first request triggers the fault
		fault   func(fc *fakeConn, r *fakeRequest)
		want    []error // errors.Is targets besides *BrokerError
		silent  bool    // the error comes from the request timeout
		alloc   uint64  // bound on bytes allocated by the failing request
		wantMsg string  // in the error's text
		kept    bool    // not a connection fault: the connection stays up
		opts    []Option
	}{
		{name: "wrong correlation ID", key: 3, want: []error{ErrMalformed}, wantMsg: "correlation ID",
			fault: func(fc *fakeConn, r *fakeRequest) {
				fc.write(fc.frame(r, r.corr+1, r.version, fc.fb.metadata(r.req.(*MetadataRequest))))
			}},
		{name: "correlation ID of the connection's first request", key: 3, want: []error{ErrMalformed}, wantMsg: "correlation ID",
			fault: func(fc *fakeConn, r *fakeRequest) {
				fc.write(fc.frame(r, 1, r.version, fc.fb.metadata(r.req.(*MetadataRequest))))
			}},
		{name: "size 0x7fffffff then silence", key: 3, want: []error{ErrMalformed}, alloc: 1 << 20,
			fault: huge(0x7fffffff, silence)},
		{name: "size 0x7fffffff then close", key: 3, want: []error{ErrMalformed}, alloc: 1 << 20,
			fault: huge(0x7fffffff, closeConn)},
		{name: "negative size", key: 3, want: []error{ErrMalformed}, fault: huge(0x80000000, silence)},
		{name: "size too small for a correlation ID", key: 3, want: []error{ErrMalformed}, fault: huge(3, silence)},
		{name: "size 1GiB then 512KiB then silence", key: 3, want: []error{ErrResponseTooLarge}, wantMsg: "WithMaxResponseBytes", alloc: 1 << 20,
			fault: huge(1<<30, func(fc *fakeConn) {
				fc.write(payload)
				fc.hold(nil)
			})},
		{name: "size one over the limit", key: 3, want: []error{ErrResponseTooLarge}, alloc: 1 << 20,
			fault: huge(DefaultMaxResponseBytes+1, silence)},
		{name: "size 64MiB then silence", key: 3, want: []error{ErrResponseTimeout}, silent: true, alloc: 4 << 20,
			fault: huge(64<<20, silence)},
		{name: "size 64MiB then 512KiB then close", key: 3, want: []error{io.ErrUnexpectedEOF}, alloc: 4 << 20,
			fault: huge(64<<20, func(fc *fakeConn) {
				fc.write(payload)
				fc.close()
			})},
		{name: "truncated frame then close", key: 3, want: []error{io.ErrUnexpectedEOF}, wantMsg: "cut short",
			fault: func(fc *fakeConn, r *fakeRequest) {
				b := fc.frame(r, r.corr, r.version, fc.fb.metadata(r.req.(*MetadataRequest)))
				fc.write(b[:len(b)-5])
				fc.close()
			}},
		{name: "close instead of answering", key: 3, want: []error{io.EOF},
			fault: func(fc *fakeConn, r *fakeRequest) { fc.close() }},
		{name: "garbage text", key: 3, want: []error{ErrMalformed},
			fault: func(fc *fakeConn, r *fakeRequest) { fc.write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }},
		{name: "garbage body", key: 3, want: []error{ErrMalformed}, wantMsg: "Metadata v12 response",
			fault: func(fc *fakeConn, r *fakeRequest) {
				b := binary.BigEndian.AppendUint32(nil, 4+1+32)
				b = binary.BigEndian.AppendUint32(b, uint32(r.corr))
				b = append(b, 0) // no tagged fields in the header
				for range 32 {
					b = append(b, 0xff)
				}
				fc.write(b)
			}},
		{name: "body cut short inside a valid frame", key: 3, want: []error{ErrMalformed}, wantMsg: "Metadata v12 response",
			fault: func(fc *fakeConn, r *fakeRequest) {
				b := fc.frame(r, r.corr, r.version, fc.fb.metadata(r.req.(*MetadataRequest)))
				b = b[:len(b)-6]
				binary.BigEndian.PutUint32(b, uint32(len(b)-4))
				fc.write(b)
			}},
		{name: "array length -5", key: 3, want: []error{ErrMalformed}, wantMsg: "negative length", opts: v8,
			fault: brokersCount(0xff, 0xff, 0xff, 0xfb)},
		{name: "array length 0x7fffffff", key: 3, want: []error{ErrMalformed}, wantMsg: "cannot fit", opts: v8, alloc: 1 << 20,
			fault: brokersCount(0x7f, 0xff, 0xff, 0xff)},
		{name: "compact array length 2^32", key: 3, want: []error{ErrMalformed}, wantMsg: "too large", alloc: 1 << 20,
			fault: brokersCount(0xff, 0xff, 0xff, 0xff, 0x0f)},
		{name: "compact array length 2^31-2", key: 3, want: []error{ErrMalformed}, wantMsg: "cannot fit", alloc: 1 << 20,
			fault: brokersCount(0xff, 0xff, 0xff, 0xff, 0x07)},
		{name: "response never sent", key: 3, want: []error{ErrResponseTimeout}, silent: true,
			fault: func(fc *fakeConn, r *fakeRequest) { fc.hold(nil) }},
		{name: "ApiVersions with a wrong correlation ID", key: apiKeyApiVersions, want: []error{ErrMalformed}, wantMsg: "ApiVersions",
			fault: func(fc *fakeConn, r *fakeRequest) {
				fc.write(fc.frame(r, r.corr+7, r.version, &ApiVersionsResponse{ApiKeys: fc.fb.versions}))
			}},
		{name: "ApiVersions garbage", key: apiKeyApiVersions, want: []error{ErrMalformed}, wantMsg: "ApiVersions",
			fault: func(fc *fakeConn, r *fakeRequest) {
				b := binary.BigEndian.AppendUint32(nil, 4+3)
				b = binary.BigEndian.AppendUint32(b, uint32(r.corr))
				fc.write(append(b, 0, 0, 0xff))
			}},
		{name: "ApiVersions v4 body unreadable, empty at v0", key: apiKeyApiVersions, want: []error{ErrMalformed}, wantMsg: "ApiVersions",
			fault: func(fc *fakeConn, r *fakeRequest) {
				// At v4 the throttle time is cut short; re-read at v0
				// it says "no error, no API".
				b := binary.BigEndian.AppendUint32(nil, 4+6)
				b = binary.BigEndian.AppendUint32(b, uint32(r.corr))
				fc.write(append(b, 0, 0, 0, 0, 0, 0))
			}},
		{name: "ApiVersions listing no API", key: apiKeyApiVersions, want: []error{ErrMalformed}, wantMsg: "ApiVersions",
			fault: func(fc *fakeConn, r *fakeRequest) {
				fc.reply(r, &ApiVersionsResponse{ApiKeys: []ApiVersionsResponseApiKey{}})
			}},
		{name: "ApiVersions error code", key: apiKeyApiVersions, want: []error{ErrClusterAuthorizationFailed}, wantMsg: "ApiVersions",
			fault: func(fc *fakeConn, r *fakeRequest) {
				fc.reply(r, &ApiVersionsResponse{ErrorCode: ErrClusterAuthorizationFailed.Code()})
			}},
		// ApiVersions never answered: what Kafka 0.9 does; TestFakeSilentLegacyBroker.
		{name: "Metadata not advertised", key: apiKeyApiVersions, want: []error{ErrUnsupportedVersion}, kept: true,
			fault: func(fc *fakeConn, r *fakeRequest) {
				fc.reply(r, &ApiVersionsResponse{ApiKeys: fc.fb.versions[:1]})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := newFakeBroker(t, func(fc *fakeConn, r *fakeRequest) bool {
				if r.key == tt.key && r.n == 1 {
					tt.fault(fc, r)
					return true
				}
				return false
			})
			good := newFakeBroker(t, nil)
			cl := newTestClient(t, bad.addr, append([]Option{WithSeedBrokers(bad.addr, good.addr),
				WithRequestTimeout(timeout), WithRetryBackoff(time.Millisecond, 10*time.Millisecond)}, tt.opts...)...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errc := make(chan error, 1)
			var elapsed time.Duration
			var alloc, peak uint64
			go func() {
				h := startHeapSampler()
				a0 := totalAlloc()
				start := time.Now()
				_, err := cl.RequestBroker(ctx, -1, metadataFor("t"))
				elapsed = time.Since(start)
				alloc = totalAlloc() - a0
				peak = h.done()
				errc <- err
			}()
			if tt.silent {
				// While the faulty broker hangs, the other one answers.
				time.Sleep(timeout / 5)
				mustMetadata(t, cl, -2)
			}
			err := <-errc
			wantBrokerError(t, err, bad.addr, tt.want...)
			if tt.wantMsg != "" && !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantMsg)) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			margin := 300 * time.Millisecond
			if tt.silent {
				if elapsed < timeout || elapsed > timeout+margin {
					t.Errorf("timed out after %v, want %v (+%v)", elapsed, timeout, margin)
				}
				t.Logf("timeout %v fired after %v (+%v); error: %v", timeout, elapsed.Round(time.Millisecond), (elapsed - timeout).Round(time.Millisecond), err)
			} else {
				if elapsed > margin {
					t.Errorf("failed after %v, want at once", elapsed)
				}
				t.Logf("failed after %v, allocating %d KiB: %v", elapsed.Round(time.Millisecond), alloc>>10, err)
			}
			if tt.alloc > 0 && alloc > tt.alloc {
				t.Errorf("the failing request allocated %d bytes, want at most %d", alloc, tt.alloc)
			}
			// Whatever the broker announces, the heap grows by what it
			// sends (at most 512 KiB here) and a read chunk, not more.
			t.Logf("figures: peak heap +%d KiB while the request failed", peak>>10)
			if peak > 8<<20 {
				t.Errorf("the heap grew by %d KiB while the request failed, want at most 8 MiB", peak>>10)
			}
			mustMetadata(t, cl, -2)
			if tt.kept {
				// The broker said what it supports: the connection is
				// healthy, and the same request fails the same way.
				_, err := cl.RequestBroker(ctx, -1, metadataFor("t"))
				wantBrokerError(t, err, bad.addr, tt.want...)
				if n := bad.accepts.Load(); n != 1 {
					t.Errorf("faulty broker accepted %d connections, want 1", n)
				}
				return
			}
			mustMetadata(t, cl, -1) // a new connection, the fault is gone
			if n := bad.accepts.Load(); n != 2 {
				t.Errorf("faulty broker accepted %d connections, want 2", n)
			}
		})
	}
}

// TestFakeTimeoutPipelined: requests queued behind an unanswered one all fail
// when the first times out (the connection is closed), promptly.
func TestFakeTimeoutPipelined(t *testing.T) {
	const timeout = 400 * time.Millisecond
	fb := newFakeBroker(t, func(fc *fakeConn, r *fakeRequest) bool {
		if r.key == 3 && fc.seq == 1 {
			fc.hold(nil) // the first connection answers no Metadata
			return true
		}
		return false
	})
	cl := newTestClient(t, fb.addr, WithRequestTimeout(timeout))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	took := make([]time.Duration, n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 10 * time.Millisecond)
			_, errs[i] = cl.RequestBroker(ctx, -1, metadataFor("t"))
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		wantBrokerError(t, err, fb.addr, ErrResponseTimeout)
		if took[i] > timeout+300*time.Millisecond {
			t.Errorf("request %d failed after %v", i, took[i])
		}
	}
	t.Logf("%d pipelined requests failed after %v..%v (timeout %v): %v", n, took[0].Round(time.Millisecond), took[n-1].Round(time.Millisecond), timeout, errs[n-1])
	mustMetadata(t, cl, -1)
}

// TestFakeLegacyBroker: a broker older than Kafka 0.8 closes the
// connection on ApiVersions. The first request already works: after two such
// closes in a row, within that request, the client talks v0 to it.
func TestFakeLegacyBroker(t *testing.T) {
	fb := newFakeBroker(t, func(fc *fakeConn, r *fakeRequest) bool {
		if r.key == apiKeyApiVersions || r.version != 0 {
			fc.close() // what 0.8 brokers do with requests they do not know
			return true
		}
		return false
	})
	cl := newTestClient(t, fb.addr, WithRetryBackoff(time.Millisecond, 10*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cl.RequestBroker(ctx, -1, metadataFor("t"))
	if err != nil {
		t.Fatal(err)
	}
	if md := r.(*MetadataResponse); len(md.Brokers) != 1 || md.Brokers[0].Port != fb.port || deref(md.Topics[0].Name) != "t" {
		t.Fatalf("metadata %+v", md)
	}
	var got []fakeSeen
	for _, s := range fb.requests() {
		got = append(got, fakeSeen{s.key, s.version, s.conn})
	}
	want := []fakeSeen{{apiKeyApiVersions, 5, 1}, {apiKeyApiVersions, 5, 2}, {3, 0, 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("requests (key, version, conn) %v, want %v", got, want)
	}
	// Routed requests work too: the broker the metadata names is the same.
	md, err := cl.Metadata(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Name != "u" {
		t.Fatalf("metadata %+v", md)
	}
}

// TestFakeSilentLegacyBroker: a Kafka 0.9 broker leaves ApiVersions
// unanswered (the connection stays open). The first request waits half the
// dial timeout, then works over a v0 connection; an API 0.9 lacks fails at
// once with an error that names the broker's version.
func TestFakeSilentLegacyBroker(t *testing.T) {
	fb := newFakeBroker(t, func(fc *fakeConn, r *fakeRequest) bool {
		return r.key == apiKeyApiVersions // never answered
	})
	const dialTimeout = 600 * time.Millisecond
	cl := newTestClient(t, fb.addr, WithDialTimeout(dialTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := cl.RequestBroker(ctx, -1, metadataFor("t")); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < dialTimeout/2 || took > 3*dialTimeout {
		t.Errorf("first request took %v, want about %v", took, dialTimeout/2)
	}
	var got []fakeSeen
	for _, s := range fb.requests() {
		got = append(got, fakeSeen{s.key, s.version, s.conn})
	}
	want := []fakeSeen{{apiKeyApiVersions, 5, 1}, {3, 0, 2}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("requests (key, version, conn) %v, want %v", got, want)
	}
	_, err := cl.RequestBroker(ctx, -1, &CreateTopicsRequest{})
	if !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), "Kafka 0.9") {
		t.Fatalf("CreateTopics on 0.9: %v, want ErrUnsupportedVersion naming Kafka 0.9", err)
	}

	// Control: a broker silent on v0 too is a hung one, and the request fails.
	hung := newFakeBroker(t, func(fc *fakeConn, r *fakeRequest) bool { return true })
	const requestTimeout = 300 * time.Millisecond
	cl = newTestClient(t, hung.addr, WithDialTimeout(dialTimeout), WithRequestTimeout(requestTimeout))
	start = time.Now()
	_, err = cl.RequestBroker(ctx, -1, metadataFor("t"))
	wantBrokerError(t, err, hung.addr, ErrResponseTimeout)
	if took := time.Since(start); took > dialTimeout/2+requestTimeout+time.Second {
		t.Errorf("a hung broker failed after %v", took)
	}
}

// TestFakeApiVersionsUnsupported: a broker that does not know our
// ApiVersions version answers v0 with UNSUPPORTED_VERSION and its own range;
// the client asks again at the broker's newest, then uses what it says.
func TestFakeApiVersionsUnsupported(t *testing.T) {
	fb := newFakeBroker(t, func(fc *fakeConn, r *fakeRequest) bool {
		if r.key == apiKeyApiVersions && r.version > 2 {
			fc.replyAt(r, 0, &ApiVersionsResponse{ErrorCode: ErrUnsupportedVersion.Code(), ApiKeys: []ApiVersionsResponseApiKey{
				{ApiKey: apiKeyApiVersions, MinVersion: 0, MaxVersion: 2}}})
			return true
		}
		if r.key == apiKeyApiVersions {
			fc.reply(r, &ApiVersionsResponse{ApiKeys: []ApiVersionsResponseApiKey{
				{ApiKey: apiKeyApiVersions, MinVersion: 0, MaxVersion: 2}, {ApiKey: 3, MinVersion: 0, MaxVersion: 7}}})
			return true
		}
		return false
	})
	cl := newTestClient(t, fb.addr)
	mustMetadata(t, cl, -1)
	want := []fakeSeen{{apiKeyApiVersions, 5, 1}, {apiKeyApiVersions, 2, 1}, {3, 7, 1}}
	if got := fb.requests(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("requests (key, version, conn) %v, want %v", got, want)
	}
}
