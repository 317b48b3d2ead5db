package kpax

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// PartitionLag is how far a group is behind on one partition.
type PartitionLag struct {
	Topic     string
	Partition int32
	Committed int64 // -1: nothing committed
	Start     int64 // the log start offset
	End       int64 // the end offset (high watermark)
	// Lag is End - Committed, or End - Start when nothing is committed
	// (every record is still to read); 0 when Err is set.
	Lag    int64
	Member string // the member the partition is assigned to, "" if none
	Err    error
}

// GroupLag is a group's lag on every partition it has committed or is
// assigned, and in total.
type GroupLag struct {
	Group      string
	State      string
	Partitions []PartitionLag // sorted by topic and partition
	Total      int64          // the sum of the partitions' Lag
}

// Lag returns the group's lag: committed offsets against end offsets, per
// partition and in total, for the topics the group has committed offsets of
// or its members are assigned.
func (a *Admin) Lag(ctx context.Context, group string) (*GroupLag, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	ds, err := a.DescribeGroups(ctx, group)
	if ds == nil {
		return nil, err
	}
	if ds[0].Err != nil {
		return nil, ds[0].Err
	}
	committed, err := a.CommittedOffsets(ctx, group)
	if committed == nil && err != nil {
		return nil, err
	}
	owner := map[topicPartition]string{}
	topics := map[string]bool{}
	for _, m := range ds[0].Members {
		for t, ps := range m.Assigned {
			topics[t] = true
			for _, p := range ps {
				owner[topicPartition{t, p}] = m.MemberID
			}
		}
	}
	at := map[topicPartition]GroupOffset{}
	for _, c := range committed {
		topics[c.Topic] = true
		at[topicPartition{c.Topic, c.Partition}] = c
	}
	gl := &GroupLag{Group: group, State: ds[0].State}
	if len(topics) == 0 {
		return gl, nil
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	starts, ends, err := a.bounds(ctx, allPartitions(names))
	if err != nil {
		return nil, err
	}
	s := summary{op: "Lag"}
	for _, e := range ends {
		k := topicPartition{e.Topic, e.Partition}
		c, ok := at[k]
		if !ok && owner[k] == "" {
			continue // neither committed nor assigned
		}
		pl := PartitionLag{Topic: e.Topic, Partition: e.Partition, Committed: -1, Start: starts[k].Offset, End: e.Offset, Member: owner[k], Err: e.Err}
		if ok {
			pl.Committed = c.Offset
			pl.Err = cmp.Or(pl.Err, c.Err)
		}
		if pl.Err = cmp.Or(pl.Err, starts[k].Err); pl.Err == nil {
			pl.Lag = pl.End - pl.Start
			if pl.Committed >= 0 {
				pl.Lag = max(pl.End-pl.Committed, 0)
			}
		}
		gl.Total += pl.Lag
		gl.Partitions = append(gl.Partitions, pl)
		s.add(pl.Err)
	}
	return gl, s.err()
}

// bounds lists the start and end offsets of the partitions; partitions
// with errors carry them.
func (a *Admin) bounds(ctx context.Context, tp TopicPartitions) (map[topicPartition]ListedOffset, []ListedOffset, error) {
	startList, err := a.ListOffsets(ctx, OffsetsEarliest, tp)
	if startList == nil && err != nil {
		return nil, nil, err
	}
	ends, err := a.ListOffsets(ctx, OffsetsLatest, tp)
	if ends == nil && err != nil {
		return nil, nil, err
	}
	starts := map[topicPartition]ListedOffset{}
	for _, s := range startList {
		starts[topicPartition{s.Topic, s.Partition}] = s
	}
	return starts, ends, nil
}

// OffsetTarget is where ResetGroupOffsets moves a group's offsets:
// ToEarliest, ToLatest, ToTime, ToOffset or ShiftBy.
type OffsetTarget struct {
	kind int8
	n    int64
	t    time.Time
}

const (
	resetEarliest int8 = iota + 1
	resetLatest
	resetTime
	resetOffset
	resetShift
)

// ToEarliest moves offsets to the log start.
func ToEarliest() OffsetTarget { return OffsetTarget{kind: resetEarliest} }

// ToLatest moves offsets to the end of the log.
func ToLatest() OffsetTarget { return OffsetTarget{kind: resetLatest} }

// ToTime moves offsets to the first record at or after t (the end of
// the log if there is none).
func ToTime(t time.Time) OffsetTarget { return OffsetTarget{kind: resetTime, t: t} }

// ToOffset moves offsets to n, kept within the log's bounds.
func ToOffset(n int64) OffsetTarget { return OffsetTarget{kind: resetOffset, n: n} }

// ShiftBy moves committed offsets by n (negative: back), kept within the
// log's bounds.
func ShiftBy(n int64) OffsetTarget { return OffsetTarget{kind: resetShift, n: n} }

// String describes the reset, e.g. "earliest" or "shift by -10".
func (r OffsetTarget) String() string {
	switch r.kind {
	case resetEarliest:
		return "earliest"
	case resetLatest:
		return "latest"
	case resetTime:
		return "time " + r.t.Format(time.RFC3339Nano)
	case resetOffset:
		return fmt.Sprintf("offset %d", r.n)
	case resetShift:
		return fmt.Sprintf("shift by %d", r.n)
	}
	return "no reset"
}

// PlanResetOffsets computes the offsets ResetGroupOffsets would commit,
// without committing: one per partition of tp (a topic with none listed:
// all its partitions; nil tp: every topic the group has committed offsets
// of), sorted by topic and partition.
func (a *Admin) PlanResetOffsets(ctx context.Context, group string, to OffsetTarget, tp TopicPartitions) ([]GroupOffset, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, invalidf("empty group ID")
	}
	if to.kind == 0 {
		return nil, invalidf("no offset reset given")
	}
	committed, err := a.CommittedOffsets(ctx, group)
	if committed == nil && err != nil {
		return nil, err
	}
	at := map[topicPartition]GroupOffset{}
	for _, c := range committed {
		at[topicPartition{c.Topic, c.Partition}] = c
	}
	if tp == nil {
		tp = TopicPartitions{}
		for _, c := range committed {
			tp[c.Topic] = append(tp[c.Topic], c.Partition)
		}
		if len(tp) == 0 {
			return nil, invalidf("group %q has no committed offsets: name the topics", group)
		}
	}
	if err := checkPartitions(tp, false); err != nil {
		return nil, err
	}
	starts, ends, err := a.bounds(ctx, tp)
	if err != nil {
		return nil, err
	}
	var times map[topicPartition]ListedOffset
	if to.kind == resetTime {
		list, err := a.ListOffsets(ctx, max(to.t.UnixMilli(), 0), tp)
		if list == nil && err != nil {
			return nil, err
		}
		times = map[topicPartition]ListedOffset{}
		for _, l := range list {
			times[topicPartition{l.Topic, l.Partition}] = l
		}
	}
	var out []GroupOffset
	s := summary{op: "PlanResetOffsets"}
	for _, e := range ends {
		k := topicPartition{e.Topic, e.Partition}
		o := GroupOffset{Topic: e.Topic, Partition: e.Partition, Offset: -1, LeaderEpoch: -1, Err: cmp.Or(e.Err, starts[k].Err)}
		if o.Err == nil {
			o.Offset, o.Err = to.target(starts[k].Offset, e.Offset, at[k], times[k], k)
		}
		out = append(out, o)
		s.add(o.Err)
	}
	return out, s.err()
}

// target is the offset the reset moves a partition to.
func (r OffsetTarget) target(start, end int64, committed GroupOffset, atTime ListedOffset, k topicPartition) (int64, error) {
	clamp := func(n int64) int64 { return min(max(n, start), end) }
	switch r.kind {
	case resetEarliest:
		return start, nil
	case resetLatest:
		return end, nil
	case resetOffset:
		return clamp(r.n), nil
	case resetTime:
		if atTime.Err != nil {
			return -1, atTime.Err
		}
		if atTime.Offset < 0 {
			return end, nil
		}
		return clamp(atTime.Offset), nil
	default:
		if committed.Topic == "" || committed.Offset < 0 {
			return -1, &ItemError{Item: partitionItem(k.topic, k.partition), Err: fmt.Errorf("%w: no committed offset to shift", ErrInvalidArgument)}
		}
		return clamp(committed.Offset + r.n), nil
	}
}

// ResetGroupOffsets moves the group's committed offsets as PlanResetOffsets
// computes them and commits them with AlterGroupOffsets: the group must have
// no active members. It returns the plan, each partition with the error of
// its planning or its commit.
func (a *Admin) ResetGroupOffsets(ctx context.Context, group string, to OffsetTarget, tp TopicPartitions) ([]GroupOffset, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	plan, err := a.PlanResetOffsets(ctx, group, to, tp)
	if plan == nil {
		return nil, err
	}
	var commit []TopicPartitionOffset
	for _, o := range plan {
		if o.Err == nil {
			commit = append(commit, TopicPartitionOffset{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, LeaderEpoch: -1})
		}
	}
	if len(commit) > 0 {
		res, err := a.AlterGroupOffsets(ctx, group, commit...)
		if res == nil {
			return nil, err
		}
		errs := map[topicPartition]error{}
		for _, r := range res {
			errs[topicPartition{r.Topic, r.Partition}] = r.Err
		}
		for i := range plan {
			if plan[i].Err == nil {
				plan[i].Err = errs[topicPartition{plan[i].Topic, plan[i].Partition}]
			}
		}
	}
	slices.SortFunc(plan, func(a, b GroupOffset) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	s := summary{op: "ResetGroupOffsets"}
	for _, o := range plan {
		s.add(o.Err)
	}
	return plan, s.err()
}
