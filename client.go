package kpax

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
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
	legacy  map[string]legacyMark // by address: whether the broker answered ApiVersions (legacy.go)
}

// legacyDial returns the era to dial the broker at addr in without asking
// ApiVersions: an old one's, whichever pool (seed or node ID) found out, until
// its recheck is due; else eraModern (negotiate).
func (cl *Client) legacyDial(addr string) legacyEra {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	m := cl.legacy[addr]
	if m.era == eraModern || time.Now().After(m.until) {
		return eraModern
	}
	return m.era
}

func (cl *Client) setLegacy(addr string, era legacyEra) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.legacy == nil {
		cl.legacy = make(map[string]legacyMark)
	}
	cl.legacy[addr] = legacyMark{era: era, until: time.Now().Add(legacyRecheck)}
}

// isModern reports whether the broker at addr has answered ApiVersions:
// a connection it closes on ApiVersions later is a fault, not an old broker.
func (cl *Client) isModern(addr string) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	m, known := cl.legacy[addr]
	return known && m.era == eraModern
}

// wasLegacy reports whether the broker at addr was last taken for an old one.
func (cl *Client) wasLegacy(addr string) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.legacy[addr].era != eraModern
}

// Hooks are functions the client calls on events, e.g. to count requests,
// bytes, errors and throttling per broker. Any may be nil. They run on the
// client's goroutines and must not block.
type Hooks struct {
	// OnConnect is called after each dial of a broker, with the error if it failed.
	OnConnect func(nodeID int32, addr string, err error)
	// OnRequest is called after each request the client sends, whichever
	// part sends it (Client.Request, a Producer's Produce requests, a
	// Consumer's Fetch requests, group and metadata requests, ApiVersions
	// and SASL while dialing), with what it cost.
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
	cfg.budget = newMemBudget(cfg.memBudget)
	pooled := cfg.consumer.bufferBytes
	if cfg.budget != nil {
		pooled = min(pooled, cfg.memBudget/16) // outside the budget: kept small
	}
	cfg.frames = newFramePool(pooled)
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
// WithMaxVersion allow. At the versions that name topics by ID only
// (Produce v13, OffsetCommit and OffsetFetch v10), the topic IDs that req
// leaves zero are set from the metadata cache and the response's topics get
// their names back; a topic the cache has no ID for makes the request go at
// the version before. Kafka error codes inside the response are returned
// as they are, in the response; the error is for failures to get one. A
// connection error invalidates the cached metadata, and for a coordinator's
// request a connection error or a NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE
// code in the response forgets the cached coordinator, so that the next call
// asks FindCoordinator again and goes to the right broker.
func (cl *Client) Request(ctx context.Context, req Request) (Response, error) {
	if err := checkCall(ctx, req); err != nil {
		return nil, err
	}
	resp, _, err := cl.request(ctx, req)
	return resp, err
}

// request is Request that also returns the version the request was sent
// at, for callers (the admin API) that read version-dependent fields.
func (cl *Client) request(ctx context.Context, req Request) (Response, int16, error) {
	nodeID, err := cl.route(ctx, req)
	if err != nil {
		return nil, -1, err
	}
	resp, s, err := cl.requestBroker(ctx, nodeID, req)
	if kind, key, ok := coordinatorKey(req); ok && (err != nil && ctx.Err() == nil || err == nil && coordinatorMoved(resp)) {
		cl.meta.invalidateCoordinator(kind, key)
	}
	return resp, s.version, err
}

// RequestBroker sends req to the broker with the node ID and returns its
// response. Negative IDs are the seed brokers (-1 the first).
func (cl *Client) RequestBroker(ctx context.Context, nodeID int32, req Request) (Response, error) {
	if err := checkCall(ctx, req); err != nil {
		return nil, err
	}
	resp, _, err := cl.requestBroker(ctx, nodeID, req)
	return resp, err
}

// requestBroker is RequestBroker, also returning what sendFrame tells of
// the exchange.
func (cl *Client) requestBroker(ctx context.Context, nodeID int32, req Request) (Response, sent, error) {
	p, err := cl.pool(nodeID)
	if err != nil {
		if nodeID >= 0 {
			// Unknown node: load metadata once and look again.
			if rerr := cl.meta.refresh(ctx); rerr == nil {
				p, err = cl.pool(nodeID)
			}
		}
		if err != nil {
			return nil, sent{version: -1}, err
		}
	}
	cl.meta.fillTopicIDs(req)
	resp, s, err := cl.sendFrame(ctx, p, req)
	if err != nil && ctx.Err() == nil {
		cl.meta.invalidate()
	}
	if err == nil && unknownTopicID(resp) {
		cl.meta.invalidate() // a topic deleted (and made again?): its ID is stale
	}
	if err == nil && cl.meta.nameTopics(req, resp) {
		// IDs of topics the request did not name (OffsetFetch of all a
		// group's topics): one load of every topic's metadata names them.
		if _, merr := cl.Metadata(ctx); merr == nil {
			cl.meta.nameTopics(req, resp)
		}
	}
	return resp, s, err
}

// ErrBadRequest is matched (errors.Is) by the error of Client.Request and
// Client.RequestBroker for a request they cannot send: nil, a typed nil
// (e.g. (*MetadataRequest)(nil)), or a type that is not one of this
// package's generated request types.
var ErrBadRequest = classedValue(ClassAbortable, "kpax: bad request")

// checkCall checks the arguments of Request and RequestBroker, so that no
// caller's value can panic the connection's goroutines, which encode it.
func checkCall(ctx context.Context, req Request) error {
	if ctx == nil {
		return errNilContext
	}
	if req == nil {
		return fmt.Errorf("%w: nil Request", ErrBadRequest)
	}
	t := reflect.TypeOf(req)
	if t.Kind() != reflect.Pointer || t.Elem().PkgPath() != requestPkgPath {
		return fmt.Errorf("%w: %T is not a request type of package kpax (see NewRequest)", ErrBadRequest, req)
	}
	if reflect.ValueOf(req).IsNil() {
		return fmt.Errorf("%w: nil %T", ErrBadRequest, req)
	}
	return nil
}

// requestPkgPath is the package of the generated request types.
var requestPkgPath = reflect.TypeOf(ApiVersionsRequest{}).PkgPath()

// send sends req over a connection of the pool.
func (cl *Client) send(ctx context.Context, p *brokerPool, req Request) (Response, error) {
	resp, _, err := cl.sendFrame(ctx, p, req)
	return resp, err
}

// sent tells of a request's exchange: the version it went at (-1 if it did
// not go) and the response frame the response aliases (the consumer gives
// Fetch frames back to cfg.frames).
type sent struct {
	version int16
	frame   []byte
}

// sendFrame is send, also returning what it tells of the exchange.
func (cl *Client) sendFrame(ctx context.Context, p *brokerPool, req Request) (Response, sent, error) {
	lane := apiLane(req.APIKey())
	c, err := p.get(ctx, lane)
	if err != nil {
		return nil, sent{version: -1}, err
	}
	v, err := c.versions.pickCtx(ctx, req, cl.cfg.maxVersions) // TV2's versions: protocol_versions.go
	if err == nil {
		err = c.versions.fits(req, v)
	}
	if err != nil {
		return nil, sent{version: -1}, &BrokerError{NodeID: p.nodeID, Addr: p.addr, Err: err}
	}
	resp, call, err := c.roundTrip(ctx, req, v, cl.cfg.requestTimeout+extraTimeout(req))
	if err != nil {
		var be *BrokerError
		if !errors.As(err, &be) && ctx.Err() == nil {
			err = &BrokerError{NodeID: p.nodeID, Addr: p.addr, Err: err}
		}
		return nil, sent{version: v}, err
	}
	return resp, sent{version: v, frame: call.frame}, nil
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

// extraTimeout is how long the broker may hold the request on purpose.
func extraTimeout(req Request) time.Duration {
	ms := int32(0)
	switch r := req.(type) {
	case *FetchRequest:
		ms = r.MaxWaitMs
	case *ShareFetchRequest:
		ms = r.MaxWaitMs
	case *ProduceRequest:
		ms = r.TimeoutMs
	case *ListOffsetsRequest:
		ms = r.TimeoutMs // v10+: the broker may read tiered storage that long
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

// route picks the broker for a request (see Request), as the generated
// routing table (apiRoute, gen/routing.go) says.
func (cl *Client) route(ctx context.Context, req Request) (int32, error) {
	if cl.isClosed() {
		return -1, ErrClientClosed
	}
	switch apiRoute(req.APIKey()) {
	case routeLeader:
		r, ok := req.(interface {
			leaderPartition() (string, UUID, int32, bool)
		})
		if !ok {
			break
		}
		name, id, partition, ok := r.leaderPartition()
		if !ok {
			break
		}
		if name == "" && id != (UUID{}) {
			var err error
			if name, err = cl.meta.topicName(ctx, id); err != nil {
				return -1, err
			}
		}
		return cl.leaderID(ctx, name, partition)
	case routeController:
		id, err := cl.meta.controllerID(ctx)
		if errors.Is(err, ErrNotController) && cl.anyLegacy() {
			// Metadata v0 names no controller: the broker answers that it
			// lacks the API, in words that name its version.
			return cl.meta.anyBroker(ctx), nil
		}
		return id, err
	case routeGroupCoordinator, routeTxnCoordinator:
		if kind, key, ok := coordinatorKey(req); ok {
			return cl.meta.coordinator(ctx, kind, key)
		}
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

// unknownTopicID reports an UNKNOWN_TOPIC_ID anywhere in a response.
func unknownTopicID(resp Response) bool {
	r, ok := resp.(interface{ hasErrorCode(func(int16) bool) bool })
	return ok && r.hasErrorCode(func(code int16) bool { return code == ErrUnknownTopicId.code })
}

// coordinatorMoved reports whether a coordinator's response says that it is
// not (or no longer) the coordinator: NOT_COORDINATOR or
// COORDINATOR_NOT_AVAILABLE anywhere an error code of the response can be.
func coordinatorMoved(resp Response) bool {
	r, ok := resp.(interface{ hasErrorCode(func(int16) bool) bool })
	return ok && r.hasErrorCode(func(code int16) bool {
		return code == ErrNotCoordinator.code || code == ErrCoordinatorNotAvailable.code
	})
}

// coordinatorKey returns the coordinator a request goes to: kind 0 for a
// group, 1 for a transactional ID, and the key, from the generated routing
// (apiRoute and the request's coordinatorKey method).
func coordinatorKey(req Request) (kind int8, key string, ok bool) {
	switch apiRoute(req.APIKey()) {
	case routeGroupCoordinator:
		kind = 0
	case routeTxnCoordinator:
		kind = 1
	default:
		return 0, "", false
	}
	r, isKeyed := req.(interface{ coordinatorKey() (string, bool) })
	if !isKeyed {
		return 0, "", false
	}
	if key, ok = r.coordinatorKey(); !ok {
		return 0, "", false
	}
	return kind, key, true
}

// Metadata returns what the cluster says of the topics (every topic when
// none is given) and refreshes the client's cache with it.
func (cl *Client) Metadata(ctx context.Context, topics ...string) (*ClusterMetadata, error) {
	if slices.Contains(topics, "") {
		return nil, errors.New("kpax: Metadata: empty topic name")
	}
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
	if err := ErrorForCode(resp.ErrorCode); err != nil { // v13: a top-level error
		if errors.Is(err, ErrRebootstrapRequired) {
			cl.rebootstrap() // KIP-1102: the next load asks the seeds
		}
		cl.meta.invalidate()
		return nil, fmt.Errorf("kpax: Metadata: %w", err)
	}
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
		legacy := p.cl.legacyDial(p.addr)

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

func (p *brokerPool) dial(ctx context.Context, wait time.Duration, legacy legacyEra) (*conn, error) {
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
	modern := p.cl.isModern(p.addr)
	c, err := dialConn(ctx, cfg, p.nodeID, p.addr, legacy, modern, &p.cl.conns)
	if legacy == eraModern {
		if err != nil && (errors.Is(err, errLegacyBroker) || errors.Is(err, errSilentBroker)) && !modern {
			c, err = p.dialLegacy(ctx, err)
		} else if err == nil && !modern {
			if p.cl.wasLegacy(p.addr) {
				cfg.logger.Info("kpax: broker answers ApiVersions again; negotiating versions", "broker", p.addr)
			}
			p.cl.setLegacy(p.addr, eraModern)
		}
	}
	if h := cfg.hooks.OnConnect; h != nil {
		h(p.nodeID, p.addr, err)
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
	p.failures = 0
	cfg.logger.Debug("kpax: connected", "broker", p.addr, "node", p.nodeID)
	return c, nil
}

// dialBackoff returns how long the lane's next dial waits after failed
// ones, 0 if the lane has a live connection or may dial now.
func (p *brokerPool) dialBackoff(lane int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[lane]; c != nil && !c.closed() {
		return 0
	}
	return max(time.Until(p.retryAt), 0)
}

// closeLane closes the lane's connection, failing its requests with err.
func (p *brokerPool) closeLane(lane int, err error) {
	p.mu.Lock()
	c := p.conns[lane]
	p.mu.Unlock()
	if c != nil {
		c.close(err)
	}
}

// dialLegacy follows a dial whose ApiVersions found no answer (first), in
// the same call, so that the request that met an old broker does not fail
// for it. A closed connection is asked once more (it can also be a fault:
// two in a row is Kafka 0.8); a silent one (Kafka 0.9) is not, since asking
// again costs another wait. Then a v0 connection is dialed.
func (p *brokerPool) dialLegacy(ctx context.Context, first error) (*conn, error) {
	cfg := &p.cl.cfg
	era := era09
	if errors.Is(first, errLegacyBroker) {
		era = era08
		c, err := dialConn(ctx, cfg, p.nodeID, p.addr, eraModern, false, &p.cl.conns)
		if err == nil {
			p.cl.setLegacy(p.addr, eraModern)
			return c, nil
		}
		if !errors.Is(err, errLegacyBroker) {
			return nil, err
		}
	}
	c, err := dialConn(ctx, cfg, p.nodeID, p.addr, era, false, &p.cl.conns)
	if err != nil {
		return nil, err
	}
	if !p.cl.wasLegacy(p.addr) {
		cfg.logger.Info("kpax: broker predates ApiVersions; using its era's request versions", "broker", p.addr, "err", first)
	}
	p.cl.setLegacy(p.addr, era)
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
