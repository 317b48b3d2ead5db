package kpax

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// ElectLeaders moves the leadership of partitions (nil tp: every partition)
// to their preferred replica, or with unclean to any live replica even one
// out of the ISR (which can lose records; Kafka 2.4+). One result per
// partition the controller answers for; a partition already led by its
// preferred replica has ErrElectionNotNeeded.
func (a *Admin) ElectLeaders(ctx context.Context, unclean bool, tp TopicPartitions) ([]PartitionResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	req := &ElectLeadersRequest{TimeoutMs: int32(a.timeout(ctx) / time.Millisecond)}
	if unclean {
		req.ElectionType = 1
	}
	if tp != nil {
		if err := checkPartitions(tp, true); err != nil {
			return nil, err
		}
		for _, t := range tp.sortedKeys() {
			req.TopicPartitions = append(req.TopicPartitions, ElectLeadersRequestTopicPartition{Topic: t, Partitions: tp[t]})
		}
	}
	if unclean {
		if v, err := a.versionAt(ctx, -1, req); err != nil {
			return nil, err
		} else if v == 0 {
			return nil, fmt.Errorf("%w: unclean leader election needs ElectLeaders v1 (Kafka 2.4+)", ErrUnsupportedVersion)
		}
	}
	r, err := a.controllerRequest(ctx, req, func(r Response) []int16 {
		resp := r.(*ElectLeadersResponse)
		if resp.ErrorCode != 0 {
			return []int16{resp.ErrorCode}
		}
		var cs []int16
		for _, t := range resp.ReplicaElectionResults {
			for _, p := range t.PartitionResult {
				cs = append(cs, p.ErrorCode)
			}
		}
		return cs
	})
	if err != nil {
		return nil, err
	}
	resp := r.(*ElectLeadersResponse)
	if err := itemErr("ElectLeaders", resp.ErrorCode, nil); err != nil {
		return nil, err
	}
	var out []PartitionResult
	s := summary{op: "ElectLeaders"}
	for _, t := range resp.ReplicaElectionResults {
		for _, p := range t.PartitionResult {
			res := PartitionResult{Topic: t.Topic, Partition: p.PartitionID, Err: itemErr(partitionItem(t.Topic, p.PartitionID), p.ErrorCode, p.ErrorMessage)}
			out = append(out, res)
			s.add(res.Err)
		}
	}
	sortPartitionResults(out)
	return out, s.err()
}

func sortPartitionResults(out []PartitionResult) {
	slices.SortFunc(out, func(a, b PartitionResult) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
}

// Reassignment moves a partition to new replicas (broker IDs), or with nil
// Replicas cancels the partition's reassignment in progress.
type Reassignment struct {
	Topic     string
	Partition int32
	Replicas  []int32
}

// AlterPartitionReassignments starts (or cancels) reassignments (Kafka
// 2.4+), one result per partition sorted by topic and partition.
func (a *Admin) AlterPartitionReassignments(ctx context.Context, moves ...Reassignment) ([]PartitionResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if len(moves) == 0 {
		return nil, invalidf("no reassignments")
	}
	req := &AlterPartitionReassignmentsRequest{TimeoutMs: int32(a.timeout(ctx) / time.Millisecond)}
	idx := map[string]int{}
	seen := map[topicPartition]bool{}
	for _, m := range moves {
		if err := checkTopic(m.Topic); err != nil {
			return nil, err
		}
		k := topicPartition{m.Topic, m.Partition}
		if m.Partition < 0 || seen[k] || m.Replicas != nil && len(m.Replicas) == 0 {
			return nil, invalidf("reassignment of %s: bad, repeated or empty", partitionItem(m.Topic, m.Partition))
		}
		seen[k] = true
		i, ok := idx[m.Topic]
		if !ok {
			i = len(req.Topics)
			idx[m.Topic] = i
			req.Topics = append(req.Topics, AlterPartitionReassignmentsRequestTopic{Name: m.Topic})
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, AlterPartitionReassignmentsRequestTopicPartition{PartitionIndex: m.Partition, Replicas: m.Replicas})
	}
	r, err := a.controllerRequest(ctx, req, func(r Response) []int16 {
		resp := r.(*AlterPartitionReassignmentsResponse)
		if resp.ErrorCode != 0 {
			return []int16{resp.ErrorCode}
		}
		var cs []int16
		for _, t := range resp.Responses {
			for _, p := range t.Partitions {
				cs = append(cs, p.ErrorCode)
			}
		}
		return cs
	})
	if err != nil {
		return nil, err
	}
	resp := r.(*AlterPartitionReassignmentsResponse)
	if err := itemErr("AlterPartitionReassignments", resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, err
	}
	var out []PartitionResult
	s := summary{op: "AlterPartitionReassignments"}
	for _, t := range resp.Responses {
		for _, p := range t.Partitions {
			res := PartitionResult{Topic: t.Name, Partition: p.PartitionIndex, Err: itemErr(partitionItem(t.Name, p.PartitionIndex), p.ErrorCode, p.ErrorMessage)}
			out = append(out, res)
			s.add(res.Err)
		}
	}
	sortPartitionResults(out)
	return out, s.err()
}

// PartitionReassignment is a reassignment in progress.
type PartitionReassignment struct {
	Topic     string
	Partition int32
	Replicas  []int32 // the current replica set
	Adding    []int32
	Removing  []int32
}

// ListPartitionReassignments returns the reassignments in progress of the
// partitions (nil tp: of every partition), sorted by topic and partition.
func (a *Admin) ListPartitionReassignments(ctx context.Context, tp TopicPartitions) ([]PartitionReassignment, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	req := &ListPartitionReassignmentsRequest{TimeoutMs: int32(a.timeout(ctx) / time.Millisecond)}
	if tp != nil {
		if err := checkPartitions(tp, true); err != nil {
			return nil, err
		}
		for _, t := range tp.sortedKeys() {
			req.Topics = append(req.Topics, ListPartitionReassignmentsRequestTopic{Name: t, PartitionIndexes: tp[t]})
		}
	}
	r, _, err := a.request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := r.(*ListPartitionReassignmentsResponse)
	if err := itemErr("ListPartitionReassignments", resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, err
	}
	var out []PartitionReassignment
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, PartitionReassignment{Topic: t.Name, Partition: p.PartitionIndex, Replicas: p.Replicas, Adding: p.AddingReplicas, Removing: p.RemovingReplicas})
		}
	}
	slices.SortFunc(out, func(a, b PartitionReassignment) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out, nil
}
