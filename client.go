// Package kpax is a Kafka client: producing, consuming, consumer groups, and
// a low-level API that sends any request of the Kafka protocol.
//
// A Client, built by New with functional options, owns a pool of
// connections per broker and a cache of cluster metadata:
//
//	cl, err := kpax.New(kpax.WithSeedBrokers("127.0.0.1:9092"))
//	if err != nil {
//		return err
//	}
//	defer cl.Close()
//	resp, err := cl.Request(ctx, &kpax.ApiVersionsRequest{})
//
// Every request and response type of the Kafka protocol guide, every version,
// is generated from the guide into protocol_gen.go; Client.Request routes a
// request to the broker it belongs to (any broker, a partition's leader, the
// controller, or a group or transaction coordinator) at the highest version
// both sides support.
package kpax

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Client is a connection to a Kafka cluster. It is safe for concurrent use.
// Close it to release its connections and goroutines.
type Client struct {
	cfg  config
	meta *metadataCache

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	closed chan struct{}
	once   sync.Once
	bg     sync.WaitGroup // background goroutines
	conns  sync.WaitGroup // connection goroutines

	mu      sync.Mutex
	pools   map[int32]*brokerPool // by node ID
	seeds   []*brokerPool         // node IDs -1, -2, ...
	retired []*brokerPool         // closed pools whose connections may still be ending
	legacy  map[string]bool       // by address: the broker predates ApiVersions (false: it answered ApiVersions)
}

// isLegacy reports whether the broker at addr is known to predate
// ApiVersions, whichever pool (seed or node ID) found out.
func (cl *Client) isLegacy(addr string) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.legacy[addr]
}

func (cl *Client) setLegacy(addr string, on bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.legacy == nil {
		cl.legacy = make(map[string]bool)
	}
	cl.legacy[addr] = on
}

// isModern reports whether the broker at addr has answered ApiVersions:
// a connection it closes on ApiVersions later is a fault, not an old broker.
func (cl *Client) isModern(addr string) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	legacy, known := cl.legacy[addr]
	return known && !legacy
}

// Hooks are functions the client calls on events, e.g. to count requests,
// bytes, errors and throttling per broker. Any may be nil. They run on the
// client's goroutines and must not block.
type Hooks struct {
	// OnConnect is called after each dial of a broker, with the error if it failed.
	OnConnect func(nodeID int32, addr string, err error)
	// OnRequest is called after each request, with what it cost.
	OnRequest func(RequestInfo)
}

// RequestInfo describes one request for Hooks.OnRequest.
type RequestInfo struct {
	NodeID       int32
	Addr         string
	APIKey       int16
	Version      int16
	BytesWritten int
	BytesRead    int
	Latency      time.Duration
	Err          error    // the connection or decoding error, if any
	Response     Response // nil on error; responses carry ThrottleTimeMs where the API has it
}

// New returns a Client configured by the options. It does not connect:
// connections are dialed on first use. A bad option is an error.
func New(opts ...Option) (*Client, error) {
	cfg, err := applyOptions(defaultConfig(), opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl := &Client{cfg: cfg, ctx: ctx, cancel: cancel, closed: make(chan struct{}), pools: map[int32]*brokerPool{}}
	for i, addr := range cfg.seeds {
		cl.seeds = append(cl.seeds, &brokerPool{cl: cl, nodeID: int32(-1 - i), addr: addr})
	}
	cl.meta = newMetadataCache(cl)
	cl.bg.Add(1)
	go cl.meta.run()
	return cl, nil
}

// Close fails the requests in flight with ErrClientClosed, closes every
// connection and waits until the client's goroutines have ended.
func (cl *Client) Close() error {
	cl.once.Do(func() {
		close(cl.closed)
		cl.cancel()
		cl.mu.Lock()
		pools := append(append([]*brokerPool(nil), cl.seeds...), cl.retired...)
		for _, p := range cl.pools {
			pools = append(pools, p)
		}
		cl.mu.Unlock()
		for _, p := range pools {
			p.close()
		}
		cl.bg.Wait()
		cl.conns.Wait()
	})
	return nil
}

// addDial counts a dial in cl.conns, unless the client is closed. Close
// marks the client closed before it takes cl.mu and then waits for
// cl.conns, so a dial is either counted before that wait or not started:
// no connection goroutine starts after Close has returned.
func (cl *Client) addDial() bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.isClosed() {
		return false
	}
	cl.conns.Add(1)
	return true
}

func (cl *Client) isClosed() bool {
	select {
	case <-cl.closed:
		return true
	default:
		return false
	}
}

// pool returns the connection pool of a broker by node ID (negative: a seed).
func (cl *Client) pool(nodeID int32) (*brokerPool, error) {
	var b Broker
	var ok bool
	if nodeID >= 0 {
		// Before cl.mu: the metadata cache takes cl.mu under its own lock
		// (apply → retirePools), so cl.mu → meta.mu would deadlock.
		b, ok = cl.meta.broker(nodeID)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.isClosed() {
		return nil, ErrClientClosed
	}
	if nodeID < 0 {
		i := int(-1 - nodeID)
		if i < len(cl.seeds) {
			return cl.seeds[i], nil
		}
		return nil, fmt.Errorf("%w: no seed broker %d", ErrNoBroker, nodeID)
	}
	if !ok {
		return nil, fmt.Errorf("%w: node %d is not in the metadata", ErrNoBroker, nodeID)
	}
	p := cl.pools[nodeID]
	if p != nil && p.addr == b.Addr() {
		return p, nil
	}
	if p != nil { // the broker moved
		cl.retired = append(cl.retired, p)
		go p.close()
	}
	p = &brokerPool{cl: cl, nodeID: nodeID, addr: b.Addr()}
	cl.pools[nodeID] = p
	return p, nil
}

// retirePools closes the pools of brokers that left the cluster.
func (cl *Client) retirePools(brokers map[int32]Broker) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for id, p := range cl.pools {
		if b, ok := brokers[id]; !ok || b.Addr() != p.addr {
			delete(cl.pools, id)
			cl.retired = append(cl.retired, p)
			go p.close()
		}
	}
}

func (cl *Client) seedPools() []*brokerPool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]*brokerPool(nil), cl.seeds...)
}

// Request sends req to the broker it belongs to and returns the response:
//
//   - Produce, Fetch, ListOffsets, DeleteRecords and OffsetForLeaderEpoch go
//     to the leader of their first partition (use RequestBroker when the
//     partitions have different leaders);
//   - group requests (JoinGroup, OffsetCommit, ...) to the group coordinator,
//     transactional ones (AddPartitionsToTxn, EndTxn, ...) to the transaction
//     coordinator, found with FindCoordinator and cached;
//   - CreateTopics, DeleteTopics, CreatePartitions and the other controller
//     requests to the controller;
//   - everything else to any broker.
//
// The version is the highest that the broker, this package and
// WithMaxVersion allow. Kafka error codes inside the response are returned
// as they are, in the response; the error is for failures to get one. A
// connection error invalidates the cached metadata, and for a coordinator's
// request a connection error or a NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE
// code in the response forgets the cached coordinator, so that the next call
// asks FindCoordinator again and goes to the right broker.
func (cl *Client) Request(ctx context.Context, req Request) (Response, error) {
	nodeID, err := cl.route(ctx, req)
	if err != nil {
		return nil, err
	}
	resp, err := cl.RequestBroker(ctx, nodeID, req)
	if kind, key, ok := coordinatorKey(req); ok && (err != nil && ctx.Err() == nil || err == nil && coordinatorMoved(resp)) {
		cl.meta.invalidateCoordinator(kind, key)
	}
	return resp, err
}

// RequestBroker sends req to the broker with the node ID and returns its
// response.
func (cl *Client) RequestBroker(ctx context.Context, nodeID int32, req Request) (Response, error) {
	p, err := cl.pool(nodeID)
	if err != nil {
		if nodeID >= 0 {
			// Unknown node: load metadata once and look again.
			if rerr := cl.meta.refresh(ctx); rerr == nil {
				p, err = cl.pool(nodeID)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	resp, err := cl.send(ctx, p, req)
	if err != nil && ctx.Err() == nil {
		cl.meta.invalidate()
	}
	return resp, err
}

// send sends req over a connection of the pool.
func (cl *Client) send(ctx context.Context, p *brokerPool, req Request) (Response, error) {
	lane := laneOf(req)
	c, err := p.get(ctx, lane)
	if err != nil {
		return nil, err
	}
	v, err := c.versions.pick(req, cl.cfg.maxVersions)
	if err != nil {
		return nil, &BrokerError{NodeID: p.nodeID, Addr: p.addr, Err: err}
	}
	v = min(v, clientMaxVersion(req)) // txn.go
	start := time.Now()
	resp, call, err := c.roundTrip(ctx, req, v, cl.cfg.requestTimeout+extraTimeout(req))
	if h := cl.cfg.hooks.OnRequest; h != nil {
		info := RequestInfo{NodeID: p.nodeID, Addr: p.addr, APIKey: req.APIKey(), Version: v, Latency: time.Since(start), Err: err, Response: resp}
		if call != nil {
			info.BytesWritten, info.BytesRead = call.written, call.received
		}
		h(info)
	}
	if err != nil {
		var be *BrokerError
		if !errors.As(err, &be) && ctx.Err() == nil {
			err = &BrokerError{NodeID: p.nodeID, Addr: p.addr, Err: err}
		}
		return nil, err
	}
	return resp, nil
}

// Lanes keep requests that the broker holds (a Fetch waits for data, a
// JoinGroup for the rebalance) from delaying others on the same connection:
// the broker answers one connection's requests in order.
const (
	laneDefault = iota
	laneFetch
	laneGroup
	numLanes
)

func laneOf(req Request) int {
	switch req.APIKey() {
	case 1: // Fetch
		return laneFetch
	case 11, 14: // JoinGroup, SyncGroup
		return laneGroup
	}
	return laneDefault
}

// extraTimeout is how long the broker may hold the request on purpose.
func extraTimeout(req Request) time.Duration {
	ms := int32(0)
	switch r := req.(type) {
	case *FetchRequest:
		ms = r.MaxWaitMs
	case *ProduceRequest:
		ms = r.TimeoutMs
	case *JoinGroupRequest:
		ms = max(r.RebalanceTimeoutMs, r.SessionTimeoutMs)
	case *SyncGroupRequest:
		ms = 60000 // the rest of the rebalance
	case *CreateTopicsRequest:
		ms = r.TimeoutMs
	case *DeleteTopicsRequest:
		ms = r.TimeoutMs
	case *CreatePartitionsRequest:
		ms = r.TimeoutMs
	}
	return time.Duration(max(ms, 0)) * time.Millisecond
}

// route picks the broker for a request (see Request).
func (cl *Client) route(ctx context.Context, req Request) (int32, error) {
	if cl.isClosed() {
		return -1, ErrClientClosed
	}
	switch r := req.(type) {
	case *ProduceRequest:
		if len(r.TopicData) > 0 && len(r.TopicData[0].PartitionData) > 0 {
			return cl.leaderID(ctx, r.TopicData[0].Name, r.TopicData[0].PartitionData[0].Index)
		}
	case *FetchRequest:
		if len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 {
			name := r.Topics[0].Topic
			if name == "" && r.Topics[0].TopicID != (UUID{}) {
				var err error
				if name, err = cl.meta.topicName(ctx, r.Topics[0].TopicID); err != nil {
					return -1, err
				}
			}
			return cl.leaderID(ctx, name, r.Topics[0].Partitions[0].Partition)
		}
	case *ListOffsetsRequest:
		if len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 {
			return cl.leaderID(ctx, r.Topics[0].Name, r.Topics[0].Partitions[0].PartitionIndex)
		}
	case *DeleteRecordsRequest:
		if len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 {
			return cl.leaderID(ctx, r.Topics[0].Name, r.Topics[0].Partitions[0].PartitionIndex)
		}
	case *OffsetForLeaderEpochRequest:
		if len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 {
			return cl.leaderID(ctx, r.Topics[0].Topic, r.Topics[0].Partitions[0].Partition)
		}
	case *CreateTopicsRequest, *DeleteTopicsRequest, *CreatePartitionsRequest, *ElectLeadersRequest,
		*AlterPartitionReassignmentsRequest, *ListPartitionReassignmentsRequest, *UpdateFeaturesRequest:
		return cl.meta.controllerID(ctx)
	}
	if kind, key, ok := coordinatorKey(req); ok {
		return cl.meta.coordinator(ctx, kind, key)
	}
	return cl.meta.anyBroker(ctx), nil
}

func (cl *Client) leaderID(ctx context.Context, topic string, partition int32) (int32, error) {
	p, err := cl.meta.leader(ctx, topic, partition)
	if err != nil {
		return -1, err
	}
	return p.Leader, nil
}

// coordinatorMoved reports whether a coordinator's response says that it is
// not (or no longer) the coordinator: NOT_COORDINATOR or
// COORDINATOR_NOT_AVAILABLE anywhere an error code of the response can be.
func coordinatorMoved(resp Response) bool {
	moved := func(code int16) bool {
		return code == ErrNotCoordinator.code || code == ErrCoordinatorNotAvailable.code
	}
	switch r := resp.(type) {
	case *JoinGroupResponse:
		return moved(r.ErrorCode)
	case *SyncGroupResponse:
		return moved(r.ErrorCode)
	case *HeartbeatResponse:
		return moved(r.ErrorCode)
	case *LeaveGroupResponse:
		return moved(r.ErrorCode)
	case *OffsetDeleteResponse:
		return moved(r.ErrorCode)
	case *ConsumerGroupHeartbeatResponse:
		return moved(r.ErrorCode)
	case *InitProducerIdResponse:
		return moved(r.ErrorCode)
	case *AddOffsetsToTxnResponse:
		return moved(r.ErrorCode)
	case *EndTxnResponse:
		return moved(r.ErrorCode)
	case *OffsetFetchResponse:
		if moved(r.ErrorCode) {
			return true
		}
		for _, g := range r.Groups {
			if moved(g.ErrorCode) {
				return true
			}
		}
	case *OffsetCommitResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if moved(p.ErrorCode) {
					return true
				}
			}
		}
	case *TxnOffsetCommitResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if moved(p.ErrorCode) {
					return true
				}
			}
		}
	case *DescribeGroupsResponse:
		for _, g := range r.Groups {
			if moved(g.ErrorCode) {
				return true
			}
		}
	case *DeleteGroupsResponse:
		for _, g := range r.Results {
			if moved(g.ErrorCode) {
				return true
			}
		}
	case *ConsumerGroupDescribeResponse:
		for _, g := range r.Groups {
			if moved(g.ErrorCode) {
				return true
			}
		}
	}
	return false
}

// coordinatorKey returns the coordinator a request goes to: kind 0 for a
// group, 1 for a transactional ID.
func coordinatorKey(req Request) (kind int8, key string, ok bool) {
	switch r := req.(type) {
	case *JoinGroupRequest:
		return 0, r.GroupID, true
	case *HeartbeatRequest:
		return 0, r.GroupID, true
	case *LeaveGroupRequest:
		return 0, r.GroupID, true
	case *SyncGroupRequest:
		return 0, r.GroupID, true
	case *OffsetCommitRequest:
		return 0, r.GroupID, true
	case *OffsetFetchRequest:
		if len(r.Groups) > 0 {
			return 0, r.Groups[0].GroupID, true
		}
		return 0, r.GroupID, true
	case *DescribeGroupsRequest:
		if len(r.Groups) > 0 {
			return 0, r.Groups[0], true
		}
	case *DeleteGroupsRequest:
		if len(r.GroupsNames) > 0 {
			return 0, r.GroupsNames[0], true
		}
	case *OffsetDeleteRequest:
		return 0, r.GroupID, true
	case *TxnOffsetCommitRequest:
		return 0, r.GroupID, true
	case *ConsumerGroupHeartbeatRequest:
		return 0, r.GroupID, true
	case *ConsumerGroupDescribeRequest:
		if len(r.GroupIDs) > 0 {
			return 0, r.GroupIDs[0], true
		}
	case *InitProducerIdRequest:
		if r.TransactionalID != nil {
			return 1, *r.TransactionalID, true
		}
	case *AddPartitionsToTxnRequest:
		if r.V3AndBelowTransactionalID != "" {
			return 1, r.V3AndBelowTransactionalID, true
		}
	case *AddOffsetsToTxnRequest:
		return 1, r.TransactionalID, true
	case *EndTxnRequest:
		return 1, r.TransactionalID, true
	}
	return 0, "", false
}

// Metadata returns what the cluster says of the topics (every topic when
// none is given) and refreshes the client's cache with it.
func (cl *Client) Metadata(ctx context.Context, topics ...string) (*ClusterMetadata, error) {
	req := &MetadataRequest{}
	if topics != nil {
		req.Topics = make([]MetadataRequestTopic, len(topics))
		for i := range topics {
			req.Topics[i].Name = &topics[i]
		}
	}
	r, err := cl.Request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := r.(*MetadataResponse)
	cl.meta.mu.Lock()
	cl.meta.apply(resp, topics)
	cl.meta.mu.Unlock()
	md := &ClusterMetadata{ClusterID: deref(resp.ClusterID), Controller: resp.ControllerID}
	for _, b := range resp.Brokers {
		md.Brokers = append(md.Brokers, Broker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: deref(b.Rack)})
	}
	for i := range resp.Topics {
		md.Topics = append(md.Topics, *topicFromResponse(&resp.Topics[i]))
	}
	return md, nil
}

// brokerPool holds the connections to one broker, one per lane, dialed on
// first use and again after a failure, with exponential backoff between
// failed dials.
type brokerPool struct {
	cl     *Client
	nodeID int32
	addr   string

	mu       sync.Mutex
	conns    [numLanes]*conn
	dialing  [numLanes]chan struct{}
	failures int
	retryAt  time.Time
	eofs     int // ApiVersions answered by a closed connection, in a row
	closed   bool
	old      []*conn // replaced before their SASL session ended, still answering
}

// get returns a ready connection of the lane, dialing if needed.
func (p *brokerPool) get(ctx context.Context, lane int) (*conn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, p.closedErr()
		}
		if c := p.conns[lane]; c != nil && !c.closed() {
			if c.renewAt.IsZero() || time.Now().Before(c.renewAt) {
				p.mu.Unlock()
				return c, nil
			}
			p.renew(lane, c)
		}
		if ch := p.dialing[lane]; ch != nil {
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		p.dialing[lane] = ch
		wait := time.Until(p.retryAt)
		p.mu.Unlock()
		legacy := p.cl.isLegacy(p.addr)

		// Close ends a dial in progress too (TLS, ApiVersions, SASL), and
		// waits for it: the dial counts with the connections' goroutines.
		var c *conn
		var err error
		if p.cl.addDial() {
			dctx, cancel := context.WithCancel(ctx)
			stop := context.AfterFunc(p.cl.ctx, cancel)
			c, err = p.dial(dctx, wait, legacy)
			stop()
			cancel()
			p.cl.conns.Done()
		} else {
			err = ErrClientClosed
		}
		if err != nil && p.cl.isClosed() {
			err = &BrokerError{NodeID: p.nodeID, Addr: p.addr, Err: ErrClientClosed}
		}

		p.mu.Lock()
		p.dialing[lane] = nil
		close(ch)
		if err != nil {
			p.mu.Unlock()
			return nil, err
		}
		if p.closed {
			p.mu.Unlock()
			err := p.closedErr()
			c.close(err)
			return nil, err
		}
		p.conns[lane] = c
		p.mu.Unlock()
		return c, nil
	}
}

func (p *brokerPool) dial(ctx context.Context, wait time.Duration, legacy bool) (*conn, error) {
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.cl.closed:
			return nil, ErrClientClosed
		}
	}
	cfg := &p.cl.cfg
	// Versions are negotiated on every dial, even with a broker taken for
	// one that predates ApiVersions: a connection closed on ApiVersions can
	// also be a network fault or a broker going down, and the mark must not
	// stick to a broker that answers again. Only a broker that still closes
	// on ApiVersions gets a v0 connection (at once after this pool's two
	// closed ApiVersions in a row).
	p.mu.Lock()
	fresh := p.eofs >= 2
	p.mu.Unlock()
	c, err := dialConn(ctx, cfg, p.nodeID, p.addr, legacy && fresh, &p.cl.conns)
	if legacy && !fresh && err != nil && errors.Is(err, errLegacyBroker) {
		c, err = dialConn(ctx, cfg, p.nodeID, p.addr, true, &p.cl.conns)
	} else if err == nil && !(legacy && fresh) && !p.cl.isModern(p.addr) {
		p.cl.setLegacy(p.addr, false)
		if legacy {
			cfg.logger.Info("kpax: broker answers ApiVersions again; negotiating versions", "broker", p.addr)
		}
	}
	if h := cfg.hooks.OnConnect; h != nil {
		h(p.nodeID, p.addr, err)
	}
	if err != nil && errors.Is(err, errLegacyBroker) {
		p.mu.Lock()
		p.eofs++
		legacy := p.eofs >= 2 && !p.cl.isModern(p.addr)
		p.mu.Unlock()
		if legacy {
			// Twice in a row: a broker older than 0.10, which closes the
			// connection on ApiVersions. Talk v0 to it while it keeps doing so.
			p.cl.setLegacy(p.addr, true)
			cfg.logger.Info("kpax: broker predates ApiVersions; using v0 requests", "broker", p.addr)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failures++
		backoff := cfg.retryBackoff << min(p.failures-1, 16)
		p.retryAt = time.Now().Add(min(backoff, cfg.retryBackoffMax))
		cfg.logger.Warn("kpax: dial failed", "broker", p.addr, "node", p.nodeID, "err", err)
		return nil, &BrokerError{NodeID: p.nodeID, Addr: p.addr, Err: err}
	}
	p.failures, p.eofs = 0, 0
	cfg.logger.Debug("kpax: connected", "broker", p.addr, "node", p.nodeID)
	return c, nil
}

// renew takes a connection whose SASL session ends soon (KIP-368) out of
// use; get dials its successor, and the old one closes once its requests are
// answered. The broker would close it on the first request after the end.
// p.mu is held.
func (p *brokerPool) renew(lane int, c *conn) {
	p.conns[lane] = nil
	live := p.old[:0]
	for _, o := range p.old {
		if !o.closed() {
			live = append(live, o)
		}
	}
	p.old = append(live, c)
	c.retire()
	p.cl.cfg.logger.Debug("kpax: SASL session ends soon; replacing the connection", "broker", p.addr, "node", p.nodeID)
}

// closedErr is the error of requests on a closed pool: ErrClientClosed
// when the client closed, a retriable BrokerError when the broker left the
// cluster's metadata (or moved), so that its requests go elsewhere.
func (p *brokerPool) closedErr() error {
	if p.cl.isClosed() {
		return ErrClientClosed
	}
	return &BrokerError{NodeID: p.nodeID, Addr: p.addr, Err: fmt.Errorf("%w: the broker left the cluster metadata", ErrNoBroker)}
}

// close closes the pool's connections and waits for their goroutines.
func (p *brokerPool) close() {
	p.mu.Lock()
	p.closed = true
	conns := append(append([]*conn(nil), p.conns[:]...), p.old...)
	p.old = nil
	p.mu.Unlock()
	closeErr := p.closedErr()
	for _, c := range conns {
		if c != nil {
			c.close(closeErr)
			c.wait()
		}
	}
}
