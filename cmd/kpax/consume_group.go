package main

import (
	"context"
	"fmt"
	"time"

	"h12.me/kpax"
)

// consumeGroup consumes as a member of a consumer group, from the group's
// committed offsets (o.start where there are none). It commits every second
// and when it stops; with -c, only up to the last record it printed.
func consumeGroup(ctx context.Context, e *env, cl *kpax.Client, specs []topicSpec, o consumeOpts, opts []kpax.Option) error {
	mctx, mcancel := e.deadline(ctx, adminTimeout)
	_, _, err := resolve(mctx, cl, specs) // unknown topics are an error, not an empty assignment
	mcancel()
	if err != nil {
		return err
	}
	topics := make([]string, 0, len(specs))
	for _, s := range specs {
		topics = append(topics, s.topic)
	}
	opts = append(opts, kpax.WithStartOffset(o.start.offset(0)), kpax.WithAutoCommit(time.Second))
	gc, err := cl.NewGroupConsumer(o.group, topics, opts...)
	if err != nil {
		return fmt.Errorf("group %q: %w", o.group, err)
	}

	s := e.newRecordSink(o)
	printed := make(map[string]map[int32]int64) // the offset after the last record printed
	partial := false                            // -c stopped in the middle of a Poll's records
	loopErr := func() error {
		for {
			f, err := gc.Poll(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for i := range f.Records {
				r := &f.Records[i]
				// Noted before r is printed: printed is read only when -c
				// stops in the middle of a Poll, after r was printed.
				if printed[r.Topic] == nil {
					printed[r.Topic] = make(map[int32]int64)
				}
				printed[r.Topic][r.Partition] = r.Offset + 1
				if done, err := s.print(r); done || err != nil {
					partial = done && i < len(f.Records)-1
					return err
				}
			}
			if err := s.endPoll(f.Errors); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}()
	s.prog.finish()

	// Leave the group: commit, LeaveGroup. Not bound by -timeout or Ctrl-C.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer ccancel()
	closeErr := gc.Close(cctx)
	if partial && closeErr == nil {
		// Close committed the position after every record of the last Poll,
		// some of which -c kept kpax from printing: commit back to the last
		// one printed, as a client outside the group (it is empty now unless
		// other members are in it).
		if err := commitOffsets(cctx, cl, o.group, printed); err != nil {
			fmt.Fprintln(e.stderr, errorLine(fmt.Errorf("warning: group %q may have committed records after the %d printed: %w", o.group, s.n, err)))
		}
	}
	switch {
	case loopErr != nil:
		return loopErr
	case closeErr != nil:
		return fmt.Errorf("leaving group %q: %w", o.group, closeErr)
	}
	return stopped(ctx, e, s.n, o.count)
}

// commitOffsets commits offsets for a group from outside it (generation -1,
// no member ID), which the coordinator accepts while the group is empty.
func commitOffsets(ctx context.Context, cl *kpax.Client, group string, offsets map[string]map[int32]int64) error {
	req := &kpax.OffsetCommitRequest{GroupID: group, GenerationIDOrMemberEpoch: -1, RetentionTimeMs: -1}
	for t, ps := range offsets {
		rt := kpax.OffsetCommitRequestTopic{Name: t}
		for p, off := range ps {
			rt.Partitions = append(rt.Partitions, kpax.OffsetCommitRequestTopicPartition{
				PartitionIndex: p, CommittedOffset: off, CommittedLeaderEpoch: -1, CommitTimestamp: -1,
			})
		}
		req.Topics = append(req.Topics, rt)
	}
	return retryGroup(ctx, func() error {
		resp, err := request[*kpax.OffsetCommitResponse](ctx, cl, req)
		if err != nil {
			return err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := partitionErr(t.Name, p.PartitionIndex, p.ErrorCode); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
