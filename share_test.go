package kpax

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// shareBroker returns the Kafka 4.x broker, which has share groups (on by
// default from Kafka 4.2); share tests need it.
func shareBroker(t *testing.T) string {
	t.Helper()
	testBrokers(t)
	addr := os.Getenv("KPAX_TEST_KAFKA4")
	if addr == "" {
		t.Skip("no Kafka 4.x broker: set KPAX_TEST_KAFKA4 (make test does)")
	}
	return addr
}

// shareSetup creates a topic with n records (values "v-0", "v-1", ... over
// the partitions) and a share group that reads it from the earliest offset,
// with the acquisition lock given (0: the broker's default).
func shareSetup(t *testing.T, cl *Client, partitions int32, n int, lock time.Duration) (topic, group string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic, group = uniq("share"), uniq("share-g")
	a := cl.Admin()
	createTopic(t, ctx, a, topic, partitions)
	changes := []ConfigChange{{Name: "share.auto.offset.reset", Op: ConfigSet, Value: "earliest"}}
	if lock > 0 {
		changes = append(changes, ConfigChange{Name: "share.record.lock.duration.ms", Op: ConfigSet, Value: fmt.Sprint(lock.Milliseconds())})
	}
	res, err := a.AlterConfigs(ctx, AlterConfig{Resource: ConfigResource{Type: ConfigGroup, Name: group}, Changes: changes})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	var recs []*Record
	for i := range n {
		recs = append(recs, &Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(fmt.Sprintf("v-%d", i))})
	}
	if n > 0 {
		produceKpax(t, cl, recs, WithPartitioner(ManualPartitioner()), WithLinger(5*time.Millisecond))
	}
	return topic, group
}

func newTestShare(t *testing.T, cl *Client, group, topic string, opts ...Option) *ShareConsumer {
	t.Helper()
	s, err := cl.NewShareConsumer(group, []string{topic}, append([]Option{WithFetchMaxWait(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

// pollShare polls until f says stop or the timeout; it fails the test on a
// Poll error and logs the fetch errors.
func pollShare(t *testing.T, s *ShareConsumer, timeout time.Duration, f func(recs []ShareRecord) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err := s.Poll(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Poll: %v", err)
		}
		for _, e := range got.Errors {
			t.Logf("Poll error: %v", e)
		}
		if f(got.Records) {
			return
		}
	}
	t.Fatalf("pollShare: timed out after %v", timeout)
}

// TestIntegrationShareBasics: one share consumer gets every record once
// (delivery count 1), accepts them implicitly; a second consumer of the
// group then gets nothing.
func TestIntegrationShareBasics(t *testing.T) {
	addr := shareBroker(t)
	cl := newGroupTestClient(t, addr)
	topic, group := shareSetup(t, cl, 2, 200, 0)
	s := newTestShare(t, cl, group, topic)
	seen := map[string]int{}
	pollShare(t, s, 60*time.Second, func(recs []ShareRecord) bool {
		for _, r := range recs {
			seen[string(r.Value)]++
			if r.DeliveryCount != 1 || r.Topic != topic || r.LockedUntil.Before(time.Now()) {
				t.Errorf("record %s: delivery count %d, topic %q, locked until %v", r.Value, r.DeliveryCount, r.Topic, r.LockedUntil)
			}
		}
		return len(seen) == 200
	})
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", v, n)
		}
	}
	if got := s.Assigned()[topic]; len(got) != 2 {
		t.Errorf("Assigned = %v", s.Assigned())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds, err := cl.Admin().DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if d := ds[0]; d.Type != "share" || d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != s.MemberID() || len(d.Members[0].Assigned[topic]) != 2 {
		t.Errorf("DescribeGroups = %+v", d)
	}
	if err := s.Close(ctx); err != nil { // accepts the last Poll's records
		t.Fatal(err)
	}
	// The admin API reads and moves the group's start offsets (the group
	// has no members now).
	if offs, err := cl.Admin().ShareGroupOffsets(ctx, group, topic); err != nil || len(offs) != 2 {
		t.Fatalf("ShareGroupOffsets: %v %+v", err, offs)
	}
	res, err := cl.Admin().AlterShareGroupOffsets(ctx, group, TopicPartitionOffset{Topic: topic, Partition: 1, Offset: 150})
	if err != nil || res[0].Err != nil {
		t.Fatalf("AlterShareGroupOffsets: %v %+v", err, res)
	}
	if offs, err := cl.Admin().ShareGroupOffsets(ctx, group, topic); err != nil || len(offs) != 2 || offs[1].Offset != 150 {
		t.Fatalf("ShareGroupOffsets after the alter: %v %+v", err, offs)
	}
	// Accepted records never come back, also not to a new member (which
	// gets its assignment within a heartbeat interval, 5s).
	s2 := newTestShare(t, cl, group, topic)
	quiet := time.Now().Add(10 * time.Second)
	pollShare(t, s2, 30*time.Second, func(recs []ShareRecord) bool {
		for _, r := range recs {
			t.Errorf("delivered again after acceptance: %s (count %d)", r.Value, r.DeliveryCount)
		}
		return time.Now().After(quiet)
	})
	if len(s2.Assigned()[topic]) != 2 {
		t.Errorf("the second member never got its assignment: %v", s2.Assigned())
	}
}

// TestIntegrationShareReleaseReject: released records come back with
// delivery count 2; rejected ones never do; misuse is an error.
func TestIntegrationShareReleaseReject(t *testing.T) {
	addr := shareBroker(t)
	cl := newGroupTestClient(t, addr)
	topic, group := shareSetup(t, cl, 1, 30, 0)
	s := newTestShare(t, cl, group, topic, WithShareAckMode(ShareAckExplicit))
	first := map[string]bool{}
	again := map[string]int16{}
	pollShare(t, s, 60*time.Second, func(recs []ShareRecord) bool {
		for i := range recs {
			r := &recs[i]
			v := string(r.Value)
			var n int
			fmt.Sscanf(v, "v-%d", &n)
			switch {
			case !first[v]:
				first[v] = true
				typ := AckAccept
				switch n % 3 {
				case 1:
					typ = AckRelease
				case 2:
					typ = AckReject
				}
				if err := s.Acknowledge(r, typ); err != nil {
					t.Fatal(err)
				}
				if err := s.Acknowledge(r, AckAccept); !errors.Is(err, ErrShareAcknowledged) {
					t.Fatalf("second Acknowledge = %v, want ErrShareAcknowledged", err)
				}
			default:
				again[v] = r.DeliveryCount
				if err := s.Acknowledge(r, AckAccept); err != nil {
					t.Fatal(err)
				}
			}
		}
		return len(first) == 30 && len(again) == 10
	})
	for v, c := range again {
		var n int
		fmt.Sscanf(v, "v-%d", &n)
		if n%3 != 1 || c != 2 {
			t.Errorf("%s came back with delivery count %d; only released ones should, with 2", v, c)
		}
	}
	// Nothing else comes back, also not to a new member once this one's
	// session closed (which would give back whatever it still held).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := newTestShare(t, cl, group, topic)
	quiet := time.Now().Add(10 * time.Second)
	pollShare(t, s2, 30*time.Second, func(recs []ShareRecord) bool {
		for _, r := range recs {
			t.Errorf("delivered again: %s (count %d)", r.Value, r.DeliveryCount)
		}
		return time.Now().After(quiet)
	})
	// Misuse: a record not from this consumer, a bad type, a nil record.
	foreign := ShareRecord{Record: Record{Topic: topic, Offset: 1}}
	if err := s2.Acknowledge(&foreign, AckAccept); !errors.Is(err, ErrShareForeignRecord) {
		t.Errorf("foreign record: %v", err)
	}
	if err := s2.Acknowledge(nil, AckAccept); err == nil {
		t.Error("nil record accepted")
	}
	if err := s2.Acknowledge(&foreign, AckType(9)); err == nil || !strings.Contains(err.Error(), "bad acknowledgement type") {
		t.Errorf("bad type: %v", err)
	}
}

// abandon stops the consumer's goroutines without a word to the brokers,
// as if its process died.
func (s *ShareConsumer) abandon() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// TestIntegrationShareThree: three share consumers on one partition of 30k
// records, produced in a few big batches: in the record-limit acquire mode
// every fetch brings at most WithShareMaxRecords records, every record is
// accepted exactly once across the consumers, and each of the three does
// a fair part of the work. (In the default batch-optimized mode the broker
// hands out whole batches, and one or two consumers may get everything.)
func TestIntegrationShareThree(t *testing.T) {
	addr := shareBroker(t)
	cl := newGroupTestClient(t, addr)
	const n, maxRecords = 30000, 100
	topic, group := shareSetup(t, cl, 1, n, 0)
	var mu sync.Mutex
	seen := map[int64]int{}
	by := map[int]int{}
	var members []*ShareConsumer
	for range 3 {
		mcl := newGroupTestClient(t, addr)
		members = append(members, newTestShare(t, mcl, group, topic,
			WithShareMaxRecords(maxRecords), WithShareAcquireMode(ShareAcquireRecordLimit)))
	}
	// No member starts before all three have the partition: a member that
	// joins late would find the work done.
	waitUntil(t, 30*time.Second, "all three members' assignments", func() bool {
		for _, s := range members {
			if len(s.Assigned()[topic]) == 0 {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, s := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				f, err := s.Poll(ctx)
				if err != nil {
					return
				}
				if len(f.Records) > maxRecords {
					t.Errorf("consumer %d: one Poll brought %d records, more than the record limit %d", i, len(f.Records), maxRecords)
				}
				mu.Lock()
				for _, r := range f.Records {
					seen[r.Offset]++
					by[i]++
				}
				done := len(seen) == n
				mu.Unlock()
				if done {
					cancel()
				}
				time.Sleep(2 * time.Millisecond) // some processing, so that the others get turns
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d of %d records delivered", len(seen), n)
	}
	for off, c := range seen {
		if c != 1 {
			t.Errorf("offset %d delivered %d times", off, c)
		}
	}
	t.Logf("records by consumer: %v", by)
	for i := range 3 {
		if by[i] < n/20 {
			t.Errorf("consumer %d got %d records, less than 5%% of the work: %v", i, by[i], by)
		}
	}
}

// TestIntegrationShareKilled: a consumer that dies without Close holds its
// records until the acquisition lock times out; then another consumer gets
// them, with delivery count 2. The control: before the timeout, the other
// gets nothing.
func TestIntegrationShareKilled(t *testing.T) {
	addr := shareBroker(t)
	cl := newGroupTestClient(t, addr)
	const lock = 15 * time.Second // group.share.min.record.lock.duration.ms's default
	topic, group := shareSetup(t, cl, 1, 20, lock)
	victim := newTestShare(t, newGroupTestClient(t, addr), group, topic)
	var held []ShareRecord
	pollShare(t, victim, 60*time.Second, func(recs []ShareRecord) bool {
		held = append(held, recs...)
		return len(held) == 20
	})
	victim.abandon()
	killed := time.Now()
	other := newTestShare(t, cl, group, topic)
	got := map[string]int16{}
	pollShare(t, other, lock+30*time.Second, func(recs []ShareRecord) bool {
		for _, r := range recs {
			if time.Since(killed) < lock-time.Second {
				t.Errorf("%s delivered %v after the kill, before the lock timed out", r.Value, time.Since(killed))
			}
			got[string(r.Value)] = r.DeliveryCount
		}
		return len(got) == 20
	})
	for v, c := range got {
		if c != 2 {
			t.Errorf("%s: delivery count %d, want 2", v, c)
		}
	}
	if err := victim.Acknowledge(&held[0], AckAccept); !errors.Is(err, ErrConsumerClosed) {
		t.Errorf("Acknowledge after close: %v", err)
	}
}

// TestIntegrationShareNoBroker39: Kafka 3.9 has no share groups: Poll's
// error says so and names the broker.
func TestIntegrationShareNoBroker39(t *testing.T) {
	addr := os.Getenv("KPAX_TEST_KAFKA39")
	if addr == "" {
		testBrokers(t)
		t.Skip("no Kafka 3.9 broker: set KPAX_TEST_KAFKA39 (make test does)")
	}
	cl := newGroupTestClient(t, addr)
	s := newTestShare(t, cl, uniq("share-g"), "t")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.Poll(ctx)
	if !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), "Kafka") || !strings.Contains(err.Error(), "share groups") {
		t.Fatalf("Poll = %v, want ErrUnsupportedVersion naming the broker and share groups", err)
	}
	t.Log(err)
}

func TestShareOptionsValidate(t *testing.T) {
	cl := newTestClient(t, "127.0.0.1:1")
	for _, opts := range [][]Option{
		{WithShareAckMode(7)},
		{WithShareMaxRecords(0)},
		{WithShareAcquireMode(2)},
		{WithSessionTimeout(time.Second)}, // a group option
		{WithIsolationLevel(ReadCommitted)},
	} {
		if s, err := cl.NewShareConsumer("g", []string{"t"}, opts...); err == nil {
			s.Close(context.Background())
			t.Errorf("NewShareConsumer accepted %v", opts)
		}
	}
	for _, args := range []struct {
		group  string
		topics []string
	}{{"", []string{"t"}}, {"g", nil}, {"g", []string{""}}} {
		if s, err := cl.NewShareConsumer(args.group, args.topics); err == nil {
			s.Close(context.Background())
			t.Errorf("NewShareConsumer(%q, %q) succeeded", args.group, args.topics)
		}
	}
	s, err := cl.NewShareConsumer("g", []string{"t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Poll(context.Background()); !errors.Is(err, ErrConsumerClosed) {
		t.Errorf("Poll after Close = %v", err)
	}
	if err := s.Commit(context.Background()); !errors.Is(err, ErrConsumerClosed) {
		t.Errorf("Commit after Close = %v", err)
	}
}

// TestShareAcquiredHostile: acquired ranges and record data from a broker
// that lies never panic, never allocate past what was received, and never
// deliver a record the broker did not acquire for the member; the
// acknowledgements of what was delivered encode as runs.
func TestShareAcquiredHostile(t *testing.T) {
	h := NewBatchHeader()
	h.BaseOffset = 10
	var recs []Record
	for i := range 5 {
		recs = append(recs, Record{Value: []byte(fmt.Sprint(i))})
	}
	data, err := AppendRecordBatch(nil, h, recs, CompressionNone, 0)
	if err != nil {
		t.Fatal(err)
	}
	type acq = ShareFetchResponseItemPartitionAcquiredRecord
	tests := []struct {
		name    string
		records []byte
		ranges  []acq
		want    []int64 // offsets delivered
		wantErr bool
	}{
		{"all", data, []acq{{FirstOffset: 10, LastOffset: 14, DeliveryCount: 1}}, []int64{10, 11, 12, 13, 14}, false},
		{"some, with gaps", data, []acq{{FirstOffset: 13, LastOffset: 20, DeliveryCount: 2}, {FirstOffset: 8, LastOffset: 10, DeliveryCount: 1}}, []int64{10, 13, 14}, false},
		{"none acquired", data, nil, nil, false},
		{"reversed range", data, []acq{{FirstOffset: 14, LastOffset: 10}}, nil, true},
		{"negative", data, []acq{{FirstOffset: -5, LastOffset: 10}}, nil, true},
		{"huge span", data, []acq{{FirstOffset: 0, LastOffset: 1 << 40}}, nil, true},
		{"max int64", data, []acq{{FirstOffset: 1<<63 - 1, LastOffset: 1<<63 - 1}, {FirstOffset: 0, LastOffset: 0}}, nil, true},
		{"corrupt data", data[:len(data)-3], []acq{{FirstOffset: 10, LastOffset: 14}}, nil, false},
		{"garbage", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, []acq{{FirstOffset: 0, LastOffset: 3}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &ShareConsumer{}
			tp := topicPartition{"t", 0}
			p := &ShareFetchResponseItemPartition{Records: tt.records, AcquiredRecords: tt.ranges}
			got, err := s.acquired(&shareSession{}, nil, 1, tp, UUID{1}, p, time.Now())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			var offs []int64
			for i := range got {
				offs = append(offs, got[i].Offset)
				if got[i].Topic != "t" || got[i].DeliveryCount == 0 {
					t.Errorf("record %+v", got[i])
				}
				if err := s.Acknowledge(&got[i], AckAccept); err != nil {
					t.Fatal(err)
				}
			}
			if fmt.Sprint(offs) != fmt.Sprint(tt.want) {
				t.Fatalf("delivered %v, want %v", offs, tt.want)
			}
			s.mu.Lock()
			acks := s.takeAcks(1, func(topicPartition) bool { return true })
			left := len(s.parts)
			s.mu.Unlock()
			if left != 0 {
				t.Errorf("%d parts left after every offset was settled", left)
			}
			for _, r := range acks[tp].runsOrNil() {
				if r.last < r.first || (len(r.types) != 1 && int64(len(r.types)) != r.last-r.first+1) {
					t.Errorf("bad run %+v", r)
				}
			}
		})
	}
}

// TestShareAckRuns: settled offsets become runs of one type, or one type per
// offset; pending offsets split runs and stay for later.
func TestShareAckRuns(t *testing.T) {
	s := &ShareConsumer{}
	tp := topicPartition{"t", 0}
	s.parts = []*sharePart{{owner: s, tp: tp, node: 1, first: 100,
		acks: []int8{1, 1, 1, ackPending, 0, 2, 3, ackNone, ackSent + 1, 1}}}
	acks := s.takeAcks(1, func(topicPartition) bool { return true })
	got := fmt.Sprint(acks[tp].runs)
	if want := "[{100 102 [1]} {104 106 [0 2 3]} {109 109 [1]}]"; got != want {
		t.Fatalf("runs %s, want %s", got, want)
	}
	if len(s.parts) != 1 {
		t.Fatal("the part with a pending offset was dropped")
	}
	if again := s.takeAcks(1, func(topicPartition) bool { return true }); len(again) != 0 {
		t.Fatalf("sent twice: %v", again)
	}
}

// TestIntegrationShareJavaInterop: a kpax share consumer and Java's
// console share consumer (kafka-tools, fetched by kafka.sh tools) in one
// share group: between them every record is delivered once, and both get
// some.
func TestIntegrationShareJavaInterop(t *testing.T) {
	addr := shareBroker(t)
	out, err := runKafkaScript(kafkaScript(t), "tools", testKafkaVersion())
	if err != nil {
		t.Fatalf("kafka.sh tools: %v\n%s", err, out)
	}
	classpath := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	cl := newGroupTestClient(t, addr)
	const n = 2000
	topic, group := shareSetup(t, cl, 1, n/2, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	java := exec.CommandContext(ctx, "java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", classpath,
		"org.apache.kafka.tools.consumer.ConsoleShareConsumer", "--bootstrap-server", addr,
		"--topic", topic, "--group", group, "--timeout-ms", "15000")
	var javaOut syncBuf
	var javaErr syncBuf
	java.Stdout, java.Stderr = &javaOut, &javaErr
	if err := java.Start(); err != nil {
		t.Fatal(err)
	}
	defer java.Process.Kill()
	javaValues := func() []string {
		var vs []string
		for _, l := range strings.Split(javaOut.String(), "\n") {
			if strings.HasPrefix(l, "v-") {
				vs = append(vs, l)
			}
		}
		return vs
	}
	waitUntil(t, 60*time.Second, "the Java share consumer's first records", func() bool { return len(javaValues()) > 0 })
	s := newTestShare(t, cl, group, topic, WithShareMaxRecords(50))
	var late []*Record
	for i := n / 2; i < n; i++ {
		late = append(late, &Record{Topic: topic, Value: []byte(fmt.Sprintf("v-%d", i))})
	}
	kpaxSeen := map[string]int{}
	produced := false
	pollShare(t, s, 90*time.Second, func(recs []ShareRecord) bool {
		for _, r := range recs {
			kpaxSeen[string(r.Value)]++
		}
		if !produced && len(s.Assigned()) > 0 {
			produced = true
			go func() { // in small steps, so that both consumers' fetches get some
				p, err := cl.NewProducer(WithLinger(0))
				if err != nil {
					t.Error(err)
					return
				}
				defer p.Close(ctx)
				for i := 0; i < len(late); i += 10 {
					if err := p.ProduceSync(ctx, late[i:i+10]...); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		return len(kpaxSeen)+len(javaValues()) >= n
	})
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	java.Process.Signal(os.Interrupt)
	java.Wait()
	all := map[string]int{}
	for v, c := range kpaxSeen {
		all[v] += c
	}
	jv := javaValues()
	for _, v := range jv {
		all[v]++
	}
	t.Logf("kpax got %d records, Java %d", len(kpaxSeen), len(jv))
	if len(all) != n {
		t.Errorf("%d distinct records, want %d (java stderr: %s)", len(all), n, javaErr.String())
	}
	for v, c := range all {
		if c != 1 {
			t.Errorf("%s delivered %d times", v, c)
		}
	}
	if len(kpaxSeen) == 0 || len(jv) == 0 {
		t.Errorf("one consumer got nothing: kpax %d, Java %d", len(kpaxSeen), len(jv))
	}
}

// TestIntegrationShareCloseWhilePolling: Close from another goroutine ends
// a Poll that waits, and the consumer's goroutines.
func TestIntegrationShareCloseWhilePolling(t *testing.T) {
	addr := shareBroker(t)
	cl := newGroupTestClient(t, addr)
	topic, group := shareSetup(t, cl, 1, 0, 0)
	s := newTestShare(t, cl, group, topic)
	done := make(chan error, 1)
	go func() {
		_, err := s.Poll(context.Background())
		done <- err
	}()
	time.Sleep(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrConsumerClosed) {
			t.Fatalf("Poll = %v, want ErrConsumerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Poll still waits after Close")
	}
}

func TestAcquiredCap(t *testing.T) {
	acq := func(first, last int64) ShareFetchResponseItemPartitionAcquiredRecord {
		return ShareFetchResponseItemPartitionAcquiredRecord{FirstOffset: first, LastOffset: last}
	}
	tests := []struct {
		name   string
		bytes  int
		ranges []ShareFetchResponseItemPartitionAcquiredRecord
		want   int
	}{
		{"none", 700, nil, 0},
		{"offsets", 700, []ShareFetchResponseItemPartitionAcquiredRecord{acq(0, 9), acq(20, 29)}, 20},
		{"bytes bound", 70, []ShareFetchResponseItemPartitionAcquiredRecord{acq(0, 99)}, 10},
		{"huge span", 70, []ShareFetchResponseItemPartitionAcquiredRecord{acq(0, 1<<62)}, 10},
		{"overflowing sum", 700, []ShareFetchResponseItemPartitionAcquiredRecord{acq(0, 1<<62), acq(-1<<62, 1<<62)}, 100},
		{"reversed", 700, []ShareFetchResponseItemPartitionAcquiredRecord{acq(9, 0)}, 0},
		{"no bytes", 0, []ShareFetchResponseItemPartitionAcquiredRecord{acq(0, 9)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &ShareFetchResponse{Responses: []ShareFetchResponseItem{{Partitions: []ShareFetchResponseItemPartition{
				{Records: make([]byte, tt.bytes), AcquiredRecords: tt.ranges}}}}}
			if got := acquiredCap(resp); got != tt.want {
				t.Errorf("acquiredCap = %d, want %d", got, tt.want)
			}
		})
	}
}
