package kpax

import (
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeCluster is a one-broker Kafka stand-in for what a real broker cannot
// do on demand: answering Produce without storing (to measure the client's
// own CPU), or answering exactly as a test needs. It serves ApiVersions,
// Metadata (every asked topic with its partitions) and InitProducerId
// itself and hands other requests to handle.
type fakeCluster struct {
	t          *testing.T
	srv        *fakeServer
	partitions int32
	handle     func(req Request, version int16) Response // nil: only the built-ins
	produced   atomic.Int64                              // records acknowledged
	measureCPU atomic.Bool                               // set before dialing: account serveCPU
	serveCPU   atomic.Int64                              // CPU ns of the connections' goroutines, if measured
}

// fakeServer is the accept loop the fake brokers share: it serves each
// connection on its own goroutine until the test's cleanup, which stops
// accepting, closes the connections and waits for their goroutines.
type fakeServer struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

// serveFake starts serving ln (a new 127.0.0.1 listener if nil) with serve,
// which need not close the connection.
func serveFake(tb testing.TB, ln net.Listener, serve func(net.Conn)) *fakeServer {
	tb.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			tb.Fatal(err)
		}
	}
	s := &fakeServer{ln: ln}
	s.wg.Add(1)
	go s.accept(serve)
	tb.Cleanup(s.close)
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) accept(serve func(net.Conn)) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer c.Close()
			serve(c)
		}()
	}
}

// accepted returns how many connections the server accepted.
func (s *fakeServer) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *fakeServer) close() {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func newFakeCluster(t testing.TB, partitions int32, handle func(Request, int16) Response) *fakeCluster {
	f := &fakeCluster{partitions: partitions, handle: handle}
	f.srv = serveFake(t, nil, f.serve)
	return f
}

func (f *fakeCluster) addr() string { return f.srv.addr() }

// close stops the broker: its connections end and it accepts no more.
func (f *fakeCluster) close() { f.srv.close() }

// readRequest reads one request frame and decodes its header and body.
func readRequest(r io.Reader, buf []byte) (req Request, version int16, corr int32, rest []byte, err error) {
	var size [4]byte
	if _, err = io.ReadFull(r, size[:]); err != nil {
		return
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err = io.ReadFull(r, buf); err != nil {
		return
	}
	d := decoder{b: buf}
	key, version, corr := d.int16(), d.int16(), d.int32()
	req = NewRequest(key)
	if req == nil {
		return nil, version, corr, buf, io.ErrUnexpectedEOF
	}
	if requestHeaderVersion(req, version) >= 1 {
		d.nullableString(false)
	}
	if requestHeaderVersion(req, version) >= 2 {
		for n := d.tagCount(); n > 0 && d.err == nil; n-- {
			d.tag()
		}
	}
	if d.err != nil {
		return nil, version, corr, buf, d.err
	}
	err = req.Decode(buf[d.off:], version)
	return req, version, corr, buf, err
}

// appendResponse appends a response frame to req at the version.
func appendResponse(dst []byte, req Request, version int16, corr int32, resp Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = appendInt32(dst, corr)
	if responseHeaderVersion(req, version) >= 1 {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst, version)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// serve answers one connection's requests in order. With measureCPU, the
// goroutine keeps its OS thread to itself, so the thread's CPU time (read
// after each request) is the fake broker's cost, system calls included;
// benchmarks subtract it.
func (f *fakeCluster) serve(c net.Conn) {
	var lastCPU int64
	measure := f.measureCPU.Load()
	if measure {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		lastCPU = threadCPU()
	}
	var in, out []byte
	for {
		req, v, corr, buf, err := readRequest(c, in)
		in = buf
		if err != nil {
			return
		}
		if measure {
			now := threadCPU()
			f.serveCPU.Add(now - lastCPU)
			lastCPU = now
		}
		resp := f.respond(req, v)
		if resp == nil {
			if p, ok := req.(*ProduceRequest); ok && p.Acks == 0 {
				continue
			}
			return // no answer: drop the connection
		}
		out = appendResponse(out[:0], req, v, corr, resp)
		if _, err := c.Write(out); err != nil {
			return
		}
		if measure {
			now := threadCPU()
			f.serveCPU.Add(now - lastCPU)
			lastCPU = now
		}
	}
}

func (f *fakeCluster) respond(req Request, v int16) Response {
	if f.handle != nil {
		if r := f.handle(req, v); r != nil {
			return r
		}
	}
	switch r := req.(type) {
	case *ApiVersionsRequest:
		resp := &ApiVersionsResponse{}
		for _, key := range apiKeys() {
			m := NewRequest(key)
			resp.ApiKeys = append(resp.ApiKeys, ApiVersionsResponseApiKey{ApiKey: key, MinVersion: m.MinVersion(), MaxVersion: m.MaxVersion()})
		}
		return resp
	case *MetadataRequest:
		host, port, _ := net.SplitHostPort(f.addr())
		portN, _ := strconv.Atoi(port)
		resp := &MetadataResponse{ControllerID: 1, Brokers: []MetadataResponseBroker{{NodeID: 1, Host: host, Port: int32(portN)}}}
		for _, t := range r.Topics {
			mt := MetadataResponseTopic{Name: t.Name, TopicID: UUID{1}}
			for p := int32(0); p < f.partitions; p++ {
				mt.Partitions = append(mt.Partitions, MetadataResponseTopicPartition{PartitionIndex: p, LeaderID: 1,
					ReplicaNodes: []int32{1}, ISRNodes: []int32{1}})
			}
			resp.Topics = append(resp.Topics, mt)
		}
		return resp
	case *InitProducerIdRequest:
		return &InitProducerIdResponse{ProducerID: 7, ProducerEpoch: 0}
	case *ProduceRequest:
		if r.Acks == 0 {
			return nil
		}
		resp := &ProduceResponse{}
		for _, td := range r.TopicData {
			rt := ProduceResponseItem{Name: td.Name, TopicID: td.TopicID}
			for _, pd := range td.PartitionData {
				n := int64(0)
				if len(pd.Records) >= 61 {
					n = int64(binary.BigEndian.Uint32(pd.Records[57:61]))
				}
				base := f.produced.Add(n) - n
				rt.PartitionResponses = append(rt.PartitionResponses, ProduceResponseItemPartitionResponse{
					Index: pd.Index, BaseOffset: base, LogAppendTimeMs: -1})
			}
			resp.Responses = append(resp.Responses, rt)
		}
		return resp
	}
	return nil
}
