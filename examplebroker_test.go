package kpax_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"h12.me/kpax"
)

// exampleBroker is a one-node, in-memory Kafka stand-in that lets the
// Examples run (and check their Output) without a real broker: it keeps
// produced batches per partition and serves them to Fetch, answers
// ListOffsets, and runs groups of one member (FindCoordinator, JoinGroup,
// SyncGroup, Heartbeat, OffsetCommit, OffsetFetch, LeaveGroup). It is
// written against the package's exported API only, so it is also an
// example of Request.Decode and Response.AppendTo. It is not a broker:
// no replication, no fetch sessions, no transactions, one member per group.
type exampleBroker struct {
	ln         net.Listener
	partitions int32

	mu      sync.Mutex
	logs    map[string][][]byte // topic → partition → record batches
	ends    map[string][]int64  // topic → partition → next offset
	commits map[string]int64    // "group/topic/partition" → committed offset
	members int
}

// startExampleBroker starts an example broker whose topics have the given
// number of partitions and returns its address; stop closes it.
func startExampleBroker(partitions int32) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	b := &exampleBroker{ln: ln, partitions: partitions, logs: map[string][][]byte{}, ends: map[string][]int64{}, commits: map[string]int64{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b.serve(c)
			}()
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// add appends a zero element to *s and returns it (so that the nested
// generated types need not be named).
func add[E any](s *[]E) *E {
	var zero E
	*s = append(*s, zero)
	return &(*s)[len(*s)-1]
}

// serve answers one connection's requests in order.
func (b *exampleBroker) serve(c net.Conn) {
	for {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, frame); err != nil || len(frame) < 10 {
			return
		}
		key, version := int16(binary.BigEndian.Uint16(frame)), int16(binary.BigEndian.Uint16(frame[2:]))
		corr := frame[4:8]
		req := kpax.NewRequest(key)
		if req == nil {
			return
		}
		// Request header v1: client ID; v2 (flexible versions) adds tagged
		// fields, which the client sends none of.
		body := frame[10+max(int(int16(binary.BigEndian.Uint16(frame[8:]))), 0):]
		if req.IsFlexible(version) {
			body = body[1:]
		}
		if err := req.Decode(body, version); err != nil {
			return
		}
		resp := b.respond(req)
		if resp == nil {
			continue // acks=0
		}
		out := append([]byte{0, 0, 0, 0}, corr...)
		if req.IsFlexible(version) && key != 18 { // ApiVersions answers with header v0
			out = append(out, 0)
		}
		out = resp.AppendTo(out, version)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func (b *exampleBroker) respond(req kpax.Request) kpax.Response {
	switch r := req.(type) {
	case *kpax.ApiVersionsRequest:
		resp := &kpax.ApiVersionsResponse{}
		for key := int16(0); key < 100; key++ {
			m := kpax.NewRequest(key)
			if m == nil {
				continue
			}
			maxV := m.MaxVersion()
			switch key {
			case 1: // Fetch: topic names, not IDs
				maxV = 12
			case 9: // OffsetFetch: one group per request
				maxV = 7
			}
			k := add(&resp.ApiKeys)
			k.ApiKey, k.MinVersion, k.MaxVersion = key, m.MinVersion(), maxV
		}
		return resp
	case *kpax.MetadataRequest:
		return b.metadata(r)
	case *kpax.InitProducerIdRequest:
		return &kpax.InitProducerIdResponse{ProducerID: 1}
	case *kpax.ProduceRequest:
		return b.produce(r)
	case *kpax.FetchRequest:
		return b.fetch(r)
	case *kpax.ListOffsetsRequest:
		return b.listOffsets(r)
	case *kpax.CreateTopicsRequest:
		return b.createTopics(r)
	case *kpax.FindCoordinatorRequest:
		host, port := b.hostPort()
		resp := &kpax.FindCoordinatorResponse{NodeID: 1, Host: host, Port: port}
		for _, k := range r.CoordinatorKeys {
			c := add(&resp.Coordinators)
			c.Key, c.NodeID, c.Host, c.Port = k, 1, host, port
		}
		return resp
	default:
		return b.group(req)
	}
}

// createTopics creates each topic with the broker's partition count; a
// topic that exists (created or written to before) is TOPIC_ALREADY_EXISTS.
func (b *exampleBroker) createTopics(r *kpax.CreateTopicsRequest) kpax.Response {
	b.mu.Lock()
	defer b.mu.Unlock()
	resp := &kpax.CreateTopicsResponse{}
	for _, t := range r.Topics {
		rt := add(&resp.Topics)
		rt.Name, rt.NumPartitions, rt.ReplicationFactor = t.Name, b.partitions, 1
		if b.logs[t.Name] != nil {
			rt.ErrorCode = kpax.ErrTopicAlreadyExists.Code()
			continue
		}
		if !r.ValidateOnly {
			b.log(t.Name)
		}
	}
	return resp
}

func (b *exampleBroker) hostPort() (string, int32) {
	host, port, _ := net.SplitHostPort(b.ln.Addr().String())
	n, _ := strconv.Atoi(port)
	return host, int32(n)
}

func (b *exampleBroker) metadata(r *kpax.MetadataRequest) kpax.Response {
	host, port := b.hostPort()
	resp := &kpax.MetadataResponse{ControllerID: 1}
	br := add(&resp.Brokers)
	br.NodeID, br.Host, br.Port = 1, host, port
	for _, t := range r.Topics {
		mt := add(&resp.Topics)
		mt.Name = t.Name
		for p := range b.partitions {
			mp := add(&mt.Partitions)
			mp.PartitionIndex, mp.LeaderID, mp.LeaderEpoch = p, 1, -1
			mp.ReplicaNodes, mp.ISRNodes = []int32{1}, []int32{1}
		}
	}
	return resp
}

// log returns a topic's partitions, created on first use; b.mu is held.
func (b *exampleBroker) log(topic string) ([][]byte, []int64) {
	if b.logs[topic] == nil {
		b.logs[topic] = make([][]byte, b.partitions)
		b.ends[topic] = make([]int64, b.partitions)
	}
	return b.logs[topic], b.ends[topic]
}

func (b *exampleBroker) produce(r *kpax.ProduceRequest) kpax.Response {
	b.mu.Lock()
	defer b.mu.Unlock()
	resp := &kpax.ProduceResponse{}
	for _, td := range r.TopicData {
		rt := add(&resp.Responses)
		rt.Name = td.Name
		logs, ends := b.log(td.Name)
		for _, pd := range td.PartitionData {
			rp := add(&rt.PartitionResponses)
			rp.Index, rp.LogAppendTimeMs = pd.Index, -1
			base := ends[pd.Index]
			rp.BaseOffset = base
			// A v2 batch: base offset (8 bytes, outside the CRC), ...,
			// record count at 57.
			for rest := pd.Records; len(rest) >= 61; {
				n := 12 + int(binary.BigEndian.Uint32(rest[8:]))
				batch := append([]byte(nil), rest[:n]...)
				binary.BigEndian.PutUint64(batch, uint64(ends[pd.Index]))
				ends[pd.Index] += int64(binary.BigEndian.Uint32(batch[57:]))
				logs[pd.Index] = append(logs[pd.Index], batch...)
				rest = rest[n:]
			}
		}
	}
	if r.Acks == 0 {
		return nil
	}
	return resp
}

// batchesFrom returns the partition's batches from the one holding offset
// on; b.mu is held.
func batchesFrom(log []byte, offset int64) []byte {
	for rest := log; len(rest) >= 61; {
		n := 12 + int(binary.BigEndian.Uint32(rest[8:]))
		last := int64(binary.BigEndian.Uint64(rest)) + int64(binary.BigEndian.Uint32(rest[23:]))
		if last >= offset {
			return rest
		}
		rest = rest[n:]
	}
	return nil
}

func (b *exampleBroker) fetch(r *kpax.FetchRequest) kpax.Response {
	deadline := time.Now().Add(min(time.Duration(r.MaxWaitMs)*time.Millisecond, 100*time.Millisecond))
	for {
		resp, any := b.fetchOnce(r)
		if any || time.Now().After(deadline) {
			return resp
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *exampleBroker) fetchOnce(r *kpax.FetchRequest) (*kpax.FetchResponse, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	resp := &kpax.FetchResponse{}
	any := false
	for _, t := range r.Topics {
		rt := add(&resp.Responses)
		rt.Topic = t.Topic
		logs, ends := b.log(t.Topic)
		for _, p := range t.Partitions {
			rp := add(&rt.Partitions)
			rp.PartitionIndex, rp.PreferredReadReplica = p.Partition, -1
			rp.HighWatermark, rp.LastStableOffset = ends[p.Partition], ends[p.Partition]
			rp.Records = batchesFrom(logs[p.Partition], p.FetchOffset)
			any = any || len(rp.Records) > 0
		}
	}
	return resp, any
}

func (b *exampleBroker) listOffsets(r *kpax.ListOffsetsRequest) kpax.Response {
	b.mu.Lock()
	defer b.mu.Unlock()
	resp := &kpax.ListOffsetsResponse{}
	for _, t := range r.Topics {
		rt := add(&resp.Topics)
		rt.Name = t.Name
		logs, ends := b.log(t.Name)
		for _, p := range t.Partitions {
			rp := add(&rt.Partitions)
			rp.PartitionIndex, rp.Timestamp, rp.LeaderEpoch = p.PartitionIndex, -1, -1
			switch p.Timestamp {
			case -2: // earliest
				rp.Offset = 0
			case -1: // latest
				rp.Offset = ends[p.PartitionIndex]
			default: // the first batch whose max timestamp is at or after it
				rp.Offset = -1
				for rest := logs[p.PartitionIndex]; len(rest) >= 61; rest = rest[12+int(binary.BigEndian.Uint32(rest[8:])):] {
					if int64(binary.BigEndian.Uint64(rest[35:])) >= p.Timestamp {
						rp.Offset = int64(binary.BigEndian.Uint64(rest))
						break
					}
				}
			}
		}
	}
	return resp
}

// group answers the group requests of a group of one member.
func (b *exampleBroker) group(req kpax.Request) kpax.Response {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch r := req.(type) {
	case *kpax.JoinGroupRequest:
		member := r.MemberID
		if member == "" {
			b.members++
			member = fmt.Sprintf("member-%d", b.members)
		}
		resp := &kpax.JoinGroupResponse{GenerationID: 1, ProtocolName: &r.Protocols[0].Name, Leader: member, MemberID: member}
		m := add(&resp.Members)
		m.MemberID, m.Metadata = member, r.Protocols[0].Metadata
		return resp
	case *kpax.SyncGroupRequest:
		resp := &kpax.SyncGroupResponse{ProtocolType: r.ProtocolType, ProtocolName: r.ProtocolName}
		for _, a := range r.Assignments {
			if a.MemberID == r.MemberID {
				resp.Assignment = a.Assignment
			}
		}
		return resp
	case *kpax.HeartbeatRequest:
		return &kpax.HeartbeatResponse{}
	case *kpax.LeaveGroupRequest:
		return &kpax.LeaveGroupResponse{}
	case *kpax.OffsetCommitRequest:
		resp := &kpax.OffsetCommitResponse{}
		for _, t := range r.Topics {
			rt := add(&resp.Topics)
			rt.Name = t.Name
			for _, p := range t.Partitions {
				b.commits[fmt.Sprintf("%s/%s/%d", r.GroupID, t.Name, p.PartitionIndex)] = p.CommittedOffset
				add(&rt.Partitions).PartitionIndex = p.PartitionIndex
			}
		}
		return resp
	case *kpax.OffsetFetchRequest:
		resp := &kpax.OffsetFetchResponse{}
		for _, t := range r.Topics {
			rt := add(&resp.Topics)
			rt.Name = t.Name
			for _, p := range t.PartitionIndexes {
				rp := add(&rt.Partitions)
				rp.PartitionIndex, rp.CommittedOffset, rp.CommittedLeaderEpoch = p, -1, -1
				if off, ok := b.commits[fmt.Sprintf("%s/%s/%d", r.GroupID, t.Name, p)]; ok {
					rp.CommittedOffset = off
				}
			}
		}
		return resp
	}
	return nil // not served: the connection closes
}
