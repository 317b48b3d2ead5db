package kpax

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain fails the run if any kpax goroutine is still alive after all
// tests: every Client must leave nothing behind after Close.
func TestMain(m *testing.M) {
	code := m.Run()
	stopAllTestNodes()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines waits up to d for the package's goroutines to end and
// returns the stacks of those that did not.
func leakedGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "h12.me/kpax.") && !strings.Contains(g, "TestMain") &&
				!strings.Contains(g, "leakedGoroutines") && !strings.Contains(g, "testing.tRunner") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newTestClient(t *testing.T, addr string, opts ...Option) *Client {
	t.Helper()
	cl, err := New(append([]Option{WithSeedBrokers(addr), WithRequestTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"no seeds", nil, "no seed brokers"},
		{"bad seed", []Option{WithSeedBrokers("nohostport")}, "want host:port"},
		{"bad port", []Option{WithSeedBrokers("h:99999")}, "bad port"},
		{"zero timeout", []Option{WithSeedBrokers("h:1"), WithRequestTimeout(0)}, "request timeout must be positive"},
		{"nil logger", []Option{WithSeedBrokers("h:1"), WithLogger(nil)}, "nil logger"},
		{"small memory budget", []Option{WithSeedBrokers("h:1"), WithMemoryBudget(1000)}, "memory budget 1000"},
		{"negative memory budget", []Option{WithSeedBrokers("h:1"), WithMemoryBudget(-1)}, "memory budget -1"},
		{"backoff order", []Option{WithSeedBrokers("h:1"), WithRetryBackoff(time.Second, time.Millisecond)}, "max retry backoff"},
		{"unknown key cap", []Option{WithSeedBrokers("h:1"), WithMaxVersion(999, 1)}, "unknown API key 999"},
		{"nil option", []Option{nil}, "nil Option"},
		{"tiny max response", []Option{WithSeedBrokers("h:1"), WithMaxResponseBytes(1000)}, "max response bytes 1000"},
		{"huge max response", []Option{WithSeedBrokers("h:1"), WithMaxResponseBytes(2 << 30)}, "want 64 KiB to 1 GiB"},
		{"max response below fetch max", []Option{WithSeedBrokers("h:1"), WithFetchMaxBytes(200 << 20)}, "at least the fetch max bytes (209715200)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := New(tt.opts...)
			if err == nil {
				cl.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
	cl, err := New(WithSeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if _, err := cl.Request(context.Background(), &MetadataRequest{}); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("request after Close: %v, want ErrClientClosed", err)
	}
}

func TestIntegrationClientBasics(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var requests, bytesRead int
			cl := newTestClient(t, addr, WithHooks(Hooks{OnRequest: func(ri RequestInfo) {
				mu.Lock()
				requests++
				bytesRead += ri.BytesRead
				mu.Unlock()
			}}))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			md, err := cl.Metadata(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(md.Brokers) != 1 {
				t.Fatalf("brokers %+v", md.Brokers)
			}
			topic := fmt.Sprintf("kpax-client-%d", time.Now().UnixNano())
			r, err := cl.Request(ctx, &CreateTopicsRequest{TimeoutMs: 10000, Topics: []CreateTopicsRequestTopic{{
				Name: topic, NumPartitions: 2, ReplicationFactor: 1}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := ErrorForCode(r.(*CreateTopicsResponse).Topics[0].ErrorCode); err != nil {
				t.Fatal(err)
			}
			// Routed to the partition leader; metadata is loaded on demand.
			lo := &ListOffsetsRequest{ReplicaID: -1, Topics: []ListOffsetsRequestTopic{{Name: topic,
				Partitions: []ListOffsetsRequestTopicPartition{{PartitionIndex: 1, Timestamp: -1, CurrentLeaderEpoch: -1}}}}}
			var offErr error
			for i := 0; i < 50; i++ {
				r, err = cl.Request(ctx, lo)
				if err != nil {
					t.Fatal(err)
				}
				if offErr = ErrorForCode(r.(*ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode); offErr == nil || !IsRetriable(offErr) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if offErr != nil {
				t.Fatal(offErr)
			}
			// Group requests go to the coordinator.
			r, err = cl.Request(ctx, &OffsetFetchRequest{GroupID: "kpax-g", Topics: []OffsetFetchRequestTopic{{Name: topic, PartitionIndexes: []int32{0}}},
				Groups: []OffsetFetchRequestGroup{{GroupID: "kpax-g", Topics: []OffsetFetchRequestGroupTopic{{Name: topic, PartitionIndexes: []int32{0}}}}}})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if requests < 4 || bytesRead == 0 {
				t.Fatalf("hooks saw %d requests, %d bytes", requests, bytesRead)
			}
		})
	}
}

// TestHooksSeeEveryRequest: Hooks.OnRequest sees the requests of every part
// of the client, not only Client.Request: ApiVersions while dialing, the
// Producer's Produce requests and the Consumer's Fetch requests, each with
// its byte counts; and a hook may call back into the client (no internal
// lock is held while it runs).
func TestHooksSeeEveryRequest(t *testing.T) {
	fb := newBenchFetchBroker(t, CompressionNone)
	f := newFakeCluster(t, 1, fb.handle)
	var mu sync.Mutex
	seen := map[int16]int{}
	written := map[int16]int{}
	read := map[int16]int{}
	var cl *Client
	cl = newTestClient(t, f.addr(), WithHooks(Hooks{OnRequest: func(ri RequestInfo) {
		if ri.Err == nil && ri.APIKey == 0 {
			cl.Metadata(context.Background()) // calls back into the client
		}
		mu.Lock()
		defer mu.Unlock()
		if ri.Err != nil {
			return
		}
		seen[ri.APIKey]++
		written[ri.APIKey] += ri.BytesWritten
		read[ri.APIKey] += ri.BytesRead
	}}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	produceKpax(t, cl, []*Record{{Topic: "t", Value: []byte("v")}})
	cons, err := cl.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	cons.Assign(map[string]map[int32]Offset{"t": {0: AtOffset(0)}})
	if fe, err := cons.Poll(ctx); err != nil || len(fe.Records) == 0 {
		t.Fatalf("poll: %v %+v", err, fe)
	}
	if err := cons.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("requests seen by API key: %v", seen)
	for _, key := range []int16{apiKeyApiVersions, 3 /* Metadata */, 0 /* Produce */, 1 /* Fetch */} {
		if seen[key] == 0 || written[key] == 0 || read[key] == 0 {
			t.Errorf("%s: %d requests, %d bytes written, %d read seen by the hook; want some of each",
				APIName(key), seen[key], written[key], read[key])
		}
	}
}

// hookLog keeps what a client's Hooks saw.
type hookLog struct {
	mu       sync.Mutex
	connects map[string]int // by "node addr", successful dials
	failed   []error        // failed dials
	reqs     []RequestInfo
}

func (h *hookLog) hooks() Hooks {
	return Hooks{
		OnConnect: func(node int32, addr string, err error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if err != nil {
				h.failed = append(h.failed, err)
				return
			}
			h.connects[fmt.Sprint(node, " ", addr)]++
		},
		OnRequest: func(ri RequestInfo) {
			h.mu.Lock()
			h.reqs = append(h.reqs, ri)
			h.mu.Unlock()
		},
	}
}

// seen returns how many requests of the API key the hooks saw succeed.
func (h *hookLog) seen(key int16) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ri := range h.reqs {
		if ri.APIKey == key && ri.Err == nil {
			n++
		}
	}
	return n
}

// TestIntegrationHooksSeeEveryPart: on the real brokers, the hooks see every
// part of a cycle of creating a topic, producing, joining a group (the
// classic protocol, and on 4.x the consumer protocol), consuming,
// committing, heartbeating and leaving: each request with its broker, bytes,
// latency and response, and a successful dial of each connection a request
// went through.
func TestIntegrationHooksSeeEveryPart(t *testing.T) {
	for name, addr := range testBrokers(t) {
		protocols := map[string]GroupProtocol{"classic": ClassicGroupProtocol}
		if name == "4.x" {
			protocols["consumer"] = ConsumerGroupProtocol
		}
		for pname, protocol := range protocols {
			t.Run(name+"/"+pname, func(t *testing.T) {
				want := []int16{apiKeyApiVersions, apiKeyMetadata, apiKeyCreateTopics, apiKeyInitProducerId, apiKeyProduce,
					apiKeyFindCoordinator, apiKeyOffsetFetch, apiKeyListOffsets, apiKeyFetch, apiKeyOffsetCommit}
				heartbeat := int16(apiKeyConsumerGroupHeartbeat)
				if protocol == ClassicGroupProtocol {
					heartbeat = apiKeyHeartbeat
					want = append(want, apiKeyJoinGroup, apiKeySyncGroup, apiKeyHeartbeat, apiKeyLeaveGroup)
				} else {
					want = append(want, apiKeyConsumerGroupHeartbeat)
				}
				hl := &hookLog{connects: map[string]int{}}
				cl := newGroupTestClient(t, addr, WithHooks(hl.hooks()))
				hooksCycle(t, cl, protocol, func() int { return hl.seen(heartbeat) })
				hl.mu.Lock()
				defer hl.mu.Unlock()
				if len(hl.failed) > 0 {
					t.Errorf("failed dials: %v", hl.failed)
				}
				byKey := map[int16]int{}
				for _, ri := range hl.reqs {
					if ri.Err != nil {
						continue // e.g. a Fetch in flight when the consumer closed
					}
					byKey[ri.APIKey]++
					if ri.BytesWritten <= 0 || ri.BytesRead <= 0 || ri.Latency <= 0 || ri.Addr == "" ||
						ri.Response == nil || ri.Response.APIKey() != ri.APIKey {
						t.Errorf("%s v%d: %+v, want bytes both ways, a latency, the broker and the response", APIName(ri.APIKey), ri.Version, ri)
					}
					if hl.connects[fmt.Sprint(ri.NodeID, " ", ri.Addr)] == 0 {
						t.Errorf("%s went to node %d at %s, which OnConnect never saw", APIName(ri.APIKey), ri.NodeID, ri.Addr)
					}
				}
				for _, key := range want {
					if byKey[key] == 0 {
						t.Errorf("hooks saw no %s request", APIName(key))
					}
				}
				t.Logf("%d requests (%d kinds); dials by broker: %v", len(hl.reqs), len(byKey), hl.connects)
			})
		}
	}
}

// hooksCycle creates a topic, produces to it and consumes it back with a
// group member of the protocol, commits, waits for a heartbeat after the
// commit (heartbeats counts them) and closes the member.
func hooksCycle(t *testing.T, cl *Client, protocol GroupProtocol, heartbeats func() int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := createTestTopic(t, cl, 2)
	produceSpread(t, cl, topic, 2, 5, "h")
	g, err := cl.NewGroupConsumer("g-"+topic, []string{topic}, fastGroup(WithGroupProtocol(protocol), WithStartOffset(Earliest()))...)
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < 10; {
		f, err := g.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got += len(f.Records)
	}
	if err := g.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	n := heartbeats()
	waitUntil(t, 20*time.Second, "a heartbeat", func() bool { return heartbeats() > n })
	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
