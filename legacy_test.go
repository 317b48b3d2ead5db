package kpax

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// oldBroker is a fake broker whose ApiVersions caps Produce at produceMax
// and, without idem, lacks InitProducerId: Kafka 0.10 (Produce v2) or 2.0
// (Produce v6). It counts the Produce requests it gets.
type oldBroker struct {
	*fakeCluster
	produces atomic.Int32
}

func newOldBroker(t *testing.T, produceMax int16, idem bool) *oldBroker {
	ob := &oldBroker{}
	ob.fakeCluster = newFakeCluster(t, 1, func(req Request, _ int16) Response {
		switch req.(type) {
		case *ApiVersionsRequest:
			resp := &ApiVersionsResponse{}
			for _, key := range apiKeys() {
				m := NewRequest(key)
				hi := m.MaxVersion()
				switch {
				case key == apiKeyInitProducerId && !idem:
					continue
				case key == 0:
					hi = produceMax
				case key == apiKeyApiVersions:
					hi = 2 // Kafka 2.0-2.3 (with Fetch past v5), or see describe
				}
				resp.ApiKeys = append(resp.ApiKeys, ApiVersionsResponseApiKey{ApiKey: key, MinVersion: m.MinVersion(), MaxVersion: hi})
			}
			return resp
		case *ProduceRequest:
			ob.produces.Add(1)
		}
		return nil
	})
	return ob
}

// TestFakeOldBrokerProduce: what a broker's Produce version cannot carry
// (zstd before v7, headers before v3) and idempotence asked for on a broker
// without it fail at once, with an error that says what the broker lacks,
// instead of being retried until the delivery timeout. Each case has a
// control on a broker that has the feature, where the same records succeed.
func TestFakeOldBrokerProduce(t *testing.T) {
	hdr := []Header{{Key: "h", Value: []byte("v")}}
	tests := []struct {
		name       string
		produceMax int16
		idem       bool
		opts       []Option
		headers    bool
		want       error  // nil: the control, it must succeed
		wantText   string // in the error
	}{
		{name: "zstd before Produce v7", produceMax: 6, idem: true, opts: []Option{WithCompression(CompressionZstd)},
			want: ErrUnsupportedCompressionType, wantText: "zstd compression needs Kafka 2.1"},
		{name: "zstd control", produceMax: 7, idem: true, opts: []Option{WithCompression(CompressionZstd)}},
		{name: "headers before Produce v3", produceMax: 2, headers: true,
			want: ErrUnsupportedVersion, wantText: "record headers need Kafka 0.11"},
		{name: "headers control", produceMax: 3, idem: true, headers: true},
		{name: "idempotence asked for, none", produceMax: 2, opts: []Option{WithIdempotence(true)},
			want: ErrUnsupportedVersion, wantText: "WithIdempotence(true)"},
		{name: "idempotence default, none", produceMax: 2},
		{name: "idempotence asked for, control", produceMax: 3, idem: true, opts: []Option{WithIdempotence(true)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ob := newOldBroker(t, tc.produceMax, tc.idem)
			cl := newTestClient(t, ob.addr())
			p, err := cl.NewProducer(append([]Option{WithDeliveryTimeout(20 * time.Second)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			defer p.Close(ctx)
			r := &Record{Topic: "t", Value: []byte("v")}
			if tc.headers {
				r.Headers = hdr
			}
			start := time.Now()
			err = p.ProduceSync(ctx, r)
			took := time.Since(start)
			if tc.want == nil {
				if err != nil || ob.produces.Load() == 0 {
					t.Fatalf("control: %v after %d Produce requests", err, ob.produces.Load())
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantText) || !strings.Contains(err.Error(), "Kafka") {
				t.Fatalf("err %v, want %v saying %q", err, tc.want, tc.wantText)
			}
			if took > 2*time.Second || ob.produces.Load() != 0 {
				t.Fatalf("failed after %v and %d Produce requests, want at once and none", took, ob.produces.Load())
			}
			t.Logf("%v", err)
		})
	}
}

// TestFakeOldBrokerHeadersMixed: before Produce v3 only the records with
// headers fail; the others of their batch are written.
func TestFakeOldBrokerHeadersMixed(t *testing.T) {
	ob := newOldBroker(t, 2, false)
	cl := newTestClient(t, ob.addr())
	p, err := cl.NewProducer(WithLinger(50 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer p.Close(ctx)
	errs := make(chan error, 3)
	cb := func(_ *Record, err error) { errs <- err }
	for i := range 3 {
		r := &Record{Topic: "t", Value: []byte("v")}
		if i == 1 {
			r.Headers = []Header{{Key: "h"}}
		}
		if err := p.Produce(ctx, r, cb); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for range 3 {
		if err := <-errs; err != nil {
			if !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("record error %v", err)
			}
			failed++
		}
	}
	if failed != 1 || ob.produces.Load() != 1 {
		t.Fatalf("%d records failed, %d Produce requests; want 1 and 1", failed, ob.produces.Load())
	}
}

// TestFakeSessionTimeoutRefused: a coordinator that allows at most 30s of
// session timeout (Kafka 0.9's default) refuses the default 45s; the member
// joins again at 10s. A timeout the user set is not changed: the error says
// what to do. The control, a coordinator that allows 45s, gets 45s.
func TestFakeSessionTimeoutRefused(t *testing.T) {
	tests := []struct {
		name    string
		maxMs   int32
		opts    []Option
		want    []int32 // JoinGroup session timeouts, in order
		wantErr string
	}{
		{name: "default refused", maxMs: 30000, want: []int32{45000, 10000}},
		{name: "default allowed (control)", maxMs: 300000, want: []int32{45000}},
		{name: "set and refused", maxMs: 30000, opts: []Option{WithSessionTimeout(40 * time.Second)},
			want: []int32{40000}, wantErr: "set WithSessionTimeout within"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var sessions []int32
			var f *fakeCluster
			f = newFakeCluster(t, 1, func(req Request, v int16) Response {
				host, port, _ := net.SplitHostPort(f.addr())
				portN, _ := strconv.Atoi(port)
				switch r := req.(type) {
				case *FindCoordinatorRequest:
					return &FindCoordinatorResponse{NodeID: 1, Host: host, Port: int32(portN),
						Coordinators: []FindCoordinatorResponseCoordinator{{Key: r.Key, NodeID: 1, Host: host, Port: int32(portN)}}}
				case *JoinGroupRequest:
					mu.Lock()
					sessions = append(sessions, r.SessionTimeoutMs)
					mu.Unlock()
					if r.SessionTimeoutMs > tc.maxMs {
						return &JoinGroupResponse{ErrorCode: ErrInvalidSessionTimeout.Code(), GenerationID: -1}
					}
					return &JoinGroupResponse{GenerationID: 1, ProtocolType: ptr("consumer"), ProtocolName: ptr("range"),
						Leader: "m1", MemberID: "m1", Members: []JoinGroupResponseMember{{MemberID: "m1", Metadata: r.Protocols[0].Metadata}}}
				case *SyncGroupRequest:
					a := groupAssignment{version: 3, parts: map[string][]int32{"t": {0}}}
					return &SyncGroupResponse{ProtocolType: ptr("consumer"), ProtocolName: ptr("range"), Assignment: a.appendTo(nil)}
				case *HeartbeatRequest:
					return &HeartbeatResponse{}
				case *OffsetFetchRequest:
					return &OffsetFetchResponse{Groups: []OffsetFetchResponseGroup{{GroupID: "g", Topics: []OffsetFetchResponseGroupTopic{{Name: "t",
						Partitions: []OffsetFetchResponseGroupTopicPartition{{PartitionIndex: 0, CommittedOffset: -1}}}}}},
						Topics: []OffsetFetchResponseTopic{{Name: "t", Partitions: []OffsetFetchResponseTopicPartition{{PartitionIndex: 0, CommittedOffset: -1}}}}}
				case *LeaveGroupRequest:
					return &LeaveGroupResponse{}
				}
				return nil
			})
			cl := newGroupTestClient(t, f.addr())
			g, err := cl.NewGroupConsumer("g", []string{"t"}, append([]Option{WithAutoCommit(0), WithStartOffset(Latest()),
				WithFetchMaxWait(100 * time.Millisecond)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for len(g.Assigned()["t"]) != 1 {
				_, err := g.Poll(ctx)
				if tc.wantErr != "" {
					if !errors.Is(err, ErrInvalidSessionTimeout) || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("Poll: %v, want ErrInvalidSessionTimeout saying %q", err, tc.wantErr)
					}
					break
				}
				if err != nil {
					t.Fatalf("Poll: %v", err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(sessions, tc.want) {
				t.Fatalf("JoinGroup session timeouts %v, want %v", sessions, tc.want)
			}
		})
	}
}
