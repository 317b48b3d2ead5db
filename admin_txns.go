package kpax

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// PartitionProducers is the active producers of one partition.
type PartitionProducers struct {
	Topic     string
	Partition int32
	Producers []ProducerState
	Err       error
}

// ProducerState is an idempotent or transactional producer that wrote to a
// partition recently (KIP-664).
type ProducerState struct {
	ProducerID       int64
	ProducerEpoch    int32
	LastSequence     int32
	LastTimestamp    int64 // ms
	CoordinatorEpoch int32
	TxnStartOffset   int64 // the first offset of its open transaction, -1 if none
}

// DescribeProducers returns the active producers of the partitions (a topic
// with none listed: all its partitions), asked of each partition's leader
// (Kafka 2.8+), sorted by topic and partition. Partitions answered with a
// retriable error are asked again from fresh metadata until ctx ends.
func (a *Admin) DescribeProducers(ctx context.Context, tp TopicPartitions) ([]PartitionProducers, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if err := checkPartitions(tp, false); err != nil {
		return nil, err
	}
	tp, badTopics, err := a.expand(ctx, tp)
	if err != nil {
		return nil, err
	}
	var out []PartitionProducers
	for t, err := range badTopics {
		out = append(out, PartitionProducers{Topic: t, Partition: -1, Err: err})
	}
	got, err := leaderCall(ctx, a, tp,
		func(p PartitionProducers) (topicPartition, error) { return topicPartition{p.Topic, p.Partition}, p.Err },
		func(k topicPartition, err error) PartitionProducers {
			return PartitionProducers{Topic: k.topic, Partition: k.partition, Err: err}
		},
		func(node int32, parts TopicPartitions) ([]PartitionProducers, error) {
			return a.describeProducersAt(ctx, node, parts)
		})
	if err != nil {
		return nil, err
	}
	out = append(out, got...)
	slices.SortFunc(out, func(a, b PartitionProducers) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	s := summary{op: "DescribeProducers"}
	for _, p := range out {
		s.add(p.Err)
	}
	return out, s.err()
}

func (a *Admin) describeProducersAt(ctx context.Context, node int32, parts TopicPartitions) ([]PartitionProducers, error) {
	req := &DescribeProducersRequest{}
	for _, t := range parts.sortedKeys() {
		req.Topics = append(req.Topics, DescribeProducersRequestTopic{Name: t, PartitionIndexes: parts[t]})
	}
	r, _, err := a.requestBroker(ctx, node, req)
	if err != nil {
		return nil, err
	}
	var out []PartitionProducers
	for _, t := range r.(*DescribeProducersResponse).Topics {
		for _, p := range t.Partitions {
			pp := PartitionProducers{Topic: t.Name, Partition: p.PartitionIndex, Err: itemErr(partitionItem(t.Name, p.PartitionIndex), p.ErrorCode, p.ErrorMessage)}
			for _, ap := range p.ActiveProducers {
				pp.Producers = append(pp.Producers, ProducerState{ProducerID: ap.ProducerID, ProducerEpoch: ap.ProducerEpoch, LastSequence: ap.LastSequence,
					LastTimestamp: ap.LastTimestamp, CoordinatorEpoch: ap.CoordinatorEpoch, TxnStartOffset: ap.CurrentTxnStartOffset})
			}
			out = append(out, pp)
		}
	}
	return out, nil
}

// TransactionDescription describes a transactional ID's state (KIP-664).
type TransactionDescription struct {
	TransactionalID string
	State           string // e.g. "Ongoing", "CompleteCommit", "Empty"
	TimeoutMs       int32
	StartTimeMs     int64 // -1 if no transaction is open
	ProducerID      int64
	ProducerEpoch   int16
	Partitions      TopicPartitions // in the open transaction
	Coordinator     int32
	Err             error // e.g. ErrTransactionalIdNotFound
}

// DescribeTransactions describes transactional IDs, one result per ID in
// the order given, each asked of its transaction coordinator (Kafka 3.0+).
func (a *Admin) DescribeTransactions(ctx context.Context, ids ...string) ([]TransactionDescription, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, invalidf("no transactional IDs")
	}
	out := make([]TransactionDescription, len(ids))
	s := summary{op: "DescribeTransactions"}
	for i, id := range ids {
		if id == "" {
			return nil, invalidf("empty transactional ID")
		}
		item := fmt.Sprintf("transactional ID %q", id)
		var node int32
		r, err := a.retryCoordinator(ctx, func() (Response, int16, error) {
			return a.describeTransaction(ctx, id, &node)
		})
		if err != nil {
			return nil, err
		}
		d := TransactionDescription{TransactionalID: id, Coordinator: node, Err: &ItemError{Item: item, Err: ErrMissingResult}}
		for _, st := range r.(*DescribeTransactionsResponse).TransactionStates {
			if st.TransactionalID != id {
				continue
			}
			d.Err = itemErr(item, st.ErrorCode, nil)
			d.State, d.TimeoutMs, d.StartTimeMs, d.ProducerID, d.ProducerEpoch = st.TransactionState, st.TransactionTimeoutMs, st.TransactionStartTimeMs, st.ProducerID, st.ProducerEpoch
			for _, t := range st.Topics {
				if d.Partitions == nil {
					d.Partitions = TopicPartitions{}
				}
				d.Partitions[t.Topic] = append(d.Partitions[t.Topic], t.Partitions...)
			}
		}
		out[i] = d
		s.add(d.Err)
	}
	return out, s.err()
}

// describeTransaction asks the coordinator of the transactional ID, whose
// node it sets, to describe it, and returns the response and the ID's
// error code; a coordinator that fails or has moved is forgotten.
func (a *Admin) describeTransaction(ctx context.Context, id string, node *int32) (Response, int16, error) {
	n, err := a.cl.meta.coordinator(ctx, 1, id)
	if err != nil {
		return nil, 0, err
	}
	*node = n
	r, _, err := a.requestBroker(ctx, n, &DescribeTransactionsRequest{TransactionalIDs: []string{id}})
	if err != nil {
		a.cl.meta.invalidateCoordinator(1, id)
		return nil, 0, err
	}
	code := int16(0)
	for _, st := range r.(*DescribeTransactionsResponse).TransactionStates {
		if st.TransactionalID == id {
			code = st.ErrorCode
		}
	}
	if code == ErrNotCoordinator.code || code == ErrCoordinatorNotAvailable.code {
		a.cl.meta.invalidateCoordinator(1, id)
	}
	return r, code, nil
}

// TransactionListing is a transactional ID as ListTransactions sees it.
type TransactionListing struct {
	TransactionalID string
	ProducerID      int64
	State           string
	Coordinator     int32
}

// ListTransactions lists the transactional IDs of every broker's
// transaction coordinator (Kafka 3.0+), sorted by ID. A broker that fails
// adds its error to the summary.
func (a *Admin) ListTransactions(ctx context.Context) ([]TransactionListing, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	ids, err := a.brokerIDs(ctx)
	if err != nil {
		return nil, err
	}
	var out []TransactionListing
	s := summary{op: "ListTransactions"}
	for _, id := range ids {
		item := fmt.Sprintf("broker %d", id)
		r, _, err := a.requestBroker(ctx, id, &ListTransactionsRequest{DurationFilter: -1})
		if err != nil {
			s.add(&ItemError{Item: item, Err: err})
			continue
		}
		resp := r.(*ListTransactionsResponse)
		if err := itemErr(item, resp.ErrorCode, nil); err != nil {
			s.add(err)
			continue
		}
		s.add(nil)
		for _, t := range resp.TransactionStates {
			out = append(out, TransactionListing{TransactionalID: t.TransactionalID, ProducerID: t.ProducerID, State: t.TransactionState, Coordinator: id})
		}
	}
	slices.SortFunc(out, func(a, b TransactionListing) int { return cmp.Compare(a.TransactionalID, b.TransactionalID) })
	return out, s.err()
}
