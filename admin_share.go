package kpax

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// This file holds the admin side of share groups (KIP-932, Kafka 4.1+).

// describeShareGroup describes a share group with ShareGroupDescribe; ok is
// false when the broker does not know the API or the group as a share
// group.
func (a *Admin) describeShareGroup(ctx context.Context, group string) (GroupDescription, bool, error) {
	d := GroupDescription{Group: group, Type: "share", ProtocolType: "share"}
	r, err := a.coordRequest(ctx, &ShareGroupDescribeRequest{GroupIDs: []string{group}}, func(r Response) int16 {
		if gs := r.(*ShareGroupDescribeResponse).Groups; len(gs) > 0 {
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
	gs := r.(*ShareGroupDescribeResponse).Groups
	if len(gs) == 0 || gs[0].ErrorCode != 0 {
		return d, false, nil
	}
	g := gs[0]
	d.State, d.Protocol, d.Epoch = g.GroupState, g.AssignorName, g.GroupEpoch
	for _, m := range g.Members {
		md := GroupMemberDescription{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: map[string][]int32{}}
		for _, tp := range m.Assignment.TopicPartitions {
			md.Assigned[tp.TopicName] = append(md.Assigned[tp.TopicName], tp.Partitions...)
		}
		d.Members = append(d.Members, md)
	}
	return d, true, nil
}

// ShareGroupOffsets returns where a share group reads each partition of
// the topics (every topic it has state for when none is given), sorted by
// topic and partition: GroupOffset.Offset is the share-partition start
// offset (records before it are settled), -1 when the group has none.
// DescribeShareGroupOffsets, Kafka 4.1+.
func (a *Admin) ShareGroupOffsets(ctx context.Context, group string, topics ...string) ([]GroupOffset, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, invalidf("empty group ID")
	}
	rg := DescribeShareGroupOffsetsRequestGroup{GroupID: group}
	if len(topics) > 0 {
		md, err := a.cl.Metadata(ctx, topics...)
		if err != nil {
			return nil, err
		}
		for _, t := range md.Topics {
			if t.Err != nil {
				return nil, &ItemError{Item: fmt.Sprintf("topic %q", t.Name), Err: t.Err}
			}
			rt := DescribeShareGroupOffsetsRequestGroupTopic{TopicName: t.Name}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, p.Partition)
			}
			rg.Topics = append(rg.Topics, rt)
		}
	}
	req := &DescribeShareGroupOffsetsRequest{Groups: []DescribeShareGroupOffsetsRequestGroup{rg}}
	r, err := a.coordRequest(ctx, req, func(r Response) int16 {
		if gs := r.(*DescribeShareGroupOffsetsResponse).Groups; len(gs) > 0 {
			return gs[0].ErrorCode
		}
		return 0
	})
	if err != nil {
		return nil, err
	}
	gs := r.(*DescribeShareGroupOffsetsResponse).Groups
	if len(gs) == 0 {
		return nil, &ItemError{Item: fmt.Sprintf("group %q", group), Err: ErrMissingResult}
	}
	if err := itemErr(fmt.Sprintf("group %q", group), gs[0].ErrorCode, gs[0].ErrorMessage); err != nil {
		return nil, err
	}
	var out []GroupOffset
	s := summary{op: "ShareGroupOffsets"}
	for _, t := range gs[0].Topics {
		for _, p := range t.Partitions {
			o := GroupOffset{Topic: t.TopicName, Partition: p.PartitionIndex, Offset: p.StartOffset, LeaderEpoch: p.LeaderEpoch,
				Err: itemErr(partitionItem(t.TopicName, p.PartitionIndex), p.ErrorCode, p.ErrorMessage)}
			s.add(o.Err)
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(x, y GroupOffset) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return out, s.err()
}

// AlterShareGroupOffsets sets where a share group without members reads
// partitions (its share-partition start offsets), one result per offset in
// the order given; LeaderEpoch and Metadata are not used.
// AlterShareGroupOffsets, Kafka 4.1+.
func (a *Admin) AlterShareGroupOffsets(ctx context.Context, group string, offsets ...TopicPartitionOffset) ([]PartitionResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, invalidf("empty group ID")
	}
	if len(offsets) == 0 {
		return nil, invalidf("no offsets")
	}
	req := &AlterShareGroupOffsetsRequest{GroupID: group}
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
			req.Topics = append(req.Topics, AlterShareGroupOffsetsRequestTopic{TopicName: o.Topic})
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, AlterShareGroupOffsetsRequestTopicPartition{PartitionIndex: o.Partition, StartOffset: o.Offset})
	}
	r, err := a.coordRequest(ctx, req, func(r Response) int16 { return r.(*AlterShareGroupOffsetsResponse).ErrorCode })
	if err != nil {
		return nil, err
	}
	resp := r.(*AlterShareGroupOffsetsResponse)
	if err := itemErr(fmt.Sprintf("group %q", group), resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, err
	}
	got := map[topicPartition]int16{}
	for _, t := range resp.Responses {
		for _, p := range t.Partitions {
			got[topicPartition{t.TopicName, p.PartitionIndex}] = p.ErrorCode
		}
	}
	return partitionResults("AlterShareGroupOffsets", offsets, got)
}

// DeleteShareGroupOffsetsResult is the outcome of deleting a share group's
// state for one topic.
type DeleteShareGroupOffsetsResult struct {
	Topic string
	ID    UUID  // the topic's ID, zero when the broker does not know the topic
	Err   error // e.g. ErrUnknownTopicOrPartition
}

// DeleteShareGroupOffsets deletes a share group's state (start offsets and
// the delivery state of its records) for whole topics, one result per topic
// in the order given: a member that reads them again starts afresh, where
// share.auto.offset.reset says. The group must have no members
// (ErrNonEmptyGroup otherwise). DeleteShareGroupOffsets, Kafka 4.1+.
func (a *Admin) DeleteShareGroupOffsets(ctx context.Context, group string, topics ...string) ([]DeleteShareGroupOffsetsResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, invalidf("empty group ID")
	}
	if err := checkTopics(topics); err != nil {
		return nil, err
	}
	req := &DeleteShareGroupOffsetsRequest{GroupID: group}
	for _, t := range topics {
		req.Topics = append(req.Topics, DeleteShareGroupOffsetsRequestTopic{TopicName: t})
	}
	r, err := a.coordRequest(ctx, req, func(r Response) int16 { return r.(*DeleteShareGroupOffsetsResponse).ErrorCode })
	if err != nil {
		return nil, err
	}
	resp := r.(*DeleteShareGroupOffsetsResponse)
	if err := itemErr(fmt.Sprintf("group %q", group), resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, err
	}
	got := map[string]*DeleteShareGroupOffsetsResponseItem{}
	for i := range resp.Responses {
		got[resp.Responses[i].TopicName] = &resp.Responses[i]
	}
	out := make([]DeleteShareGroupOffsetsResult, len(topics))
	s := summary{op: "DeleteShareGroupOffsets"}
	for i, t := range topics {
		res := DeleteShareGroupOffsetsResult{Topic: t, Err: &ItemError{Item: fmt.Sprintf("topic %q", t), Err: ErrMissingResult}}
		if g := got[t]; g != nil {
			res.ID, res.Err = g.TopicID, itemErr(fmt.Sprintf("topic %q", t), g.ErrorCode, g.ErrorMessage)
		}
		out[i] = res
		s.add(res.Err)
	}
	return out, s.err()
}
