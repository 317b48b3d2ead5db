package main

// The sink broker: a Kafka broker that acknowledges Produce requests without
// storing anything and answers Fetch requests with synthetic record batches.
// It runs in its own process (kbench sink), so that what a benchmark measures
// in the client process is the client's CPU alone. Requests and responses are
// decoded and encoded with kpax's generated protocol types.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"h12.me/kpax"
)

const (
	keyProduce        = 0
	keyFetch          = 1
	keyListOffsets    = 2
	keyMetadata       = 3
	keyApiVersions    = 18
	keyInitProducerID = 22

	errUnsupportedVersion = 35
	errUnknownTopicID     = 100

	// sinkHighWatermark is the end of every synthetic partition log.
	sinkHighWatermark = 1 << 40
	// sinkBatchRecords is the number of records in each synthetic batch.
	sinkBatchRecords = 500
)

func newRequest(key int16) kpax.Request {
	switch key {
	case keyProduce:
		return &kpax.ProduceRequest{}
	case keyFetch:
		return &kpax.FetchRequest{}
	case keyListOffsets:
		return &kpax.ListOffsetsRequest{}
	case keyMetadata:
		return &kpax.MetadataRequest{}
	case keyApiVersions:
		return &kpax.ApiVersionsRequest{}
	case keyInitProducerID:
		return &kpax.InitProducerIdRequest{}
	}
	return newGroupRequest(key)
}

type sinkTopic struct {
	name  string
	id    kpax.UUID
	parts int
	next  []int64 // next produce offset per partition
}

type sink struct {
	host string
	port int32

	mu     sync.Mutex
	topics map[string]*sinkTopic
	byID   map[kpax.UUID]*sinkTopic
	pid    int64

	groups  map[string]*sinkGroup
	members int

	// batch is one synthetic record batch (v2, uncompressed) of
	// sinkBatchRecords records; Fetch responses hold copies of it with the
	// base offset patched (the CRC does not cover the base offset).
	batch []byte
}

var partsInName = regexp.MustCompile(`-p(\d+)(-|$)`)

// topic returns the topic of that name, created on first use with the
// partition count its name gives ("...-p6-..."), 1 by default.
func (s *sink) topic(name string) *sinkTopic {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.topics[name]; t != nil {
		return t
	}
	parts := 1
	if m := partsInName.FindStringSubmatch(name); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 && n <= 1000 {
			parts = n
		}
	}
	t := &sinkTopic{name: name, parts: parts, next: make([]int64, parts)}
	binary.BigEndian.PutUint64(t.id[:8], uint64(len(s.topics)+1))
	binary.BigEndian.PutUint64(t.id[8:], 0x6b62656e6368) // "kbench"
	s.topics[name] = t
	s.byID[t.id] = t
	return t
}

func runSink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	topics := fs.String("topics", "", "topics to create up front, comma-separated (partitions from -pN in the name)")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	s, err := newSink(ln, strings.Split(*topics, ","))
	if err != nil {
		return err
	}
	// The parent reads the address from the first line, then closes stdin
	// (or dies) to stop the sink.
	fmt.Println(ln.Addr().String())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	return s.accept(ln)
}

func newSink(ln net.Listener, topics []string) (*sink, error) {
	tcp := ln.Addr().(*net.TCPAddr)
	s := &sink{
		host:   tcp.IP.String(),
		port:   int32(tcp.Port),
		topics: map[string]*sinkTopic{},
		byID:   map[kpax.UUID]*sinkTopic{},
	}
	for _, t := range topics {
		if t != "" {
			s.topic(t)
		}
	}
	recs := make([]kpax.Record, sinkBatchRecords)
	vals := payloads()
	ts := time.Now()
	for i := range recs {
		recs[i] = kpax.Record{Value: vals[i%len(vals)], Timestamp: ts}
	}
	var err error
	s.batch, err = kpax.AppendRecordBatch(nil, kpax.NewBatchHeader(), recs, kpax.CompressionNone, 0)
	return s, err
}

// accept serves connections until the listener is closed.
func (s *sink) accept(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go s.serve(c)
	}
}

func (s *sink) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 1<<20)
	w := bufio.NewWriterSize(c, 1<<20)
	var (
		hdr  [4]byte
		body []byte
		out  []byte
	)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n < 8 || n > 256<<20 {
			log.Printf("sink: bad frame size %d", n)
			return
		}
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		var err error
		out, err = s.handle(out[:0], body)
		if err != nil {
			log.Printf("sink: %v", err)
			return
		}
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return
			}
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// handle decodes one request frame (without its size) and appends the
// response frame to out; nothing for acks=0 produce requests.
func (s *sink) handle(out, frame []byte) ([]byte, error) {
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	ver := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := binary.BigEndian.Uint32(frame[4:])
	req := newRequest(key)
	if req == nil {
		return out, fmt.Errorf("unsupported API key %d (%s)", key, kpax.APIName(key))
	}
	p := 8
	if len(frame) < p+2 {
		return out, errors.New("short header")
	}
	if l := int16(binary.BigEndian.Uint16(frame[p:])); l > 0 {
		p += int(l)
	}
	p += 2
	flexible := ver >= req.MinVersion() && ver <= req.MaxVersion() && req.IsFlexible(ver)
	if flexible {
		var err error
		if p, err = skipTags(frame, p); err != nil {
			return out, err
		}
	}
	if p > len(frame) {
		return out, errors.New("short header")
	}
	if key == keyApiVersions && (ver < req.MinVersion() || ver > req.MaxVersion()) {
		resp := &kpax.ApiVersionsResponse{ErrorCode: errUnsupportedVersion, ApiKeys: s.apiKeys()}
		return appendFrame(out, corr, false, resp, 0), nil
	}
	if ver < req.MinVersion() || ver > req.MaxVersion() {
		return out, fmt.Errorf("%s v%d unsupported", kpax.APIName(key), ver)
	}
	if err := req.Decode(frame[p:], ver); err != nil {
		return out, fmt.Errorf("%s v%d: %w", kpax.APIName(key), ver, err)
	}
	var resp kpax.Response
	switch req := req.(type) {
	case *kpax.ApiVersionsRequest:
		resp = &kpax.ApiVersionsResponse{ApiKeys: s.apiKeys()}
		flexible = false // ApiVersions responses always have header v0
	case *kpax.MetadataRequest:
		resp = s.metadata(req)
	case *kpax.InitProducerIdRequest:
		s.mu.Lock()
		s.pid++
		resp = &kpax.InitProducerIdResponse{ProducerID: s.pid}
		s.mu.Unlock()
	case *kpax.ProduceRequest:
		r := s.produce(req)
		if req.Acks == 0 {
			return out, nil
		}
		resp = r
	case *kpax.FetchRequest:
		return s.fetch(out, corr, flexible, req, ver), nil
	case *kpax.ListOffsetsRequest:
		resp = listOffsets(req, ver)
	default:
		resp = s.groupResponse(req, ver)
	}
	return appendFrame(out, corr, flexible, resp, ver), nil
}

func appendFrame(out []byte, corr uint32, flexible bool, resp kpax.Response, ver int16) []byte {
	start := len(out)
	out = append(out, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, corr)
	if flexible {
		out = append(out, 0) // no tagged fields in the response header
	}
	out = resp.AppendTo(out, ver)
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out
}

func skipTags(b []byte, p int) (int, error) {
	n, k := binary.Uvarint(b[p:])
	if k <= 0 {
		return 0, errors.New("bad tagged fields")
	}
	p += k
	for ; n > 0; n-- {
		_, k := binary.Uvarint(b[p:])
		if k <= 0 {
			return 0, errors.New("bad tag")
		}
		p += k
		size, k := binary.Uvarint(b[p:])
		if k <= 0 || size > uint64(len(b)) {
			return 0, errors.New("bad tag size")
		}
		p += k + int(size)
	}
	return p, nil
}

func (s *sink) apiKeys() []kpax.ApiVersionsResponseApiKey {
	var keys []kpax.ApiVersionsResponseApiKey
	for _, k := range append([]int16{keyProduce, keyFetch, keyListOffsets, keyMetadata, keyApiVersions, keyInitProducerID}, groupKeys...) {
		r := newRequest(k)
		min := r.MinVersion()
		if k == keyProduce && min < 3 {
			min = 3 // like Kafka 4: record batch v2 only
		}
		keys = append(keys, kpax.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: min, MaxVersion: r.MaxVersion()})
	}
	return keys
}

func (s *sink) metadata(req *kpax.MetadataRequest) *kpax.MetadataResponse {
	cluster := "kbench-sink"
	resp := &kpax.MetadataResponse{
		Brokers:   []kpax.MetadataResponseBroker{{NodeID: 0, Host: s.host, Port: s.port}},
		ClusterID: &cluster,
	}
	var topics []*sinkTopic
	if req.Topics == nil {
		s.mu.Lock()
		for _, t := range s.topics {
			topics = append(topics, t)
		}
		s.mu.Unlock()
	}
	for _, rt := range req.Topics {
		if rt.Name != nil {
			topics = append(topics, s.topic(*rt.Name))
		} else if t := s.byID[rt.TopicID]; t != nil {
			topics = append(topics, t)
		}
	}
	for _, t := range topics {
		mt := kpax.MetadataResponseTopic{Name: &t.name, TopicID: t.id, TopicAuthorizedOperations: -2147483648}
		for i := 0; i < t.parts; i++ {
			mt.Partitions = append(mt.Partitions, kpax.MetadataResponseTopicPartition{
				PartitionIndex: int32(i), LeaderID: 0, ReplicaNodes: []int32{0}, ISRNodes: []int32{0},
			})
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp
}

// batchRecords counts the records of the v2 batches in a Produce request's
// records field.
func batchRecords(b []byte) int64 {
	var n int64
	for len(b) >= 61 {
		size := 12 + int(binary.BigEndian.Uint32(b[8:]))
		n += int64(binary.BigEndian.Uint32(b[57:]))
		if size > len(b) {
			break
		}
		b = b[size:]
	}
	return n
}

func (s *sink) produce(req *kpax.ProduceRequest) *kpax.ProduceResponse {
	resp := &kpax.ProduceResponse{}
	for _, td := range req.TopicData {
		var t *sinkTopic
		if td.Name == "" { // Produce v13 names the topic by ID
			s.mu.Lock()
			t = s.byID[td.TopicID]
			s.mu.Unlock()
		} else {
			t = s.topic(td.Name)
		}
		rr := kpax.ProduceResponseItem{Name: td.Name, TopicID: td.TopicID}
		for _, pd := range td.PartitionData {
			pr := kpax.ProduceResponseItemPartitionResponse{Index: pd.Index, LogAppendTimeMs: -1}
			if t == nil {
				pr.ErrorCode = errUnknownTopicID
			} else if pd.Index < 0 || int(pd.Index) >= t.parts {
				pr.ErrorCode = 3 // UNKNOWN_TOPIC_OR_PARTITION
			} else {
				n := batchRecords(pd.Records)
				s.mu.Lock()
				pr.BaseOffset = t.next[pd.Index]
				t.next[pd.Index] += n
				s.mu.Unlock()
			}
			rr.PartitionResponses = append(rr.PartitionResponses, pr)
		}
		resp.Responses = append(resp.Responses, rr)
	}
	return resp
}

func listOffsets(req *kpax.ListOffsetsRequest, ver int16) *kpax.ListOffsetsResponse {
	resp := &kpax.ListOffsetsResponse{}
	for _, rt := range req.Topics {
		t := kpax.ListOffsetsResponseTopic{Name: rt.Name}
		for _, rp := range rt.Partitions {
			off := int64(0)
			if rp.Timestamp == -1 {
				off = sinkHighWatermark
			}
			p := kpax.ListOffsetsResponseTopicPartition{PartitionIndex: rp.PartitionIndex, Timestamp: -1, Offset: off, LeaderEpoch: 0}
			if ver == 0 {
				p.OldStyleOffsets = []int64{off}
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// fetch answers with copies of the synthetic batch from each partition's
// fetch offset, up to the partition's and the request's byte limits (at
// least one batch per partition, as a broker does).
func (s *sink) fetch(out []byte, corr uint32, flexible bool, req *kpax.FetchRequest, ver int16) []byte {
	resp := &kpax.FetchResponse{}
	budget := int(req.MaxBytes)
	if ver < 3 || budget <= 0 {
		budget = 1 << 30
	}
	for _, rt := range req.Topics {
		fr := kpax.FetchResponseItem{TopicID: rt.TopicID, Topic: rt.Topic}
		var t *sinkTopic
		if ver >= 13 {
			s.mu.Lock()
			t = s.byID[rt.TopicID]
			s.mu.Unlock()
		} else {
			t = s.topic(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			p := kpax.FetchResponseItemPartition{
				PartitionIndex: rp.Partition, HighWatermark: sinkHighWatermark,
				LastStableOffset: sinkHighWatermark, PreferredReadReplica: -1,
			}
			if t == nil {
				p.ErrorCode = errUnknownTopicID
				fr.Partitions = append(fr.Partitions, p)
				continue
			}
			limit := int(rp.PartitionMaxBytes)
			if limit > budget {
				limit = budget
			}
			var recs []byte
			off := rp.FetchOffset
			for len(recs) == 0 || len(recs)+len(s.batch) <= limit {
				start := len(recs)
				recs = append(recs, s.batch...)
				// Batches start at multiples of sinkBatchRecords; a fetch
				// offset inside one gets the whole batch, as from a broker.
				binary.BigEndian.PutUint64(recs[start:], uint64(off-off%sinkBatchRecords))
				off += sinkBatchRecords - off%sinkBatchRecords
			}
			budget -= len(recs)
			p.Records = recs
			fr.Partitions = append(fr.Partitions, p)
		}
		resp.Responses = append(resp.Responses, fr)
	}
	return appendFrame(out, corr, flexible, resp, ver)
}
