package kpax

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// GroupListing is a group as ListGroups sees it.
type GroupListing struct {
	Group        string
	ProtocolType string // "consumer" for consumer groups, "" for KIP-848 and share groups before Kafka 4.0
	State        string // e.g. "Stable", "Empty"; "" before Kafka 2.6 (ListGroups v4)
	// Type is "classic", "consumer" (KIP-848) or "share" (KIP-932); before
	// Kafka 3.8 (ListGroups v5) every group is "classic".
	Type        string
	Coordinator int32 // the broker that listed it
}

// ListGroups lists the groups of every broker, sorted by group ID. A broker
// that fails adds its error to the summary; the groups of the others are
// returned with it.
func (a *Admin) ListGroups(ctx context.Context) ([]GroupListing, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	ids, err := a.brokerIDs(ctx)
	if err != nil {
		return nil, err
	}
	var out []GroupListing
	s := summary{op: "ListGroups"}
	for _, id := range ids {
		r, v, err := a.requestBroker(ctx, id, &ListGroupsRequest{})
		if err != nil {
			s.add(&ItemError{Item: fmt.Sprintf("broker %d", id), Err: err})
			continue
		}
		resp := r.(*ListGroupsResponse)
		if err := itemErr(fmt.Sprintf("broker %d", id), resp.ErrorCode, nil); err != nil {
			s.add(err)
			continue
		}
		s.add(nil)
		for _, g := range resp.Groups {
			typ := g.GroupType
			if v < 5 || typ == "" {
				typ = "classic"
			}
			out = append(out, GroupListing{Group: g.GroupID, ProtocolType: g.ProtocolType, State: g.GroupState, Type: typ, Coordinator: id})
		}
	}
	slices.SortFunc(out, func(a, b GroupListing) int { return cmp.Compare(a.Group, b.Group) })
	return out, s.err()
}

// GroupDescription describes a group and its members.
type GroupDescription struct {
	Group        string
	State        string // e.g. "Stable", "Empty", "Dead" (a group that does not exist)
	Type         string // "classic", "consumer" (KIP-848) or "share" (KIP-932)
	ProtocolType string // classic groups: "consumer", "connect", ...
	Protocol     string // classic groups: the balancer, e.g. "range"; KIP-848 and share groups: the server assignor
	Epoch        int32  // KIP-848 and share groups: the group epoch; -1 for classic groups
	Members      []GroupMemberDescription
	Err          error
}

// GroupMemberDescription is a member of a group.
type GroupMemberDescription struct {
	MemberID   string
	InstanceID string // static membership (KIP-345), "" if none
	ClientID   string
	ClientHost string
	// Assigned is the member's partitions by topic: for a classic consumer
	// group decoded from its assignment, for a KIP-848 or share group the current
	// assignment. Nil for groups of other protocols.
	Assigned map[string][]int32
}

// DescribeGroups describes the groups, one result per group in the order
// given, each asked of its coordinator. KIP-848 consumer groups (Kafka 4.x)
// are described with ConsumerGroupDescribe, share groups (KIP-932) with
// ShareGroupDescribe.
func (a *Admin) DescribeGroups(ctx context.Context, groups ...string) ([]GroupDescription, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if err := checkGroups(groups); err != nil {
		return nil, err
	}
	out := make([]GroupDescription, len(groups))
	s := summary{op: "DescribeGroups"}
	for i, g := range groups {
		d, err := a.describeGroup(ctx, g)
		if err != nil {
			return nil, err
		}
		out[i] = d
		s.add(d.Err)
	}
	return out, s.err()
}

func (a *Admin) describeGroup(ctx context.Context, group string) (GroupDescription, error) {
	item := fmt.Sprintf("group %q", group)
	d := GroupDescription{Group: group, Type: "classic", Epoch: -1}
	r, err := a.coordRequest(ctx, &DescribeGroupsRequest{Groups: []string{group}}, func(r Response) int16 {
		if gs := r.(*DescribeGroupsResponse).Groups; len(gs) > 0 {
			return gs[0].ErrorCode
		}
		return 0
	})
	if err != nil {
		return d, err
	}
	gs := r.(*DescribeGroupsResponse).Groups
	if len(gs) == 0 {
		d.Err = &ItemError{Item: item, Err: ErrMissingResult}
		return d, nil
	}
	rg := gs[0]
	if rg.ErrorCode == ErrGroupIdNotFound.code || rg.ErrorCode == 0 && rg.GroupState == "Dead" {
		// Not a classic group (Kafka 4.x says GROUP_ID_NOT_FOUND at v6,
		// state Dead before): maybe a KIP-848 one.
		if d2, ok, err := a.describeConsumerGroup(ctx, group); err != nil || ok {
			return d2, err
		}
		if d2, ok, err := a.describeShareGroup(ctx, group); err != nil || ok { // admin_share.go
			return d2, err
		}
	}
	if d.Err = itemErr(item, rg.ErrorCode, nil); d.Err != nil {
		return d, nil
	}
	d.State, d.ProtocolType, d.Protocol = rg.GroupState, rg.ProtocolType, rg.ProtocolData
	for _, m := range rg.Members {
		md := GroupMemberDescription{MemberID: m.MemberID, InstanceID: deref(m.GroupInstanceID), ClientID: m.ClientID, ClientHost: m.ClientHost}
		if rg.ProtocolType == "consumer" && len(m.MemberAssignment) > 0 {
			if as, err := DecodeConsumerAssignment(m.MemberAssignment); err == nil {
				md.Assigned = as
			}
		}
		d.Members = append(d.Members, md)
	}
	return d, nil
}

// describeConsumerGroup describes a KIP-848 group; ok is false when the
// broker does not know the API or the group.
func (a *Admin) describeConsumerGroup(ctx context.Context, group string) (GroupDescription, bool, error) {
	d := GroupDescription{Group: group, Type: "consumer", ProtocolType: "consumer"}
	r, err := a.coordRequest(ctx, &ConsumerGroupDescribeRequest{GroupIDs: []string{group}}, func(r Response) int16 {
		if gs := r.(*ConsumerGroupDescribeResponse).Groups; len(gs) > 0 {
			return gs[0].ErrorCode
		}
		return 0
	})
	if err != nil {
		if errors.Is(err, ErrUnsupportedVersion) {
			return d, false, nil
		}
		return d, false, err
	}
	gs := r.(*ConsumerGroupDescribeResponse).Groups
	if len(gs) == 0 || gs[0].ErrorCode != 0 {
		return d, false, nil
	}
	g := gs[0]
	d.State, d.Protocol, d.Epoch = g.GroupState, g.AssignorName, g.GroupEpoch
	for _, m := range g.Members {
		md := GroupMemberDescription{MemberID: m.MemberID, InstanceID: deref(m.InstanceID), ClientID: m.ClientID, ClientHost: m.ClientHost,
			Assigned: map[string][]int32{}}
		for _, tp := range m.Assignment.TopicPartitions {
			md.Assigned[tp.TopicName] = append(md.Assigned[tp.TopicName], tp.Partitions...)
		}
		d.Members = append(d.Members, md)
	}
	return d, true, nil
}

// coordRequest sends a coordinator's request (routed by its group or
// transactional ID), and again while the coordinator is loading, has moved
// or is not available, until ctx ends; code returns the response's error
// code.
func (a *Admin) coordRequest(ctx context.Context, req Request, code func(Response) int16) (Response, error) {
	return a.retryCoordinator(ctx, func() (Response, int16, error) {
		r, _, err := a.request(ctx, req) // invalidates a coordinator that moved
		if err != nil {
			return nil, 0, err
		}
		return r, code(r), nil
	})
}

// retryCoordinator calls send, which returns a coordinator's response and
// its error code, again while the code says the coordinator is loading
// (COORDINATOR_LOAD_IN_PROGRESS), has moved (NOT_COORDINATOR) or is not
// available (COORDINATOR_NOT_AVAILABLE): send must then find the
// coordinator afresh. When ctx ends in a retry, the last response stands,
// with its error code for the caller to report per item.
func (a *Admin) retryCoordinator(ctx context.Context, send func() (Response, int16, error)) (Response, error) {
	var last Response
	for attempt := 0; ; attempt++ {
		r, c, err := send()
		if err != nil && last != nil && ctx.Err() != nil {
			return last, nil
		}
		if err != nil {
			return nil, err
		}
		last = r
		if c != ErrCoordinatorLoadInProgress.code && c != ErrNotCoordinator.code && c != ErrCoordinatorNotAvailable.code {
			return r, nil
		}
		if !sleep(ctx, min(a.cl.cfg.retryBackoff<<min(attempt, 16), a.cl.cfg.retryBackoffMax)) {
			return r, nil
		}
	}
}

// DeleteGroupResult is the outcome of deleting one group.
type DeleteGroupResult struct {
	Group string
	Err   error // e.g. ErrNonEmptyGroup, ErrGroupIdNotFound
}

// DeleteGroups deletes groups with no members, and their committed
// offsets, one result per group in the order given.
func (a *Admin) DeleteGroups(ctx context.Context, groups ...string) ([]DeleteGroupResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if err := checkGroups(groups); err != nil {
		return nil, err
	}
	out := make([]DeleteGroupResult, len(groups))
	s := summary{op: "DeleteGroups"}
	for i, g := range groups {
		r, err := a.coordRequest(ctx, &DeleteGroupsRequest{GroupsNames: []string{g}}, func(r Response) int16 {
			if rs := r.(*DeleteGroupsResponse).Results; len(rs) > 0 {
				return rs[0].ErrorCode
			}
			return 0
		})
		if err != nil {
			return nil, err
		}
		res := DeleteGroupResult{Group: g, Err: &ItemError{Item: fmt.Sprintf("group %q", g), Err: ErrMissingResult}}
		for _, rr := range r.(*DeleteGroupsResponse).Results {
			if rr.GroupID == g {
				res.Err = itemErr(fmt.Sprintf("group %q", g), rr.ErrorCode, nil)
			}
		}
		out[i] = res
		s.add(res.Err)
	}
	return out, s.err()
}

// GroupOffset is a group's committed offset of one partition.
type GroupOffset struct {
	Topic       string
	Partition   int32
	Offset      int64 // -1: nothing committed
	LeaderEpoch int32 // -1 if unknown
	Metadata    string
	Err         error
}

// CommittedOffsets returns the offsets the group has committed, sorted by
// topic and partition: of the topics given, or of every topic when none is.
func (a *Admin) CommittedOffsets(ctx context.Context, group string, topics ...string) ([]GroupOffset, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, invalidf("empty group ID")
	}
	tp := TopicPartitions(nil)
	if len(topics) > 0 {
		if err := checkTopics(topics); err != nil {
			return nil, err
		}
		var err error
		if tp, _, err = a.expand(ctx, allPartitions(topics)); err != nil {
			return nil, err
		}
	}
	// v8+ reads Groups, older versions GroupID and Topics: fill both.
	req := &OffsetFetchRequest{GroupID: group, Groups: []OffsetFetchRequestGroup{{GroupID: group, MemberEpoch: -1}}}
	for _, t := range tp.sortedKeys() {
		req.Topics = append(req.Topics, OffsetFetchRequestTopic{Name: t, PartitionIndexes: tp[t]})
		req.Groups[0].Topics = append(req.Groups[0].Topics, OffsetFetchRequestGroupTopic{Name: t, PartitionIndexes: tp[t]})
	}
	var v int16
	r, err := a.retryCoordinator(ctx, func() (Response, int16, error) {
		r, rv, err := a.request(ctx, req)
		if err != nil {
			return nil, 0, err
		}
		v = rv
		_, code := offsetFetchResult(r.(*OffsetFetchResponse), v)
		return r, code, nil
	})
	if err != nil {
		return nil, err
	}
	out, code := offsetFetchResult(r.(*OffsetFetchResponse), v)
	if err := itemErr(fmt.Sprintf("group %q", group), code, nil); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b GroupOffset) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	s := summary{op: "CommittedOffsets"}
	for _, o := range out {
		s.add(o.Err)
	}
	return out, s.err()
}

// offsetFetchResult reads an OffsetFetch response of the version: the
// partitions and the group's error code.
func offsetFetchResult(resp *OffsetFetchResponse, v int16) ([]GroupOffset, int16) {
	var out []GroupOffset
	if v >= 8 {
		if len(resp.Groups) == 0 {
			return nil, ErrUnknownServerError.code
		}
		g := resp.Groups[0]
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				out = append(out, GroupOffset{Topic: t.Name, Partition: p.PartitionIndex, Offset: p.CommittedOffset,
					LeaderEpoch: p.CommittedLeaderEpoch, Metadata: deref(p.Metadata), Err: itemErr(partitionItem(t.Name, p.PartitionIndex), p.ErrorCode, nil)})
			}
		}
		return out, g.ErrorCode
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, GroupOffset{Topic: t.Name, Partition: p.PartitionIndex, Offset: p.CommittedOffset,
				LeaderEpoch: p.CommittedLeaderEpoch, Metadata: deref(p.Metadata), Err: itemErr(partitionItem(t.Name, p.PartitionIndex), p.ErrorCode, nil)})
		}
	}
	return out, resp.ErrorCode
}

// PartitionResult is the outcome of an admin call for one partition.
type PartitionResult struct {
	Topic     string
	Partition int32
	Err       error
}

// AlterGroupOffsets commits offsets for a group that has no active members
// (as kafka-consumer-groups --reset-offsets does), one result per offset in
// the order given. A group with members rejects it (ErrUnknownMemberId or
// ErrIllegalGeneration): its members commit their own offsets.
func (a *Admin) AlterGroupOffsets(ctx context.Context, group string, offsets ...TopicPartitionOffset) ([]PartitionResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, invalidf("empty group ID")
	}
	if len(offsets) == 0 {
		return nil, invalidf("no offsets")
	}
	req := &OffsetCommitRequest{GroupID: group, GenerationIDOrMemberEpoch: -1, RetentionTimeMs: -1}
	idx := map[string]int{}
	for _, o := range offsets {
		if err := checkTopic(o.Topic); err != nil {
			return nil, err
		}
		if o.Partition < 0 || o.Offset < 0 {
			return nil, invalidf("%s: offset %d", partitionItem(o.Topic, o.Partition), o.Offset)
		}
		i, ok := idx[o.Topic]
		if !ok {
			i = len(req.Topics)
			idx[o.Topic] = i
			req.Topics = append(req.Topics, OffsetCommitRequestTopic{Name: o.Topic})
		}
		epoch := o.LeaderEpoch
		if epoch <= 0 { // 0 is also the zero value: unknown is the safe choice
			epoch = -1
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, OffsetCommitRequestTopicPartition{
			PartitionIndex: o.Partition, CommittedOffset: o.Offset, CommittedLeaderEpoch: epoch, CommitTimestamp: -1, CommittedMetadata: ptr(o.Metadata)})
	}
	r, err := a.coordRequest(ctx, req, func(r Response) int16 {
		for _, t := range r.(*OffsetCommitResponse).Topics {
			for _, p := range t.Partitions {
				return p.ErrorCode
			}
		}
		return 0
	})
	if err != nil {
		return nil, err
	}
	got := map[topicPartition]int16{}
	for _, t := range r.(*OffsetCommitResponse).Topics {
		for _, p := range t.Partitions {
			got[topicPartition{t.Name, p.PartitionIndex}] = p.ErrorCode
		}
	}
	return partitionResults("AlterGroupOffsets", offsets, got)
}

func partitionResults(op string, offsets []TopicPartitionOffset, got map[topicPartition]int16) ([]PartitionResult, error) {
	out := make([]PartitionResult, len(offsets))
	s := summary{op: op}
	for i, o := range offsets {
		res := PartitionResult{Topic: o.Topic, Partition: o.Partition}
		if code, ok := got[topicPartition{o.Topic, o.Partition}]; !ok {
			res.Err = &ItemError{Item: partitionItem(o.Topic, o.Partition), Err: ErrMissingResult}
		} else {
			res.Err = itemErr(partitionItem(o.Topic, o.Partition), code, nil)
		}
		out[i] = res
		s.add(res.Err)
	}
	return out, s.err()
}

// DeleteGroupOffsets deletes a group's committed offsets of the partitions
// (a topic with none listed: all its partitions), one result per partition
// sorted by topic and partition. A group subscribed to a topic keeps its
// offsets (ErrGroupSubscribedToTopic).
func (a *Admin) DeleteGroupOffsets(ctx context.Context, group string, tp TopicPartitions) ([]PartitionResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, invalidf("empty group ID")
	}
	if err := checkPartitions(tp, false); err != nil {
		return nil, err
	}
	tp, _, err := a.expand(ctx, tp)
	if err != nil {
		return nil, err
	}
	req := &OffsetDeleteRequest{GroupID: group}
	var offsets []TopicPartitionOffset
	for _, t := range tp.sortedKeys() {
		rt := OffsetDeleteRequestTopic{Name: t}
		ps := slices.Sorted(slices.Values(tp[t]))
		for _, p := range ps {
			rt.Partitions = append(rt.Partitions, OffsetDeleteRequestTopicPartition{PartitionIndex: p})
			offsets = append(offsets, TopicPartitionOffset{Topic: t, Partition: p})
		}
		req.Topics = append(req.Topics, rt)
	}
	r, err := a.coordRequest(ctx, req, func(r Response) int16 { return r.(*OffsetDeleteResponse).ErrorCode })
	if err != nil {
		return nil, err
	}
	resp := r.(*OffsetDeleteResponse)
	got := map[topicPartition]int16{}
	for _, o := range offsets {
		if resp.ErrorCode != 0 {
			got[topicPartition{o.Topic, o.Partition}] = resp.ErrorCode
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if resp.ErrorCode == 0 {
				got[topicPartition{t.Name, p.PartitionIndex}] = p.ErrorCode
			}
		}
	}
	return partitionResults("DeleteGroupOffsets", offsets, got)
}
