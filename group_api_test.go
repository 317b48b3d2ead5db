package kpax

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Tests of the GroupConsumer's application-facing controls on a real
// broker: Pause/Resume/Position across rebalances, marks, leaving without
// a commit, and Committed.

// poller polls a group member on its own goroutine, as an application
// does, and keeps the records (their partitions and offsets).
type poller struct {
	g    *GroupConsumer
	mu   sync.Mutex
	recs []Record // Key/Value not kept
	mark bool     // mark every record after "processing" it
	stop chan struct{}
	done chan struct{}
}

func startPoller(g *GroupConsumer, mark bool) *poller {
	p := &poller{g: g, mark: mark, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			f, err := g.Poll(ctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return
			}
			p.mu.Lock()
			for i := range f.Records {
				r := f.Records[i]
				r.Key, r.Value, r.Headers = nil, nil, nil
				p.recs = append(p.recs, r)
				if p.mark {
					g.MarkRecords(&f.Records[i])
				}
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// halt stops polling and waits for the goroutine.
func (p *poller) halt() {
	close(p.stop)
	<-p.done
}

// count returns how many records of the partition were polled.
func (p *poller) count(partition int32) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.recs {
		if r.Partition == partition {
			n++
		}
	}
	return n
}

func closeGroup(t *testing.T, g *GroupConsumer, commit bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	close := g.Close
	if !commit {
		close = g.CloseWithoutCommit
	}
	if err := close(ctx); err != nil {
		t.Errorf("closing the member: %v", err)
	}
}

// TestIntegrationGroupPauseResume: a paused partition stays paused through
// an eager rebalance that takes it away and gives it back; Resume reads it
// from its committed offset, and Position follows.
func TestIntegrationGroupPauseResume(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 2)
	group := "g-" + topic
	produceSpread(t, cl, topic, 2, 10, "r")
	g1, err := cl.NewGroupConsumer(group, []string{topic}, fastGroup()...) // eager (range first)
	if err != nil {
		t.Fatal(err)
	}
	g1.Pause(topic, 1) // before it owns it
	p1 := startPoller(g1, false)
	waitUntil(t, 30*time.Second, "partition 0 read", func() bool { return p1.count(0) == 10 })
	if pos, ok := g1.Position(topic, 0); !ok || pos != 10 {
		t.Errorf("Position(0) = %d, %v, want 10", pos, ok)
	}

	// A second member joins (every partition is revoked and reassigned) and
	// leaves without committing what it read.
	cl2 := newGroupTestClient(t, addr)
	g2, err := cl2.NewGroupConsumer(group, []string{topic}, fastGroup()...)
	if err != nil {
		t.Fatal(err)
	}
	p2 := startPoller(g2, false)
	waitUntil(t, 30*time.Second, "a 1+1 split", func() bool {
		return len(g1.Assigned()[topic]) == 1 && len(g2.Assigned()[topic]) == 1
	})
	p2.halt()
	closeGroup(t, g2, false)
	waitUntil(t, 30*time.Second, "both partitions back", func() bool { return len(g1.Assigned()[topic]) == 2 })
	time.Sleep(time.Second) // time to fetch partition 1, were it not paused
	if n := p1.count(1); n != 0 {
		t.Fatalf("read %d records of paused partition 1", n)
	}
	g1.Resume(topic, 1)
	waitUntil(t, 30*time.Second, "partition 1 read after Resume", func() bool { return p1.count(1) == 10 })
	if pos, ok := g1.Position(topic, 1); !ok || pos != 10 {
		t.Errorf("Position(1) = %d, %v, want 10", pos, ok)
	}
	if _, ok := g1.Position(topic, 5); ok {
		t.Error("Position of a partition not owned")
	}
	p1.halt()
	closeGroup(t, g1, true)
}

// TestIntegrationGroupMarks: with marks, Commit, revocation and Close
// commit exactly what was marked, not what Poll reached; CloseWithoutCommit
// commits nothing; Committed reads the group's offsets.
func TestIntegrationGroupMarks(t *testing.T) {
	addr := groupBroker(t)
	cl := newGroupTestClient(t, addr)
	topic := createTestTopic(t, cl, 1)
	group := "g-" + topic
	produceSpread(t, cl, topic, 1, 10, "r")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	committed := func(g *GroupConsumer) int64 {
		t.Helper()
		offs, err := g.Committed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := offs[topic][0]; ok {
			return o
		}
		return -1
	}

	g1, err := cl.NewGroupConsumer(group, []string{topic}, fastGroup()...)
	if err != nil {
		t.Fatal(err)
	}
	p1 := startPoller(g1, false)
	waitUntil(t, 30*time.Second, "10 records", func() bool { return p1.count(0) == 10 })
	if c := committed(g1); c != -1 {
		t.Fatalf("committed %d before any commit", c)
	}
	p1.mu.Lock()
	g1.MarkRecords(&p1.recs[3])
	p1.mu.Unlock()
	if err := g1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if c := committed(g1); c != 4 {
		t.Fatalf("Commit after marking offset 3 committed %d, want 4", c)
	}
	if err := g1.MarkOffsets(map[string]map[int32]int64{topic: {0: 2}}); err != nil {
		t.Fatal(err)
	}
	p1.mu.Lock()
	g1.MarkRecords(&p1.recs[5]) // marks only move forward: 6, not 2
	p1.mu.Unlock()

	// A second member joins: the revocation commits the mark (6), not the
	// position (10).
	cl2 := newGroupTestClient(t, addr)
	g2, err := cl2.NewGroupConsumer(group, []string{topic}, fastGroup()...)
	if err != nil {
		t.Fatal(err)
	}
	p2 := startPoller(g2, true)
	waitUntil(t, 30*time.Second, "the rebalance", func() bool {
		return len(g1.Assigned()[topic])+len(g2.Assigned()[topic]) == 1 && committed(g1) == 6
	})
	p2.halt()
	p1.halt()
	closeGroup(t, g2, false) // g2 may have read (and marked) 6..9: not committed
	closeGroup(t, g1, true)  // g1 marked nothing since: nothing more
	if c := committed(g1); c != 6 {
		t.Fatalf("after the members left, committed %d, want 6", c)
	}

	// A new member starts at the commit; Close commits its marks.
	g3, err := cl.NewGroupConsumer(group, []string{topic}, fastGroup()...)
	if err != nil {
		t.Fatal(err)
	}
	p3 := startPoller(g3, false)
	waitUntil(t, 30*time.Second, "the rest", func() bool { return p3.count(0) == 4 })
	p3.halt()
	if first := p3.recs[0].Offset; first != 6 {
		t.Fatalf("new member started at %d, want 6", first)
	}
	g3.MarkRecords(&p3.recs[1]) // offset 7
	closeGroup(t, g3, true)
	if c := committed(g3); c != 8 {
		t.Fatalf("Close committed %d, want the mark 8", c)
	}
}
