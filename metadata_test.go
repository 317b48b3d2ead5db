package kpax

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMetadataRebootstrap: a Metadata v13 answer whose top-level error is
// REBOOTSTRAP_REQUIRED (KIP-1102) sends the client back to its seed
// brokers, dialed afresh; the control, another top-level error, surfaces
// as it is without a redial, and a broker that keeps asking is asked once.
func TestMetadataRebootstrap(t *testing.T) {
	tests := []struct {
		name       string
		stale      int16 // the known broker's top-level error
		seedErrs   int   // how many seed answers carry it too
		wantErr    error
		seedDials  int
		staleAsked int
	}{
		{"rebootstrap", ErrRebootstrapRequired.code, 0, nil, 2, 1},
		{"seeds ask too: asked once", ErrRebootstrapRequired.code, 100, ErrRebootstrapRequired, 2, 1},
		{"control: other error, no redial", ErrClusterAuthorizationFailed.code, 0, nil, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var staleAsked, seedAnswers atomic.Int32
			stale := newFakeCluster(t, 1, func(req Request, _ int16) Response {
				if _, ok := req.(*MetadataRequest); ok {
					staleAsked.Add(1)
					return &MetadataResponse{ErrorCode: tt.stale}
				}
				return nil
			})
			var seed *fakeCluster
			seed = newFakeCluster(t, 1, func(req Request, _ int16) Response {
				r, ok := req.(*MetadataRequest)
				if !ok {
					return nil
				}
				n := int(seedAnswers.Add(1))
				if n > 1 && n-1 <= tt.seedErrs {
					return &MetadataResponse{ErrorCode: tt.stale}
				}
				// The first answer names the stale broker as node 1; later
				// ones name the seed itself.
				addr := seed.addr()
				if n == 1 {
					addr = stale.addr()
				}
				host, port, _ := net.SplitHostPort(addr)
				p, _ := strconv.Atoi(port)
				resp := &MetadataResponse{ControllerID: 1, Brokers: []MetadataResponseBroker{{NodeID: 1, Host: host, Port: int32(p)}}}
				for _, tp := range r.Topics {
					resp.Topics = append(resp.Topics, MetadataResponseTopic{Name: tp.Name, TopicID: UUID{1},
						Partitions: []MetadataResponseTopicPartition{{LeaderID: 1, ReplicaNodes: []int32{1}, ISRNodes: []int32{1}}}})
				}
				return resp
			})
			cl := newTestClient(t, seed.addr(), WithMetadataMinAge(time.Millisecond))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := cl.meta.topic(ctx, "t"); err != nil {
				t.Fatalf("first load: %v", err)
			}
			cl.meta.invalidate()
			err := cl.meta.refresh(ctx, "t") // asks node 1 (stale) first
			wantErr := tt.wantErr
			if tt.stale != ErrRebootstrapRequired.code {
				wantErr = nil // the seed, still known as a fallback, answers
			}
			// The seeds failing too is ErrNoBroker, naming each broker's error.
			if wantErr == nil && err != nil || wantErr != nil && (!errors.Is(err, ErrNoBroker) || !strings.Contains(err.Error(), wantErr.Error())) {
				t.Fatalf("refresh: %v, want %v", err, wantErr)
			}
			if got := seed.srv.accepted(); got != tt.seedDials {
				t.Errorf("seed dialed %d times, want %d", got, tt.seedDials)
			}
			if got := staleAsked.Load(); int(got) != tt.staleAsked {
				t.Errorf("stale broker asked %d times, want %d", got, tt.staleAsked)
			}
			t.Logf("refresh: %v; seed dials %d, stale broker asked %d", err, seed.srv.accepted(), staleAsked.Load())
		})
	}
}

// TestMetadataNewTopicSkipsMinAge: a lookup of a topic the client has never
// looked up asks the broker at once, though the cache was refreshed less
// than the min age ago (a group consumer looks its topics up right after
// the metadata load that found its coordinator). The controls: a known
// topic's refresh, and the retry of a new topic that came back unknown,
// still wait for the min age, so that retries cannot storm.
func TestMetadataNewTopicSkipsMinAge(t *testing.T) {
	const minAge = time.Minute // far beyond each case's deadline
	tests := []struct {
		name      string
		lookup    func(ctx context.Context, cl *Client) error
		waits     bool  // the lookup waits for the min age: it fails at the deadline
		wantAsked int32 // Metadata requests after the first load
	}{
		{"new topic: at once", func(ctx context.Context, cl *Client) error {
			_, err := cl.meta.topic(ctx, "b")
			return err
		}, false, 1},
		{"two new topics, one after the other", func(ctx context.Context, cl *Client) error {
			if _, err := cl.meta.topic(ctx, "b"); err != nil {
				return err
			}
			_, err := cl.meta.topic(ctx, "c")
			return err
		}, false, 2},
		{"control: known topic waits", func(ctx context.Context, cl *Client) error {
			cl.meta.invalidate()
			_, err := cl.meta.topic(ctx, "a")
			return err
		}, true, 0},
		{"control: a new topic's retry waits", func(ctx context.Context, cl *Client) error {
			_, err := cl.meta.topic(ctx, "missing") // unknown, retriable: asked again
			return err
		}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked atomic.Int32
			fc := newFakeCluster(t, 1, func(req Request, _ int16) Response {
				r, ok := req.(*MetadataRequest)
				if !ok {
					return nil
				}
				asked.Add(1)
				for _, tp := range r.Topics {
					if deref(tp.Name) == "missing" {
						return &MetadataResponse{ControllerID: 1, Topics: []MetadataResponseTopic{
							{Name: tp.Name, ErrorCode: ErrUnknownTopicOrPartition.code}}}
					}
				}
				return nil // the fake's own answer: every topic, one partition
			})
			cl := newTestClient(t, fc.addr(), WithMetadataMinAge(minAge))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := cl.meta.topic(ctx, "a"); err != nil {
				t.Fatalf("first load: %v", err)
			}
			asked.Store(0)
			lctx, lcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer lcancel()
			start := time.Now()
			err := tt.lookup(lctx, cl)
			if (err != nil) != tt.waits || tt.waits && lctx.Err() == nil {
				t.Fatalf("lookup: %v (deadline passed: %v), want it to wait for the min age: %v", err, lctx.Err() != nil, tt.waits)
			}
			if got := asked.Load(); got != tt.wantAsked {
				t.Errorf("Metadata asked %d times, want %d", got, tt.wantAsked)
			}
			t.Logf("lookup: %v after %v, Metadata asked %d times", err, time.Since(start).Round(time.Millisecond), asked.Load())
		})
	}
}
