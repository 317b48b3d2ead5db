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

// ShareGroupOffset is where a share group reads one partition, and how
// many of its records the group has still to settle.
type ShareGroupOffset struct {
	Topic     string
	Partition int32
	// Offset is the share-partition start offset the broker keeps: records
	// before it are settled (accepted, rejected or archived); -1 when the
	// group has no state for the partition (it has not read it yet: where
	// it starts is the group's share.auto.offset.reset). It is broker
	// behaviour, not kpax's: Kafka 4.4 moves it lazily, so it may trail the
	// settled records: 0 after the first records of a new group are
	// accepted, the end offset - 1 once every record is.
	Offset      int64
	LeaderEpoch int32 // -1 if unknown
	End         int64 // the partition's end offset (high watermark), -1 if unknown
	// Lag is how many records from Offset to End are not settled yet: the
	// broker's count when it gives one (DescribeShareGroupOffsets v1, Kafka
	// 4.2+), which leaves out records after Offset already acknowledged;
	// else End - Offset, an upper bound. -1 when Offset is -1 or Err is set.
	Lag int64
	Err error
}

// ShareGroupOffsets returns where a share group reads each partition of
// the topics (every topic it has state for when none is given), with its
// lag, sorted by topic and partition (see ShareGroupOffset).
// DescribeShareGroupOffsets and ListOffsets, Kafka 4.1+.
func (a *Admin) ShareGroupOffsets(ctx context.Context, group string, topics ...string) ([]ShareGroupOffset, error) {
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
	g, version, err := a.describeShareOffsets(ctx, rg)
	if err != nil {
		return nil, err
	}
	var out []ShareGroupOffset
	tp := TopicPartitions{}
	for _, t := range g.Topics {
		for _, p := range t.Partitions {
			out = append(out, ShareGroupOffset{Topic: t.TopicName, Partition: p.PartitionIndex, Offset: p.StartOffset,
				LeaderEpoch: p.LeaderEpoch, End: -1, Lag: -1, Err: itemErr(partitionItem(t.TopicName, p.PartitionIndex), p.ErrorCode, p.ErrorMessage)})
			if version >= 1 {
				out[len(out)-1].Lag = max(p.Lag, -1)
			}
			tp[t.TopicName] = append(tp[t.TopicName], p.PartitionIndex)
		}
	}
	slices.SortFunc(out, func(x, y ShareGroupOffset) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	if err := a.shareLag(ctx, out, tp, version); err != nil {
		return nil, err
	}
	s := summary{op: "ShareGroupOffsets"}
	for _, o := range out {
		s.add(o.Err)
	}
	return out, s.err()
}

// describeShareOffsets sends DescribeShareGroupOffsets for one group and
// returns its result and the version it went at.
func (a *Admin) describeShareOffsets(ctx context.Context, rg DescribeShareGroupOffsetsRequestGroup) (*DescribeShareGroupOffsetsResponseGroup, int16, error) {
	req := &DescribeShareGroupOffsetsRequest{Groups: []DescribeShareGroupOffsetsRequestGroup{rg}}
	var version int16
	r, err := a.retryCoordinator(ctx, func() (Response, int16, error) {
		r, v, err := a.request(ctx, req) // invalidates a coordinator that moved
		if err != nil {
			return nil, 0, err
		}
		version = v
		if gs := r.(*DescribeShareGroupOffsetsResponse).Groups; len(gs) > 0 {
			return r, gs[0].ErrorCode, nil
		}
		return r, 0, nil
	})
	if err != nil {
		return nil, 0, err
	}
	item := fmt.Sprintf("group %q", rg.GroupID)
	gs := r.(*DescribeShareGroupOffsetsResponse).Groups
	if len(gs) == 0 {
		return nil, 0, &ItemError{Item: item, Err: ErrMissingResult}
	}
	if err := itemErr(item, gs[0].ErrorCode, gs[0].ErrorMessage); err != nil {
		return nil, 0, err
	}
	return &gs[0], version, nil
}

// shareLag fills in the end offsets of out (the partitions tp), and the
// lag where the broker did not give it (before v1).
func (a *Admin) shareLag(ctx context.Context, out []ShareGroupOffset, tp TopicPartitions, version int16) error {
	if len(out) == 0 {
		return nil
	}
	ends, err := a.ListOffsets(ctx, OffsetsLatest, tp)
	if ends == nil && err != nil {
		return err
	}
	at := map[topicPartition]ListedOffset{}
	for _, e := range ends {
		at[topicPartition{e.Topic, e.Partition}] = e
	}
	for i := range out {
		o := &out[i]
		e, ok := at[topicPartition{o.Topic, o.Partition}]
		switch {
		case o.Err != nil:
			o.Lag = -1
			continue
		case !ok:
			o.Err = &ItemError{Item: partitionItem(o.Topic, o.Partition), Err: ErrMissingResult}
		case e.Err != nil:
			o.Err = e.Err
		default:
			o.End = e.Offset
		}
		switch {
		case o.Err != nil || o.Offset < 0:
			o.Lag = -1
		case version < 1:
			o.Lag = max(o.End-o.Offset, 0)
		}
	}
	return nil
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
