package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"h12.me/kpax"
)

// start is a parsed -o.
type start struct {
	kind byte // 'e' earliest, 'l' latest, 'o' offset, 'r' relative to the end, 't' time
	n    int64
	t    time.Time
}

func parseStart(s string) (start, error) {
	switch strings.ToLower(s) {
	case "earliest", "beginning", "first":
		return start{kind: 'e'}, nil
	case "latest", "end", "last":
		return start{kind: 'l'}, nil
	}
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		t, err := parseTime(rest)
		if err != nil {
			return start{}, err
		}
		return start{kind: 't', t: t}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		return start{}, fmt.Errorf("bad start %q: want earliest, latest, an offset, -N or @TIME", s)
	case n < 0:
		if n == -n { // math.MinInt64
			return start{}, fmt.Errorf("bad start %q", s)
		}
		return start{kind: 'r', n: -n}, nil
	}
	return start{kind: 'o', n: n}, nil
}

// offset returns the kpax start point of a partition; end is its end offset
// (needed only for relative starts).
func (s start) offset(end int64) kpax.Offset {
	switch s.kind {
	case 'l':
		return kpax.Latest()
	case 'o':
		return kpax.AtOffset(s.n)
	case 'r':
		return kpax.AtOffset(max(end-s.n, 0))
	case 't':
		return kpax.AtTime(s.t)
	}
	return kpax.Earliest()
}

// consumeOpts are the flags of consume.
type consumeOpts struct {
	start         start
	count         int
	exitAtEnd     bool
	group         string
	share         string       // -share: a share group
	ack           kpax.AckType // -ack: how -share acknowledges what it prints
	readCommitted bool
	out           recordWriter
}

func runConsume(ctx context.Context, e *env, args []string) error {
	fs := e.flags("consume", "TOPIC[:PARTITION,...]...", `Prints the records of the topics (all their partitions) or of the chosen partitions to
stdout, one per line by default (the value), until -c records, the end (-e), -timeout or
Ctrl-C. With -group, kpax joins the consumer group, consumes the partitions the group
assigns it and commits its offsets; Ctrl-C commits and leaves the group. With -share, kpax
joins the share group and acknowledges each record it prints (-ack).`)
	startFlag := fs.String("o", "earliest", "where to start: earliest, latest, an offset, -N (N records before the end) or @TIME\n(Unix milliseconds or RFC 3339); with -group, where partitions without a committed offset start")
	count := fs.Int("c", 0, "exit after this many records (0: no limit)")
	exitAtEnd := fs.Bool("e", false, "exit at the end of every partition (its end when kpax starts); not with -group")
	group := fs.String("group", "", "consume as a member of this consumer group")
	fs.StringVar(group, "G", "", "the same as -group (kcat)")
	format := fs.String("f", "", formatHelp+" (default %v\\n)")
	keyDelim := fs.String("K", "", "print KEY<delim>VALUE lines: a shorthand for -f '%k<delim>%v\\n'")
	asJSON := fs.Bool("json", false, "print each record as a JSON object on its own line, with kcat -J's fields (topic, partition, offset, tstype, ts, headers, key, payload)")
	fs.BoolVar(asJSON, "J", false, "the same as -json (kcat)")
	readCommitted := fs.Bool("read-committed", false, "skip records of aborted and open transactions")
	share := fs.String("share", "", "consume as a member of this share group (KIP-932, Kafka 4.1+): each record goes to one member")
	ackFlag := fs.String("ack", "accept", "with -share, how each printed record is acknowledged: accept, release (delivered again) or reject")
	specs, err := parseTopicArgs(fs, args, "consume: name at least one topic (try kpax consume -h)")
	if err != nil {
		return err
	}
	o := consumeOpts{count: *count, exitAtEnd: *exitAtEnd, group: *group, share: *share, readCommitted: *readCommitted}
	if o.ack, err = parseAck(*ackFlag); err != nil {
		return usagef("%v", err)
	}
	if err := checkShareFlags(fs, o, specs); err != nil {
		return err
	}
	if o.start, err = parseStart(*startFlag); err != nil {
		return usagef("-o: %v", err)
	}
	if o.count < 0 {
		return usagef("-c %d: must not be negative", o.count)
	}
	if o.out, err = newRecordWriter(*format, *keyDelim, *asJSON); err != nil {
		return err
	}
	if o.group != "" {
		if o.exitAtEnd {
			return usagef("-e does not go with -group (use -c or -timeout)")
		}
		if o.start.kind == 'r' {
			return usagef("-o %s does not go with -group: use earliest, latest, an offset or @TIME", *startFlag)
		}
		for _, s := range specs {
			if s.partitions != nil {
				return usagef("-group consumes whole topics, not %s:%v (the group assigns the partitions)", s.topic, s.partitions)
			}
		}
	}
	ctx, cancel := e.deadline(ctx, 0)
	defer cancel()
	cl, err := e.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	var opts []kpax.Option
	if o.readCommitted {
		opts = append(opts, kpax.WithIsolationLevel(kpax.ReadCommitted))
	}
	if o.group != "" {
		return consumeGroup(ctx, e, cl, specs, o, opts)
	}
	if o.share != "" {
		return consumeShare(ctx, e, cl, specs, o)
	}
	return consumeAssigned(ctx, e, cl, specs, o, opts)
}

// consumeAssigned consumes chosen partitions without a group.
func consumeAssigned(ctx context.Context, e *env, cl *kpax.Client, specs []topicSpec, o consumeOpts, opts []kpax.Option) error {
	mctx, mcancel := e.deadline(ctx, adminTimeout)
	defer mcancel()
	tps, err := resolve(mctx, cl, specs)
	if err != nil {
		return err
	}
	var ends map[tp]int64
	if o.exitAtEnd || o.start.kind == 'r' {
		iso := kpax.ReadUncommitted
		if o.readCommitted {
			iso = kpax.ReadCommitted // the end is the last stable offset
		}
		if ends, err = listOffsets(mctx, cl, tps, kpax.OffsetsLatest, iso); err != nil {
			return err
		}
	}
	mcancel()

	c, err := cl.NewConsumer(opts...)
	if err != nil {
		return usageError{err}
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer ccancel()
		c.Close(cctx)
	}()
	assign := make(map[string]map[int32]kpax.Offset)
	left := make(map[tp]bool) // partitions not at their end yet (-e)
	for _, p := range tps {
		if o.exitAtEnd {
			end := ends[p]
			if o.start.kind == 'l' || (o.start.kind == 'o' && o.start.n >= end) || end == 0 {
				continue // nothing to read
			}
			left[p] = true
		}
		if assign[p.topic] == nil {
			assign[p.topic] = make(map[int32]kpax.Offset)
		}
		assign[p.topic][p.partition] = o.start.offset(ends[p])
	}
	if o.exitAtEnd && len(left) == 0 {
		return nil
	}
	c.Assign(assign)

	s := e.newRecordSink(o)
	defer s.prog.finish()
	for {
		pctx, pcancel := ctx, context.CancelFunc(func() {})
		if o.exitAtEnd {
			// Wake up now and then to see whether every partition is done:
			// Poll has nothing to return for a partition at its end.
			pctx, pcancel = context.WithTimeout(ctx, 200*time.Millisecond)
		}
		f, err := c.Poll(pctx)
		pcancel()
		if err != nil && ctx.Err() == nil && pctx.Err() == nil {
			return err
		}
		for i := range f.Records {
			r := &f.Records[i]
			if o.exitAtEnd && r.Offset >= ends[tp{r.Topic, r.Partition}] {
				continue // produced after kpax started
			}
			if done, err := s.print(r); done || err != nil {
				return err
			}
		}
		if err := s.endPoll(f.Errors); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return stopped(ctx, e, s.n, o.count)
		}
		if o.exitAtEnd {
			for p := range left {
				if pos, ok := c.Position(p.topic, p.partition); ok && pos >= ends[p] {
					delete(left, p)
					c.Unassign(p.topic, p.partition)
				}
			}
			if len(left) == 0 {
				return nil
			}
		}
	}
}

// recordSink prints the records of a consume to stdout, counts them against
// -c and keeps the progress line.
type recordSink struct {
	w     *bufio.Writer
	out   recordWriter
	warn  pollErrors
	prog  *progress
	n     int // records printed
	count int // -c
}

// newRecordSink returns the sink of a consume with the options o, its
// progress line started.
func (e *env) newRecordSink(o consumeOpts) *recordSink {
	return &recordSink{
		w:     bufio.NewWriterSize(e.stdout, 64<<10),
		out:   o.out,
		warn:  pollErrors{w: e.stderr},
		prog:  e.startProgress("consumed", true),
		count: o.count,
	}
}

// print writes r. With the -c'th record it flushes the output and reports
// done, with the error of the flush.
func (s *recordSink) print(r *kpax.Record) (done bool, err error) {
	if err := s.out.write(s.w, r); err != nil {
		return false, err
	}
	s.n++
	s.prog.add(1)
	if s.n == s.count {
		return true, flushOutput(s.w)
	}
	return false, nil
}

// endPoll flushes the records of a Poll, then returns the first of the
// Poll's errors that ends the consume (see pollErrors.check).
func (s *recordSink) endPoll(errs []error) error {
	if err := flushOutput(s.w); err != nil {
		return err
	}
	return s.warn.check(errs)
}

// flushOutput flushes the records written to w.
func flushOutput(w *bufio.Writer) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing records: %w", err)
	}
	return nil
}

// pollErrors handles the problems Poll reports.
type pollErrors struct {
	w    io.Writer
	last map[string]time.Time // when each warning was printed
}

// warningEvery is how often the same warning is printed again.
const warningEvery = 30 * time.Second

// check returns the first error that ends consumption: a Kafka error that
// the consumer does not retry (e.g. an authorization failure). It prints the
// others, which the consumer retries (a broker down, a leader moving), as
// warnings on stderr, the same one at most every 30 seconds.
func (p *pollErrors) check(errs []error) error {
	for _, err := range errs {
		var ke *kpax.Error
		var ge *kpax.GroupError
		if errors.As(err, &ke) && !ke.Retriable() && !errors.As(err, &ge) {
			return err
		}
		msg := errorLine(fmt.Errorf("warning: %w (retrying)", err))
		if t, ok := p.last[msg]; ok && time.Since(t) < warningEvery {
			continue
		}
		if p.last == nil {
			p.last = make(map[string]time.Time)
		}
		p.last[msg] = time.Now()
		fmt.Fprintln(p.w, msg)
	}
	return nil
}

// stopped is the outcome of a consume that ctx ended: fine after Ctrl-C, an
// error after -timeout when -c records did not come.
func stopped(ctx context.Context, e *env, n, count int) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && count > 0 && n < count {
		return fmt.Errorf("got %d of %d records before -timeout %v", n, count, e.timeout)
	}
	return nil
}
