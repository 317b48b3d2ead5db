package kpax

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConsumerOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
		want string // "" for valid
	}{
		{"defaults", nil, ""},
		{"max wait", WithFetchMaxWait(-time.Second), "fetch max wait"},
		{"min bytes", WithFetchMinBytes(-1), "fetch min bytes"},
		{"max bytes", WithFetchMaxBytes(10), "fetch max bytes"},
		{"partition bytes", WithFetchMaxPartitionBytes(100 << 20), "max partition bytes"},
		{"buffer", WithFetchBufferBytes(1), "buffer bytes"},
		{"isolation", WithIsolationLevel(7), "isolation level"},
		{"reset", WithOffsetReset(9), "reset policy"},
		{"read committed", WithIsolationLevel(ReadCommitted), ""},
		{"reset none", WithOffsetReset(ResetNone), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := New(WithSeedBrokers("127.0.0.1:1"))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			var opts []Option
			if tc.opt != nil {
				opts = append(opts, tc.opt)
			}
			c, err := cl.NewConsumer(opts...)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// consumed is a record copied out of a Fetch.
type consumed struct {
	partition int32
	offset    int64
	key, val  string
	headers   []Header
	ts        time.Time
}

// pollN polls until n records came (or fails after the timeout), copying
// them; it returns them with the errors reported.
func pollN(t *testing.T, c *Consumer, n int, timeout time.Duration) ([]consumed, []error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []consumed
	var errs []error
	for len(out) < n {
		f, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("Poll after %d of %d records: %v (errors: %v)", len(out), n, err, errs)
		}
		errs = append(errs, f.Errors...)
		for _, r := range f.Records {
			var hs []Header
			for _, h := range r.Headers {
				hs = append(hs, Header{h.Key, bytes.Clone(h.Value)})
			}
			out = append(out, consumed{r.Partition, r.Offset, string(r.Key), string(r.Value), hs, r.Timestamp})
		}
	}
	return out, errs
}

// pollQuiet polls for d and returns what came.
func pollQuiet(t *testing.T, c *Consumer, d time.Duration) ([]consumed, []error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []consumed
	var errs []error
	for {
		f, err := c.Poll(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return out, errs
			}
			t.Fatal(err)
		}
		errs = append(errs, f.Errors...)
		for _, r := range f.Records {
			out = append(out, consumed{r.Partition, r.Offset, string(r.Key), string(r.Value), nil, r.Timestamp})
		}
	}
}

func newTestConsumer(t *testing.T, cl *Client, opts ...Option) *Consumer {
	t.Helper()
	c, err := cl.NewConsumer(append([]Option{WithFetchMaxWait(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// produceKpax produces records with a kpax producer made with opts and
// waits for every outcome; the records get their partitions and offsets.
func produceKpax(t *testing.T, cl *Client, recs []*Record, opts ...Option) {
	t.Helper()
	p, err := cl.NewProducer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.ProduceSync(ctx, recs...); err != nil {
		p.Close(ctx)
		t.Fatalf("produce: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// checkExactly checks that got holds exactly the want values, in order per
// partition, with offsets rising.
func checkExactly(t *testing.T, got []consumed, want map[int32][]string) {
	t.Helper()
	by := map[int32][]string{}
	last := map[int32]int64{}
	for _, g := range got {
		if o, ok := last[g.partition]; ok && g.offset <= o {
			t.Fatalf("partition %d: offset %d after %d", g.partition, g.offset, o)
		}
		last[g.partition] = g.offset
		by[g.partition] = append(by[g.partition], g.val)
	}
	for p, w := range want {
		if !slices.Equal(by[p], w) {
			t.Fatalf("partition %d: got %d records, want %d\n got %.200q\nwant %.200q", p, len(by[p]), len(w), by[p], w)
		}
	}
	for p := range by {
		if _, ok := want[p]; !ok {
			t.Fatalf("records of unexpected partition %d", p)
		}
	}
}

// TestIntegrationConsumerCodecs consumes what kcat wrote with every codec
// and what the kpax producer wrote: none missing, none extra, byte-equal.
func TestIntegrationConsumerCodecs(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			cl := newTestClient(t, addr)
			for _, codec := range []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
				t.Run(codec.String(), func(t *testing.T) {
					topic := createTestTopic(t, cl, 2)
					want := map[int32][]string{}
					for p := int32(0); p < 2; p++ {
						var lines []string
						for i := range 1500 {
							lines = append(lines, fmt.Sprintf("kcat-%s-p%d-%d-%s", codec, p, i, strings.Repeat("v", i%97)))
						}
						kcatProduce(t, addr, topic, p, codec, lines)
						want[p] = lines
					}
					var recs []*Record
					for i := range 1000 {
						p := int32(i % 2)
						v := fmt.Sprintf("kpax-%s-%d", codec, i)
						recs = append(recs, &Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprint(i)), Value: []byte(v),
							Headers: []Header{{Key: "i", Value: []byte(fmt.Sprint(i))}}})
						want[p] = append(want[p], v)
					}
					produceKpax(t, cl, recs, WithCompression(codec), WithPartitioner(ManualPartitioner()))

					c := newTestConsumer(t, cl, WithFetchMaxPartitionBytes(64<<10))
					c.Assign(map[string]map[int32]Offset{topic: {0: Earliest(), 1: Earliest()}})
					got, errs := pollN(t, c, 4000, 30*time.Second)
					checkExactly(t, got, want)
					for _, g := range got {
						if strings.HasPrefix(g.val, "kpax-") {
							if len(g.headers) != 1 || g.headers[0].Key != "i" || string(g.headers[0].Value) != g.key {
								t.Fatalf("record %s: headers %v, key %s", g.val, g.headers, g.key)
							}
						}
					}
					extra, errs2 := pollQuiet(t, c, 300*time.Millisecond)
					if len(extra) > 0 {
						t.Fatalf("%d extra records: %v", len(extra), extra[0])
					}
					if errs = append(errs, errs2...); len(errs) > 0 {
						t.Logf("reported (retried) errors: %v", errs)
					}
				})
			}
		})
	}
}

// TestIntegrationConsumerStartPoints starts at earliest, latest, an exact
// offset and a time.
func TestIntegrationConsumerStartPoints(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			cl := newTestClient(t, addr)
			topic := createTestTopic(t, cl, 1)
			mk := func(from, to int, ts time.Time) ([]*Record, []string) {
				var recs []*Record
				var vals []string
				for i := from; i < to; i++ {
					v := fmt.Sprintf("v%d", i)
					recs = append(recs, &Record{Topic: topic, Value: []byte(v), Timestamp: ts.Add(time.Duration(i) * time.Millisecond)})
					vals = append(vals, v)
				}
				return recs, vals
			}
			base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
			recs, all := mk(0, 100, base)
			produceKpax(t, cl, recs, WithPartitioner(ManualPartitioner()))

			for _, tc := range []struct {
				name string
				from Offset
				want []string
			}{
				{"earliest", Earliest(), all},
				{"offset", AtOffset(42), all[42:]},
				{"time", AtTime(base.Add(70 * time.Millisecond)), all[70:]},
				{"time after all", AtTime(time.Now().Add(time.Hour)), nil},
				{"latest", Latest(), nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c := newTestConsumer(t, cl)
					c.Assign(map[string]map[int32]Offset{topic: {0: tc.from}})
					got, _ := pollN(t, c, len(tc.want), 30*time.Second)
					if tc.want == nil {
						// Only records produced from now on.
						waitPosition(t, c, topic, 0)
						more, vals := mk(1000, 1005, time.Now())
						produceKpax(t, cl, more, WithPartitioner(ManualPartitioner()))
						got, _ = pollN(t, c, 5, 30*time.Second)
						checkExactly(t, got, map[int32][]string{0: vals})
						return
					}
					checkExactly(t, got, map[int32][]string{0: tc.want})
					if extra, _ := pollQuiet(t, c, 200*time.Millisecond); len(extra) > 0 {
						t.Fatalf("extra records %v", extra)
					}
				})
			}
		})
	}
}

// waitPosition waits until the partition's start point is resolved.
func waitPosition(t *testing.T, c *Consumer, topic string, p int32) int64 {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if off, ok := c.Position(topic, p); ok {
			return off
		}
	}
	t.Fatalf("%s/%d: no position", topic, p)
	return 0
}

// TestIntegrationConsumerPauseResume: a paused partition returns nothing
// while the other goes on; resumed, it goes on where it stopped.
func TestIntegrationConsumerPauseResume(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			cl := newTestClient(t, addr)
			topic := createTestTopic(t, cl, 2)
			batch := func(tag string) (map[int32][]string, []*Record) {
				want := map[int32][]string{}
				var recs []*Record
				for i := range 200 {
					p := int32(i % 2)
					v := fmt.Sprintf("%s-%d", tag, i)
					recs = append(recs, &Record{Topic: topic, Partition: p, Value: []byte(v)})
					want[p] = append(want[p], v)
				}
				return want, recs
			}
			w1, r1 := batch("one")
			produceKpax(t, cl, r1, WithPartitioner(ManualPartitioner()))
			c := newTestConsumer(t, cl)
			c.Assign(map[string]map[int32]Offset{topic: {0: Earliest(), 1: Earliest()}})
			got, _ := pollN(t, c, 200, 30*time.Second)
			checkExactly(t, got, w1)

			c.Pause(topic, 1)
			w2, r2 := batch("two")
			produceKpax(t, cl, r2, WithPartitioner(ManualPartitioner()))
			got, _ = pollN(t, c, 100, 30*time.Second)
			if extra, _ := pollQuiet(t, c, 500*time.Millisecond); len(extra) > 0 {
				t.Fatalf("paused partition returned %d records: %v", len(extra), extra[0])
			}
			checkExactly(t, got, map[int32][]string{0: w2[0]})

			c.Resume(topic)
			got, _ = pollN(t, c, 100, 30*time.Second)
			checkExactly(t, got, map[int32][]string{1: w2[1]})
		})
	}
}

// TestIntegrationConsumerOutOfRange: a position past the end of the log
// resets to the earliest or latest offset, or is reported with ResetNone.
func TestIntegrationConsumerOutOfRange(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			cl := newTestClient(t, addr)
			topic := createTestTopic(t, cl, 1)
			var recs []*Record
			var vals []string
			for i := range 50 {
				vals = append(vals, fmt.Sprint("r", i))
				recs = append(recs, &Record{Topic: topic, Value: []byte(vals[i])})
			}
			produceKpax(t, cl, recs, WithPartitioner(ManualPartitioner()))

			t.Run("earliest", func(t *testing.T) {
				c := newTestConsumer(t, cl, WithOffsetReset(ResetEarliest))
				c.Assign(map[string]map[int32]Offset{topic: {0: AtOffset(5000)}})
				got, _ := pollN(t, c, 50, 30*time.Second)
				checkExactly(t, got, map[int32][]string{0: vals})
			})
			t.Run("latest", func(t *testing.T) {
				c := newTestConsumer(t, cl, WithOffsetReset(ResetLatest))
				c.Assign(map[string]map[int32]Offset{topic: {0: AtOffset(5000)}})
				for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					if off, ok := c.Position(topic, 0); ok && off == 50 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("no reset to the latest offset")
					}
				}
				if got, _ := pollQuiet(t, c, 300*time.Millisecond); len(got) > 0 {
					t.Fatalf("got %d records after a reset to latest", len(got))
				}
			})
			t.Run("none", func(t *testing.T) {
				c := newTestConsumer(t, cl, WithOffsetReset(ResetNone))
				c.Assign(map[string]map[int32]Offset{topic: {0: AtOffset(5000)}})
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				f, err := c.Poll(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var pe *PartitionError
				if len(f.Records) > 0 || len(f.Errors) == 0 || !errors.As(f.Errors[0], &pe) || !errors.Is(pe, ErrOffsetOutOfRange) || pe.Topic != topic {
					t.Fatalf("got %d records, errors %v; want OFFSET_OUT_OF_RANGE", len(f.Records), f.Errors)
				}
				// Stopped: nothing more, until assigned again.
				if got, errs := pollQuiet(t, c, 300*time.Millisecond); len(got) > 0 || len(errs) > 0 {
					t.Fatalf("after a fatal error: %d records, errors %v", len(got), errs)
				}
				c.Assign(map[string]map[int32]Offset{topic: {0: AtOffset(45)}})
				got, _ := pollN(t, c, 5, 20*time.Second)
				checkExactly(t, got, map[int32][]string{0: vals[45:]})
			})
		})
	}
}

// TestIntegrationConsumerMessageSets reads message sets v0/v1 (the 3.9
// broker converts down for old Fetch versions, compressed sets nested in
// wrapper messages) and skips the records before the offset asked for
// inside a compressed wrapper.
func TestIntegrationConsumerMessageSets(t *testing.T) {
	addr := testBrokers(t)["3.9"]
	if addr == "" {
		t.Skip("needs the Kafka 3.9 broker (4.x dropped Fetch below v4)")
	}
	cl := newTestClient(t, addr)
	for _, codec := range []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4} {
		topic := createTestTopic(t, cl, 1)
		var lines []string
		for i := range 700 {
			lines = append(lines, fmt.Sprintf("ms-%s-%d", codec, i))
		}
		kcatProduce(t, addr, topic, 0, codec, lines)
		for _, v := range []int16{3, 1} { // magic 1, magic 0
			t.Run(fmt.Sprintf("%s/fetch-v%d", codec, v), func(t *testing.T) {
				old := newTestClient(t, addr, WithMaxVersion(1, v))
				c := newTestConsumer(t, old, WithFetchMaxPartitionBytes(16<<10))
				c.Assign(map[string]map[int32]Offset{topic: {0: AtOffset(33)}})
				got, errs := pollN(t, c, 700-33, 30*time.Second)
				checkExactly(t, got, map[int32][]string{0: lines[33:]})
				if len(errs) > 0 {
					t.Logf("reported errors: %v", errs)
				}
			})
		}
	}
}

// TestIntegrationConsumerTruncation: a position whose leader epoch ends
// before it (what an unclean leader election leaves) is reported as
// ErrLogTruncated, and consumption goes on from where the log ends. The
// control, without an epoch, has nothing to validate.
func TestIntegrationConsumerTruncation(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			cl := newTestClient(t, addr)
			topic := createTestTopic(t, cl, 1)
			var recs []*Record
			for i := range 10 {
				recs = append(recs, &Record{Topic: topic, Value: []byte(fmt.Sprint("t", i))})
			}
			produceKpax(t, cl, recs, WithPartitioner(ManualPartitioner()))
			md, err := cl.Metadata(context.Background(), topic)
			if err != nil {
				t.Fatal(err)
			}
			epoch := md.Topics[0].Partitions[0].LeaderEpoch

			c := newTestConsumer(t, cl, WithOffsetReset(ResetNone))
			c.assign(map[topicPartition]Offset{{topic, 0}: {kind: offsetExact, at: 20, epoch: epoch}})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			f, err := c.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Errors) != 1 || !errors.Is(f.Errors[0], ErrLogTruncated) {
				t.Fatalf("errors %v, want ErrLogTruncated", f.Errors)
			}
			if off, _ := c.Position(topic, 0); off != 10 {
				t.Fatalf("position %d after truncation, want 10", off)
			}
			more := []*Record{{Topic: topic, Value: []byte("after")}}
			produceKpax(t, cl, more, WithPartitioner(ManualPartitioner()))
			got, _ := pollN(t, c, 1, 20*time.Second)
			checkExactly(t, got, map[int32][]string{0: {"after"}})

			// Control: without a leader epoch there is nothing to validate,
			// and the position is out of range instead.
			c2 := newTestConsumer(t, cl, WithOffsetReset(ResetNone))
			c2.Assign(map[string]map[int32]Offset{topic: {0: AtOffset(20)}})
			f, err = c2.Poll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Errors) != 1 || errors.Is(f.Errors[0], ErrLogTruncated) || !errors.Is(f.Errors[0], ErrOffsetOutOfRange) {
				t.Fatalf("control: errors %v, want only OFFSET_OUT_OF_RANGE", f.Errors)
			}
		})
	}
}

// TestIntegrationConsumerClose: Close ends every consumer goroutine, and
// Poll then fails with ErrConsumerClosed.
func TestIntegrationConsumerClose(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			cl := newTestClient(t, addr)
			topic := createTestTopic(t, cl, 3)
			c, err := cl.NewConsumer()
			if err != nil {
				t.Fatal(err)
			}
			c.Assign(map[string]map[int32]Offset{topic: {0: Earliest(), 1: Latest(), 2: AtOffset(0)}})
			waitPosition(t, c, topic, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Poll(ctx); !errors.Is(err, ErrConsumerClosed) {
				t.Fatalf("Poll after Close: %v", err)
			}
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			for _, fn := range []string{"(*Consumer).manage", "(*fetcher).run"} {
				if strings.Contains(stacks, fn) {
					t.Fatalf("%s still running after Close", fn)
				}
			}
		})
	}
}
