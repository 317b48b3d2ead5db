package kpax

import (
	"context"
	"errors"
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
