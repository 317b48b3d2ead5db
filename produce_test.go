package kpax

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMurmur2 checks the hash against values of the Java client's
// Utils.murmur2 formula.
func TestMurmur2(t *testing.T) {
	tests := []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, tt := range tests {
		if got := int32(murmur2([]byte(tt.in))); got != tt.want {
			t.Errorf("murmur2(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestPartitioners(t *testing.T) {
	r := &Record{Topic: "t", Key: []byte("foobar")}
	// -790332482 & 0x7fffffff = 1357151166; % 7 = 1357151166 % 7
	if got, want := Murmur2Partitioner().Partition(r, 7, nil), int32(1357151166%7); got != want {
		t.Fatalf("murmur2 partition %d, want %d", got, want)
	}
	sp := StickyPartitioner()
	u := &Record{Topic: "t"}
	first := sp.Partition(u, 10, nil)
	for i := 0; i < 100; i++ {
		if p := sp.Partition(u, 10, nil); p != first {
			t.Fatalf("sticky partitioner moved from %d to %d without a batch", first, p)
		}
	}
	if p := sp.Partition(u, 10, []int32{3}); p != 3 {
		t.Fatalf("sticky partitioner chose %d, only 3 is available", p)
	}
	rr := RoundRobinPartitioner()
	seen := map[int32]bool{}
	for i := 0; i < 4; i++ {
		seen[rr.Partition(u, 4, nil)] = true
	}
	if len(seen) != 4 {
		t.Fatalf("round robin covered %v", seen)
	}
	if p := ManualPartitioner().Partition(&Record{Partition: 5}, 10, nil); p != 5 {
		t.Fatalf("manual partition %d", p)
	}
}

func TestProducerOptionsValidate(t *testing.T) {
	cl := newTestClient(t, "127.0.0.1:1")
	for _, tt := range []struct {
		opt  Option
		want string
	}{
		{WithAcks(2), "acks 2"},
		{WithMaxInFlight(6), "max in-flight"},
		{WithCompressionLevel(CompressionGzip, 42), "level"},
		{WithMaxBatchBytes(10), "max batch bytes"},
		{WithDeliveryTimeout(0), "delivery timeout"},
	} {
		if _, err := cl.NewProducer(tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("option error %v, want one that says %q", err, tt.want)
		}
	}
	if _, err := cl.NewProducer(WithAcks(1), WithIdempotence(true)); err == nil {
		t.Error("idempotence with acks=1 accepted")
	}
	p, err := cl.NewProducer(WithAcks(1))
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.idempotent {
		t.Error("default idempotence kept with acks=1")
	}
	p.Close(context.Background())
}

// createTestTopic creates a topic through the client and waits for its leaders.
func createTestTopic(t *testing.T, cl *Client, partitions int32) string {
	t.Helper()
	return createFaultTopic(t, cl, partitions, 1)
}

// createFaultTopic creates a topic with the replication factor and waits
// until every partition has a leader and rf replicas in sync.
func createFaultTopic(t *testing.T, cl *Client, partitions int32, rf int16) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := fmt.Sprintf("kpax-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	r, err := cl.Request(ctx, &CreateTopicsRequest{TimeoutMs: 20000, Topics: []CreateTopicsRequestTopic{{
		Name: topic, NumPartitions: partitions, ReplicationFactor: rf}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ErrorForCode(r.(*CreateTopicsResponse).Topics[0].ErrorCode); err != nil {
		t.Fatal(err)
	}
	for {
		md, err := cl.Metadata(ctx, topic)
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Err == nil && len(md.Topics[0].Partitions) == int(partitions) {
			ok := true
			for _, p := range md.Topics[0].Partitions {
				ok = ok && p.Leader >= 0 && len(p.ISR) == int(rf)
			}
			if ok {
				return topic
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s not ready: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kcatConsume reads count records of a topic with kcat, as "partition|key|value" lines.
func kcatConsume(t *testing.T, addr, topic string, count int) []string {
	t.Helper()
	out, err := exec.Command("kcat", "-C", "-b", addr, "-t", topic, "-o", "beginning", "-c", fmt.Sprint(count),
		"-e", "-q", "-f", "%p|%k|%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

func TestIntegrationProducer(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			cl := newTestClient(t, addr)
			for _, c := range codecs {
				t.Run(c.String(), func(t *testing.T) {
					topic := createTestTopic(t, cl, 3)
					p, err := cl.NewProducer(WithCompression(c), WithLinger(2*time.Millisecond))
					if err != nil {
						t.Fatal(err)
					}
					const n = 600
					recs := make([]*Record, n)
					var done atomic.Int32
					var mu sync.Mutex
					var errs []error
					for i := range recs {
						recs[i] = &Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%d", i%50)),
							Value: []byte(fmt.Sprintf("%s-value-%d", c, i)), Headers: []Header{{Key: "i", Value: []byte(fmt.Sprint(i))}}}
						if err := p.Produce(context.Background(), recs[i], func(r *Record, err error) {
							if err != nil {
								mu.Lock()
								errs = append(errs, err)
								mu.Unlock()
							}
							done.Add(1)
						}); err != nil {
							t.Fatal(err)
						}
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					if err := p.Flush(ctx); err != nil {
						t.Fatal(err)
					}
					if err := p.Close(ctx); err != nil {
						t.Fatal(err)
					}
					if done.Load() != n || len(errs) > 0 {
						t.Fatalf("%d outcomes, errors %v", done.Load(), errs)
					}
					// Keyed records land where murmur2 says, in order per key.
					for _, r := range recs {
						if want := Murmur2Partitioner().Partition(r, 3, nil); r.Partition != want || r.Offset < 0 {
							t.Fatalf("record %s in partition %d offset %d, want partition %d", r.Value, r.Partition, r.Offset, want)
						}
					}
					// Read back with kcat: byte-equal values, same partitions.
					lines := kcatConsume(t, addr, topic, n)
					if len(lines) != n {
						t.Fatalf("kcat read %d records, want %d", len(lines), n)
					}
					byValue := map[string]*Record{}
					for _, r := range recs {
						byValue[string(r.Value)] = r
					}
					for _, l := range lines {
						parts := strings.SplitN(l, "|", 3)
						r := byValue[parts[2]]
						if r == nil || fmt.Sprint(r.Partition) != parts[0] || string(r.Key) != parts[1] {
							t.Fatalf("kcat read %q, not what was produced", l)
						}
					}
					// And with our own fetch.
					rc := dialRaw(t, addr)
					ti := rc.metadata(topic)
					var got []Record
					for part := int32(0); part < 3; part++ {
						got = append(got, rc.fetch(ti, topic, part, 0, rc.pick(&FetchRequest{}))...)
					}
					if len(got) != n {
						t.Fatalf("fetched %d records, want %d", len(got), n)
					}
					for _, g := range got {
						r := byValue[string(g.Value)]
						if r == nil || !bytes.Equal(g.Key, r.Key) || g.Offset != r.Offset || len(g.Headers) != 1 {
							t.Fatalf("fetched %q at %d, not what was produced", g.Value, g.Offset)
						}
					}
				})
			}
		})
	}
}

// TestIntegrationMurmur2MatchesKcat has kcat (librdkafka, murmur2_random)
// and kpax place the same keys, and compares the partitions.
func TestIntegrationMurmur2MatchesKcat(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			cl := newTestClient(t, addr)
			topic := createTestTopic(t, cl, 7)
			var in strings.Builder
			for i := 0; i < 200; i++ {
				fmt.Fprintf(&in, "k%d-%s|v%d\n", i, strings.Repeat("x", i%13), i)
			}
			cmd := exec.Command("kcat", "-P", "-b", addr, "-t", topic, "-K", "|", "-X", "partitioner=murmur2_random")
			cmd.Stdin = strings.NewReader(in.String())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kcat -P: %v\n%s", err, out)
			}
			for _, l := range kcatConsume(t, addr, topic, 200) {
				parts := strings.SplitN(l, "|", 3)
				want := Murmur2Partitioner().Partition(&Record{Key: []byte(parts[1])}, 7, nil)
				if fmt.Sprint(want) != parts[0] {
					t.Fatalf("key %q: kcat chose partition %s, kpax %d", parts[1], parts[0], want)
				}
			}
		})
	}
}

// TestIntegrationProducerAcks produces with acks 0 and 1 and without idempotence.
func TestIntegrationProducerAcks(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			cl := newTestClient(t, addr)
			topic := createTestTopic(t, cl, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, acks := range []Acks{AcksNone, AcksLeader, AcksAll} {
				p, err := cl.NewProducer(WithAcks(acks))
				if err != nil {
					t.Fatal(err)
				}
				r := &Record{Topic: topic, Value: []byte(fmt.Sprint("acks", acks))}
				if err := p.ProduceSync(ctx, r); err != nil {
					t.Fatalf("acks=%d: %v", acks, err)
				}
				if (acks == 0) != (r.Offset < 0) {
					t.Fatalf("acks=%d: offset %d", acks, r.Offset)
				}
				p.Close(ctx)
			}
		})
	}
}

// TestProducerBackpressureAndClose: with no broker reachable, Produce blocks
// at the buffer limit until its context ends, and Close with a deadline
// returns in time having given every record an outcome.
func TestProducerBackpressureAndClose(t *testing.T) {
	cl := newTestClient(t, "127.0.0.1:1", WithDialTimeout(200*time.Millisecond), WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	p, err := cl.NewProducer(WithMaxBufferedRecords(10), WithMaxBufferedBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var outcomes atomic.Int32
	for i := 0; i < 10; i++ {
		if err := p.Produce(context.Background(), &Record{Topic: "t", Value: []byte("v")}, func(*Record, error) { outcomes.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Produce(ctx, &Record{Topic: "t", Value: []byte("v")}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Produce on a full buffer: %v, want a deadline error", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > time.Second {
		t.Fatalf("Produce blocked for %v", d)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	start = time.Now()
	p.Close(ctx2)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if outcomes.Load() != 10 {
		t.Fatalf("%d of 10 records got an outcome", outcomes.Load())
	}
	if err := p.Produce(context.Background(), &Record{Topic: "t"}, nil); !errors.Is(err, ErrProducerClosed) {
		t.Fatalf("Produce after Close: %v", err)
	}
}

// auditPartitioner partitions by key (murmur2) and, for each record of the
// main topic, produces a copy to the audit topic from inside Partition: a
// Partitioner that calls back into the producer.
type auditPartitioner struct {
	p      atomic.Pointer[Producer]
	audit  string
	copies atomic.Int64
	errs   atomic.Int64
}

func (a *auditPartitioner) Partition(r *Record, n int, avail []int32) int32 {
	if r.Topic == a.audit {
		return 0
	}
	if p := a.p.Load(); p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Produce(ctx, &Record{Topic: a.audit, Value: r.Value}, nil); err != nil {
			a.errs.Add(1)
		} else {
			a.copies.Add(1)
		}
	}
	return Murmur2Partitioner().Partition(r, n, avail)
}

// TestProducePartitionerReenters: a Partitioner that calls Produce. The
// producer calls it under no lock, so nothing deadlocks, for the records
// parked while their topic was unknown (partitioned by the sender) as for
// the others (by Produce); each key's records keep their order.
func TestProducePartitionerReenters(t *testing.T) {
	before := kpaxGoroutines()
	f := newFakeCluster(t, 3, nil)
	cl := newTestClient(t, f.addr())
	ap := &auditPartitioner{audit: "audit"}
	p, err := cl.NewProducer(WithLinger(time.Millisecond), WithPartitioner(ap))
	if err != nil {
		t.Fatal(err)
	}
	ap.p.Store(p)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 300
	var mu sync.Mutex
	got := map[string][]int{} // key: record numbers in callback order
	var failed []error
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			key := fmt.Sprint("k", i%5)
			err := p.Produce(ctx, &Record{Topic: "main", Key: []byte(key), Value: []byte(fmt.Sprint(i))}, func(r *Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = append(failed, err)
				}
				var num int
				fmt.Sscan(string(r.Value), &num)
				got[key] = append(got[key], num)
			})
			if err != nil {
				done <- err
				return
			}
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		done <- p.Flush(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("a Partitioner that calls Produce: no outcome in 15s (deadlock)\n%s", newGoroutines(before, 0))
	}
	if err := p.Flush(ctx); err != nil { // the audit copies
		t.Fatal(err)
	}
	closeWithin(t, p, 5*time.Second)
	cl.Close()
	f.close()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("figures: %d records, %d audit copies (%d refused), %d acknowledged by the broker, %d failures",
		n, ap.copies.Load(), ap.errs.Load(), f.produced.Load(), len(failed))
	if len(failed) > 0 || ap.errs.Load() > 0 || ap.copies.Load() < n || f.produced.Load() < 2*n {
		t.Fatalf("failures %v; %d audit copies, %d acknowledged: want %d and %d", failed, ap.copies.Load(), f.produced.Load(), n, 2*n)
	}
	for key, nums := range got {
		for i := 1; i < len(nums); i++ {
			if nums[i] < nums[i-1] {
				t.Fatalf("key %s: record %d after %d (%v)", key, nums[i], nums[i-1], nums)
			}
		}
	}
	if leaked := newGoroutines(before, 3*time.Second); leaked != "" {
		t.Fatalf("goroutines left after Close:\n%s", leaked)
	}
}
