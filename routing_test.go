package kpax

import "testing"

// TestGeneratedRouting checks the routing table gen/routing.go emits: where
// each kind of request goes, the key it is routed by, and the lanes.
func TestGeneratedRouting(t *testing.T) {
	txn := "tx"
	tests := []struct {
		name     string
		req      Request
		route    routeKind
		kind     int8
		key      string
		keyed    bool
		lane     int
		topic    string
		topicID  UUID
		part     int32
		hasFirst bool
	}{
		{name: "produce by name", req: &ProduceRequest{TopicData: []ProduceRequestTopicData{{Name: "t", PartitionData: []ProduceRequestTopicDataPartitionData{{Index: 2}}}}},
			route: routeLeader, topic: "t", part: 2, hasFirst: true},
		{name: "produce by ID", req: &ProduceRequest{TopicData: []ProduceRequestTopicData{{TopicID: UUID{1}, PartitionData: []ProduceRequestTopicDataPartitionData{{Index: 1}}}}},
			route: routeLeader, topicID: UUID{1}, part: 1, hasFirst: true},
		{name: "produce without partitions", req: &ProduceRequest{TopicData: []ProduceRequestTopicData{{Name: "t"}}}, route: routeLeader},
		{name: "fetch", req: &FetchRequest{Topics: []FetchRequestTopic{{Topic: "t", Partitions: []FetchRequestTopicPartition{{Partition: 3}}}}},
			route: routeLeader, lane: laneFetch, topic: "t", part: 3, hasFirst: true},
		{name: "list offsets", req: &ListOffsetsRequest{Topics: []ListOffsetsRequestTopic{{Name: "t", Partitions: []ListOffsetsRequestTopicPartition{{PartitionIndex: 4}}}}},
			route: routeLeader, topic: "t", part: 4, hasFirst: true},
		{name: "create topics", req: &CreateTopicsRequest{}, route: routeController},
		{name: "join", req: &JoinGroupRequest{GroupID: "g"}, route: routeGroupCoordinator, key: "g", keyed: true, lane: laneGroup},
		{name: "sync", req: &SyncGroupRequest{GroupID: "g"}, route: routeGroupCoordinator, key: "g", keyed: true, lane: laneGroup},
		{name: "join without a group", req: &JoinGroupRequest{}, route: routeGroupCoordinator, lane: laneGroup},
		{name: "offset fetch v8+", req: &OffsetFetchRequest{Groups: []OffsetFetchRequestGroup{{GroupID: "g8"}}}, route: routeGroupCoordinator, key: "g8", keyed: true},
		{name: "offset fetch old", req: &OffsetFetchRequest{GroupID: "g0"}, route: routeGroupCoordinator, key: "g0", keyed: true},
		{name: "describe groups", req: &DescribeGroupsRequest{Groups: []string{"a", "b"}}, route: routeGroupCoordinator, key: "a", keyed: true},
		{name: "txn offset commit: the group's", req: &TxnOffsetCommitRequest{TransactionalID: "tx", GroupID: "g"}, route: routeGroupCoordinator, key: "g", keyed: true},
		{name: "init producer ID, transactional", req: &InitProducerIdRequest{TransactionalID: &txn}, route: routeTxnCoordinator, kind: 1, key: "tx", keyed: true},
		{name: "init producer ID, idempotent", req: &InitProducerIdRequest{}, route: routeTxnCoordinator},
		{name: "end txn", req: &EndTxnRequest{TransactionalID: "tx"}, route: routeTxnCoordinator, kind: 1, key: "tx", keyed: true},
		{name: "metadata", req: &MetadataRequest{}, route: routeAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := apiRoute(tt.req.APIKey()); r != tt.route {
				t.Errorf("route %d, want %d", r, tt.route)
			}
			if l := apiLane(tt.req.APIKey()); l != tt.lane {
				t.Errorf("lane %d, want %d", l, tt.lane)
			}
			kind, key, ok := coordinatorKey(tt.req)
			if kind != tt.kind || key != tt.key || ok != tt.keyed {
				t.Errorf("coordinatorKey %d %q %v, want %d %q %v", kind, key, ok, tt.kind, tt.key, tt.keyed)
			}
			if lp, isLeader := tt.req.(interface {
				leaderPartition() (string, UUID, int32, bool)
			}); isLeader {
				topic, id, part, ok := lp.leaderPartition()
				if topic != tt.topic || id != tt.topicID || part != tt.part || ok != tt.hasFirst {
					t.Errorf("leaderPartition %q %v %d %v", topic, id, part, ok)
				}
			} else if tt.route == routeLeader {
				t.Errorf("a leader-routed request without leaderPartition")
			}
		})
	}
	moved := func(code int16) Response {
		return &OffsetFetchResponse{Groups: []OffsetFetchResponseGroup{{Topics: []OffsetFetchResponseGroupTopic{{
			Partitions: []OffsetFetchResponseGroupTopicPartition{{ErrorCode: code}}}}}}}
	}
	if !coordinatorMoved(moved(ErrNotCoordinator.code)) || !coordinatorMoved(&JoinGroupResponse{ErrorCode: ErrCoordinatorNotAvailable.code}) {
		t.Error("NOT_COORDINATOR deep in a response, or COORDINATOR_NOT_AVAILABLE at the top, is not seen")
	}
	if coordinatorMoved(moved(0)) || coordinatorMoved(&JoinGroupResponse{ErrorCode: ErrUnknownMemberId.code}) || coordinatorMoved(&MetadataResponse{}) {
		t.Error("a response without those codes counts as moved")
	}
}
