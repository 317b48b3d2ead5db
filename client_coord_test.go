package kpax

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestRequestForgetsMovedCoordinator: a coordinator's answer of
// NOT_COORDINATOR (or COORDINATOR_NOT_AVAILABLE) makes Client.Request forget
// the cached coordinator, so the next call asks FindCoordinator again; the
// control, a plain error code, keeps the cached one.
func TestRequestForgetsMovedCoordinator(t *testing.T) {
	for _, tc := range []struct {
		name  string
		code  int16
		finds int64 // FindCoordinator requests for two Heartbeats
	}{
		{"not coordinator", ErrNotCoordinator.code, 2},
		{"coordinator not available", ErrCoordinatorNotAvailable.code, 2},
		{"control: rebalance in progress", ErrRebalanceInProgress.code, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var finds, beats atomic.Int64
			var f *fakeCluster
			f = newFakeCluster(t, 1, func(req Request, v int16) Response {
				switch req.(type) {
				case *FindCoordinatorRequest:
					finds.Add(1)
					host, port, _ := net.SplitHostPort(f.addr())
					p, _ := strconv.Atoi(port)
					if v >= 4 {
						return &FindCoordinatorResponse{Coordinators: []FindCoordinatorResponseCoordinator{{Key: "g", NodeID: 1, Host: host, Port: int32(p)}}}
					}
					return &FindCoordinatorResponse{NodeID: 1, Host: host, Port: int32(p)}
				case *HeartbeatRequest:
					if beats.Add(1) == 1 {
						return &HeartbeatResponse{ErrorCode: tc.code}
					}
					return &HeartbeatResponse{}
				}
				return nil
			})
			cl, err := New(WithSeedBrokers(f.addr()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for i := range 2 {
				r, err := cl.Request(ctx, &HeartbeatRequest{GroupID: "g", MemberID: "m", GenerationID: 1})
				if err != nil {
					t.Fatal(err)
				}
				got := ErrorForCode(r.(*HeartbeatResponse).ErrorCode)
				if want := ErrorForCode(tc.code); i == 0 && !errors.Is(got, want) {
					t.Fatalf("first Heartbeat: %v, want %v", got, want)
				}
			}
			if got := finds.Load(); got != tc.finds {
				t.Fatalf("%d FindCoordinator requests, want %d", got, tc.finds)
			}
		})
	}
}
