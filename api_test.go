package kpax

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests of the public surface for what a first-time user gets wrong: nil
// and bad arguments, timestamps, the produce waiter.

// TestBadInputs passes every exported entry point the values a caller can
// get wrong (nil, typed nil, empty names, negative partitions and offsets,
// a closed object): each is an error, never a panic, and the client keeps
// working afterwards.
func TestBadInputs(t *testing.T) {
	// The fake has no group coordinator: it says so, rather than dropping
	// the connection (its answer to requests it does not know), so that the
	// group member below, retrying in the background, breaks no connection.
	f := newFakeCluster(t, 2, func(req Request, _ int16) Response {
		if r, ok := req.(*FindCoordinatorRequest); ok {
			resp := &FindCoordinatorResponse{ErrorCode: ErrCoordinatorNotAvailable.Code()}
			for _, k := range r.CoordinatorKeys {
				resp.Coordinators = append(resp.Coordinators, FindCoordinatorResponseCoordinator{Key: k, ErrorCode: ErrCoordinatorNotAvailable.Code()})
			}
			return resp
		}
		return nil
	})
	cl := newTestClient(t, f.addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var nilCtx context.Context
	p, err := cl.NewProducer(WithPartitioner(ManualPartitioner()), WithLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	closedP, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	closedP.Close(ctx)
	c, err := cl.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	closedC, err := cl.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	closedC.Close(ctx)
	g, err := cl.NewGroupConsumer("g", []string{"t"}, WithAutoCommit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		defer ccancel()
		g.Close(cctx)
	}()
	// produceOutcome is the callback's error of a record Produce accepted.
	produceOutcome := func(r *Record) error {
		res := make(chan error, 1)
		if err := p.Produce(ctx, r, func(_ *Record, err error) { res <- err }); err != nil {
			return err
		}
		return <-res
	}

	tests := []struct {
		name string
		call func() error
		want error // matched with errors.Is; nil: any error
		ok   bool  // no error expected
	}{
		{"New(nil option)", func() error { _, err := New(nil); return err }, nil, false},
		{"New(WithLogger(nil))", func() error { _, err := New(WithSeedBrokers("h:1"), WithLogger(nil)); return err }, nil, false},
		{"New(WithSeedBrokers())", func() error { _, err := New(WithSeedBrokers()); return err }, nil, false},
		{"New(WithBalancers(nil))", func() error { _, err := New(WithSeedBrokers("h:1"), WithBalancers(nil)); return err }, nil, false},
		{"Request(nil)", func() error { _, err := cl.Request(ctx, nil); return err }, ErrBadRequest, false},
		{"Request(typed nil)", func() error { _, err := cl.Request(ctx, (*MetadataRequest)(nil)); return err }, ErrBadRequest, false},
		{"Request(typed nil Produce)", func() error { _, err := cl.Request(ctx, (*ProduceRequest)(nil)); return err }, ErrBadRequest, false},
		{"Request(nil ctx)", func() error { _, err := cl.Request(nilCtx, &ApiVersionsRequest{}); return err }, errNilContext, false},
		{"RequestBroker(nil)", func() error { _, err := cl.RequestBroker(ctx, 1, nil); return err }, ErrBadRequest, false},
		{"RequestBroker(no such seed)", func() error { _, err := cl.RequestBroker(ctx, -9, &ApiVersionsRequest{}); return err }, ErrNoBroker, false},
		{"Metadata(empty topic)", func() error { _, err := cl.Metadata(ctx, ""); return err }, nil, false},
		{"Metadata(nil ctx)", func() error { _, err := cl.Metadata(nilCtx); return err }, errNilContext, false},
		{"NewProducer(nil option)", func() error { _, err := cl.NewProducer(nil); return err }, nil, false},
		{"Produce(nil record)", func() error { return p.Produce(ctx, nil, nil) }, nil, false},
		{"Produce(nil ctx)", func() error { return p.Produce(nilCtx, &Record{Topic: "t"}, nil) }, nil, false},
		{"Produce(empty topic)", func() error { return p.Produce(ctx, &Record{}, nil) }, nil, false},
		{"Produce(negative partition)", func() error { return produceOutcome(&Record{Topic: "t", Partition: -3}) }, ErrUnknownTopicOrPartition, false},
		{"Produce(partition out of range)", func() error { return produceOutcome(&Record{Topic: "t", Partition: 9}) }, ErrUnknownTopicOrPartition, false},
		{"Produce(nil callback)", func() error { return p.Produce(ctx, &Record{Topic: "t", Partition: 1}, nil) }, nil, true},
		{"Produce(after Close)", func() error { return closedP.Produce(ctx, &Record{Topic: "t"}, nil) }, ErrProducerClosed, false},
		{"ProduceSync(nil ctx)", func() error { return p.ProduceSync(nilCtx, &Record{Topic: "t"}) }, nil, false},
		{"ProduceSync(nil record)", func() error { return p.ProduceSync(ctx, nil) }, nil, false},
		{"ProduceSync(no records)", func() error { return p.ProduceSync(ctx) }, nil, true},
		{"Flush(nil ctx)", func() error { return p.Flush(nilCtx) }, errNilContext, false},
		{"Producer.Close(nil ctx)", func() error { return p.Close(nilCtx) }, errNilContext, false},
		{"Producer.Close twice", func() error { return closedP.Close(ctx) }, nil, true},
		{"ProduceWaiter(nil producer)", func() error { var w ProduceWaiter; return w.Produce(ctx, nil, &Record{Topic: "t"}) }, nil, false},
		{"ProduceWaiter.Wait(nil ctx)", func() error { var w ProduceWaiter; return w.Wait(nilCtx) }, errNilContext, false},
		{"NewConsumer(nil option)", func() error { _, err := cl.NewConsumer(nil); return err }, nil, false},
		{"Assign(nil)", func() error { return c.Assign(nil) }, nil, true},
		{"Assign(nil partitions)", func() error { return c.Assign(map[string]map[int32]Offset{"t": nil}) }, nil, true},
		{"Assign(empty topic)", func() error { return c.Assign(map[string]map[int32]Offset{"": {0: Earliest()}}) }, nil, false},
		{"Assign(negative partition)", func() error { return c.Assign(map[string]map[int32]Offset{"t": {-1: Earliest()}}) }, nil, false},
		{"Assign(negative offset)", func() error { return c.Assign(map[string]map[int32]Offset{"t": {0: AtOffset(-5)}}) }, nil, false},
		{"Assign(zero Offset)", func() error { return c.Assign(map[string]map[int32]Offset{"t": {0: {}}}) }, nil, true},
		{"Assign(after Close)", func() error { return closedC.Assign(map[string]map[int32]Offset{"t": {0: Earliest()}}) }, ErrConsumerClosed, false},
		{"Unassign(unknown)", func() error { c.Unassign("", -1); c.Pause(""); c.Resume("nope", 7); return nil }, nil, true},
		{"Position(unknown)", func() error {
			if _, ok := c.Position("", -1); ok {
				return errors.New("position of nothing")
			}
			return nil
		}, nil, true},
		{"Consumer.Poll(nil ctx)", func() error { _, err := c.Poll(nilCtx); return err }, errNilContext, false},
		{"Consumer.Poll(after Close)", func() error { _, err := closedC.Poll(ctx); return err }, ErrConsumerClosed, false},
		{"Consumer.Close(nil ctx)", func() error { return c.Close(nilCtx) }, errNilContext, false},
		{"NewGroupConsumer(empty group)", func() error { _, err := cl.NewGroupConsumer("", []string{"t"}); return err }, nil, false},
		{"NewGroupConsumer(nil topics)", func() error { _, err := cl.NewGroupConsumer("g", nil); return err }, nil, false},
		{"NewGroupConsumer(empty topic)", func() error { _, err := cl.NewGroupConsumer("g", []string{"t", ""}); return err }, nil, false},
		{"NewGroupConsumer(nil option)", func() error { _, err := cl.NewGroupConsumer("g", []string{"t"}, nil); return err }, nil, false},
		{"GroupConsumer.Poll(nil ctx)", func() error { _, err := g.Poll(nilCtx); return err }, errNilContext, false},
		{"Commit(nil ctx)", func() error { return g.Commit(nilCtx) }, errNilContext, false},
		{"CommitAsync(nil ctx)", func() error {
			res := make(chan error, 1)
			g.CommitAsync(nilCtx, func(err error) { res <- err })
			return <-res
		}, errNilContext, false},
		{"CommitAsync(nil callback)", func() error { g.CommitAsync(ctx, nil); return nil }, nil, true},
		{"CommitOffsets(nil map)", func() error { return g.CommitOffsets(ctx, nil) }, nil, true},
		{"CommitOffsets(empty topic)", func() error { return g.CommitOffsets(ctx, map[string]map[int32]int64{"": {0: 1}}) }, nil, false},
		{"CommitOffsets(negative offset)", func() error { return g.CommitOffsets(ctx, map[string]map[int32]int64{"t": {0: -2}}) }, nil, false},
		{"MarkRecords(nil)", func() error { g.MarkRecords(nil); g.MarkRecords(); return nil }, nil, true},
		{"MarkOffsets(negative partition)", func() error { return g.MarkOffsets(map[string]map[int32]int64{"t": {-1: 3}}) }, nil, false},
		{"GroupConsumer.Pause(unknown)", func() error { g.Pause(""); g.Resume("", -4); return nil }, nil, true},
		{"Committed(nil ctx)", func() error { _, err := g.Committed(nilCtx); return err }, errNilContext, false},
		{"GroupConsumer.Close(nil ctx)", func() error { return g.Close(nilCtx) }, errNilContext, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic: %v", r)
					}
				}()
				err = tt.call()
			}()
			switch {
			case tt.ok && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.ok:
			case err == nil:
				t.Fatal("no error")
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("error %v, want one matching %v", err, tt.want)
			}
		})
	}
	// The client still works: no bad input poisoned it. The consumers stop
	// first; the fake drops the connection of a request it does not know
	// (their offset lookups and fetches), and a request that meets such a
	// drop fails once, then goes on a new connection.
	c.Close(ctx)
	cctx, ccancel := context.WithTimeout(ctx, time.Second)
	g.Close(cctx)
	ccancel()
	for range 3 {
		var be *BrokerError
		if _, err = cl.Request(ctx, &ApiVersionsRequest{}); err == nil || !errors.As(err, &be) {
			break
		}
	}
	if err != nil {
		t.Fatalf("client after bad inputs: %v", err)
	}
	if err := p.ProduceSync(ctx, &Record{Topic: "t", Partition: 0, Value: []byte("v")}); err != nil {
		t.Fatalf("producer after bad inputs: %v", err)
	}
}

// TestZeroRequestsEncode: the zero value of every request type encodes at
// every version without a panic (a user may send one as it is).
func TestZeroRequestsEncode(t *testing.T) {
	for _, key := range apiKeys() {
		req := NewRequest(key)
		for v := req.MinVersion(); v <= req.MaxVersion(); v++ {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s v%d: zero value panics when encoded: %v", APIName(key), v, r)
					}
				}()
				appendRequest(nil, req, v, 1, "kpax")
			}()
		}
	}
}

// TestProduceTimestamps: a record without a timestamp is stamped with the
// time of Produce; an explicit one is sent as it is.
func TestProduceTimestamps(t *testing.T) {
	var mu sync.Mutex
	var sent []Record
	f := newFakeCluster(t, 1, func(req Request, _ int16) Response {
		if r, ok := req.(*ProduceRequest); ok {
			for _, td := range r.TopicData {
				for _, pd := range td.PartitionData {
					recs, err := DecodeRecords(nil, pd.Records)
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					sent = append(sent, recs...)
					mu.Unlock()
				}
			}
		}
		return nil // the fake's own answer
	})
	cl := newTestClient(t, f.addr())
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer p.Close(ctx)
	explicit := time.UnixMilli(1_500_000_000_123)
	before := time.Now().Truncate(time.Millisecond)
	zero := &Record{Topic: "t", Value: []byte("now")}
	given := &Record{Topic: "t", Value: []byte("given"), Timestamp: explicit}
	if err := p.ProduceSync(ctx, zero, given); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if zero.Timestamp.Before(before) || zero.Timestamp.After(after) {
		t.Errorf("zero timestamp became %v, want within [%v, %v]", zero.Timestamp, before, after)
	}
	if zero.Timestamp != zero.Timestamp.Round(0) {
		t.Errorf("zero timestamp became %v, with a monotonic reading (Produce's doc says without)", zero.Timestamp)
	}
	if !given.Timestamp.Equal(explicit) {
		t.Errorf("explicit timestamp changed to %v", given.Timestamp)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 2 {
		t.Fatalf("broker got %d records", len(sent))
	}
	for _, r := range sent {
		want := zero.Timestamp
		if string(r.Value) == "given" {
			want = explicit
		}
		if r.Timestamp.UnixMilli() != want.UnixMilli() {
			t.Errorf("%s sent with timestamp %v, want %v", r.Value, r.Timestamp, want)
		}
	}
}

// TestPartitionLimit: batches of one partition in flight.
func TestPartitionLimit(t *testing.T) {
	cl := newTestClient(t, "127.0.0.1:1")
	for _, tt := range []struct {
		name string
		opts []Option
		want int
	}{
		{"idempotent default", nil, 5},
		{"idempotent, max in flight 2", []Option{WithMaxInFlight(2)}, 2},
		{"acks=1: one at a time", []Option{WithAcks(AcksLeader)}, 1},
		{"not idempotent: one at a time", []Option{WithIdempotence(false)}, 1},
		{"not idempotent, allowed 4", []Option{WithIdempotence(false), WithMaxInFlight(4)}, 4},
	} {
		p, err := cl.NewProducer(tt.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.partitionLimit(nil); got != tt.want {
			t.Errorf("%s: partition limit %d, want %d", tt.name, got, tt.want)
		}
		// A partition not yet acknowledged under the producer ID.
		fresh := tt.want
		if p.cfg.idempotent {
			fresh = 1
		}
		if got := p.partitionLimit(&partState{}); got != fresh {
			t.Errorf("%s: partition limit before the first ack %d, want %d", tt.name, got, fresh)
		}
		p.Close(context.Background())
	}
}

// TestProduceWaiter: the waiter returns when every record has its outcome,
// with the first error among them.
func TestProduceWaiter(t *testing.T) {
	f := newFakeCluster(t, 2, nil)
	cl := newTestClient(t, f.addr())
	p, err := cl.NewProducer(WithPartitioner(ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer p.Close(ctx)
	var w ProduceWaiter
	if err := w.Wait(ctx); err != nil {
		t.Fatalf("empty waiter: %v", err)
	}
	recs := make([]*Record, 100)
	for i := range recs {
		recs[i] = &Record{Topic: "t", Partition: int32(i % 2)}
		if err := w.Produce(ctx, p, recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Offset < 0 {
			t.Fatalf("record without an offset after Wait: %+v", r)
		}
	}
	// One bad record among good ones: Wait reports it, after all outcomes.
	var w2 ProduceWaiter
	for i := range 10 {
		part := int32(0)
		if i == 4 {
			part = 7 // no such partition
		}
		w2.Produce(ctx, p, &Record{Topic: "t", Partition: part})
	}
	if err := w2.Wait(ctx); !errors.Is(err, ErrUnknownTopicOrPartition) {
		t.Fatalf("Wait = %v, want the bad partition's error", err)
	}
	// A Produce error counts as an outcome too.
	var w3 ProduceWaiter
	if err := w3.Produce(ctx, p, &Record{}); err == nil || !strings.Contains(err.Error(), "topic") {
		t.Fatalf("Produce without a topic: %v", err)
	}
	if err := w3.Wait(ctx); err == nil {
		t.Fatal("Wait lost the Produce error")
	}
}

// listOffsetByTime asks the partition's leader for the first offset whose
// timestamp is at or after t (ListOffsets by time).
func listOffsetByTime(ctx context.Context, t *testing.T, cl *Client, topic string, at time.Time) int64 {
	t.Helper()
	r, err := cl.Request(ctx, &ListOffsetsRequest{ReplicaID: -1, Topics: []ListOffsetsRequestTopic{{Name: topic,
		Partitions: []ListOffsetsRequestTopicPartition{{PartitionIndex: 0, Timestamp: at.UnixMilli(), CurrentLeaderEpoch: -1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := r.(*ListOffsetsResponse).Topics[0].Partitions[0]
	if err := ErrorForCode(p.ErrorCode); err != nil {
		t.Fatal(err)
	}
	return p.Offset
}

// TestIntegrationProduceTimestamps: records produced without a timestamp
// carry their create time, so that ListOffsets by time and AtTime find
// them on a real broker; an explicit timestamp is kept.
func TestIntegrationProduceTimestamps(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			cl := newTestClient(t, addr)
			topic := createTestTopic(t, cl, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			old := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
			early := []*Record{
				{Topic: topic, Value: []byte("old"), Timestamp: old}, // offset 0
				{Topic: topic, Value: []byte("a")},                   // 1
				{Topic: topic, Value: []byte("b")},                   // 2
			}
			produceKpax(t, cl, early)
			time.Sleep(20 * time.Millisecond)
			mid := time.Now()
			time.Sleep(20 * time.Millisecond)
			produceKpax(t, cl, []*Record{{Topic: topic, Value: []byte("c")}, {Topic: topic, Value: []byte("d")}}) // 3, 4
			for _, tt := range []struct {
				at   time.Time
				want int64
			}{
				{old.Add(-time.Minute), 0},
				{old.Add(time.Millisecond), 1}, // the first record stamped by Produce
				{mid, 3},
				{time.Now().Add(time.Hour), -1}, // none: the log end (-1 from ListOffsets)
			} {
				if got := listOffsetByTime(ctx, t, cl, topic, tt.at); got != tt.want {
					t.Errorf("ListOffsets(time %v) = %d, want %d", tt.at.Format(time.StampMilli), got, tt.want)
				}
			}
			c, err := cl.NewConsumer()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if err := c.Assign(map[string]map[int32]Offset{topic: {0: AtTime(mid)}}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for len(got) < 2 {
				f, err := c.Poll(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range f.Records {
					got = append(got, string(r.Value))
					if r.Timestamp.Before(mid) {
						t.Errorf("record %s at %d has timestamp %v, before %v", r.Value, r.Offset, r.Timestamp, mid)
					}
				}
			}
			if strings.Join(got, ",") != "c,d" {
				t.Errorf("AtTime(mid) read %v, want [c d]", got)
			}
		})
	}
}

// TestSetPIDFreshPartitions: a transactional producer given a new producer
// ID or a bumped epoch of its ID (TV2 bumps it at every commit) treats every
// partition as fresh: sequences from 0, one batch in flight until the first
// ack, since the leaders have no state for the new ID or epoch
// (TestTxnEpochBumpOneInFlight has what pipelining would do).
func TestSetPIDFreshPartitions(t *testing.T) {
	cl := newTestClient(t, "127.0.0.1:1")
	p, err := cl.NewProducer(WithTransactionalID("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for _, tt := range []struct {
		name string
		next producerID
	}{{"epoch bump", producerID{7, 2}}, {"new ID", producerID{8, 0}}} {
		ps := &partState{seq: 9, ackedNext: 9, settled: 3}
		p.mu.Lock()
		p.pid = producerID{7, 1}
		p.parts = map[topicPartition]*partState{{"t", 0}: ps}
		p.txn.setPID(tt.next)
		if ps.seq != 0 || ps.ackedNext != 0 || ps.settled != 0 || p.partitionLimit(ps) != 1 {
			t.Errorf("%s: seq %d acked next %d settled %d limit %d, want 0 0 0 1", tt.name, ps.seq, ps.ackedNext, ps.settled, p.partitionLimit(ps))
		}
		ps.settled = 1 // the first batch under it acknowledged: pipelining again
		if got := p.partitionLimit(ps); got != 5 {
			t.Errorf("%s, then an ack: limit %d, want 5", tt.name, got)
		}
		p.mu.Unlock()
	}
}
