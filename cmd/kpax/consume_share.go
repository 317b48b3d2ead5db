package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"h12.me/kpax"
)

// parseAck reads the -ack flag.
func parseAck(s string) (kpax.AckType, error) {
	switch s {
	case "accept":
		return kpax.AckAccept, nil
	case "release":
		return kpax.AckRelease, nil
	case "reject":
		return kpax.AckReject, nil
	}
	return 0, fmt.Errorf("-ack %q: want accept, release or reject", s)
}

// consumeShare consumes as a member of a share group (KIP-932): each
// record printed is acknowledged with o.ack; records of a Poll left
// unprinted when -c stops are released for the other members.
func consumeShare(ctx context.Context, e *env, cl *kpax.Client, specs []topicSpec, o consumeOpts) error {
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
	sc, err := cl.NewShareConsumer(o.share, topics, kpax.WithShareAckMode(kpax.ShareAckExplicit))
	if err != nil {
		return fmt.Errorf("share group %q: %w", o.share, err)
	}
	s := e.newRecordSink(o)
	loopErr := func() error {
		for {
			f, err := sc.Poll(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			done := false
			for i := range f.Records {
				r := &f.Records[i]
				if done {
					sc.Acknowledge(r, kpax.AckRelease) // not printed: for the others
					continue
				}
				if done, err = s.print(&r.Record); err != nil {
					done = true
					sc.Acknowledge(r, kpax.AckRelease)
					continue
				}
				sc.Acknowledge(r, o.ack)
			}
			if done || err != nil {
				return err
			}
			if err := s.endPoll(shareWarnings(e, f.Errors)); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}()
	s.prog.finish()

	// Send the acknowledgements and leave. Not bound by -timeout or Ctrl-C.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer ccancel()
	closeErr := sc.Close(cctx)
	switch {
	case loopErr != nil:
		return loopErr
	case closeErr != nil:
		return fmt.Errorf("leaving share group %q: %w", o.share, closeErr)
	}
	return stopped(ctx, e, s.n, o.count)
}

// shareWarnings prints failed acknowledgements (the records come back to
// the group) as warnings and returns the other errors.
func shareWarnings(e *env, errs []error) []error {
	var rest []error
	for _, err := range errs {
		if errors.Is(err, kpax.ErrShareAckFailed) {
			fmt.Fprintln(e.stderr, errorLine(fmt.Errorf("warning: %w (the records are delivered again)", err)))
			continue
		}
		rest = append(rest, err)
	}
	return rest
}

// checkShareFlags refuses the flags that do not go with -share (or -ack
// without it).
func checkShareFlags(fs *flag.FlagSet, o consumeOpts, specs []topicSpec) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.share == "" {
		if set["ack"] {
			return usagef("-ack goes with -share")
		}
		return nil
	}
	switch {
	case o.group != "":
		return usagef("-share and -group do not go together")
	case o.exitAtEnd:
		return usagef("-e does not go with -share (use -c or -timeout)")
	case set["o"]:
		return usagef("-o does not go with -share: the group's share.auto.offset.reset config says where it starts")
	case o.readCommitted:
		return usagef("-read-committed does not go with -share: the group's share.isolation.level config says")
	}
	for _, s := range specs {
		if s.partitions != nil {
			return usagef("-share consumes whole topics, not %s:%v", s.topic, s.partitions)
		}
	}
	return nil
}
