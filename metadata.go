package kpax

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Broker is a broker of the cluster, as metadata describes it.
type Broker struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   string // "" if the broker has none
}

// Addr returns the broker's "host:port".
func (b Broker) Addr() string { return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))) }

// TopicMetadata describes a topic.
type TopicMetadata struct {
	Name       string
	ID         UUID // zero before Kafka 2.8 (Metadata v10)
	Internal   bool
	Partitions []PartitionMetadata // by partition index
	Err        error               // a topic-level error, e.g. ErrUnknownTopicOrPartition
}

// PartitionMetadata describes a partition: its leader and replicas.
type PartitionMetadata struct {
	Partition   int32
	Leader      int32 // node ID, or -1 while there is none
	LeaderEpoch int32 // -1 if the broker does not say (Metadata before v7)
	Replicas    []int32
	ISR         []int32
	Offline     []int32
	Err         error // e.g. ErrLeaderNotAvailable
}

// ClusterMetadata is a snapshot of what the cluster says of itself.
type ClusterMetadata struct {
	ClusterID  string
	Controller int32 // node ID, -1 if unknown
	Brokers    []Broker
	Topics     []TopicMetadata
}

// metadataCache keeps the brokers, the topics the client has used, the
// controller and the coordinators. It loads what it lacks on demand,
// refreshes in the background at the max age, and collapses concurrent
// reloads into one. Topic entries are immutable once stored; an update
// replaces them.
type metadataCache struct {
	cl *Client

	mu           sync.Mutex
	brokers      map[int32]Broker
	topics       map[string]*TopicMetadata
	byID         map[UUID]string
	wanted       map[string]bool // topics to keep fresh
	controller   int32
	clusterID    string
	updated      time.Time
	stale        bool
	refreshing   chan struct{} // closed when the running refresh ends
	lastErr      error
	coordinators map[coordKey]int32
}

type coordKey struct {
	kind int8 // 0 group, 1 transaction
	key  string
}

func newMetadataCache(cl *Client) *metadataCache {
	return &metadataCache{
		cl:           cl,
		brokers:      map[int32]Broker{},
		topics:       map[string]*TopicMetadata{},
		byID:         map[UUID]string{},
		wanted:       map[string]bool{},
		controller:   -1,
		coordinators: map[coordKey]int32{},
		stale:        true,
	}
}

// refresh reloads the metadata of the wanted topics (and of topics, added to
// them). A refresh already running is joined instead of starting another,
// and refreshes are at least the min age apart, but for one that asks for a
// topic never asked for before: nothing is cached to be refreshed too often,
// so it runs at once (a group consumer's first lookup of its topics comes
// right after the lookup of its coordinator). Asking again for that topic
// respects the min age, so that retries cannot storm.
func (m *metadataCache) refresh(ctx context.Context, topics ...string) error {
	first := false // some topic is asked for the first time
	for attempt := 0; ; attempt++ {
		m.mu.Lock()
		for _, t := range topics {
			if !m.wanted[t] {
				first = true
				m.wanted[t] = true
			}
		}
		if ch := m.refreshing; ch != nil {
			m.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			if attempt == 0 {
				continue // it may not have covered our topics: run one of our own
			}
			m.mu.Lock()
			err := m.lastErr
			m.mu.Unlock()
			return err
		}
		wait := m.cl.cfg.metadataMinAge - time.Since(m.updated)
		if first {
			wait = 0
		}
		ch := make(chan struct{})
		m.refreshing = ch
		want := make([]string, 0, len(m.wanted))
		for t := range m.wanted {
			want = append(want, t)
		}
		m.mu.Unlock()

		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			case <-m.cl.closed:
			}
		}
		resp, err := m.load(ctx, want)
		m.mu.Lock()
		if err == nil {
			m.apply(resp, want)
		}
		m.lastErr = err
		m.refreshing = nil
		close(ch)
		m.mu.Unlock()
		return err
	}
}

// load asks one broker for metadata: a known broker at random, then the
// seeds, so that a cluster whose brokers all changed is found again.
func (m *metadataCache) load(ctx context.Context, topics []string) (*MetadataResponse, error) {
	req := &MetadataRequest{Topics: make([]MetadataRequestTopic, len(topics))}
	for i := range topics {
		req.Topics[i].Name = &topics[i]
	}
	m.mu.Lock()
	ids := make([]int32, 0, len(m.brokers))
	for id := range m.brokers {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	var pools []*brokerPool
	for _, id := range ids {
		if p, err := m.cl.pool(id); err == nil {
			pools = append(pools, p)
		}
	}
	pools = append(pools, m.cl.seedPools()...)
	var errs []error
	rebooted := false
	for i := 0; i < len(pools); i++ {
		p := pools[i]
		resp, err := m.cl.send(ctx, p, req)
		if err == nil {
			r := resp.(*MetadataResponse)
			if err = ErrorForCode(r.ErrorCode); err == nil { // v13: a top-level error
				return r, nil
			}
			err = &BrokerError{NodeID: p.nodeID, Addr: p.addr, Err: err}
			if errors.Is(err, ErrRebootstrapRequired) && !rebooted {
				// KIP-1102: the client's view of the cluster is stale. The
				// other known brokers share it: ask the seeds, dialed
				// afresh (their names resolved again).
				rebooted = true
				m.cl.cfg.logger.Info("kpax: broker asks to rebootstrap; asking the seed brokers again", "broker", p.addr)
				pools = append(pools[:i+1:i+1], m.cl.rebootstrap()...)
			}
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w: metadata: %v", ErrNoBroker, errs)
}

// apply stores a Metadata response; m.mu is held.
func (m *metadataCache) apply(resp *MetadataResponse, asked []string) {
	if len(resp.Brokers) > 0 {
		brokers := make(map[int32]Broker, len(resp.Brokers))
		for _, b := range resp.Brokers {
			brokers[b.NodeID] = Broker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: deref(b.Rack)}
		}
		m.brokers = brokers
	}
	m.controller = resp.ControllerID
	m.clusterID = deref(resp.ClusterID)
	for _, t := range resp.Topics {
		tm := topicFromResponse(&t)
		if tm.Name == "" {
			continue
		}
		if old := m.topics[tm.Name]; old != nil && old.ID != tm.ID {
			delete(m.byID, old.ID)
		}
		m.topics[tm.Name] = tm
		if tm.ID != (UUID{}) {
			m.byID[tm.ID] = tm.Name
		}
	}
	m.updated = time.Now()
	m.stale = false
	m.cl.retirePools(m.brokers)
}

func topicFromResponse(t *MetadataResponseTopic) *TopicMetadata {
	tm := &TopicMetadata{Name: deref(t.Name), ID: t.TopicID, Internal: t.IsInternal, Err: ErrorForCode(t.ErrorCode)}
	n := 0
	for _, p := range t.Partitions {
		if p.PartitionIndex >= 0 && int(p.PartitionIndex) < len(t.Partitions)*2+1 {
			n = max(n, int(p.PartitionIndex)+1)
		}
	}
	tm.Partitions = make([]PartitionMetadata, n)
	for i := range tm.Partitions {
		tm.Partitions[i] = PartitionMetadata{Partition: int32(i), Leader: -1, LeaderEpoch: -1, Err: ErrLeaderNotAvailable}
	}
	for _, p := range t.Partitions {
		if p.PartitionIndex < 0 || int(p.PartitionIndex) >= n {
			continue
		}
		tm.Partitions[p.PartitionIndex] = PartitionMetadata{
			Partition: p.PartitionIndex, Leader: p.LeaderID, LeaderEpoch: p.LeaderEpoch,
			Replicas: p.ReplicaNodes, ISR: p.ISRNodes, Offline: p.OfflineReplicas, Err: ErrorForCode(p.ErrorCode),
		}
	}
	return tm
}

// topic returns the cached metadata of a topic, loading it when missing or
// stale.
//
// A topic without a leader yet (LEADER_NOT_AVAILABLE: one just created, or
// auto-created by this very lookup on a broker before 0.11) is asked again
// until it has one, within leaderWait.
func (m *metadataCache) topic(ctx context.Context, name string) (*TopicMetadata, error) {
	start := time.Now()
	for attempt := 0; attempt < 3 || m.waitLeader(ctx, name, start, attempt); attempt++ {
		m.mu.Lock()
		t := m.topics[name]
		known := m.wanted[name]
		stale := m.stale
		m.mu.Unlock()
		if t != nil && known && !stale && t.Err == nil {
			return t, nil
		}
		if attempt > 0 && t != nil && t.Err != nil && !IsRetriable(t.Err) {
			return nil, &PartitionError{Topic: name, Partition: -1, Err: t.Err}
		}
		if err := m.refresh(ctx, name); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	t := m.topics[name]
	m.mu.Unlock()
	if t == nil {
		return nil, &PartitionError{Topic: name, Partition: -1, Err: ErrUnknownTopicOrPartition}
	}
	if t.Err != nil {
		return nil, &PartitionError{Topic: name, Partition: -1, Err: t.Err}
	}
	return t, nil
}

// leader returns the partition's leader, loading metadata as needed.
func (m *metadataCache) leader(ctx context.Context, topic string, partition int32) (PartitionMetadata, error) {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		t, err := m.topic(ctx, topic)
		if err != nil {
			return PartitionMetadata{}, err
		}
		var p PartitionMetadata
		if partition >= 0 && int(partition) < len(t.Partitions) {
			p = t.Partitions[partition]
		} else {
			p = PartitionMetadata{Partition: partition, Leader: -1, Err: ErrUnknownTopicOrPartition}
		}
		if p.Leader >= 0 {
			return p, nil
		}
		if attempt >= 2 && !(errors.Is(p.Err, ErrLeaderNotAvailable) && m.leaderBackoff(ctx, start, attempt)) {
			err := p.Err
			if err == nil {
				err = ErrLeaderNotAvailable
			}
			return p, &PartitionError{Topic: topic, Partition: partition, Err: err}
		}
		m.invalidate()
	}
}

// waitLeader reports whether topic (after attempt lookups) should be asked
// again: it is known but has no leader yet, and leaderBackoff allows it.
func (m *metadataCache) waitLeader(ctx context.Context, topic string, start time.Time, attempt int) bool {
	m.mu.Lock()
	t := m.topics[topic]
	m.mu.Unlock()
	return t != nil && errors.Is(t.Err, ErrLeaderNotAvailable) && m.leaderBackoff(ctx, start, attempt)
}

// leaderBackoff waits before the next lookup of a leader that is being
// elected (the retry backoff, doubling) and reports whether to look again:
// not once the call's context or the request timeout since start would end
// first.
func (m *metadataCache) leaderBackoff(ctx context.Context, start time.Time, attempt int) bool {
	cfg := &m.cl.cfg
	wait := min(cfg.retryBackoff<<min(attempt, 16), cfg.retryBackoffMax)
	end := start.Add(cfg.requestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	if time.Now().Add(wait).After(end) {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		m.invalidate()
		return true
	case <-ctx.Done():
	case <-m.cl.closed:
	}
	return false
}

// topicName returns the name of a topic ID, loading metadata as needed.
func (m *metadataCache) topicName(ctx context.Context, id UUID) (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		m.mu.Lock()
		name, ok := m.byID[id]
		m.mu.Unlock()
		if ok {
			return name, nil
		}
		if err := m.refresh(ctx); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("%w: topic ID %s", ErrUnknownTopicId, id)
}

// invalidate marks everything stale: the next lookup reloads.
func (m *metadataCache) invalidate() {
	m.mu.Lock()
	m.stale = true
	m.mu.Unlock()
}

// invalidateCoordinator forgets a coordinator after NOT_COORDINATOR or a
// connection error.
func (m *metadataCache) invalidateCoordinator(kind int8, key string) {
	m.mu.Lock()
	delete(m.coordinators, coordKey{kind, key})
	m.mu.Unlock()
}

// updateLeader applies a leader hint from a Produce or Fetch response
// (KIP-951) without a metadata round trip; an older epoch is ignored.
func (m *metadataCache) updateLeader(topic string, partition, leader, epoch int32, endpoints []Broker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range endpoints {
		if _, ok := m.brokers[b.NodeID]; !ok {
			m.brokers[b.NodeID] = b
		}
	}
	t := m.topics[topic]
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) || leader < 0 {
		return
	}
	if _, ok := m.brokers[leader]; !ok {
		return
	}
	if old := t.Partitions[partition]; old.LeaderEpoch >= epoch && old.Leader >= 0 {
		return
	}
	nt := *t
	nt.Partitions = slices.Clone(t.Partitions)
	nt.Partitions[partition].Leader = leader
	nt.Partitions[partition].LeaderEpoch = epoch
	nt.Partitions[partition].Err = nil
	m.topics[topic] = &nt
}

// broker returns a known broker.
func (m *metadataCache) broker(id int32) (Broker, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.brokers[id]
	return b, ok
}

// anyBroker returns the node ID of a known broker, loading metadata first
// if none is known, or -1 to mean "a seed broker".
func (m *metadataCache) anyBroker(ctx context.Context) int32 {
	m.mu.Lock()
	n := len(m.brokers)
	m.mu.Unlock()
	if n == 0 {
		m.refresh(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]int32, 0, len(m.brokers))
	for id := range m.brokers {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return -1
	}
	return ids[rand.IntN(len(ids))]
}

// controllerID returns the controller's node ID, loading metadata if unknown.
func (m *metadataCache) controllerID(ctx context.Context) (int32, error) {
	m.mu.Lock()
	id := m.controller
	m.mu.Unlock()
	if id >= 0 {
		return id, nil
	}
	if err := m.refresh(ctx); err != nil {
		return -1, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.controller < 0 {
		return -1, ErrNotController
	}
	return m.controller, nil
}

// coordinator returns the node ID of the group (kind 0) or transaction
// (kind 1) coordinator of key, asking FindCoordinator when unknown and
// retrying while the coordinator is loading or the broker asked cannot be
// reached.
func (m *metadataCache) coordinator(ctx context.Context, kind int8, key string) (int32, error) {
	ck := coordKey{kind, key}
	m.mu.Lock()
	id, ok := m.coordinators[ck]
	m.mu.Unlock()
	if ok {
		return id, nil
	}
	backoff := m.cl.cfg.retryBackoff
	for {
		id, err := m.findCoordinator(ctx, kind, key)
		if err == nil {
			m.mu.Lock()
			m.coordinators[ck] = id
			m.mu.Unlock()
			return id, nil
		}
		// A broker that could not be reached (a dead one among the known
		// brokers) is retried too: the next lookup asks another.
		if ClassOf(err) != ClassRetriable || ctx.Err() != nil {
			return -1, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return -1, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-m.cl.closed:
			return -1, ErrClientClosed
		}
		backoff = min(2*backoff, m.cl.cfg.retryBackoffMax)
	}
}

func (m *metadataCache) findCoordinator(ctx context.Context, kind int8, key string) (int32, error) {
	req := &FindCoordinatorRequest{Key: key, KeyType: kind, CoordinatorKeys: []string{key}}
	p, err := m.cl.pool(m.anyBroker(ctx))
	if err != nil {
		return -1, err
	}
	r, err := m.cl.send(ctx, p, req)
	if err != nil {
		return -1, err
	}
	resp := r.(*FindCoordinatorResponse)
	nodeID, host, port, code, msg := resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, resp.ErrorMessage
	if len(resp.Coordinators) > 0 { // v4+
		c := resp.Coordinators[0]
		nodeID, host, port, code, msg = c.NodeID, c.Host, c.Port, c.ErrorCode, c.ErrorMessage
	}
	if err := ErrorForCode(code); err != nil {
		return -1, fmt.Errorf("FindCoordinator %q: %w (%s)", key, err, deref(msg))
	}
	m.mu.Lock()
	if _, ok := m.brokers[nodeID]; !ok {
		m.brokers[nodeID] = Broker{NodeID: nodeID, Host: host, Port: port}
	}
	m.mu.Unlock()
	return nodeID, nil
}

// run refreshes the metadata every max age until the client closes.
func (m *metadataCache) run() {
	defer m.cl.bg.Done()
	t := time.NewTicker(m.cl.cfg.metadataMaxAge)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(m.cl.ctx, m.cl.cfg.requestTimeout)
			if err := m.refresh(ctx); err != nil {
				m.cl.cfg.logger.Warn("kpax: background metadata refresh", "err", err)
			}
			cancel()
		case <-m.cl.closed:
			return
		}
	}
}

// rebootstrap replaces the seed brokers' pools with new ones, so that
// their next connections dial the configured addresses again (resolving
// their names again, KIP-1102), and returns them.
func (cl *Client) rebootstrap() []*brokerPool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.isClosed() {
		return nil
	}
	for i, p := range cl.seeds {
		cl.retired = append(cl.retired, p)
		go p.close()
		cl.seeds[i] = &brokerPool{cl: cl, nodeID: p.nodeID, addr: p.addr}
	}
	return append([]*brokerPool(nil), cl.seeds...)
}

// topicRef is a topic a request or response names: by name, by ID (the
// versions that name topics by ID only: Produce v13, OffsetCommit and
// OffsetFetch v10, TxnOffsetCommit v6, KIP-516), or both.
type topicRef struct {
	name *string
	id   *UUID
}

// idTopics calls f for each topic of a request or response whose versions
// may name topics by ID only.
func idTopics(msg any, f func(topicRef)) {
	switch m := msg.(type) {
	case *ProduceRequest:
		for i := range m.TopicData {
			f(topicRef{&m.TopicData[i].Name, &m.TopicData[i].TopicID})
		}
	case *ProduceResponse:
		for i := range m.Responses {
			f(topicRef{&m.Responses[i].Name, &m.Responses[i].TopicID})
		}
	case *OffsetCommitRequest:
		for i := range m.Topics {
			f(topicRef{&m.Topics[i].Name, &m.Topics[i].TopicID})
		}
	case *OffsetCommitResponse:
		for i := range m.Topics {
			f(topicRef{&m.Topics[i].Name, &m.Topics[i].TopicID})
		}
	case *OffsetFetchRequest:
		for i := range m.Groups {
			for j := range m.Groups[i].Topics {
				f(topicRef{&m.Groups[i].Topics[j].Name, &m.Groups[i].Topics[j].TopicID})
			}
		}
	case *OffsetFetchResponse:
		for i := range m.Groups {
			for j := range m.Groups[i].Topics {
				f(topicRef{&m.Groups[i].Topics[j].Name, &m.Groups[i].Topics[j].TopicID})
			}
		}
	case *TxnOffsetCommitRequest:
		for i := range m.Topics {
			f(topicRef{&m.Topics[i].Name, &m.Topics[i].TopicID})
		}
	case *TxnOffsetCommitResponse:
		for i := range m.Topics {
			f(topicRef{&m.Topics[i].Name, &m.Topics[i].TopicID})
		}
	}
}

// fillTopicIDs sets the IDs that req leaves zero from the cache, loading
// nothing. A topic the cache does not know keeps its zero ID, and
// pathMaxVersion then sends the request at the last version that names
// topics.
func (m *metadataCache) fillTopicIDs(req Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	idTopics(req, func(t topicRef) {
		if *t.id == (UUID{}) {
			if tm := m.topics[*t.name]; tm != nil {
				*t.id = tm.ID
			}
		}
	})
}

// nameTopics sets the names of the topics that a response at an ID
// version names by ID only: from the request, then from the cache. It
// reports whether some ID is still unknown.
func (m *metadataCache) nameTopics(req Request, resp Response) (unknown bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	idTopics(resp, func(t topicRef) {
		if *t.name != "" || *t.id == (UUID{}) {
			return
		}
		idTopics(req, func(r topicRef) { // few topics: no map to allocate
			if *t.name == "" && *r.id == *t.id {
				*t.name = *r.name
			}
		})
		if *t.name == "" {
			if name, ok := m.byID[*t.id]; ok {
				*t.name = name
			} else {
				unknown = true
			}
		}
	})
	return unknown
}
