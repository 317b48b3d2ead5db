package main

// The sink's group coordinator: enough of the classic group protocol for one
// member per group (each run joins a fresh group), with no committed offsets
// kept, so that group consumers can run against the sink too.

import (
	"fmt"

	"h12.me/kpax"
)

const (
	keyOffsetCommit    = 8
	keyOffsetFetch     = 9
	keyFindCoordinator = 10
	keyJoinGroup       = 11
	keyHeartbeat       = 12
	keyLeaveGroup      = 13
	keySyncGroup       = 14

	errMemberIDRequired = 79
)

var groupKeys = []int16{keyOffsetCommit, keyOffsetFetch, keyFindCoordinator, keyJoinGroup, keyHeartbeat,
	keyLeaveGroup, keySyncGroup}

func newGroupRequest(key int16) kpax.Request {
	switch key {
	case keyOffsetCommit:
		return &kpax.OffsetCommitRequest{}
	case keyOffsetFetch:
		return &kpax.OffsetFetchRequest{}
	case keyFindCoordinator:
		return &kpax.FindCoordinatorRequest{}
	case keyJoinGroup:
		return &kpax.JoinGroupRequest{}
	case keyHeartbeat:
		return &kpax.HeartbeatRequest{}
	case keyLeaveGroup:
		return &kpax.LeaveGroupRequest{}
	case keySyncGroup:
		return &kpax.SyncGroupRequest{}
	}
	return nil
}

type sinkGroup struct {
	gen        int32
	protoType  string
	protocol   string
	assignment []byte
}

// groupResponse answers a group request; nil if req is not one.
func (s *sink) groupResponse(req kpax.Request, ver int16) kpax.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups == nil {
		s.groups = map[string]*sinkGroup{}
	}
	group := func(id string) *sinkGroup {
		g := s.groups[id]
		if g == nil {
			g = &sinkGroup{}
			s.groups[id] = g
		}
		return g
	}
	switch req := req.(type) {
	case *kpax.FindCoordinatorRequest:
		resp := &kpax.FindCoordinatorResponse{NodeID: 0, Host: s.host, Port: s.port}
		for _, k := range req.CoordinatorKeys {
			resp.Coordinators = append(resp.Coordinators, kpax.FindCoordinatorResponseCoordinator{
				Key: k, NodeID: 0, Host: s.host, Port: s.port})
		}
		return resp
	case *kpax.JoinGroupRequest:
		g := group(req.GroupID)
		member := req.MemberID
		if member == "" {
			s.members++
			member = fmt.Sprintf("kbench-member-%d", s.members)
			if ver >= 4 {
				return &kpax.JoinGroupResponse{ErrorCode: errMemberIDRequired, MemberID: member, GenerationID: -1}
			}
		}
		g.gen++
		g.protoType = req.ProtocolType
		resp := &kpax.JoinGroupResponse{GenerationID: g.gen, ProtocolType: &g.protoType, Leader: member, MemberID: member}
		if len(req.Protocols) > 0 {
			g.protocol = req.Protocols[0].Name
			resp.ProtocolName = &g.protocol
			resp.Members = []kpax.JoinGroupResponseMember{{MemberID: member, Metadata: req.Protocols[0].Metadata}}
		}
		return resp
	case *kpax.SyncGroupRequest:
		g := group(req.GroupID)
		for _, a := range req.Assignments {
			if a.MemberID == req.MemberID {
				g.assignment = append([]byte(nil), a.Assignment...)
			}
		}
		return &kpax.SyncGroupResponse{ProtocolType: &g.protoType, ProtocolName: &g.protocol, Assignment: g.assignment}
	case *kpax.HeartbeatRequest:
		return &kpax.HeartbeatResponse{}
	case *kpax.LeaveGroupRequest:
		resp := &kpax.LeaveGroupResponse{}
		for _, m := range req.Members {
			resp.Members = append(resp.Members, kpax.LeaveGroupResponseMember{MemberID: m.MemberID, GroupInstanceID: m.GroupInstanceID})
		}
		return resp
	case *kpax.OffsetCommitRequest:
		resp := &kpax.OffsetCommitResponse{}
		for _, t := range req.Topics {
			rt := kpax.OffsetCommitResponseTopic{Name: t.Name, TopicID: t.TopicID}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kpax.OffsetCommitResponseTopicPartition{PartitionIndex: p.PartitionIndex})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kpax.OffsetFetchRequest:
		// Nothing committed: -1 for every partition asked about.
		resp := &kpax.OffsetFetchResponse{}
		for _, t := range req.Topics {
			rt := kpax.OffsetFetchResponseTopic{Name: t.Name}
			for _, p := range t.PartitionIndexes {
				rt.Partitions = append(rt.Partitions, kpax.OffsetFetchResponseTopicPartition{
					PartitionIndex: p, CommittedOffset: -1, CommittedLeaderEpoch: -1})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		for _, g := range req.Groups {
			rg := kpax.OffsetFetchResponseGroup{GroupID: g.GroupID}
			for _, t := range g.Topics {
				rt := kpax.OffsetFetchResponseGroupTopic{Name: t.Name, TopicID: t.TopicID} // v10 names topics by ID
				for _, p := range t.PartitionIndexes {
					rt.Partitions = append(rt.Partitions, kpax.OffsetFetchResponseGroupTopicPartition{
						PartitionIndex: p, CommittedOffset: -1, CommittedLeaderEpoch: -1})
				}
				rg.Topics = append(rg.Topics, rt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}
	return nil
}
