package kpax

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// NewTopic describes a topic to create.
type NewTopic struct {
	Name string
	// Partitions is the number of partitions: > 0, or -1 for the broker's
	// num.partitions. Zero is an error. Ignored when Assignments is set.
	Partitions int32
	// ReplicationFactor is the number of replicas of each partition: > 0,
	// or -1 for the broker's default.replication.factor (Kafka 2.4+).
	// Zero is an error. Ignored when Assignments is set.
	ReplicationFactor int16
	// Configs are topic settings, e.g. "retention.ms": "3600000".
	Configs map[string]string
	// Assignments, if set, gives the replicas (broker IDs, the preferred
	// leader first) of each partition, by partition index from 0.
	Assignments [][]int32
}

// CreateTopicResult is the outcome of creating one topic.
type CreateTopicResult struct {
	Name              string
	ID                UUID  // zero before Kafka 2.8 (CreateTopics v7)
	Partitions        int32 // -1 before Kafka 2.4 (CreateTopics v5)
	ReplicationFactor int16 // -1 before Kafka 2.4
	Err               error // e.g. ErrTopicAlreadyExists
}

// CreateTopics creates topics, one result per topic in the order given. It
// returns when the controller has created them, which is before every
// broker knows them: call WaitForLeaders before producing to them.
func (a *Admin) CreateTopics(ctx context.Context, topics ...NewTopic) ([]CreateTopicResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return a.createTopics(ctx, false, topics)
}

// ValidateCreateTopics is CreateTopics with validate-only set: the
// controller checks the topics (name, partitions, replication, configs)
// and creates nothing.
func (a *Admin) ValidateCreateTopics(ctx context.Context, topics ...NewTopic) ([]CreateTopicResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return a.createTopics(ctx, true, topics)
}

func (a *Admin) createTopics(ctx context.Context, validate bool, topics []NewTopic) ([]CreateTopicResult, error) {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	if err := checkTopics(names); err != nil {
		return nil, err
	}
	req := &CreateTopicsRequest{TimeoutMs: int32(a.timeout(ctx) / time.Millisecond), ValidateOnly: validate}
	for _, t := range topics {
		rt, err := newTopicRequest(t)
		if err != nil {
			return nil, err
		}
		req.Topics = append(req.Topics, rt)
	}
	r, err := a.controllerRequest(ctx, req, func(r Response) (cs []int16) {
		for _, t := range r.(*CreateTopicsResponse).Topics {
			cs = append(cs, t.ErrorCode)
		}
		return cs
	})
	if err != nil {
		return nil, err
	}
	got := map[string]*CreateTopicsResponseTopic{}
	for i, t := range r.(*CreateTopicsResponse).Topics {
		got[t.Name] = &r.(*CreateTopicsResponse).Topics[i]
	}
	out := make([]CreateTopicResult, len(topics))
	s := summary{op: "CreateTopics"}
	for i, t := range topics {
		res := CreateTopicResult{Name: t.Name, Partitions: -1, ReplicationFactor: -1}
		if rt := got[t.Name]; rt == nil {
			res.Err = &ItemError{Item: fmt.Sprintf("topic %q", t.Name), Err: ErrMissingResult}
		} else {
			res.ID, res.Partitions, res.ReplicationFactor = rt.TopicID, rt.NumPartitions, rt.ReplicationFactor
			res.Err = itemErr(fmt.Sprintf("topic %q", t.Name), rt.ErrorCode, rt.ErrorMessage)
		}
		out[i] = res
		s.add(res.Err)
	}
	return out, s.err()
}

func newTopicRequest(t NewTopic) (CreateTopicsRequestTopic, error) {
	rt := CreateTopicsRequestTopic{Name: t.Name, NumPartitions: t.Partitions, ReplicationFactor: t.ReplicationFactor}
	if len(t.Assignments) > 0 {
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
		for i, replicas := range t.Assignments {
			if len(replicas) == 0 {
				return rt, invalidf("topic %q: partition %d has no replicas", t.Name, i)
			}
			rt.Assignments = append(rt.Assignments, CreateTopicsRequestTopicAssignment{PartitionIndex: int32(i), BrokerIDs: replicas})
		}
	} else {
		if t.Partitions == 0 || t.Partitions < -1 {
			return rt, invalidf("topic %q: %d partitions: want > 0, or -1 for the broker's default", t.Name, t.Partitions)
		}
		if t.ReplicationFactor == 0 || t.ReplicationFactor < -1 {
			return rt, invalidf("topic %q: replication factor %d: want > 0, or -1 for the broker's default", t.Name, t.ReplicationFactor)
		}
	}
	keys := make([]string, 0, len(t.Configs))
	for k := range t.Configs {
		if k == "" {
			return rt, invalidf("topic %q: config with an empty name", t.Name)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rt.Configs = append(rt.Configs, CreateTopicsRequestTopicConfig{Name: k, Value: ptr(t.Configs[k])})
	}
	return rt, nil
}

// ErrMissingResult is the error of an item the broker's response left out.
var ErrMissingResult = classedValue(ClassAbortable, "kpax: the response has no result for it")

// timeout is how long the broker may take over a request: the context's
// deadline if it has one, else 30s.
func (a *Admin) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl)-100*time.Millisecond, time.Millisecond)
	}
	return 30 * time.Second
}

// DeleteTopicResult is the outcome of deleting one topic.
type DeleteTopicResult struct {
	Name string
	ID   UUID  // zero before Kafka 2.8 (DeleteTopics v6)
	Err  error // e.g. ErrUnknownTopicOrPartition
}

// DeleteTopics deletes topics by name, one result per topic in the order
// given.
func (a *Admin) DeleteTopics(ctx context.Context, names ...string) ([]DeleteTopicResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if err := checkTopics(names); err != nil {
		return nil, err
	}
	// v6+ reads Topics, older versions TopicNames: fill both, the encoder
	// writes the one of the negotiated version.
	req := &DeleteTopicsRequest{TimeoutMs: int32(a.timeout(ctx) / time.Millisecond), TopicNames: names}
	for i := range names {
		req.Topics = append(req.Topics, DeleteTopicsRequestTopic{Name: &names[i]})
	}
	r, err := a.controllerRequest(ctx, req, func(r Response) (cs []int16) {
		for _, t := range r.(*DeleteTopicsResponse).Responses {
			cs = append(cs, t.ErrorCode)
		}
		return cs
	})
	if err != nil {
		return nil, err
	}
	got := map[string]*DeleteTopicsResponseItem{}
	resp := r.(*DeleteTopicsResponse)
	for i, t := range resp.Responses {
		got[deref(t.Name)] = &resp.Responses[i]
	}
	out := make([]DeleteTopicResult, len(names))
	s := summary{op: "DeleteTopics"}
	for i, n := range names {
		res := DeleteTopicResult{Name: n}
		if rt := got[n]; rt == nil {
			res.Err = &ItemError{Item: fmt.Sprintf("topic %q", n), Err: ErrMissingResult}
		} else {
			res.ID = rt.TopicID
			res.Err = itemErr(fmt.Sprintf("topic %q", n), rt.ErrorCode, rt.ErrorMessage)
		}
		out[i] = res
		s.add(res.Err)
	}
	return out, s.err()
}

// ListTopics returns every topic of the cluster, internal ones included
// (TopicMetadata.Internal), sorted by name, with partitions, leaders,
// replicas, ISR and topic IDs.
func (a *Admin) ListTopics(ctx context.Context) ([]TopicMetadata, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	md, err := a.cl.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(md.Topics, func(i, j int) bool { return md.Topics[i].Name < md.Topics[j].Name })
	return md.Topics, nil
}

// DescribeTopics returns the metadata of the topics, in the order given:
// partitions, leaders, replicas, ISR, offline replicas and the topic ID. A
// topic that does not exist has Err ErrUnknownTopicOrPartition.
func (a *Admin) DescribeTopics(ctx context.Context, names ...string) ([]TopicMetadata, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if err := checkTopics(names); err != nil {
		return nil, err
	}
	md, err := a.cl.Metadata(ctx, names...)
	if err != nil {
		return nil, err
	}
	got := map[string]TopicMetadata{}
	for _, t := range md.Topics {
		got[t.Name] = t
	}
	out := make([]TopicMetadata, len(names))
	s := summary{op: "DescribeTopics"}
	for i, n := range names {
		t, ok := got[n]
		if !ok {
			t = TopicMetadata{Name: n, Err: ErrMissingResult}
		}
		out[i] = t
		if t.Err != nil {
			s.add(&ItemError{Item: fmt.Sprintf("topic %q", n), Err: t.Err})
		} else {
			s.add(nil)
		}
	}
	return out, s.err()
}

// PartitionsResult is the outcome of adding partitions to one topic.
type PartitionsResult struct {
	Topic      string
	Partitions int32 // the topic's partition count asked for
	Err        error // e.g. ErrInvalidPartitions
}

// AddPartitions adds n partitions (n > 0) to each topic, one result per
// topic in the order given. Records with keys may map to other partitions
// afterwards.
func (a *Admin) AddPartitions(ctx context.Context, n int32, topics ...string) ([]PartitionsResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, invalidf("add %d partitions: want > 0", n)
	}
	if err := checkTopics(topics); err != nil {
		return nil, err
	}
	ts, err := a.DescribeTopics(ctx, topics...)
	if ts == nil {
		return nil, err
	}
	totals := make([]int32, len(ts))
	for i, t := range ts {
		totals[i] = -1
		if t.Err == nil {
			totals[i] = int32(len(t.Partitions)) + n
		}
	}
	return a.createPartitions(ctx, false, topics, totals, ts)
}

// SetPartitions raises the partition count of each topic to total, one
// result per topic in the order given. Kafka cannot remove partitions.
func (a *Admin) SetPartitions(ctx context.Context, total int32, topics ...string) ([]PartitionsResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if total <= 0 {
		return nil, invalidf("%d partitions: want > 0", total)
	}
	if err := checkTopics(topics); err != nil {
		return nil, err
	}
	totals := make([]int32, len(topics))
	for i := range totals {
		totals[i] = total
	}
	return a.createPartitions(ctx, false, topics, totals, nil)
}

// createPartitions sends CreatePartitions for the topics whose total is
// known (>= 0); described, if given, holds the error of the others.
func (a *Admin) createPartitions(ctx context.Context, validate bool, topics []string, totals []int32, described []TopicMetadata) ([]PartitionsResult, error) {
	req := &CreatePartitionsRequest{TimeoutMs: int32(a.timeout(ctx) / time.Millisecond), ValidateOnly: validate}
	for i, t := range topics {
		if totals[i] >= 0 {
			req.Topics = append(req.Topics, CreatePartitionsRequestTopic{Name: t, Count: totals[i]})
		}
	}
	got := map[string]*CreatePartitionsResponseResult{}
	if len(req.Topics) > 0 {
		r, err := a.controllerRequest(ctx, req, func(r Response) (cs []int16) {
			for _, t := range r.(*CreatePartitionsResponse).Results {
				cs = append(cs, t.ErrorCode)
			}
			return cs
		})
		if err != nil {
			return nil, err
		}
		resp := r.(*CreatePartitionsResponse)
		for i, res := range resp.Results {
			got[res.Name] = &resp.Results[i]
		}
	}
	out := make([]PartitionsResult, len(topics))
	s := summary{op: "CreatePartitions"}
	for i, t := range topics {
		res := PartitionsResult{Topic: t, Partitions: totals[i]}
		item := fmt.Sprintf("topic %q", t)
		switch rr := got[t]; {
		case totals[i] < 0 && described != nil:
			res.Err = &ItemError{Item: item, Err: described[i].Err}
		case rr == nil:
			res.Err = &ItemError{Item: item, Err: ErrMissingResult}
		default:
			res.Err = itemErr(item, rr.ErrorCode, rr.ErrorMessage)
		}
		out[i] = res
		s.add(res.Err)
	}
	return out, s.err()
}

// WaitForLeaders waits until every partition of the topics has a leader, as
// a fresh Metadata request sees it, polling every 100ms. A topic that does
// not exist yet is waited for too; the error is ctx's, naming what was
// still missing.
func (a *Admin) WaitForLeaders(ctx context.Context, topics ...string) error {
	if err := a.check(ctx); err != nil {
		return err
	}
	if err := checkTopics(topics); err != nil {
		return err
	}
	for {
		missing := ""
		md, err := a.cl.Metadata(ctx, topics...)
		if err == nil {
			missing = leaderless(md, topics)
			if missing == "" {
				return nil
			}
		} else {
			missing = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kpax: waiting for leaders: %w (%s)", ctx.Err(), missing)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leaderless describes the first topic of topics that is missing from md
// or has a partition without a leader, or returns "".
func leaderless(md *ClusterMetadata, topics []string) string {
	got := map[string]*TopicMetadata{}
	for i := range md.Topics {
		got[md.Topics[i].Name] = &md.Topics[i]
	}
	for _, n := range topics {
		t := got[n]
		switch {
		case t == nil || len(t.Partitions) == 0:
			return fmt.Sprintf("topic %q not known yet", n)
		case t.Err != nil:
			return fmt.Sprintf("topic %q: %v", n, t.Err)
		}
		for _, p := range t.Partitions {
			if p.Leader < 0 {
				return fmt.Sprintf("%s has no leader", partitionItem(n, p.Partition))
			}
		}
	}
	return ""
}
