package kpax

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Timestamps of ListOffsets that mean a position rather than a time.
const (
	OffsetsLatest       int64 = -1 // the end of the log (the high watermark)
	OffsetsEarliest     int64 = -2 // the log start offset
	OffsetsMaxTimestamp int64 = -3 // the record with the largest timestamp (Kafka 3.0+)
)

// ListedOffset is an offset that ListOffsets found for one partition.
type ListedOffset struct {
	Topic     string
	Partition int32
	// Offset is the offset found; -1 when no record has a timestamp at or
	// after the time asked for.
	Offset      int64
	Timestamp   int64 // the record's timestamp (ms) for a time or OffsetsMaxTimestamp; -1 otherwise
	LeaderEpoch int32 // -1 if unknown
	Err         error
}

// ListOffsets looks up an offset of each partition: timestamp is a time in
// Unix milliseconds (the first offset whose record's timestamp is at or
// after it), OffsetsEarliest, OffsetsLatest or OffsetsMaxTimestamp. A
// topic with no partitions listed means all of them. Results are sorted by
// topic and partition; each request goes to the partition's leader, and
// partitions answered with a retriable error (e.g. NOT_LEADER_OR_FOLLOWER,
// OFFSET_NOT_AVAILABLE) are asked again from fresh metadata until ctx ends.
func (a *Admin) ListOffsets(ctx context.Context, timestamp int64, tp TopicPartitions) ([]ListedOffset, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return a.listOffsets(ctx, timestamp, ReadUncommitted, tp)
}

// ListLastStableOffsets returns the last stable offset of each partition (a
// topic with no partitions listed: all of them): the end of the log as a
// consumer with ReadCommitted sees it, which stops before the first record
// of a transaction still open. Without open transactions it is the end
// offset. Results are sorted as ListOffsets sorts them.
func (a *Admin) ListLastStableOffsets(ctx context.Context, tp TopicPartitions) ([]ListedOffset, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return a.listOffsets(ctx, OffsetsLatest, ReadCommitted, tp)
}

func (a *Admin) listOffsets(ctx context.Context, timestamp int64, iso IsolationLevel, tp TopicPartitions) ([]ListedOffset, error) {
	if timestamp < OffsetsMaxTimestamp {
		return nil, invalidf("ListOffsets timestamp %d", timestamp)
	}
	if err := checkPartitions(tp, false); err != nil {
		return nil, err
	}
	tp, badTopics, err := a.expand(ctx, tp)
	if err != nil {
		return nil, err
	}
	var out []ListedOffset
	for t, err := range badTopics {
		out = append(out, ListedOffset{Topic: t, Partition: -1, Offset: -1, Timestamp: -1, LeaderEpoch: -1, Err: err})
	}
	got, err := leaderCall(ctx, a, tp,
		func(o ListedOffset) (topicPartition, error) { return topicPartition{o.Topic, o.Partition}, o.Err },
		func(k topicPartition, err error) ListedOffset {
			return ListedOffset{Topic: k.topic, Partition: k.partition, Offset: -1, Timestamp: -1, LeaderEpoch: -1, Err: err}
		},
		func(node int32, parts TopicPartitions) ([]ListedOffset, error) {
			return a.listOffsetsAt(ctx, node, timestamp, iso, parts)
		})
	if err != nil {
		return nil, err
	}
	out = append(out, got...)
	sortListed(out)
	s := summary{op: "ListOffsets"}
	for _, o := range out {
		s.add(o.Err)
	}
	return out, s.err()
}

func sortListed(out []ListedOffset) {
	slices.SortFunc(out, func(a, b ListedOffset) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
}

func (a *Admin) listOffsetsAt(ctx context.Context, node int32, timestamp int64, iso IsolationLevel, tp TopicPartitions) ([]ListedOffset, error) {
	req := &ListOffsetsRequest{ReplicaID: -1, IsolationLevel: int8(iso), TimeoutMs: millis32(a.cl.cfg.requestTimeout)} // v10+: tiered storage reads
	for _, t := range tp.sortedKeys() {
		rt := ListOffsetsRequestTopic{Name: t}
		for _, p := range tp[t] {
			rt.Partitions = append(rt.Partitions, ListOffsetsRequestTopicPartition{
				PartitionIndex: p, CurrentLeaderEpoch: -1, Timestamp: timestamp, MaxNumOffsets: 1})
		}
		req.Topics = append(req.Topics, rt)
	}
	if timestamp == OffsetsMaxTimestamp {
		if v, err := a.versionAt(ctx, node, req); err != nil {
			return nil, err
		} else if v < 7 {
			return nil, fmt.Errorf("%w: the max timestamp needs ListOffsets v7 (Kafka 3.0+), broker %d has v%d", ErrUnsupportedVersion, node, v)
		}
	}
	r, v, err := a.requestBroker(ctx, node, req)
	if err != nil {
		return nil, err
	}
	got := map[topicPartition]*ListOffsetsResponseTopicPartition{}
	resp := r.(*ListOffsetsResponse)
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			got[topicPartition{resp.Topics[i].Name, p.PartitionIndex}] = p
		}
	}
	var out []ListedOffset
	for _, t := range tp.sortedKeys() {
		for _, p := range tp[t] {
			lo := ListedOffset{Topic: t, Partition: p, Offset: -1, Timestamp: -1, LeaderEpoch: -1}
			switch rp := got[topicPartition{t, p}]; {
			case rp == nil:
				lo.Err = &ItemError{Item: partitionItem(t, p), Err: ErrMissingResult}
			case rp.ErrorCode != 0:
				lo.Err = itemErr(partitionItem(t, p), rp.ErrorCode, nil)
			case v == 0:
				if len(rp.OldStyleOffsets) > 0 {
					lo.Offset = rp.OldStyleOffsets[0]
				}
			default:
				lo.Offset, lo.Timestamp, lo.LeaderEpoch = rp.Offset, rp.Timestamp, rp.LeaderEpoch
			}
			out = append(out, lo)
		}
	}
	return out, nil
}

// ListStartOffsets returns the log start offset of every partition of the
// topics.
func (a *Admin) ListStartOffsets(ctx context.Context, topics ...string) ([]ListedOffset, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return a.ListOffsets(ctx, OffsetsEarliest, allPartitions(topics))
}

// ListEndOffsets returns the end offset (high watermark) of every
// partition of the topics.
func (a *Admin) ListEndOffsets(ctx context.Context, topics ...string) ([]ListedOffset, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return a.ListOffsets(ctx, OffsetsLatest, allPartitions(topics))
}

// ListOffsetsAfter returns, for every partition of the topics, the first
// offset whose record's timestamp is at or after t (-1 if none).
func (a *Admin) ListOffsetsAfter(ctx context.Context, t time.Time, topics ...string) ([]ListedOffset, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return a.ListOffsets(ctx, max(t.UnixMilli(), 0), allPartitions(topics))
}

// ListMaxTimestampOffsets returns, for every partition of the topics, the
// offset and timestamp of the record with the largest timestamp (Kafka 3.0+).
func (a *Admin) ListMaxTimestampOffsets(ctx context.Context, topics ...string) ([]ListedOffset, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return a.ListOffsets(ctx, OffsetsMaxTimestamp, allPartitions(topics))
}

func allPartitions(topics []string) TopicPartitions {
	tp := make(TopicPartitions, len(topics))
	for _, t := range topics {
		tp[t] = nil
	}
	return tp
}

// DeleteRecordsResult is the outcome of deleting records of one partition.
type DeleteRecordsResult struct {
	Topic        string
	Partition    int32
	LowWatermark int64 // the new log start offset
	Err          error // e.g. ErrOffsetOutOfRange
}

// DeleteRecords deletes the records before each offset (Offset -1: every
// record up to the high watermark), one result per partition sorted by
// topic and partition. Each request goes to the partition's leader;
// partitions answered with a retriable error are sent again from fresh
// metadata until ctx ends.
func (a *Admin) DeleteRecords(ctx context.Context, offsets ...TopicPartitionOffset) ([]DeleteRecordsResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	tp := TopicPartitions{}
	at := map[topicPartition]int64{}
	for _, o := range offsets {
		if o.Offset < -1 {
			return nil, invalidf("%s: delete before offset %d", partitionItem(o.Topic, o.Partition), o.Offset)
		}
		if _, dup := at[topicPartition{o.Topic, o.Partition}]; dup {
			return nil, invalidf("%s given twice", partitionItem(o.Topic, o.Partition))
		}
		tp[o.Topic] = append(tp[o.Topic], o.Partition)
		at[topicPartition{o.Topic, o.Partition}] = o.Offset
	}
	if err := checkPartitions(tp, true); err != nil {
		return nil, err
	}
	out, err := leaderCall(ctx, a, tp,
		func(r DeleteRecordsResult) (topicPartition, error) {
			return topicPartition{r.Topic, r.Partition}, r.Err
		},
		func(k topicPartition, err error) DeleteRecordsResult {
			return DeleteRecordsResult{Topic: k.topic, Partition: k.partition, LowWatermark: -1, Err: err}
		},
		func(node int32, parts TopicPartitions) ([]DeleteRecordsResult, error) {
			return a.deleteRecordsAt(ctx, node, parts, at)
		})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b DeleteRecordsResult) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	s := summary{op: "DeleteRecords"}
	for _, o := range out {
		s.add(o.Err)
	}
	return out, s.err()
}

func (a *Admin) deleteRecordsAt(ctx context.Context, node int32, parts TopicPartitions, at map[topicPartition]int64) ([]DeleteRecordsResult, error) {
	req := &DeleteRecordsRequest{TimeoutMs: int32(a.timeout(ctx) / time.Millisecond)}
	for _, t := range parts.sortedKeys() {
		rt := DeleteRecordsRequestTopic{Name: t}
		for _, p := range parts[t] {
			rt.Partitions = append(rt.Partitions, DeleteRecordsRequestTopicPartition{PartitionIndex: p, Offset: at[topicPartition{t, p}]})
		}
		req.Topics = append(req.Topics, rt)
	}
	r, _, err := a.requestBroker(ctx, node, req)
	if err != nil {
		return nil, err
	}
	got := map[topicPartition]*DeleteRecordsResponseTopicPartition{}
	resp := r.(*DeleteRecordsResponse)
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			got[topicPartition{resp.Topics[i].Name, p.PartitionIndex}] = p
		}
	}
	var out []DeleteRecordsResult
	for _, t := range parts.sortedKeys() {
		for _, p := range parts[t] {
			res := DeleteRecordsResult{Topic: t, Partition: p, LowWatermark: -1}
			if rp := got[topicPartition{t, p}]; rp == nil {
				res.Err = &ItemError{Item: partitionItem(t, p), Err: ErrMissingResult}
			} else {
				res.LowWatermark, res.Err = rp.LowWatermark, itemErr(partitionItem(t, p), rp.ErrorCode, nil)
			}
			out = append(out, res)
		}
	}
	return out, nil
}
