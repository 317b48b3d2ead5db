package kpax

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestProduceFaultKillRecovery produces unkeyed and keyed records with the
// default retry settings while the proxy kills every connection every
// 50-300ms, then stops the kills: Flush must return soon after (the
// records' delivery timeout is far away), and the ack latency of the
// records sent under the kills is logged. A stuck partition (a retry whose
// backoff keeps moving) once showed here in about one run of three; 48
// rounds of both modes have not shown it since.
func TestProduceFaultKillRecovery(t *testing.T) {
	addr := testBrokers(t)["4.x"]
	if addr == "" {
		t.Skip("no 4.x broker")
	}
	plain := newTestClient(t, addr)
	rounds := 1 // KPAX_TEST_KILL_ROUNDS=12 for a longer hunt
	if n, err := strconv.Atoi(os.Getenv("KPAX_TEST_KILL_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for _, m := range []killMode{
		{name: "kills+drops default backoff", drops: true},
		{name: "kills 20-100ms fast backoff", lo: 20 * time.Millisecond, hi: 100 * time.Millisecond,
			opts: []Option{WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond), WithRequestTimeout(700 * time.Millisecond)}},
	} {
		for round := range rounds {
			for _, keyed := range []bool{false, true} {
				killRecoveryRound(t, plain, addr, m, round, keyed)
			}
		}
	}
}

// killMode is one way of faulting the connections in
// TestProduceFaultKillRecovery.
type killMode struct {
	name   string
	drops  bool          // faultLoop (kills and dropped responses), else kills only
	lo, hi time.Duration // kill interval without drops
	opts   []Option
}

func killRecoveryRound(t *testing.T, plain *Client, addr string, m killMode, round int, keyed bool) {
	const parts = 6
	topic := createTestTopic(t, plain, parts)
	fn := newFaultNet(t)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cl := newTestClient(t, addr, append([]Option{fn.Option(), WithLogger(log)}, m.opts...)...)
	p, err := cl.NewProducer(WithDeliveryTimeout(2 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer closeWithin(t, p, 10*time.Second)
	l := newLedger()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop := func() (int, int) { return 0, 0 }
	if m.drops {
		stop = faultLoop(fn, 50*time.Millisecond, 300*time.Millisecond)
	} else {
		k0 := fn.Kills.Load()
		stopKills := fn.Chaos(m.lo, m.hi)
		stop = func() (int, int) { stopKills(); return int(fn.Kills.Load() - k0), 0 }
	}
	n := paced(5000, 3*time.Second, nil, func(i int) {
		var key []byte
		if keyed {
			key = []byte{byte(i % 32)}
		}
		if err := l.produce(ctx, p, topic, key, 20); err != nil {
			t.Errorf("Produce: %v", err)
		}
	})
	kills, drops := stop()
	healed := time.Now()
	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	defer fcancel()
	if err := flushOrDump(t, p, fctx); err != nil {
		tail := logs.String()
		if i := len(tail) - 20000; i > 0 {
			tail = tail[i:]
		}
		t.Fatalf("%s round %d keyed %v: Flush %v after the faults stopped (%d kills, %d drops); debug log tail:\n%s",
			m.name, round, keyed, err, kills, drops, tail)
	}
	flushed := time.Since(healed)
	var lat []time.Duration
	failed := 0
	l.mu.Lock()
	for i := range l.recs {
		if l.errs[i] != nil {
			failed++
			continue
		}
		lat = append(lat, l.ackAt[i].Sub(l.sentAt[i]))
	}
	l.mu.Unlock()
	slices.Sort(lat)
	q := func(f float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(f*float64(len(lat))))].Round(time.Millisecond)
	}
	t.Logf("%s round %d keyed %v: %d records, %d kills, %d drops, %d failed; ack latency p50 %v p99 %v max %v; flush after healing %v",
		m.name, round, keyed, n, kills, drops, failed, q(0.5), q(0.99), q(1), flushed.Round(time.Millisecond))
	if failed > 0 {
		t.Errorf("%d records failed with a delivery timeout of 2 minutes", failed)
	}
	if flushed > 5*time.Second {
		t.Errorf("Flush took %v after the faults stopped; want at most 5s (a few retry backoffs)", flushed)
	}
}
