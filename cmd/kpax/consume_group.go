package main

import (
	"context"
	"fmt"
	"time"

	"h12.me/kpax"
)

// consumeGroup consumes as a member of a consumer group, from the group's
// committed offsets (o.start where there are none). It commits every second
// and when it stops, exactly the records it printed (marked).
func consumeGroup(ctx context.Context, e *env, cl *kpax.Client, specs []topicSpec, o consumeOpts, opts []kpax.Option) error {
	mctx, mcancel := e.deadline(ctx, adminTimeout)
	_, err := resolve(mctx, cl, specs) // unknown topics are an error, not an empty assignment
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
				done, err := s.print(r)
				if err == nil {
					// Marked once printed: the group commits exactly the
					// records printed, even when -c stops in the middle of
					// a Poll's records.
					gc.MarkRecords(r)
				}
				if done || err != nil {
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

	// Leave the group: commit the marks, LeaveGroup. Not bound by -timeout
	// or Ctrl-C.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer ccancel()
	closeErr := gc.Close(cctx)
	switch {
	case loopErr != nil:
		return loopErr
	case closeErr != nil:
		return fmt.Errorf("leaving group %q: %w", o.group, closeErr)
	}
	return stopped(ctx, e, s.n, o.count)
}
