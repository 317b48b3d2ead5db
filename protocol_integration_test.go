package kpax

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// These tests speak the protocol with generated types over a plain TCP
// connection to real brokers: the 3.9 broker at $KPAX_TEST_KAFKA39 and the
// 4.x broker at $KPAX_TEST_KAFKA4. Without the variables they skip; `make
// test` starts the brokers and sets them, so in CI they run.

// testBrokers returns the brokers under test, by name.
func testBrokers(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, env := range map[string]string{"3.9": "KPAX_TEST_KAFKA39", "4.x": "KPAX_TEST_KAFKA4"} {
		if addr := os.Getenv(env); addr != "" {
			out[name] = addr
		}
	}
	if len(out) == 0 {
		t.Skip("no broker: set KPAX_TEST_KAFKA39 and/or KPAX_TEST_KAFKA4 (make test does)")
	}
	return out
}

// rawConn is one TCP connection that sends a request and waits for its
// response: the smallest client, for testing the protocol code alone.
type rawConn struct {
	t        *testing.T
	c        net.Conn
	corr     int32
	versions map[int16][2]int16 // the broker's min and max version per API key
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawConn{t: t, c: c}
	var resp *ApiVersionsResponse
	// v3 first; a broker that does not know it answers with v0 and
	// UNSUPPORTED_VERSION, the fallback every client implements.
	resp = rc.roundTrip(&ApiVersionsRequest{ClientSoftwareName: "kpax-test", ClientSoftwareVersion: "0"}, 3).(*ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions v3: %v", ErrorForCode(resp.ErrorCode))
	}
	rc.versions = map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		rc.versions[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	return rc
}

// pick returns the highest version of req's API that both sides support.
func (rc *rawConn) pick(req Request) int16 {
	r, ok := rc.versions[req.APIKey()]
	if !ok {
		rc.t.Fatalf("broker does not support %s", APIName(req.APIKey()))
	}
	return min(r[1], req.MaxVersion())
}

func (rc *rawConn) supports(key int16, v int16) bool {
	r, ok := rc.versions[key]
	return ok && v >= r[0] && v <= r[1]
}

func (rc *rawConn) roundTrip(req Request, v int16) Response {
	rc.t.Helper()
	rc.corr++
	rc.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := rc.c.Write(appendRequest(nil, req, v, rc.corr, "kpax-test")); err != nil {
		rc.t.Fatalf("%s v%d: write: %v", APIName(req.APIKey()), v, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(rc.c, size[:]); err != nil {
		rc.t.Fatalf("%s v%d: read: %v", APIName(req.APIKey()), v, err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(rc.c, frame); err != nil {
		rc.t.Fatalf("%s v%d: read: %v", APIName(req.APIKey()), v, err)
	}
	if corr, err := responseCorrelationID(frame); err != nil || corr != rc.corr {
		rc.t.Fatalf("%s v%d: correlation ID %d, want %d (%v)", APIName(req.APIKey()), v, corr, rc.corr, err)
	}
	resp := req.NewResponse()
	if err := decodeResponse(frame, req, v, resp); err != nil {
		rc.t.Fatalf("%s v%d: %v", APIName(req.APIKey()), v, err)
	}
	return resp
}

// topicInfo is what Metadata says of a topic.
type topicInfo struct {
	id      UUID
	leaders map[int32]int32
}

func (rc *rawConn) metadata(topic string) topicInfo {
	rc.t.Helper()
	req := &MetadataRequest{Topics: []MetadataRequestTopic{{Name: &topic}}}
	v := rc.pick(req)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp := rc.roundTrip(req, v).(*MetadataResponse)
		if len(resp.Brokers) == 0 {
			rc.t.Fatalf("Metadata v%d: no brokers", v)
		}
		for _, tp := range resp.Topics {
			if tp.ErrorCode != 0 || deref(tp.Name) != topic || len(tp.Partitions) == 0 {
				continue
			}
			ti := topicInfo{id: tp.TopicID, leaders: map[int32]int32{}}
			ok := true
			for _, p := range tp.Partitions {
				ti.leaders[p.PartitionIndex] = p.LeaderID
				ok = ok && p.ErrorCode == 0 && p.LeaderID >= 0
			}
			if ok {
				return ti
			}
		}
		if time.Now().After(deadline) {
			rc.t.Fatalf("topic %s has no leaders after 20s: %+v", topic, resp.Topics)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (rc *rawConn) createTopic(name string, partitions int32) topicInfo {
	rc.t.Helper()
	req := &CreateTopicsRequest{TimeoutMs: 15000, Topics: []CreateTopicsRequestTopic{{
		Name: name, NumPartitions: partitions, ReplicationFactor: 1,
		Assignments: []CreateTopicsRequestTopicAssignment{}, Configs: []CreateTopicsRequestTopicConfig{},
	}}}
	v := rc.pick(req)
	resp := rc.roundTrip(req, v).(*CreateTopicsResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		rc.t.Fatalf("CreateTopics v%d: %+v", v, resp.Topics)
	}
	return rc.metadata(name)
}

// produce writes records to the partition at version v: by topic name, and
// from v13 by topic ID (ti.id), as the version asks.
func (rc *rawConn) produce(ti topicInfo, topic string, partition int32, v int16, records []byte) int64 {
	rc.t.Helper()
	req := &ProduceRequest{Acks: -1, TimeoutMs: 10000, TopicData: []ProduceRequestTopicData{{
		Name: topic, TopicID: ti.id, PartitionData: []ProduceRequestTopicDataPartitionData{{Index: partition, Records: records}},
	}}}
	// A new topic's leader may take a moment to serve: retry retriable errors.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp := rc.roundTrip(req, v).(*ProduceResponse)
		if len(resp.Responses) != 1 || len(resp.Responses[0].PartitionResponses) != 1 {
			rc.t.Fatalf("Produce v%d: unexpected response %+v", v, resp)
		}
		pr := resp.Responses[0].PartitionResponses[0]
		err := ErrorForCode(pr.ErrorCode)
		if err == nil {
			return pr.BaseOffset
		}
		if !IsRetriable(err) || time.Now().After(deadline) {
			rc.t.Fatalf("Produce v%d: %v (%s)", v, err, deref(pr.ErrorMessage))
		}
	}
}

// fetch returns the records of the partition from offset on, decoded.
func (rc *rawConn) fetch(ti topicInfo, topic string, partition int32, offset int64, v int16) []Record {
	rc.t.Helper()
	req := &FetchRequest{ReplicaID: -1, MaxWaitMs: 100, MinBytes: 1, MaxBytes: 8 << 20, SessionEpoch: -1,
		Topics: []FetchRequestTopic{{Topic: topic, TopicID: ti.id, Partitions: []FetchRequestTopicPartition{{
			Partition: partition, CurrentLeaderEpoch: -1, FetchOffset: offset, LastFetchedEpoch: -1, LogStartOffset: -1,
			PartitionMaxBytes: 4 << 20,
		}}}},
		ForgottenTopicsData: []FetchRequestForgottenTopicsData{},
	}
	resp := rc.roundTrip(req, v).(*FetchResponse)
	if err := ErrorForCode(resp.ErrorCode); err != nil {
		rc.t.Fatalf("Fetch v%d: %v", v, err)
	}
	if len(resp.Responses) != 1 || len(resp.Responses[0].Partitions) != 1 {
		rc.t.Fatalf("Fetch v%d: unexpected response %+v", v, resp)
	}
	p := resp.Responses[0].Partitions[0]
	if err := ErrorForCode(p.ErrorCode); err != nil {
		rc.t.Fatalf("Fetch v%d: %v", v, err)
	}
	recs, err := DecodeRecords(nil, p.Records)
	if err != nil {
		rc.t.Fatalf("Fetch v%d: decode records: %v", v, err)
	}
	return recs
}

func (rc *rawConn) listOffset(ti topicInfo, topic string, partition int32, ts int64) int64 {
	rc.t.Helper()
	req := &ListOffsetsRequest{ReplicaID: -1, Topics: []ListOffsetsRequestTopic{{Name: topic, Partitions: []ListOffsetsRequestTopicPartition{{
		PartitionIndex: partition, CurrentLeaderEpoch: -1, Timestamp: ts, MaxNumOffsets: 1,
	}}}}}
	v := rc.pick(req)
	resp := rc.roundTrip(req, v).(*ListOffsetsResponse)
	p := resp.Topics[0].Partitions[0]
	if err := ErrorForCode(p.ErrorCode); err != nil {
		rc.t.Fatalf("ListOffsets v%d: %v", v, err)
	}
	if v == 0 {
		if len(p.OldStyleOffsets) == 0 {
			rc.t.Fatalf("ListOffsets v0: no offsets")
		}
		return p.OldStyleOffsets[0]
	}
	return p.Offset
}

func sampleRecords(n int, prefix string) []Record {
	recs := make([]Record, n)
	ts := time.UnixMilli(time.Now().UnixMilli())
	for i := range recs {
		recs[i] = Record{
			Key:       []byte(fmt.Sprintf("%s-key-%d", prefix, i)),
			Value:     []byte(fmt.Sprintf("%s-value-%d-%s", prefix, i, strings.Repeat("x", i*10))),
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
		}
		if i%2 == 0 {
			recs[i].Headers = []Header{{Key: "h", Value: []byte{byte(i)}}}
		}
	}
	return recs
}

func checkRecords(t *testing.T, what string, got, want []Record, headers bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("%s: record %d is %q=%q, want %q=%q", what, i, g.Key, g.Value, w.Key, w.Value)
		}
		if headers && len(g.Headers) != len(w.Headers) {
			t.Fatalf("%s: record %d has %d headers, want %d", what, i, len(g.Headers), len(w.Headers))
		}
		if !w.Timestamp.IsZero() && !g.Timestamp.Equal(w.Timestamp) {
			t.Fatalf("%s: record %d timestamp %v, want %v", what, i, g.Timestamp, w.Timestamp)
		}
	}
}

var codecs = []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}

func TestIntegrationProtocol(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, addr)
			t.Logf("%s: %d APIs; Produce %v, Fetch %v, Metadata %v", addr, len(rc.versions),
				rc.versions[0], rc.versions[1], rc.versions[3])

			// The v0 fallback: every broker answers ApiVersions v0.
			v0 := rc.roundTrip(&ApiVersionsRequest{}, 0).(*ApiVersionsResponse)
			if v0.ErrorCode != 0 || len(v0.ApiKeys) != len(rc.versions) {
				t.Fatalf("ApiVersions v0: error %d, %d keys (v3 gave %d)", v0.ErrorCode, len(v0.ApiKeys), len(rc.versions))
			}
			// Metadata of every topic (null topics from v1).
			md := rc.roundTrip(&MetadataRequest{}, rc.pick(&MetadataRequest{})).(*MetadataResponse)
			if len(md.Brokers) != 1 || md.Brokers[0].Host != "127.0.0.1" {
				t.Fatalf("Metadata: brokers %+v", md.Brokers)
			}

			topic := fmt.Sprintf("kpax-proto-%d", rand.Int64())
			ti := rc.createTopic(topic, 3)
			fetchV := rc.pick(&FetchRequest{})
			produceV := rc.pick(&ProduceRequest{})

			// Record batch v2, every codec, into partition 0.
			var want []Record
			for _, c := range codecs {
				recs := sampleRecords(5, c.String())
				h := NewBatchHeader()
				batch, err := AppendRecordBatch(nil, h, recs, c, 0)
				if err != nil {
					t.Fatal(err)
				}
				base := rc.produce(ti, topic, 0, produceV, batch)
				if base != int64(len(want)) {
					t.Fatalf("%s batch: base offset %d, want %d", c, base, len(want))
				}
				want = append(want, recs...)
			}
			got := rc.fetch(ti, topic, 0, 0, fetchV)
			checkRecords(t, fmt.Sprintf("fetch v%d", fetchV), got, want, true)
			for i, r := range got {
				if r.Offset != int64(i) || r.Partition != 0 {
					t.Fatalf("record %d: offset %d", i, r.Offset)
				}
			}
			// Every version both sides know, for the APIs a client reads with.
			checked := 0
			for v := max(rc.versions[1][0], 0); v <= rc.pick(&FetchRequest{}); v++ {
				if v >= 4 { // v0-3 only see message sets: covered below
					checkRecords(t, fmt.Sprintf("fetch v%d", v), rc.fetch(ti, topic, 0, 0, v), want, v >= 4)
					checked++
				}
			}
			for v := rc.versions[3][0]; v <= rc.pick(&MetadataRequest{}); v++ {
				md := rc.roundTrip(&MetadataRequest{Topics: []MetadataRequestTopic{{Name: &topic}}}, v).(*MetadataResponse)
				if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 3 {
					t.Fatalf("Metadata v%d: %+v", v, md.Topics)
				}
				checked++
			}
			t.Logf("fetched and read metadata with %d versions", checked)
			// Offsets: earliest and latest.
			if e := rc.listOffset(ti, topic, 0, -2); e != 0 {
				t.Fatalf("earliest offset %d, want 0", e)
			}
			if l := rc.listOffset(ti, topic, 0, -1); l != int64(len(want)) {
				t.Fatalf("latest offset %d, want %d", l, len(want))
			}

			// Message sets v1 and v0 through the old Produce versions, where
			// the broker still has them (3.9). Kafka 4 removed them (KIP-896)
			// but still advertises Produce v0 for old librdkafka versions
			// (KAFKA-18659) and closes the connection on such a request, so
			// the test asks whether Fetch v0 is there.
			if rc.supports(1, 0) {
				var old []Record
				for _, c := range codecs {
					if c == CompressionZstd {
						continue // zstd needs Produce v7 and record batches (KIP-110)
					}
					for _, magic := range []int8{0, 1} {
						recs := sampleRecords(3, fmt.Sprintf("m%d-%s", magic, c))
						for i := range recs {
							recs[i].Headers = nil // message sets cannot carry headers
							if magic == 0 {
								recs[i].Timestamp = time.Time{}
							}
						}
						set, err := AppendMessageSet(nil, magic, 0, recs, c, 0)
						if err != nil {
							t.Fatal(err)
						}
						pv := int16(2)
						if magic == 0 {
							pv = 0
						}
						rc.produce(ti, topic, 1, pv, set)
						old = append(old, recs...)
					}
				}
				checkRecords(t, "message sets fetched with record batches", rc.fetch(ti, topic, 1, 0, fetchV), old, false)
				if rc.supports(1, 3) {
					// Fetch v3: the broker down-converts to message set v1,
					// lazily (KIP-283): a response may end with a cut-off
					// message set, so fetch on from the next offset as a
					// consumer does.
					var got []Record
					for i := 0; i < 10 && len(got) < len(old); i++ {
						got = append(got, rc.fetch(ti, topic, 1, int64(len(got)), 3)...)
					}
					checkRecords(t, "fetch v3 (down-converted)", got, old, false)
				}
			}

			// What kcat (librdkafka) writes, with every codec.
			var fromKcat []Record
			for _, c := range codecs {
				var lines []string
				for i := 0; i < 20; i++ {
					lines = append(lines, fmt.Sprintf("kcat-%s-%d-%s", c, i, strings.Repeat("y", i)))
					fromKcat = append(fromKcat, Record{Value: []byte(lines[i])})
				}
				kcatProduce(t, addr, topic, 2, c, lines)
			}
			got = rc.fetch(ti, topic, 2, 0, fetchV)
			for i := range got {
				got[i].Key = nil // kcat sends null keys
			}
			checkRecords(t, "records written by kcat", got, fromKcat, false)
			if attrs := map[Compression]bool{}; true {
				for _, r := range got {
					attrs[r.Attrs.Compression()] = true
				}
				if len(attrs) != len(codecs) {
					t.Fatalf("kcat batches used codecs %v, want all five", attrs)
				}
			}
		})
	}
}

// kcatProduce writes lines as records into the partition with kcat.
func kcatProduce(t *testing.T, addr, topic string, partition int32, c Compression, lines []string) {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is needed for the interop tests (scripts/deps.sh installs it): %v", err)
	}
	cmd := exec.Command(path, "-P", "-b", addr, "-t", topic, "-p", fmt.Sprint(partition), "-z", c.String(),
		"-X", "linger.ms=50", "-X", "batch.num.messages=100")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P -z %s: %v\n%s", c, err, out)
	}
}
