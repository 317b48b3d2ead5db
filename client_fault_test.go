package kpax

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// This file tests the client against real brokers: version negotiation
// with Kafka 3.9 and 4.x, v0-era versions against 3.9, a broker restarted
// or paused (SIGSTOP) under a client, a partition leader killed in the
// 3-node cluster, Close with requests in flight, and SASL sessions that the
// broker ends (the pool replaces their connections). Malformed bytes and
// silent fakes are conn_test.go's.

// versionLog records the API key and version of every request a client
// writes, read off the wire by a dialer that taps its connections: what the
// broker got, whichever part of the client (producer, consumer, Request)
// sent it. Use it with WithDialer(vl.dial); it does not follow SASL's bare
// tokens.
type versionLog struct {
	mu   sync.Mutex
	seen map[int16][]int16 // versions by API key, in first-use order
	last map[int16]string  // address of the last request by API key
}

func newVersionLog() *versionLog {
	return &versionLog{seen: map[int16][]int16{}, last: map[int16]string{}}
}

func (l *versionLog) dialer() Option { return WithDialer(l.dial) }

func (l *versionLog) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &tapWriter{Conn: c, l: l, addr: addr}, nil
}

func (l *versionLog) add(key, version int16, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.seen[key], version) {
		l.seen[key] = append(l.seen[key], version)
	}
	l.last[key] = addr
}

// versions returns the versions of the API key that were sent.
func (l *versionLog) versions(key int16) []int16 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen[key])
}

// lastAddr returns the broker the last request of the API key went to.
func (l *versionLog) lastAddr(key int16) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[key]
}

// tapWriter parses the request frames written to a connection: size, API
// key, version, then the rest, skipped.
type tapWriter struct {
	net.Conn
	l    *versionLog
	addr string
	head []byte // the start of a frame, up to its version
	skip int    // bytes of the current frame left to pass over
}

func (c *tapWriter) Write(p []byte) (int, error) {
	for b := p; len(b) > 0; {
		if c.skip > 0 {
			n := min(c.skip, len(b))
			c.skip -= n
			b = b[n:]
			continue
		}
		n := min(8-len(c.head), len(b))
		c.head = append(c.head, b[:n]...)
		b = b[n:]
		if len(c.head) == 8 {
			size := int(binary.BigEndian.Uint32(c.head))
			c.l.add(int16(binary.BigEndian.Uint16(c.head[4:])), int16(binary.BigEndian.Uint16(c.head[6:])), c.addr)
			c.skip = max(size-4, 0)
			c.head = c.head[:0]
		}
	}
	return c.Conn.Write(p)
}

// roundTripRecords produces n records with cl's producer and reads them back
// with its consumer; it returns what came back.
func roundTripRecords(t *testing.T, cl *Client, topic string, n int, popts ...Option) []consumed {
	t.Helper()
	ts := time.UnixMilli(time.Now().UnixMilli())
	var recs []*Record
	for i := range n {
		recs = append(recs, &Record{Topic: topic, Partition: 0, Key: []byte(fmt.Sprint("k", i)),
			Value: []byte(fmt.Sprint("v", i)), Timestamp: ts})
	}
	produceKpax(t, cl, recs, popts...)
	c := newTestConsumer(t, cl)
	c.Assign(map[string]map[int32]Offset{topic: {0: Earliest()}}) // ListOffsets, then Fetch
	got, _ := pollN(t, c, n, 30*time.Second)
	var want []string
	for i := range n {
		want = append(want, fmt.Sprint("v", i))
	}
	checkExactly(t, got, map[int32][]string{0: want})
	for i, g := range got {
		if g.key != fmt.Sprint("k", i) {
			t.Fatalf("record %d: key %q", i, g.key)
		}
	}
	return got
}

// TestIntegrationNegotiation: the client negotiates with Kafka 3.9 and 4.x,
// which advertise different ranges (4.x dropped the versions KIP-896
// removed), uses the highest common version of each API, and produces and
// consumes with both. A cap below what 4.x still supports is a clear
// ErrUnsupportedVersion there.
func TestIntegrationNegotiation(t *testing.T) {
	brokers := testBrokers(t)
	ranges := map[string]map[int16][2]int16{}
	var mu sync.Mutex
	for _, name := range []string{"3.9", "4.x"} {
		addr := brokers[name]
		if addr == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			vl := newVersionLog()
			cl := newTestClient(t, addr, vl.dialer())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := cl.Request(ctx, &ApiVersionsRequest{ClientSoftwareName: "kpax-test", ClientSoftwareVersion: "0", NodeID: -1})
			if err != nil {
				t.Fatal(err)
			}
			rng := map[int16][2]int16{}
			for _, k := range r.(*ApiVersionsResponse).ApiKeys {
				rng[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
			}
			mu.Lock()
			ranges[name] = rng
			mu.Unlock()
			topic := createTestTopic(t, cl, 1)
			roundTripRecords(t, cl, topic, 10)
			var figures []string
			for _, key := range []int16{0, 1, 3, 18} { // Produce, Fetch, Metadata, ApiVersions
				want := min(rng[key][1], NewRequest(key).MaxVersion())
				got := vl.versions(key)
				if key == apiKeyApiVersions {
					// A broker before Kafka 4.x refuses v5 (UNSUPPORTED_VERSION,
					// with its range) and the connection asks again at its max.
					got = slices.DeleteFunc(slices.Clone(got), func(v int16) bool { return v > rng[key][1] })
				}
				if len(got) == 0 || slices.Max(got) != want || slices.Min(got) != want {
					t.Errorf("%s: versions %v, want %d (broker v%d-%d, client max %d)", APIName(key), got, want,
						rng[key][0], rng[key][1], NewRequest(key).MaxVersion())
				}
				figures = append(figures, fmt.Sprintf("%s v%d (broker v%d-%d)", APIName(key), want, rng[key][0], rng[key][1]))
			}
			t.Logf("figures: Kafka %s: %s", name, strings.Join(figures, ", "))
		})
	}
	r39, r4 := ranges["3.9"], ranges["4.x"]
	if r39 == nil || r4 == nil {
		return
	}
	t.Run("ranges differ", func(t *testing.T) {
		// KIP-896: Kafka 4.0 removed Fetch v0-3 and ListOffsets v0 (it
		// still advertises Produce v0-2 for old librdkafka, but refuses them).
		if r39[1][0] != 0 || r39[2][0] != 0 || r4[1][0] < 4 || r4[2][0] < 1 {
			t.Fatalf("Fetch/ListOffsets minimums: 3.9 %v/%v, 4.x %v/%v", r39[1], r39[2], r4[1], r4[2])
		}
		var diffs []string
		for key := int16(0); key < 100; key++ {
			if r39[key] != r4[key] {
				name := APIName(key)
				if name == "" {
					name = fmt.Sprint("key ", key)
				}
				diffs = append(diffs, fmt.Sprintf("%s %v->%v", name, r39[key], r4[key]))
			}
		}
		t.Logf("figures: %d APIs differ between 3.9 and 4.x: %s", len(diffs), strings.Join(diffs, ", "))
	})
	t.Run("4.x refuses v0-era versions", func(t *testing.T) {
		// What 4.x no longer advertises fails in the client, clearly.
		cl := newTestClient(t, brokers["4.x"], WithMaxVersion(2, 0), WithMaxVersion(1, 3))
		topic := createTestTopic(t, cl, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lo := &ListOffsetsRequest{ReplicaID: -1, Topics: []ListOffsetsRequestTopic{{Name: topic,
			Partitions: []ListOffsetsRequestTopicPartition{{PartitionIndex: 0, Timestamp: -1, MaxNumOffsets: 1}}}}}
		_, err := cl.Request(ctx, lo)
		if !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("ListOffsets v0 to Kafka 4: %v, want ErrUnsupportedVersion", err)
		}
		t.Logf("ListOffsets v0: %v", err)
		c := newTestConsumer(t, cl)
		c.Assign(map[string]map[int32]Offset{topic: {0: AtOffset(0)}})
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		for {
			f, err := c.Poll(pctx)
			if err != nil {
				t.Fatalf("Fetch v3 from Kafka 4: no error reported (%v)", err)
			}
			if i := slices.IndexFunc(f.Errors, func(e error) bool { return errors.Is(e, ErrUnsupportedVersion) }); i >= 0 {
				t.Logf("Fetch v3: %v", f.Errors[i])
				break
			}
		}
	})
}

// TestIntegrationV0Era caps versions to what Kafka 0.8-0.10 clients sent:
// Metadata v0, ApiVersions v0, Produce v0/v1 (message set v0) and v2
// (message set v1), Fetch v0-v2, ListOffsets v0. Kafka 3.9 still serves
// them; records go through both ways.
func TestIntegrationV0Era(t *testing.T) {
	addr := testBrokers(t)["3.9"]
	if addr == "" {
		t.Skip("needs the Kafka 3.9 broker (4.x dropped these versions)")
	}
	admin := newTestClient(t, addr)
	tests := []struct {
		name string
		caps map[int16]int16 // API key -> version
		ts   bool            // timestamps survive (message format v1)
	}{
		{"Metadata v0 Produce v0 Fetch v0 ListOffsets v0 ApiVersions v0", map[int16]int16{3: 0, 0: 0, 1: 0, 2: 0, 18: 0}, false},
		{"Produce v1 Fetch v1", map[int16]int16{3: 0, 0: 1, 1: 1}, false},
		{"Produce v2 Fetch v2 message format v1", map[int16]int16{0: 2, 1: 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vl := newVersionLog()
			opts := []Option{vl.dialer()}
			for k, v := range tt.caps {
				opts = append(opts, WithMaxVersion(k, v))
			}
			cl := newTestClient(t, addr, opts...)
			topic := createTestTopic(t, admin, 1)
			got := roundTripRecords(t, cl, topic, 20, WithIdempotence(false))
			for k, v := range tt.caps {
				if vs := vl.versions(k); len(vs) == 0 || slices.Max(vs) != v {
					t.Errorf("%s: versions %v, want %d", APIName(k), vs, v)
				}
			}
			if tt.ts != !got[0].ts.IsZero() {
				t.Errorf("timestamp %v (message format v1: %v)", got[0].ts, tt.ts)
			}
			t.Logf("figures: Produce %v, Fetch %v, Metadata %v, ListOffsets %v, ApiVersions %v", vl.versions(0), vl.versions(1),
				vl.versions(3), vl.versions(2), vl.versions(18))
		})
	}
}

// metadataOf sends a Metadata request to a node.
func metadataOf(ctx context.Context, cl *Client, node int32) error {
	_, err := cl.RequestBroker(ctx, node, metadataFor())
	return err
}

// TestIntegrationBrokerFaults hurts a private broker under a client: a
// restart (the next request dials again and succeeds), a stop (requests
// fail fast, the control), a pause with SIGSTOP (requests time out in time,
// Close fails waiting requests at once) and the resume (the client
// recovers).
func TestIntegrationBrokerFaults(t *testing.T) {
	n := startTestNode(t)
	var cmu sync.Mutex
	var dialsOK int
	const timeout = time.Second
	cl := newTestClient(t, n.Addr, WithRequestTimeout(timeout), WithDialTimeout(2*time.Second),
		WithRetryBackoff(10*time.Millisecond, 200*time.Millisecond),
		WithHooks(Hooks{OnConnect: func(_ int32, _ string, err error) {
			if err == nil {
				cmu.Lock()
				dialsOK++
				cmu.Unlock()
			}
		}}))
	dials := func() int {
		cmu.Lock()
		defer cmu.Unlock()
		return dialsOK
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := createTestTopic(t, cl, 1)
	lo := &ListOffsetsRequest{ReplicaID: -1, Topics: []ListOffsetsRequestTopic{{Name: topic,
		Partitions: []ListOffsetsRequestTopicPartition{{PartitionIndex: 0, Timestamp: -1, CurrentLeaderEpoch: -1}}}}}
	if err := metadataOf(ctx, cl, 1); err != nil {
		t.Fatal(err)
	}

	t.Run("restart", func(t *testing.T) {
		ok0 := dials()
		t0 := time.Now()
		n.Restart(t)
		t.Logf("restarted in %v", time.Since(t0).Round(time.Millisecond))
		// The first request after the restart succeeds, over a new connection.
		if err := metadataOf(ctx, cl, 1); err != nil {
			t.Fatalf("first request after the restart: %v", err)
		}
		if _, err := cl.Request(ctx, lo); err != nil {
			t.Fatalf("routed request after the restart: %v", err)
		}
		if ok := dials(); ok <= ok0 {
			t.Fatalf("no new connection after the restart (%d dials before, %d after)", ok0, ok)
		}
	})

	t.Run("stopped", func(t *testing.T) {
		// Control: with the broker down, requests fail, at once.
		n.Stop(t)
		start := time.Now()
		err := metadataOf(ctx, cl, 1)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("request to a stopped broker: %v, want ECONNREFUSED", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("failed after %v", d)
		}
		t.Logf("broker down: %v after %v", err, time.Since(start).Round(time.Millisecond))
		n.Restart(t)
		if err := metadataOf(ctx, cl, 1); err != nil {
			t.Fatalf("first request after the start: %v", err)
		}
	})

	t.Run("paused", func(t *testing.T) {
		if err := metadataOf(ctx, cl, 1); err != nil { // a live connection to pause under
			t.Fatal(err)
		}
		n.Signal(t, "STOP")
		paused := true
		defer func() {
			if paused {
				n.Signal(t, "CONT")
			}
		}()
		margin := 400 * time.Millisecond
		// On the open connection, then on a new one (the TCP connect
		// succeeds, the kernel queues it; ApiVersions gets no answer).
		for i, what := range []string{"open connection", "new connection"} {
			start := time.Now()
			err := metadataOf(ctx, cl, 1)
			d := time.Since(start)
			if !errors.Is(err, ErrResponseTimeout) {
				t.Fatalf("%s: %v, want ErrResponseTimeout", what, err)
			}
			if d < timeout || d > timeout+margin+time.Duration(i)*200*time.Millisecond {
				t.Errorf("%s: timed out after %v, want %v (+%v)", what, d, timeout, margin)
			}
			t.Logf("figures: paused broker, %s: %v after %v (timeout %v)", what, err, d.Round(time.Millisecond), timeout)
		}
		// Close fails a waiting request at once, not at its timeout.
		other := newTestClient(t, n.Addr, WithRequestTimeout(30*time.Second), WithDialTimeout(30*time.Second))
		errc := make(chan error, 1)
		go func() { errc <- metadataOf(context.Background(), other, -1) }()
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		other.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, ErrClientClosed) {
				t.Errorf("request waiting on Close: %v, want ErrClientClosed", err)
			}
			t.Logf("figures: Close failed a waiting request after %v: %v", time.Since(start).Round(time.Millisecond), err)
		case <-time.After(2 * time.Second):
			t.Fatal("Close did not fail the waiting request")
		}

		n.Signal(t, "CONT")
		paused = false
		start = time.Now()
		var attempts int
		var err error
		for attempts = 1; attempts <= 20; attempts++ {
			if err = metadataOf(ctx, cl, 1); err == nil {
				break
			}
			t.Logf("after SIGCONT, attempt %d: %v", attempts, err)
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("no recovery after SIGCONT: %v", err)
		}
		if _, err := cl.Request(ctx, lo); err != nil {
			t.Fatalf("routed request after SIGCONT: %v", err)
		}
		t.Logf("figures: recovered %v after SIGCONT in %d attempt(s)", time.Since(start).Round(time.Millisecond), attempts)
	})
}

// TestIntegrationLeaderFailover kills the leader of a partition in the
// 3-node cluster: the client's metadata moves to the new leader, and routed
// requests (ListOffsets, Produce) succeed there.
func TestIntegrationLeaderFailover(t *testing.T) {
	c := sharedCluster(t)
	defer c.Heal(t)
	vl := newVersionLog()
	cl := newTestClient(t, c.Bootstrap()[0], WithSeedBrokers(c.Bootstrap()...), WithRequestTimeout(3*time.Second),
		WithDialTimeout(time.Second), WithRetryBackoff(20*time.Millisecond, 250*time.Millisecond), vl.dialer())
	topic := createFaultTopic(t, cl, 1, 3)
	victim := leaders(t, cl, topic)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	lo := &ListOffsetsRequest{ReplicaID: -1, Topics: []ListOffsetsRequestTopic{{Name: topic,
		Partitions: []ListOffsetsRequestTopicPartition{{PartitionIndex: 0, Timestamp: -1, CurrentLeaderEpoch: -1}}}}}
	listOffsets := func() error {
		r, err := cl.Request(ctx, lo)
		if err != nil {
			return err
		}
		if err := ErrorForCode(r.(*ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode); err != nil {
			cl.meta.invalidate() // what a caller of Request does on NOT_LEADER
			return err
		}
		return nil
	}
	if err := listOffsets(); err != nil {
		t.Fatal(err)
	}
	if got := vl.lastAddr(2); got != c.Node(victim).Addr {
		t.Fatalf("ListOffsets went to %s, the leader is node %d", got, victim)
	}

	killed := time.Now()
	c.Node(victim).Signal(t, "KILL")
	var errs []string
	var err error
	for {
		if err = listOffsets(); err == nil {
			break
		}
		if len(errs) == 0 || errs[len(errs)-1] != err.Error() {
			errs = append(errs, err.Error())
		}
		if ctx.Err() != nil {
			t.Fatalf("no new leader: %v (errors met: %q)", err, errs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	moved := time.Since(killed)
	pm, err := cl.meta.leader(ctx, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if pm.Leader == victim || pm.Leader < 0 {
		t.Fatalf("the cached leader is %d after killing %d", pm.Leader, victim)
	}
	if got := vl.lastAddr(2); got != c.Node(pm.Leader).Addr {
		t.Fatalf("ListOffsets went to %s, the new leader is node %d", got, pm.Leader)
	}
	p, err := cl.NewProducer(WithDeliveryTimeout(30 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rec := &Record{Topic: topic, Partition: 0, Value: []byte("after the failover")}
	if err := p.ProduceSync(ctx, rec); err != nil {
		t.Fatalf("produce after the failover: %v", err)
	}
	p.Close(ctx)
	if got := vl.lastAddr(0); got != c.Node(pm.Leader).Addr {
		t.Errorf("Produce went to %s, the new leader is node %d", got, pm.Leader)
	}
	t.Logf("figures: killed node %d; node %d leads after %v; errors on the way: %q", victim, pm.Leader, moved.Round(time.Millisecond), errs)
}

// TestIntegrationCloseFailsPending: requests a broker holds (a Fetch
// waiting for data) fail at once with ErrClientClosed on Close, and no
// goroutine of the client is left.
func TestIntegrationCloseFailsPending(t *testing.T) {
	addr := testBrokers(t)["4.x"]
	if addr == "" {
		t.Skip("needs the Kafka 4.x broker")
	}
	admin := newTestClient(t, addr)
	topic := createTestTopic(t, admin, 1)
	cl, err := New(WithSeedBrokers(addr), WithMaxVersion(1, 12)) // Fetch by name
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := metadataOf(ctx, cl, -1); err != nil {
		cl.Close()
		t.Fatal(err)
	}
	const n = 4
	errc := make(chan error, n)
	for i := range n {
		go func() {
			var req Request = metadataFor()
			if i%2 == 0 { // held by the broker for 10s: no data
				req = &FetchRequest{ReplicaID: -1, MaxWaitMs: 10000, MinBytes: 1, MaxBytes: 1 << 20, Topics: []FetchRequestTopic{{
					Topic: topic, Partitions: []FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1}}}}}
			}
			_, err := cl.Request(ctx, req)
			errc <- err
		}()
	}
	admin.Close()                      // its goroutines would count as leaks below
	time.Sleep(500 * time.Millisecond) // the Fetches are at the broker
	start := time.Now()
	cl.Close()
	closed := time.Since(start)
	var got []string
	fetchFailed := 0
	for range n {
		select {
		case err := <-errc:
			if err != nil {
				if !errors.Is(err, ErrClientClosed) {
					t.Errorf("request: %v, want ErrClientClosed", err)
				}
				fetchFailed++
				got = append(got, err.Error())
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a request still waits after Close")
		}
	}
	if fetchFailed < n/2 {
		t.Errorf("%d requests failed, want at least the %d Fetches", fetchFailed, n/2)
	}
	if closed > time.Second {
		t.Errorf("Close took %v", closed)
	}
	if leaked := leakedGoroutines(2 * time.Second); leaked != "" {
		t.Fatalf("goroutines left after Close:\n%s", leaked)
	}
	t.Logf("figures: Close took %v; %d requests failed: %q", closed.Round(time.Millisecond), fetchFailed, got)
}

// --- SASL sessions with a lifetime (KIP-368): the pool replaces connections ---

// TestSASLFakeSessionLifetime: a broker that limits SASL sessions (KIP-368)
// closes a connection on the first request after its session's end. The
// client replaces its connection before then, so a steady stream of
// requests sees no error; the control, where the broker does not tell the
// lifetime, loses a request.
func TestSASLFakeSessionLifetime(t *testing.T) {
	const lifetime = 300 * time.Millisecond
	for _, tt := range []struct {
		name string
		hide bool
	}{{"renewed", false}, {"control: lifetime not told", true}} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSASLFake(t, nil, func(f *saslFake) { f.lifetime, f.hideLifetime = lifetime, tt.hide })
			cl := newTestClient(t, f.addr, WithSASL(SASLScramSHA512("alice", "alice-secret")),
				WithRetryBackoff(time.Millisecond, 10*time.Millisecond))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var failed []error
			n := 0
			for start := time.Now(); time.Since(start) < 4*lifetime; n++ {
				if err := metadataOf(ctx, cl, -1); err != nil {
					failed = append(failed, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			expired := strings.Count(strings.Join(f.events(), " "), "expired")
			t.Logf("figures: %d requests over %v with %v sessions: %d connections, %d failed, %d sent after a session's end",
				n, 4*lifetime, lifetime, f.accepted(), len(failed), expired)
			if tt.hide {
				if len(failed) == 0 || expired == 0 {
					t.Fatalf("control: no request hit an expired session (%d failed)", len(failed))
				}
				return
			}
			if len(failed) > 0 || expired > 0 {
				t.Fatalf("%d requests failed (%v), %d after a session's end", len(failed), failed, expired)
			}
			if f.accepted() < 3 {
				t.Fatalf("%d connections over %d sessions' time: not renewed", f.accepted(), 4)
			}
		})
	}
}

// TestIntegrationSASLSessionLifetime: the secure node limits SCRAM-SHA-512
// sessions on SASL_PLAINTEXT to 2s (connections.max.reauth.ms) and closes a
// connection on its first request after the end. A steady stream of
// requests over three sessions' time sees no error; the control, with
// SaslAuthenticate v0 (which does not carry the lifetime), loses one.
func TestIntegrationSASLSessionLifetime(t *testing.T) {
	n := startSecureTestNode(t)
	const lifetime, run = 2 * time.Second, 5 * time.Second
	for _, tt := range []struct {
		name    string
		authMax int16
	}{{"renewed", 2}, {"control: SaslAuthenticate v0", 0}} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			dials := 0
			cl := newTestClient(t, n.SASLPlaintext, WithSASL(SASLScramSHA512("alice", "alice-secret")),
				WithMaxVersion(36, tt.authMax), WithRetryBackoff(time.Millisecond, 10*time.Millisecond),
				WithHooks(Hooks{OnConnect: func(_ int32, _ string, err error) {
					if err == nil {
						mu.Lock()
						dials++
						mu.Unlock()
					}
				}}))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var failed []error
			reqs := 0
			for start := time.Now(); time.Since(start) < run; reqs++ {
				if err := metadataOf(ctx, cl, -1); err != nil {
					failed = append(failed, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			t.Logf("figures: %d requests over %v with %v sessions: %d connections, %d failed %v", reqs, run, lifetime, dials, len(failed), failed)
			if tt.authMax == 0 {
				if len(failed) == 0 {
					t.Fatal("control: no request failed on an expired session")
				}
				return
			}
			if len(failed) > 0 {
				t.Fatalf("%d requests failed: %v", len(failed), failed)
			}
			if dials < 3 {
				t.Fatalf("%d connections over %v: sessions not renewed", dials, run)
			}
		})
	}
}
