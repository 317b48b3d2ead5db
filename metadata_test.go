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
