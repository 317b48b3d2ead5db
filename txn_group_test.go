package kpax

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestIntegrationTxnSession runs two GroupTransactSessions copying a topic;
// one leaves mid-run (a rebalance during transactions), a third joins. The
// committed output has every input record once and the group's offsets
// are the input's end.
func TestIntegrationTxnSession(t *testing.T) {
	for _, tc := range txnCases(t) {
		name, addr := tc.name, tc.addr
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const n = 3000
			var apis txnAPIs
			cl := newTestClient(t, addr, append(tc.opts, WithIsolationLevel(ReadCommitted), apis.hook())...)
			in, out := createTestTopic(t, cl, 4), createTestTopic(t, cl, 4)
			recs := make([]*Record, n)
			for i := range recs {
				recs[i] = &Record{Topic: in, Key: []byte(fmt.Sprint(i % 13)), Value: []byte(fmt.Sprintf("in-%06d", i))}
			}
			produceKpax(t, newTestClient(t, addr), recs) // not in apis: only transactional Produce
			group := "kpax-session-" + in
			var wg sync.WaitGroup
			run := func(ctx context.Context, i int) {
				defer wg.Done()
				p, err := cl.NewProducer(WithTransactionalID(fmt.Sprintf("%s-%d", group, i)), WithLinger(time.Millisecond))
				if err != nil {
					t.Error(err)
					return
				}
				defer p.Close(context.Background())
				s, err := cl.NewGroupTransactSession(p, group, []string{in}, WithSessionTimeout(6*time.Second),
					WithHeartbeatInterval(500*time.Millisecond), WithFetchMaxWait(100*time.Millisecond))
				if err != nil {
					t.Error(err)
					return
				}
				defer s.Close(context.Background())
				for ctx.Err() == nil {
					if err := transactOnce(ctx, s, out); err != nil && ctx.Err() == nil {
						t.Logf("session %d: %v (class %v)", i, err, ClassOf(err))
						if ClassOf(err) == ClassFatal {
							t.Error(err)
							return
						}
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			ctx0, stop0 := context.WithCancel(ctx)
			defer stop0()
			wg.Add(2)
			go run(ctx0, 0)
			go run(ctx, 1)
			ends := endOffsets(ctx, t, cl, in, 4)
			for left := false; ; time.Sleep(200 * time.Millisecond) {
				committed := groupCommitted(ctx, cl, group, in)
				if !left && sumOffsets(committed) >= n/3 {
					stop0() // leaves the group: a rebalance
					wg.Add(1)
					go run(ctx, 2)
					left = true
				}
				if left && sameOffsets(committed, ends) {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("committed %v of %v", committed, ends)
				}
			}
			cancel()
			wg.Wait()
			seen := map[string]int{}
			for _, rs := range consumeAll(t, cl, out, 4) {
				for _, r := range rs {
					seen[string(r.Value)]++
				}
			}
			dups, lost := 0, 0
			for i := range n {
				switch c := seen[fmt.Sprintf("in-%06d", i)]; {
				case c == 0:
					lost++
				case c > 1:
					dups += c - 1
				}
			}
			if dups != 0 || lost != 0 {
				t.Fatalf("%d duplicates, %d lost of %d", dups, lost, n)
			}
			if !apis.sentOffsets() {
				t.Fatal("no TxnOffsetCommit sent")
			}
			apis.check(t, tc.tv)
		})
	}
}

// TestTxnSessionRewindSkipsRevoking: an End that aborts while the group
// revokes a partition (OnRevoked done, unassigned, not yet dropped from
// owned) must not assign it to the fetcher again; the control, a partition
// owned and not being revoked, is rewound to its committed offset.
func TestTxnSessionRewindSkipsRevoking(t *testing.T) {
	kept, going := topicPartition{"t", 0}, topicPartition{"t", 1}
	g := &GroupConsumer{
		owned:    map[topicPartition]bool{kept: true, going: true},
		revoking: map[topicPartition]bool{going: true},
		c:        &Consumer{parts: map[topicPartition]*fetchPart{}},
	}
	s := &GroupTransactSession{g: g, base: map[topicPartition]position{
		kept: {offset: 10, epoch: -1}, going: {offset: 20, epoch: -1}}}
	if err := s.rewind(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if fp := g.c.parts[going]; fp != nil {
		t.Errorf("the revoking partition was assigned again, at %d", fp.fetch)
	}
	if fp := g.c.parts[kept]; fp == nil || fp.fetch != 10 {
		t.Errorf("control: the owned partition was not rewound to 10: %+v", fp)
	}
}
