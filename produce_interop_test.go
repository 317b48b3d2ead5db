package kpax

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// This file checks what kpax produces against independent readers: kcat
// (librdkafka) and kpax's own Consumer, byte for byte, with every codec, and
// that keyed records land where kcat's murmur2_random puts the same keys.

// kcatRecord is one record as kcat printed it.
type kcatRecord struct {
	partition int32
	offset    int64
	key       []byte // nil for a null key
	value     []byte // nil for a null value
}

// kcatConsumeRaw reads count records of a topic with kcat, keys and values
// as raw bytes: kcat prints "partition offset keylen valuelen\n" then the key
// and value bytes (a length of -1 is null), so binary payloads survive.
func kcatConsumeRaw(t *testing.T, addr, topic string, count int) []kcatRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kcat", "-C", "-b", addr, "-t", topic, "-o", "beginning",
		"-c", fmt.Sprint(count), "-e", "-q", "-f", "%p %o %K %S\n%k%s").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	r := bufio.NewReader(bytes.NewReader(out))
	var recs []kcatRecord
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			return recs
		}
		var kr kcatRecord
		var klen, vlen int
		if _, err := fmt.Sscanf(line, "%d %d %d %d", &kr.partition, &kr.offset, &klen, &vlen); err != nil {
			t.Fatalf("kcat output %q after %d records: %v", line, len(recs), err)
		}
		read := func(n int) []byte {
			if n < 0 {
				return nil
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				t.Fatalf("kcat output truncated after %d records: %v", len(recs), err)
			}
			return b
		}
		kr.key, kr.value = read(klen), read(vlen)
		recs = append(recs, kr)
	}
}

// consumeAll reads every record of the topic's partitions from the earliest
// offset with a kpax Consumer, until each partition reaches its end offset.
// The records are copies; they are in log order per partition.
func consumeAll(t *testing.T, cl *Client, topic string, partitions int32) map[int32][]Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends := endOffsets(ctx, t, cl, topic, partitions)
	c, err := cl.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(cctx); err != nil {
			t.Errorf("Consumer.Close: %v", err)
		}
	}()
	assign := map[int32]Offset{}
	for p := int32(0); p < partitions; p++ {
		assign[p] = Earliest()
	}
	c.Assign(map[string]map[int32]Offset{topic: assign})
	out := map[int32][]Record{}
	done := func() bool {
		for p, end := range ends {
			if pos, ok := c.Position(topic, p); end > 0 && (!ok || pos < end) {
				return false
			}
		}
		return true
	}
	for !done() {
		f, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("Poll: %v (read %d partitions so far)", err, len(out))
		}
		for _, e := range f.Errors {
			t.Logf("consumer: %v", e)
		}
		for _, r := range f.Records {
			r.Key = bytes.Clone(r.Key)
			r.Value = bytes.Clone(r.Value)
			hs := make([]Header, len(r.Headers))
			for i, h := range r.Headers {
				hs[i] = Header{Key: h.Key, Value: bytes.Clone(h.Value)}
			}
			r.Headers = hs
			out[r.Partition] = append(out[r.Partition], r)
		}
	}
	return out
}

// endOffsets asks each partition's leader for its high watermark.
func endOffsets(ctx context.Context, t *testing.T, cl *Client, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	ends := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		for {
			r, err := cl.Request(ctx, &ListOffsetsRequest{ReplicaID: -1, Topics: []ListOffsetsRequestTopic{{
				Name: topic, Partitions: []ListOffsetsRequestTopicPartition{{PartitionIndex: p, CurrentLeaderEpoch: -1, Timestamp: -1, MaxNumOffsets: 1}}}}})
			if err == nil {
				pr := r.(*ListOffsetsResponse).Topics[0].Partitions[0]
				if err = ErrorForCode(pr.ErrorCode); err == nil {
					ends[p] = pr.Offset
					if len(pr.OldStyleOffsets) > 0 { // ListOffsets v0 (Kafka 0.8-0.10.0)
						ends[p] = pr.OldStyleOffsets[0]
					}
					break
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("end offset of %s/%d: %v", topic, p, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return ends
}

// interopValue is a random binary value of n bytes with runs that compress.
func interopValue(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; {
		run := min(n-i, 1+rng.IntN(40))
		c := byte(rng.IntN(256))
		if rng.IntN(2) == 0 {
			for j := 0; j < run; j++ {
				b[i+j] = c
			}
		} else {
			for j := 0; j < run; j++ {
				b[i+j] = byte(rng.IntN(256))
			}
		}
		i += run
	}
	return b
}

// TestIntegrationProduceInterop produces binary keys, values, null keys,
// tombstones and headers with every codec, and reads them back with kcat
// and with kpax's Consumer: same partitions, offsets and bytes.
func TestIntegrationProduceInterop(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			cl := newTestClient(t, addr)
			for _, codec := range codecs {
				t.Run(codec.String(), func(t *testing.T) {
					const n, parts = 400, 3
					topic := createTestTopic(t, cl, parts)
					rng := rand.New(rand.NewPCG(uint64(codec), 7))
					ts := time.UnixMilli(time.Now().UnixMilli())
					recs := make([]*Record, n)
					for i := range recs {
						r := &Record{Topic: topic, Value: interopValue(rng, rng.IntN(3000)), Timestamp: ts.Add(time.Duration(i) * time.Millisecond)}
						switch i % 10 {
						case 0: // null key
						case 1:
							r.Key = []byte{} // empty, not null
						default:
							r.Key = interopValue(rng, 1+rng.IntN(20))
						}
						if i%17 == 0 {
							r.Value = nil // tombstone
						}
						if i%3 == 0 {
							r.Headers = []Header{{Key: "i", Value: []byte(fmt.Sprint(i))}, {Key: "null"}, {Key: "bin", Value: interopValue(rng, 30)}}
						}
						recs[i] = r
					}
					produceKpax(t, cl, recs, WithCompression(codec), WithLinger(5*time.Millisecond))
					byPos := map[[2]int64]*Record{}
					for _, r := range recs {
						if r.Key != nil {
							if want := Murmur2Partitioner().Partition(r, parts, nil); r.Partition != want {
								t.Fatalf("key %x in partition %d, murmur2 says %d", r.Key, r.Partition, want)
							}
						}
						byPos[[2]int64{int64(r.Partition), r.Offset}] = r
					}
					if len(byPos) != n {
						t.Fatalf("%d distinct partition/offset pairs for %d records", len(byPos), n)
					}

					// kcat: same partitions, offsets, keys and values.
					kr := kcatConsumeRaw(t, addr, topic, n)
					if len(kr) != n {
						t.Fatalf("kcat read %d records, want %d", len(kr), n)
					}
					for _, k := range kr {
						r := byPos[[2]int64{int64(k.partition), k.offset}]
						if r == nil {
							t.Fatalf("kcat read a record at %d/%d that kpax did not produce", k.partition, k.offset)
						}
						if !bytes.Equal(k.key, r.Key) || (k.key == nil) != (r.Key == nil) ||
							!bytes.Equal(k.value, r.Value) || (k.value == nil) != (r.Value == nil) {
							t.Fatalf("kcat read at %d/%d key %x value %d bytes (null %v), produced key %x value %d bytes (null %v)",
								k.partition, k.offset, k.key, len(k.value), k.value == nil, r.Key, len(r.Value), r.Value == nil)
						}
					}

					// kpax's Consumer: the same, plus headers and timestamps.
					got := consumeAll(t, cl, topic, parts)
					total := 0
					for part, rs := range got {
						total += len(rs)
						for _, g := range rs {
							r := byPos[[2]int64{int64(part), g.Offset}]
							if r == nil {
								t.Fatalf("consumed a record at %d/%d that kpax did not produce", part, g.Offset)
							}
							if !bytes.Equal(g.Key, r.Key) || (g.Key == nil) != (r.Key == nil) ||
								!bytes.Equal(g.Value, r.Value) || (g.Value == nil) != (r.Value == nil) ||
								!g.Timestamp.Equal(r.Timestamp) || len(g.Headers) != len(r.Headers) {
								t.Fatalf("consumed at %d/%d: key %x, %d value bytes, ts %v, %d headers; produced key %x, %d bytes, ts %v, %d headers",
									part, g.Offset, g.Key, len(g.Value), g.Timestamp, len(g.Headers), r.Key, len(r.Value), r.Timestamp, len(r.Headers))
							}
							for i, h := range g.Headers {
								if h.Key != r.Headers[i].Key || !bytes.Equal(h.Value, r.Headers[i].Value) || (h.Value == nil) != (r.Headers[i].Value == nil) {
									t.Fatalf("header %d at %d/%d: %q=%x, produced %q=%x", i, part, g.Offset, h.Key, h.Value, r.Headers[i].Key, r.Headers[i].Value)
								}
							}
							if got := g.Attrs.Compression(); got != codec {
								t.Fatalf("record at %d/%d in a %v batch, want %v", part, g.Offset, got, codec)
							}
						}
					}
					if total != n {
						t.Fatalf("consumed %d records, want %d", total, n)
					}
				})
			}
		})
	}
}

// TestIntegrationProducerPartitionsMatchKcat produces the same keys with
// kpax's producer and with kcat (-X partitioner=murmur2_random) into two
// topics and compares where each key landed.
func TestIntegrationProducerPartitionsMatchKcat(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			const n, parts = 300, 11
			cl := newTestClient(t, addr)
			ours, theirs := createTestTopic(t, cl, parts), createTestTopic(t, cl, parts)
			rng := rand.New(rand.NewPCG(3, 4))
			keys := make([]string, n)
			var in strings.Builder
			for i := range keys {
				// Printable keys of every length up to 40 (kcat splits input on '|' and '\n').
				b := make([]byte, i%41)
				for j := range b {
					b[j] = byte('!' + rng.IntN('|'-'!'))
				}
				keys[i] = fmt.Sprintf("%s#%d", b, i)
				fmt.Fprintf(&in, "%s|v\n", keys[i])
			}
			cmd := exec.Command("kcat", "-P", "-b", addr, "-t", theirs, "-K", "|", "-X", "partitioner=murmur2_random")
			cmd.Stdin = strings.NewReader(in.String())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kcat -P: %v\n%s", err, out)
			}
			recs := make([]*Record, n)
			for i, k := range keys {
				recs[i] = &Record{Topic: ours, Key: []byte(k), Value: []byte("v")}
			}
			produceKpax(t, cl, recs)
			where := map[string]int32{}
			for _, r := range recs {
				where[string(r.Key)] = r.Partition
			}
			kr := kcatConsumeRaw(t, addr, theirs, n)
			if len(kr) != n {
				t.Fatalf("kcat read %d records, want %d", len(kr), n)
			}
			for _, k := range kr {
				if got, ok := where[string(k.key)]; !ok || got != k.partition {
					t.Fatalf("key %q: kcat put it in partition %d, kpax in %d", k.key, k.partition, got)
				}
			}
		})
	}
}
