package kpax

import (
	"context"
	"testing"
	"time"
)

// TestIntegrationShareGroupOffsetsLag: ShareGroupOffsets reports the end
// offset and the lag of a share group, as the real broker keeps them: no
// state (-1) before the group reads, the broker's count of unsettled
// records (DescribeShareGroupOffsets v1) as records are accepted, 0 once
// every one is; capped at v0 (as against a Kafka 4.1 broker), the lag is
// End - Offset. The start offset itself is logged: on Kafka 4.4 it trails
// the accepted records (see ShareGroupOffset).
func TestIntegrationShareGroupOffsetsLag(t *testing.T) {
	addr := shareBroker(t)
	cl := newGroupTestClient(t, addr)
	v0 := newGroupTestClient(t, addr, WithMaxVersion((&DescribeShareGroupOffsetsRequest{}).APIKey(), 0))
	topic, group := shareSetup(t, cl, 1, 10, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	check := func(what string, wantLag, wantV0Lag int64, wantNoState bool) {
		t.Helper()
		offs, err := cl.Admin().ShareGroupOffsets(ctx, group, topic)
		if err != nil || len(offs) != 1 {
			t.Fatalf("%s: ShareGroupOffsets: %v %+v", what, err, offs)
		}
		o := offs[0]
		old, err := v0.Admin().ShareGroupOffsets(ctx, group, topic)
		if err != nil || len(old) != 1 {
			t.Fatalf("%s: ShareGroupOffsets v0: %v %+v", what, err, old)
		}
		t.Logf("figures: %s: start offset %d, end %d, lag %d (at v0: %d)", what, o.Offset, o.End, o.Lag, old[0].Lag)
		if o.End != 10 || o.Lag != wantLag || (o.Offset < 0) != wantNoState || o.Offset > o.End {
			t.Errorf("%s: %+v, want end 10, lag %d", what, o, wantLag)
		}
		if wantV0Lag == -2 {
			wantV0Lag = o.End - o.Offset
		}
		if old[0].Lag != wantV0Lag || old[0].End != 10 {
			t.Errorf("%s at v0: %+v, want lag %d", what, old[0], wantV0Lag)
		}
	}
	check("before any member", -1, -1, true)
	s := newTestShare(t, cl, group, topic, WithShareAckMode(ShareAckExplicit), WithShareMaxRecords(3),
		WithShareAcquireMode(ShareAcquireRecordLimit))
	accept := func(n int) {
		for got := 0; got < n; {
			f, err := s.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := range f.Records {
				s.Acknowledge(&f.Records[i], AckAccept)
			}
			got += len(f.Records)
			if err := s.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	accept(3)
	check("3 accepted", 7, -2, false)
	accept(7)
	check("all accepted", 0, -2, false)
}
