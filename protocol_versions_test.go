package kpax

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPathMaxVersion: the versions that name topics by ID only go out when
// every topic has its ID, ApiVersions v5 when its cluster and node fields
// agree (both set or neither), and the transactional paths stay below
// transactions V2.
func TestPathMaxVersion(t *testing.T) {
	id, cluster := UUID{1}, "c"
	tests := []struct {
		name string
		req  Request
		want int16
	}{
		{"Produce with IDs", &ProduceRequest{TopicData: []ProduceRequestTopicData{{Name: "t", TopicID: id}}}, 13},
		{"Produce, a topic without ID", &ProduceRequest{TopicData: []ProduceRequestTopicData{{Name: "t", TopicID: id}, {Name: "u"}}}, 12},
		{"transactional Produce", &ProduceRequest{TransactionalID: &cluster, TopicData: []ProduceRequestTopicData{{Name: "t", TopicID: id}}}, 11},
		{"OffsetCommit with IDs", &OffsetCommitRequest{Topics: []OffsetCommitRequestTopic{{Name: "t", TopicID: id}}}, 10},
		{"OffsetCommit without", &OffsetCommitRequest{Topics: []OffsetCommitRequestTopic{{Name: "t"}}}, 9},
		{"OffsetFetch with IDs", &OffsetFetchRequest{Groups: []OffsetFetchRequestGroup{{Topics: []OffsetFetchRequestGroupTopic{{Name: "t", TopicID: id}}}}}, 10},
		{"OffsetFetch of all topics", &OffsetFetchRequest{Groups: []OffsetFetchRequestGroup{{}}}, 10},
		{"OffsetFetch without", &OffsetFetchRequest{Groups: []OffsetFetchRequestGroup{{Topics: []OffsetFetchRequestGroupTopic{{Name: "t"}}}}}, 9},
		{"TxnOffsetCommit", &TxnOffsetCommitRequest{Topics: []TxnOffsetCommitRequestTopic{{Name: "t", TopicID: id}}}, 4},
		{"ApiVersions zero", &ApiVersionsRequest{}, 4},
		{"ApiVersions neither", &ApiVersionsRequest{NodeID: -1}, 5},
		{"ApiVersions both", &ApiVersionsRequest{ClusterID: &cluster, NodeID: 0}, 5},
		{"ApiVersions cluster only", &ApiVersionsRequest{ClusterID: &cluster, NodeID: -1}, 4},
	}
	for _, tt := range tests {
		if got := min(pathMaxVersion(tt.req), tt.req.MaxVersion()); got != tt.want {
			t.Errorf("%s: v%d, want v%d", tt.name, got, tt.want)
		}
	}
}

// TestTopicIDsFilledAndNamed: the cache's IDs go into a request's topics
// that lack one, and a response that names topics by ID only gets their
// names back, from the request or the cache; an ID neither knows is said.
func TestTopicIDsFilledAndNamed(t *testing.T) {
	cl, err := New(WithSeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	m := cl.meta
	m.mu.Lock()
	m.apply(&MetadataResponse{Topics: []MetadataResponseTopic{{Name: ptr("t"), TopicID: UUID{1}}, {Name: ptr("u"), TopicID: UUID{2}}}}, nil)
	m.mu.Unlock()
	req := &OffsetCommitRequest{Topics: []OffsetCommitRequestTopic{{Name: "t"}, {Name: "x"}}}
	m.fillTopicIDs(req)
	if req.Topics[0].TopicID != (UUID{1}) || req.Topics[1].TopicID != (UUID{}) {
		t.Fatalf("IDs %v", req.Topics)
	}
	resp := &OffsetCommitResponse{Topics: []OffsetCommitResponseTopic{{TopicID: UUID{1}}, {TopicID: UUID{2}}}}
	if m.nameTopics(req, resp) || resp.Topics[0].Name != "t" || resp.Topics[1].Name != "u" {
		t.Fatalf("names %+v", resp.Topics)
	}
	resp = &OffsetCommitResponse{Topics: []OffsetCommitResponseTopic{{TopicID: UUID{9}}}}
	if !m.nameTopics(req, resp) || resp.Topics[0].Name != "" {
		t.Fatalf("unknown ID: %+v", resp.Topics)
	}
}

// TestIntegrationVersionsUsed: the client's paths (producer, consumer,
// classic group with commits and offset fetches, transactions with group
// offsets, admin) send each API at the highest version that the broker and
// the generated code share, below only the caps pathMaxVersion states:
// against Kafka 4.4 that is Produce v13, Fetch v18, OffsetCommit and
// OffsetFetch v10 (topic IDs), ApiVersions v5; against 3.9 its lower maxima.
func TestIntegrationVersionsUsed(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			vl := newVersionLog()
			cl := newGroupTestClient(t, addr, vl.dialer())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, err := cl.Request(ctx, &ApiVersionsRequest{ClientSoftwareName: "kpax-test", ClientSoftwareVersion: "0", NodeID: -1})
			if err != nil {
				t.Fatal(err)
			}
			broker := map[int16]int16{}
			for _, k := range r.(*ApiVersionsResponse).ApiKeys {
				broker[k.ApiKey] = k.MaxVersion
			}
			topic := createTestTopic(t, cl, 1)
			roundTripRecords(t, cl, topic, 5)
			exerciseGroupAndTxn(t, ctx, cl, topic)
			if _, err := cl.Admin().ListEndOffsets(ctx, topic); err != nil {
				t.Fatal(err)
			}
			caps := map[int16]int16{apiKeyAddPartitionsToTxn: 3} // v4+ is for brokers (KIP-890)
			// pathMaxVersion's transactions V1 caps; V2 (4.x) goes to the maxima.
			if wantTV(name) == 1 {
				caps[apiKeyEndTxn], caps[apiKeyTxnOffsetCommit] = 4, 4
			}
			var figures []string
			for _, key := range apiKeys() {
				got := vl.versions(key)
				if len(got) == 0 {
					continue
				}
				want := min(broker[key], NewRequest(key).MaxVersion())
				if c, ok := caps[key]; ok {
					want = min(want, c)
				}
				if key == apiKeyApiVersions { // the probe above an older broker's max
					got = slices.DeleteFunc(got, func(v int16) bool { return v > broker[key] })
				}
				if key == apiKeyProduce && broker[key] >= 12 {
					// The transactional producer's Produce stays below V2.
					got = slices.DeleteFunc(got, func(v int16) bool { return v == 11 })
				}
				if len(got) != 1 || got[0] != want {
					t.Errorf("%s: sent at %v, want v%d (broker max v%d)", APIName(key), got, want, broker[key])
				}
				figures = append(figures, fmt.Sprintf("%s v%v", APIName(key), got))
			}
			for _, key := range []int16{apiKeyProduce, apiKeyFetch, apiKeyOffsetCommit, apiKeyOffsetFetch, apiKeyTxnOffsetCommit, apiKeyEndTxn} {
				if len(vl.versions(key)) == 0 {
					t.Errorf("%s was not sent", APIName(key))
				}
			}
			t.Logf("figures: Kafka %s: %s", name, strings.Join(figures, ", "))
		})
	}
}

// exerciseGroupAndTxn runs a classic group member that commits, a second
// that fetches the commit, and a transaction that sends its offsets.
func exerciseGroupAndTxn(t *testing.T, ctx context.Context, cl *Client, topic string) {
	t.Helper()
	group := "g-" + topic
	poll := func(g *GroupConsumer) {
		for {
			f, err := g.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Records) > 0 {
				return
			}
		}
	}
	g, err := cl.NewGroupConsumer(group, []string{topic}, fastGroup(WithStartOffset(Earliest()))...)
	if err != nil {
		t.Fatal(err)
	}
	poll(g)
	if err := g.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := cl.NewProducer(WithTransactionalID("txn-" + topic))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if err := p.BeginTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Produce(ctx, &Record{Topic: topic, Value: []byte("txn")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.SendOffsetsToTransaction(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := p.CommitTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := newTestClient(t, cl.cfg.seeds[0])        // knows no topic ID yet
	for _, topics := range [][]string{nil, {topic}} { // nil: every topic, named by ID at v10
		offs, err := fresh.Admin().CommittedOffsets(ctx, group, topics...)
		if err != nil || len(offs) != 1 || offs[0].Topic != topic || offs[0].Offset <= 0 || offs[0].Err != nil {
			t.Fatalf("committed offsets of %v: %+v, %v", topics, offs, err)
		}
	}
}

// TestListOffsetsTimeout: ListOffsets v10+ carries the request timeout
// (the broker's bound on reads of tiered storage; zero fails them at once),
// from the consumer and the admin API alike.
func TestListOffsetsTimeout(t *testing.T) {
	got := make(chan [2]int32, 10) // version, TimeoutMs
	f := newFakeCluster(t, 1, func(req Request, v int16) Response {
		r, ok := req.(*ListOffsetsRequest)
		if !ok {
			return nil
		}
		got <- [2]int32{int32(v), r.TimeoutMs}
		resp := &ListOffsetsResponse{}
		for _, tp := range r.Topics {
			rt := ListOffsetsResponseTopic{Name: tp.Name}
			for _, p := range tp.Partitions {
				rt.Partitions = append(rt.Partitions, ListOffsetsResponseTopicPartition{PartitionIndex: p.PartitionIndex, Offset: 0, Timestamp: -1, LeaderEpoch: -1})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	})
	cl := newTestClient(t, f.addr(), WithRequestTimeout(7*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Admin().ListEndOffsets(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	c := newTestConsumer(t, cl)
	c.Assign(map[string]map[int32]Offset{"t": {0: Earliest()}})
	for i, who := range []string{"admin", "consumer"} {
		if i == 1 {
			pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
			c.Poll(pctx)
			pcancel()
		}
		select {
		case g := <-got:
			if g[0] < 10 || g[1] != 7000 {
				t.Errorf("%s: ListOffsets v%d TimeoutMs %d, want v10+ and 7000", who, g[0], g[1])
			}
		case <-ctx.Done():
			t.Fatalf("%s: no ListOffsets", who)
		}
	}
}

// TestUnknownTopicIDInvalidates: an UNKNOWN_TOPIC_ID in a response (a
// topic deleted, maybe made again under a new ID) marks the metadata stale,
// so that the next lookup loads the new ID; the control, a clean answer,
// leaves it fresh.
func TestUnknownTopicIDInvalidates(t *testing.T) {
	for _, code := range []int16{ErrUnknownTopicId.code, 0} {
		f := newFakeCluster(t, 1, func(req Request, _ int16) Response {
			if r, ok := req.(*OffsetCommitRequest); ok {
				resp := &OffsetCommitResponse{}
				for _, tp := range r.Topics {
					resp.Topics = append(resp.Topics, OffsetCommitResponseTopic{TopicID: tp.TopicID, Name: tp.Name,
						Partitions: []OffsetCommitResponseTopicPartition{{PartitionIndex: 0, ErrorCode: code}}})
				}
				return resp
			}
			return nil
		})
		cl := newTestClient(t, f.addr())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cl.meta.topic(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		req := &OffsetCommitRequest{GroupID: "g", Topics: []OffsetCommitRequestTopic{{Name: "t", Partitions: []OffsetCommitRequestTopicPartition{{PartitionIndex: 0}}}}}
		r, err := cl.RequestBroker(ctx, 1, req)
		if err != nil {
			t.Fatal(err)
		}
		resp := r.(*OffsetCommitResponse)
		cl.meta.mu.Lock()
		stale := cl.meta.stale
		cl.meta.mu.Unlock()
		if req.Topics[0].TopicID != (UUID{1}) || resp.Topics[0].Name != "t" || stale != (code != 0) {
			t.Errorf("code %d: request ID %v, response name %q, stale %v", code, req.Topics[0].TopicID, resp.Topics[0].Name, stale)
		}
	}
}
