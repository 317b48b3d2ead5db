package kpax

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// coordinatorFake is a fake broker that is its own coordinator of every
// key and answers DescribeTransactions and OffsetFetch with code for the
// first fails requests, then with final; finds counts FindCoordinator.
type coordinatorFake struct {
	*fakeCluster
	finds, calls atomic.Int64
}

func newCoordinatorFake(t *testing.T, code int16, fails int64) *coordinatorFake {
	f := &coordinatorFake{}
	answer := func() int16 {
		if f.calls.Add(1) <= fails {
			return code
		}
		return 0
	}
	f.fakeCluster = newFakeCluster(t, 1, func(req Request, v int16) Response {
		switch r := req.(type) {
		case *FindCoordinatorRequest:
			f.finds.Add(1)
			host, port, _ := net.SplitHostPort(f.addr())
			p, _ := strconv.Atoi(port)
			resp := &FindCoordinatorResponse{NodeID: 1, Host: host, Port: int32(p)}
			for _, k := range r.CoordinatorKeys {
				resp.Coordinators = append(resp.Coordinators, FindCoordinatorResponseCoordinator{Key: k, NodeID: 1, Host: host, Port: int32(p)})
			}
			return resp
		case *DescribeTransactionsRequest:
			c := answer()
			if c == 0 {
				c = ErrTransactionalIdNotFound.code
			}
			return &DescribeTransactionsResponse{TransactionStates: []DescribeTransactionsResponseTransactionState{{TransactionalID: r.TransactionalIDs[0], ErrorCode: c}}}
		case *OffsetFetchRequest:
			c := answer()
			return &OffsetFetchResponse{ErrorCode: c, Groups: []OffsetFetchResponseGroup{{GroupID: r.GroupID, ErrorCode: c}}}
		}
		return nil
	})
	return f
}

// TestAdminRetriesCoordinator: a coordinator that has moved, is not
// available or is loading is asked again (after a fresh FindCoordinator
// when it moved) until it answers; the controls, a coordinator that
// stays moved, show the fault bites: the call ends with ctx and the item
// keeps NOT_COORDINATOR.
func TestAdminRetriesCoordinator(t *testing.T) {
	calls := map[string]func(ctx context.Context, a *Admin) error{
		"DescribeTransactions": func(ctx context.Context, a *Admin) error {
			td, err := a.DescribeTransactions(ctx, "txn")
			if len(td) != 1 || !errors.Is(err, td[0].Err) {
				return errors.New("no per-item result")
			}
			if errors.Is(err, ErrTransactionalIdNotFound) {
				return nil // the fake's final answer
			}
			return err
		},
		"CommittedOffsets": func(ctx context.Context, a *Admin) error {
			_, err := a.CommittedOffsets(ctx, "group")
			return err
		},
	}
	for _, tc := range []struct {
		name  string
		code  int16
		fails int64
		finds int64 // FindCoordinator requests, at least
		want  error
	}{
		{"not coordinator", ErrNotCoordinator.code, 2, 3, nil},
		{"coordinator not available", ErrCoordinatorNotAvailable.code, 2, 3, nil},
		{"load in progress", ErrCoordinatorLoadInProgress.code, 2, 1, nil},
		{"control: moved for good", ErrNotCoordinator.code, 1 << 30, 3, ErrNotCoordinator},
	} {
		for name, call := range calls {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				f := newCoordinatorFake(t, tc.code, tc.fails)
				cl, err := New(WithSeedBrokers(f.addr()), WithRetryBackoff(time.Millisecond, 20*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				defer cancel()
				err = call(ctx, cl.Admin())
				if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				if tc.want == nil && f.calls.Load() != tc.fails+1 {
					t.Errorf("%d requests, want %d", f.calls.Load(), tc.fails+1)
				}
				if got := f.finds.Load(); got < tc.finds || tc.want == nil && got > tc.finds {
					t.Errorf("%d FindCoordinator requests, want %d", got, tc.finds)
				}
			})
		}
	}
}

// leaderFake is a fake broker of a 2-partition topic whose partition 1
// answers ListOffsets, DeleteRecords and DescribeProducers with code for
// the first fails requests; metadata counts Metadata requests.
type leaderFake struct {
	*fakeCluster
	calls, metadata atomic.Int64
}

func newLeaderFake(t *testing.T, code int16, fails int64) *leaderFake {
	f := &leaderFake{}
	codeOf := func(p int32) int16 {
		if p == 1 && f.calls.Add(1) <= fails {
			return code
		}
		return 0
	}
	f.fakeCluster = newFakeCluster(t, 2, func(req Request, v int16) Response {
		switch r := req.(type) {
		case *MetadataRequest:
			f.metadata.Add(1)
		case *ListOffsetsRequest:
			resp := &ListOffsetsResponse{}
			for _, rt := range r.Topics {
				t := ListOffsetsResponseTopic{Name: rt.Name}
				for _, p := range rt.Partitions {
					t.Partitions = append(t.Partitions, ListOffsetsResponseTopicPartition{PartitionIndex: p.PartitionIndex, ErrorCode: codeOf(p.PartitionIndex), Offset: 10, Timestamp: -1, LeaderEpoch: 0})
				}
				resp.Topics = append(resp.Topics, t)
			}
			return resp
		case *DeleteRecordsRequest:
			resp := &DeleteRecordsResponse{}
			for _, rt := range r.Topics {
				t := DeleteRecordsResponseTopic{Name: rt.Name}
				for _, p := range rt.Partitions {
					t.Partitions = append(t.Partitions, DeleteRecordsResponseTopicPartition{PartitionIndex: p.PartitionIndex, ErrorCode: codeOf(p.PartitionIndex), LowWatermark: p.Offset})
				}
				resp.Topics = append(resp.Topics, t)
			}
			return resp
		case *DescribeProducersRequest:
			resp := &DescribeProducersResponse{}
			for _, rt := range r.Topics {
				t := DescribeProducersResponseTopic{Name: rt.Name}
				for _, p := range rt.PartitionIndexes {
					t.Partitions = append(t.Partitions, DescribeProducersResponseTopicPartition{PartitionIndex: p, ErrorCode: codeOf(p)})
				}
				resp.Topics = append(resp.Topics, t)
			}
			return resp
		}
		return nil
	})
	return f
}

// TestAdminRetriesPartitions: a partition answered with a retriable error
// (its leader moved) is asked again, after fresh metadata, until it
// answers; a non-retriable error is final at once; the control, a leader
// that never answers, shows the fault bites: the call ends with ctx and
// the partition keeps its error.
func TestAdminRetriesPartitions(t *testing.T) {
	calls := map[string]func(ctx context.Context, a *Admin) ([]error, error){
		"ListOffsets": func(ctx context.Context, a *Admin) ([]error, error) {
			r, err := a.ListOffsets(ctx, OffsetsLatest, TopicPartitions{"t": nil})
			var errs []error
			for _, o := range r {
				errs = append(errs, o.Err)
			}
			return errs, err
		},
		"DeleteRecords": func(ctx context.Context, a *Admin) ([]error, error) {
			r, err := a.DeleteRecords(ctx, TopicPartitionOffset{Topic: "t", Partition: 0, Offset: 1}, TopicPartitionOffset{Topic: "t", Partition: 1, Offset: 1})
			var errs []error
			for _, o := range r {
				errs = append(errs, o.Err)
			}
			return errs, err
		},
		"DescribeProducers": func(ctx context.Context, a *Admin) ([]error, error) {
			r, err := a.DescribeProducers(ctx, TopicPartitions{"t": {0, 1}})
			var errs []error
			for _, o := range r {
				errs = append(errs, o.Err)
			}
			return errs, err
		},
	}
	for _, tc := range []struct {
		name  string
		code  int16
		fails int64
		calls int64 // requests for partition 1, exactly (0: several)
		want  error
	}{
		{"not leader", ErrNotLeaderOrFollower.code, 2, 3, nil},
		{"unknown partition", ErrUnknownTopicOrPartition.code, 1, 2, nil},
		{"not retriable", ErrPolicyViolation.code, 1, 1, ErrPolicyViolation},
		{"control: leader never answers", ErrNotLeaderOrFollower.code, 1 << 30, 0, ErrNotLeaderOrFollower},
	} {
		for name, call := range calls {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				f := newLeaderFake(t, tc.code, tc.fails)
				cl, err := New(WithSeedBrokers(f.addr()), WithRetryBackoff(time.Millisecond, 20*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				defer cancel()
				m0 := f.metadata.Load()
				errs, err := call(ctx, cl.Admin())
				if len(errs) != 2 || errs[0] != nil {
					t.Fatalf("results' errors %v, want 2 with partition 0 fine", errs)
				}
				if tc.want == nil && (err != nil || errs[1] != nil) || tc.want != nil && (!errors.Is(err, tc.want) || !errors.Is(errs[1], tc.want)) {
					t.Fatalf("err %v, partition 1 %v, want %v", err, errs[1], tc.want)
				}
				if got := f.calls.Load(); tc.calls > 0 && got != tc.calls || tc.calls == 0 && got < 3 {
					t.Errorf("%d requests for partition 1, want %d", got, tc.calls)
				}
				if tc.calls > 1 && f.metadata.Load()-m0 < tc.calls {
					t.Errorf("%d metadata requests for %d tries: no refresh between them", f.metadata.Load()-m0, tc.calls)
				}
			})
		}
	}
}

// TestAdminRetriesController: a controller that moved (NOT_CONTROLLER for
// every topic) is asked again after fresh metadata until it answers; the
// controls, a controller that stays moved and an answer where only one
// topic fails, show the fault bites and that other answers are final.
func TestAdminRetriesController(t *testing.T) {
	calls := map[string]func(ctx context.Context, a *Admin) error{
		"CreateTopics": func(ctx context.Context, a *Admin) error {
			_, err := a.CreateTopics(ctx, NewTopic{Name: "a", Partitions: 1, ReplicationFactor: 1}, NewTopic{Name: "b", Partitions: 1, ReplicationFactor: 1})
			return err
		},
		"DeleteTopics": func(ctx context.Context, a *Admin) error {
			_, err := a.DeleteTopics(ctx, "a", "b")
			return err
		},
		"ElectLeaders": func(ctx context.Context, a *Admin) error {
			_, err := a.ElectLeaders(ctx, false, TopicPartitions{"a": {0}, "b": {0}})
			return err
		},
		"AlterPartitionReassignments": func(ctx context.Context, a *Admin) error {
			_, err := a.AlterPartitionReassignments(ctx, Reassignment{Topic: "a", Partition: 0, Replicas: []int32{1}}, Reassignment{Topic: "b", Partition: 0, Replicas: []int32{1}})
			return err
		},
		"CreatePartitions": func(ctx context.Context, a *Admin) error {
			_, err := a.SetPartitions(ctx, 3, "a", "b")
			return err
		},
	}
	for _, tc := range []struct {
		name     string
		fails    int64 // answers with NOT_CONTROLLER
		onlyA    bool  // only topic "a" says so
		requests int64 // exactly (0: several)
		want     error
	}{
		{"moved", 2, false, 3, nil},
		{"control: moved for good", 1 << 30, false, 0, ErrNotController},
		{"control: one topic", 1, true, 1, ErrNotController},
	} {
		for name, call := range calls {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				var requests, metadata atomic.Int64
				code := func(topic string) int16 {
					if requests.Load() <= tc.fails && (!tc.onlyA || topic == "a") {
						return ErrNotController.code
					}
					return 0
				}
				f := newFakeCluster(t, 2, func(req Request, v int16) Response {
					switch r := req.(type) {
					case *MetadataRequest:
						metadata.Add(1)
					case *CreateTopicsRequest:
						requests.Add(1)
						resp := &CreateTopicsResponse{}
						for _, rt := range r.Topics {
							resp.Topics = append(resp.Topics, CreateTopicsResponseTopic{Name: rt.Name, ErrorCode: code(rt.Name), NumPartitions: 1, ReplicationFactor: 1})
						}
						return resp
					case *DeleteTopicsRequest:
						requests.Add(1)
						resp := &DeleteTopicsResponse{}
						for i := range r.Topics {
							resp.Responses = append(resp.Responses, DeleteTopicsResponseItem{Name: r.Topics[i].Name, ErrorCode: code(*r.Topics[i].Name)})
						}
						return resp
					case *ElectLeadersRequest:
						requests.Add(1)
						resp := &ElectLeadersResponse{}
						for _, rt := range r.TopicPartitions {
							resp.ReplicaElectionResults = append(resp.ReplicaElectionResults, ElectLeadersResponseReplicaElectionResult{Topic: rt.Topic,
								PartitionResult: []ElectLeadersResponseReplicaElectionResultPartitionResult{{PartitionID: 0, ErrorCode: code(rt.Topic)}}})
						}
						return resp
					case *AlterPartitionReassignmentsRequest:
						requests.Add(1)
						resp := &AlterPartitionReassignmentsResponse{}
						for _, rt := range r.Topics {
							resp.Responses = append(resp.Responses, AlterPartitionReassignmentsResponseItem{Name: rt.Name,
								Partitions: []AlterPartitionReassignmentsResponseItemPartition{{PartitionIndex: 0, ErrorCode: code(rt.Name)}}})
						}
						return resp
					case *CreatePartitionsRequest:
						requests.Add(1)
						resp := &CreatePartitionsResponse{}
						for _, rt := range r.Topics {
							resp.Results = append(resp.Results, CreatePartitionsResponseResult{Name: rt.Name, ErrorCode: code(rt.Name)})
						}
						return resp
					}
					return nil
				})
				cl, err := New(WithSeedBrokers(f.addr()), WithRetryBackoff(time.Millisecond, 20*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				defer cancel()
				err = call(ctx, cl.Admin())
				if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				if got := requests.Load(); tc.requests > 0 && got != tc.requests || tc.requests == 0 && got < 3 {
					t.Errorf("%d requests, want %d", got, tc.requests)
				}
				if tc.requests > 1 && metadata.Load() < tc.requests {
					t.Errorf("%d metadata requests for %d tries: no refresh between them", metadata.Load(), tc.requests)
				}
			})
		}
	}
}
