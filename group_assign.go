package kpax

import (
	"cmp"
	"fmt"
	"slices"
)

// This file holds what the group's leader needs to split partitions among
// the members: the Balancer interface and its three standard
// implementations, and the ConsumerProtocol bytes members exchange through
// JoinGroup and SyncGroup, encoded as the Java client and librdkafka encode
// them so that kpax, Java and librdkafka members share one group.

// Balancer splits the partitions of the subscribed topics among the members
// of a group. Only the member the coordinator elects leader runs it, so every
// member must list the protocol the group agrees on, not the same code.
type Balancer interface {
	// Protocol is the assignment strategy's name in JoinGroup, e.g. "range";
	// members that use the same name must balance alike.
	Protocol() string
	// Cooperative reports whether the balancer supports incremental
	// cooperative rebalancing (KIP-429): partitions that stay with their
	// member are never revoked. A group consumer rebalances cooperatively
	// only when all its balancers do.
	Cooperative() bool
	// Balance returns the partitions of each member, by member ID then
	// topic. partitions gives the partition count of every topic any member
	// subscribes to (topics that do not exist are absent). members are
	// sorted: static members by instance ID, then dynamic ones by member ID.
	Balance(members []GroupMember, partitions map[string]int32) map[string]map[string][]int32
}

// GroupMember is a member of a group as the leader's Balancer sees it: what
// its subscription said.
type GroupMember struct {
	ID         string             // member ID given by the coordinator
	InstanceID string             // group.instance.id of a static member, "" if dynamic
	Topics     []string           // subscribed topics
	Owned      map[string][]int32 // partitions the member consumes now (ConsumerProtocol v1+)
	Generation int32              // generation of Owned, -1 if unknown
	Rack       string             // client rack, "" if none
	UserData   []byte             // the balancer's own data, if any
}

// memberCompare is the Java client's member order: static members first by
// instance ID, then dynamic members by member ID.
func memberCompare(a, b *GroupMember) int {
	switch {
	case a.InstanceID != "" && b.InstanceID != "":
		return cmp.Or(cmp.Compare(a.InstanceID, b.InstanceID), cmp.Compare(a.ID, b.ID))
	case a.InstanceID != "":
		return -1
	case b.InstanceID != "":
		return 1
	}
	return cmp.Compare(a.ID, b.ID)
}

func subscribes(m *GroupMember, topic string) bool { return slices.Contains(m.Topics, topic) }

// sortedTopics returns the topics of partitions that some member subscribes
// to, sorted.
func sortedTopics(members []GroupMember, partitions map[string]int32) []string {
	var ts []string
	for t, n := range partitions {
		if n <= 0 {
			continue
		}
		for i := range members {
			if subscribes(&members[i], t) {
				ts = append(ts, t)
				break
			}
		}
	}
	slices.Sort(ts)
	return ts
}

func newPlan(members []GroupMember) map[string]map[string][]int32 {
	plan := make(map[string]map[string][]int32, len(members))
	for _, m := range members {
		plan[m.ID] = map[string][]int32{}
	}
	return plan
}

// RangeBalancer returns the "range" strategy of the Java client (its
// default before 3.0 and kcat's): per topic, the subscribed members in order
// each take a contiguous range of partitions, the first members one more
// when the count does not divide evenly. Eager only. Racks are not taken
// into account.
func RangeBalancer() Balancer { return rangeBalancer{} }

type rangeBalancer struct{}

func (rangeBalancer) Protocol() string  { return "range" }
func (rangeBalancer) Cooperative() bool { return false }

func (rangeBalancer) Balance(members []GroupMember, partitions map[string]int32) map[string]map[string][]int32 {
	plan := newPlan(members)
	for _, t := range sortedTopics(members, partitions) {
		var subs []*GroupMember
		for i := range members {
			if subscribes(&members[i], t) {
				subs = append(subs, &members[i])
			}
		}
		slices.SortFunc(subs, memberCompare)
		n, c := int(partitions[t]), len(subs)
		per, extra := n/c, n%c
		for i, m := range subs {
			start := per*i + min(i, extra)
			count := per
			if i < extra {
				count++
			}
			for p := start; p < start+count; p++ {
				plan[m.ID][t] = append(plan[m.ID][t], int32(p))
			}
		}
	}
	return prunePlan(plan)
}

// RoundRobinBalancer returns the "roundrobin" strategy of the Java client:
// all partitions, sorted by topic and partition, dealt in turn to the
// members in order, skipping members that do not subscribe to the topic.
// Eager only.
func RoundRobinBalancer() Balancer { return roundRobinBalancer{} }

type roundRobinBalancer struct{}

func (roundRobinBalancer) Protocol() string  { return "roundrobin" }
func (roundRobinBalancer) Cooperative() bool { return false }

func (roundRobinBalancer) Balance(members []GroupMember, partitions map[string]int32) map[string]map[string][]int32 {
	plan := newPlan(members)
	ms := make([]*GroupMember, len(members))
	for i := range members {
		ms[i] = &members[i]
	}
	slices.SortFunc(ms, memberCompare)
	next := 0
	for _, t := range sortedTopics(members, partitions) {
		for p := int32(0); p < partitions[t]; p++ {
			for !subscribes(ms[next%len(ms)], t) {
				next++
			}
			m := ms[next%len(ms)]
			plan[m.ID][t] = append(plan[m.ID][t], p)
			next++
		}
	}
	return prunePlan(plan)
}

// CooperativeStickyBalancer returns the "cooperative-sticky" strategy
// (KIP-429): partitions are balanced as evenly as the subscriptions allow
// while members keep as many of the partitions they own as they can, and
// rebalancing is incremental: only the partitions that move are revoked.
// It is wire-compatible with the Java client's and librdkafka's
// (the generation is sent as user data and in ConsumerProtocol v2+), though
// it may place moving partitions differently.
func CooperativeStickyBalancer() Balancer { return stickyBalancer{} }

type stickyBalancer struct{}

func (stickyBalancer) Protocol() string  { return "cooperative-sticky" }
func (stickyBalancer) Cooperative() bool { return true }

type tpKey = topicPartition

func (stickyBalancer) Balance(members []GroupMember, partitions map[string]int32) map[string]map[string][]int32 {
	ms := make([]*GroupMember, len(members))
	for i := range members {
		ms[i] = &members[i]
	}
	slices.SortFunc(ms, memberCompare)
	owned := make([][]tpKey, len(ms))
	owner := map[tpKey]int{}
	ownerGen := map[tpKey]int32{}
	// The current owner of a partition is its claimant with the highest
	// generation; the first in member order wins a tie.
	for i, m := range ms {
		for t, ps := range m.Owned {
			if !subscribes(m, t) {
				continue
			}
			for _, p := range ps {
				if p < 0 || p >= partitions[t] {
					continue
				}
				k := tpKey{t, p}
				if j, ok := owner[k]; ok {
					if m.Generation <= ownerGen[k] {
						continue
					}
					owned[j] = slices.DeleteFunc(owned[j], func(x tpKey) bool { return x == k })
				}
				owner[k], ownerGen[k] = i, m.Generation
				owned[i] = append(owned[i], k)
			}
		}
	}
	// Eligible members per partition; partitions with fewer choices go
	// first so that they are placed while there is room.
	var free []tpKey
	eligible := map[string][]int{}
	for _, t := range sortedTopics(members, partitions) {
		for i, m := range ms {
			if subscribes(m, t) {
				eligible[t] = append(eligible[t], i)
			}
		}
		for p := int32(0); p < partitions[t]; p++ {
			if _, ok := owner[tpKey{t, p}]; !ok {
				free = append(free, tpKey{t, p})
			}
		}
	}
	slices.SortStableFunc(free, func(a, b tpKey) int { return cmp.Compare(len(eligible[a.topic]), len(eligible[b.topic])) })
	least := func(t string) int {
		best := -1
		for _, i := range eligible[t] {
			if best < 0 || len(owned[i]) < len(owned[best]) {
				best = i
			}
		}
		return best
	}
	for _, k := range free {
		i := least(k.topic)
		owned[i] = append(owned[i], k)
	}
	// Move partitions from the most loaded members to eligible members
	// with at least two fewer, until no such move is left. Each move lowers
	// the sum of squared counts, so this ends.
	for moved := true; moved; {
		moved = false
		order := make([]int, len(ms))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(owned[b]), len(owned[a])) })
		for _, a := range order {
			for x := len(owned[a]) - 1; x >= 0 && !moved; x-- {
				k := owned[a][x]
				b := least(k.topic)
				if b >= 0 && len(owned[b]) < len(owned[a])-1 {
					owned[a] = slices.Delete(owned[a], x, x+1)
					owned[b] = append(owned[b], k)
					moved = true
				}
			}
			if moved {
				break
			}
		}
	}
	plan := newPlan(members)
	for i, m := range ms {
		for _, k := range owned[i] {
			plan[m.ID][k.topic] = append(plan[m.ID][k.topic], k.partition)
		}
	}
	return prunePlan(plan)
}

// prunePlan sorts every member's partitions and drops empty topics.
func prunePlan(plan map[string]map[string][]int32) map[string]map[string][]int32 {
	for _, ts := range plan {
		for t, ps := range ts {
			if len(ps) == 0 {
				delete(ts, t)
				continue
			}
			slices.Sort(ps)
		}
	}
	return plan
}

// --- ConsumerProtocol bytes ---

// consumerProtocolVersion is the newest ConsumerProtocolSubscription and
// ConsumerProtocolAssignment version this package writes (Kafka 3.5+).
const consumerProtocolVersion = 3

// groupSubscription is a ConsumerProtocolSubscription (JoinGroup member
// metadata). Versions: 0 topics and user data; 1 adds owned partitions; 2 the
// generation; 3 the rack.
type groupSubscription struct {
	version    int16
	topics     []string
	userData   []byte // nil is null
	owned      map[string][]int32
	generation int32
	rack       *string
}

// appendTopicPartitions writes [topic [partition]] with topics sorted.
func appendTopicPartitions(b []byte, tps map[string][]int32) []byte {
	ts := make([]string, 0, len(tps))
	for t := range tps {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	b = appendInt32(b, int32(len(ts)))
	for _, t := range ts {
		b = appendString(b, t, false)
		b = appendInt32(b, int32(len(tps[t])))
		for _, p := range tps[t] {
			b = appendInt32(b, p)
		}
	}
	return b
}

func decodeTopicPartitions(d *decoder) map[string][]int32 {
	n := d.arrayLen(false, 6)
	out := make(map[string][]int32, max(n, 0))
	for i := 0; i < n && d.err == nil; i++ {
		t := d.string(false)
		np := d.arrayLen(false, 4)
		ps := make([]int32, 0, max(np, 0))
		for j := 0; j < np && d.err == nil; j++ {
			ps = append(ps, d.int32())
		}
		out[t] = append(out[t], ps...)
	}
	return out
}

func (s *groupSubscription) appendTo(b []byte) []byte {
	v := s.version
	b = appendInt16(b, v)
	b = appendInt32(b, int32(len(s.topics)))
	for _, t := range s.topics {
		b = appendString(b, t, false)
	}
	b = appendNullableBytes(b, s.userData, false)
	if v >= 1 {
		b = appendTopicPartitions(b, s.owned)
	}
	if v >= 2 {
		b = appendInt32(b, s.generation)
	}
	if v >= 3 {
		b = appendNullableString(b, s.rack, false)
	}
	return b
}

// decodeGroupSubscription reads a subscription of any version: fields of
// versions above 3 come after the known ones and are ignored, as the
// protocol's forward compatibility requires.
func decodeGroupSubscription(b []byte) (groupSubscription, error) {
	d := decoder{b: b}
	s := groupSubscription{version: d.int16(), generation: -1}
	if d.err == nil && s.version < 0 {
		return s, fmt.Errorf("%w: consumer subscription version %d", ErrMalformed, s.version)
	}
	n := d.arrayLen(false, 2)
	for i := 0; i < n && d.err == nil; i++ {
		s.topics = append(s.topics, d.string(false))
	}
	s.userData = d.nullableBytes(false)
	if s.version >= 1 {
		s.owned = decodeTopicPartitions(&d)
	}
	if s.version >= 2 {
		s.generation = d.int32()
	}
	if s.version >= 3 {
		s.rack = d.nullableString(false)
	}
	if d.err != nil {
		return s, fmt.Errorf("consumer subscription v%d: %w", s.version, d.err)
	}
	return s, nil
}

// groupAssignment is a ConsumerProtocolAssignment (SyncGroup member
// assignment); its versions 0-3 all have the same fields.
type groupAssignment struct {
	version  int16
	parts    map[string][]int32
	userData []byte
}

func (a *groupAssignment) appendTo(b []byte) []byte {
	b = appendInt16(b, a.version)
	b = appendTopicPartitions(b, a.parts)
	return appendNullableBytes(b, a.userData, false)
}

// decodeGroupAssignment reads an assignment of any version; empty bytes (a
// member the leader gave nothing) is an empty assignment.
func decodeGroupAssignment(b []byte) (groupAssignment, error) {
	if len(b) == 0 {
		return groupAssignment{parts: map[string][]int32{}}, nil
	}
	d := decoder{b: b}
	a := groupAssignment{version: d.int16()}
	if d.err == nil && a.version < 0 {
		return a, fmt.Errorf("%w: consumer assignment version %d", ErrMalformed, a.version)
	}
	a.parts = decodeTopicPartitions(&d)
	a.userData = d.nullableBytes(false)
	if d.err != nil {
		return a, fmt.Errorf("consumer assignment v%d: %w", a.version, d.err)
	}
	return a, nil
}

// DecodeConsumerAssignment decodes the assignment bytes of a member of a
// group of protocol type "consumer" (a ConsumerProtocolAssignment, as in
// DescribeGroupsResponseMember.MemberAssignment): the partitions the leader
// gave the member, by topic. Empty bytes are an empty assignment; malformed
// bytes give an error that wraps ErrMalformed.
func DecodeConsumerAssignment(b []byte) (map[string][]int32, error) {
	a, err := decodeGroupAssignment(b)
	if err != nil {
		return nil, err
	}
	return a.parts, nil
}

// stickyGeneration reads the generation from the user data of a
// cooperative-sticky subscription, reporting whether it found one: the
// Java client writes the generation alone (4 bytes); librdkafka and the
// eager sticky assignor write [topic [partition]] then the generation.
func stickyGeneration(ud []byte) (int32, bool) {
	d := decoder{b: ud}
	if len(ud) == 4 {
		return d.int32(), true
	}
	if len(ud) < 4 {
		return -1, false
	}
	decodeTopicPartitions(&d)
	if d.remaining() < 4 {
		return -1, false
	}
	g := d.int32()
	return g, d.err == nil
}

func appendStickyUserData(b []byte, generation int32) []byte { return appendInt32(b, generation) }

// groupMember turns a member's subscription bytes into a GroupMember.
func groupMember(id string, instanceID *string, metadata []byte) (GroupMember, error) {
	s, err := decodeGroupSubscription(metadata)
	if err != nil {
		return GroupMember{}, err
	}
	m := GroupMember{ID: id, InstanceID: deref(instanceID), Topics: s.topics, Owned: s.owned,
		Generation: s.generation, Rack: deref(s.rack), UserData: s.userData}
	if m.Generation < 0 && s.userData != nil {
		if g, ok := stickyGeneration(s.userData); ok {
			m.Generation = g
		}
	}
	return m, nil
}
