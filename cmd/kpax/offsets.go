package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"h12.me/kpax"
)

// tp is a topic partition.
type tp struct {
	topic     string
	partition int32
}

func (p tp) String() string { return fmt.Sprintf("%s:%d", p.topic, p.partition) }

// topicSpec is a TOPIC or TOPIC:P,P,... argument.
type topicSpec struct {
	topic      string
	partitions []int32 // nil: all
}

// parseTopicSpecs parses TOPIC[:PARTITION,...] arguments.
func parseTopicSpecs(args []string) ([]topicSpec, error) {
	specs := make([]topicSpec, 0, len(args))
	for _, a := range args {
		name, parts, hasParts := strings.Cut(a, ":")
		if name == "" {
			return nil, usagef("bad topic %q: empty name", a)
		}
		s := topicSpec{topic: name}
		if hasParts {
			for _, f := range strings.Split(parts, ",") {
				n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
				if err != nil || n < 0 {
					return nil, usagef("bad partition %q in %q: want TOPIC or TOPIC:PARTITION[,PARTITION...]", f, a)
				}
				s.partitions = append(s.partitions, int32(n))
			}
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// metadataWithLeaders loads the metadata of the topics, asking again while
// one has no leader yet (LEADER_NOT_AVAILABLE: just created, or auto-created
// by this very request on a broker before 0.11), within ctx and at most 30s.
func metadataWithLeaders(ctx context.Context, cl *kpax.Client, names []string) (*kpax.ClusterMetadata, error) {
	end := time.Now().Add(30 * time.Second)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		md, err := cl.Metadata(ctx, names...)
		if err != nil || !electing(md) || time.Now().Add(wait).After(end) {
			return md, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return md, nil
		}
	}
}

// electing reports whether a topic or partition of md waits for a leader.
func electing(md *kpax.ClusterMetadata) bool {
	for _, t := range md.Topics {
		if errors.Is(t.Err, kpax.ErrLeaderNotAvailable) {
			return true
		}
		for _, p := range t.Partitions {
			if p.Leader < 0 && errors.Is(p.Err, kpax.ErrLeaderNotAvailable) {
				return true
			}
		}
	}
	return false
}

// resolve loads the metadata of the topics and lists their chosen partitions.
// An unknown topic or partition is an error.
func resolve(ctx context.Context, cl *kpax.Client, specs []topicSpec) ([]tp, error) {
	names := make([]string, 0, len(specs))
	seen := make(map[string]bool)
	for _, s := range specs {
		if !seen[s.topic] {
			seen[s.topic] = true
			names = append(names, s.topic)
		}
	}
	md, err := metadataWithLeaders(ctx, cl, names)
	if err != nil {
		return nil, timeoutErr(ctx, err)
	}
	byName := make(map[string]*kpax.TopicMetadata, len(md.Topics))
	for i := range md.Topics {
		byName[md.Topics[i].Name] = &md.Topics[i]
	}
	var tps []tp
	dup := make(map[tp]bool)
	for _, s := range specs {
		t := byName[s.topic]
		switch {
		case t == nil:
			return nil, fmt.Errorf("topic %q: %w", s.topic, kpax.ErrUnknownTopicOrPartition)
		case t.Err != nil:
			return nil, fmt.Errorf("topic %q: %w", s.topic, t.Err)
		}
		parts := s.partitions
		if parts == nil {
			for _, p := range t.Partitions {
				parts = append(parts, p.Partition)
			}
		}
		for _, p := range parts {
			if int(p) >= len(t.Partitions) {
				return nil, fmt.Errorf("topic %q has %d partitions, no partition %d", s.topic, len(t.Partitions), p)
			}
			k := tp{s.topic, p}
			if !dup[k] {
				dup[k] = true
				tps = append(tps, k)
			}
		}
	}
	return tps, nil
}

// listOffsets returns the offset of each partition at ts: an
// kpax.Offsets* constant or a time in Unix milliseconds (the first offset
// whose timestamp is at or after it, -1 if none); with kpax.ReadCommitted
// the latest offset is the last stable offset. The admin API asks each
// partition's leader, again while one answers a retriable error (a leader
// that moved), within ctx; the first partition that fails is the error.
func listOffsets(ctx context.Context, cl *kpax.Client, tps []tp, ts int64, iso kpax.IsolationLevel) (map[tp]int64, error) {
	req := kpax.TopicPartitions{}
	for _, p := range tps {
		req[p.topic] = append(req[p.topic], p.partition)
	}
	var got []kpax.ListedOffset
	var err error
	if iso == kpax.ReadCommitted && ts == kpax.OffsetsLatest {
		got, err = cl.Admin().ListLastStableOffsets(ctx, req)
	} else {
		got, err = cl.Admin().ListOffsets(ctx, ts, req)
	}
	if got == nil {
		return nil, timeoutErr(ctx, err)
	}
	out := make(map[tp]int64, len(got))
	for _, o := range got {
		if o.Err != nil {
			return nil, timeoutErr(ctx, fmt.Errorf("offsets: %w", o.Err))
		}
		out[tp{o.Topic, o.Partition}] = o.Offset
	}
	return out, nil
}

// parseTime parses a time given as Unix milliseconds or RFC 3339.
func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return time.Time{}, fmt.Errorf("bad time %q: negative", s)
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: want Unix milliseconds or RFC 3339 (2006-01-02T15:04:05Z)", s)
	}
	return t, nil
}

func runOffsets(ctx context.Context, e *env, args []string) error {
	fs := e.flags("offsets", "TOPIC[:PARTITION,...]...", "Shows the earliest and latest offsets of each partition, and with -at the first offset at or after a time.")
	at := fs.String("at", "", "also show the first offset at or after this time: Unix milliseconds or RFC 3339")
	asJSON := jsonFlag(fs)
	specs, err := parseTopicArgs(fs, args, "offsets: name at least one topic (try kpax offsets -h)")
	if err != nil {
		return err
	}
	atMs := int64(-1) // none
	if *at != "" {
		t, err := parseTime(*at)
		if err != nil {
			return usagef("-at: %v", err)
		}
		atMs = t.UnixMilli()
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	tps, err := resolve(ctx, cl, specs)
	if err != nil {
		return err
	}
	first, err := listOffsets(ctx, cl, tps, kpax.OffsetsEarliest, kpax.ReadUncommitted)
	if err != nil {
		return err
	}
	last, err := listOffsets(ctx, cl, tps, kpax.OffsetsLatest, kpax.ReadUncommitted)
	if err != nil {
		return err
	}
	var atOff map[tp]int64
	if atMs >= 0 {
		if atOff, err = listOffsets(ctx, cl, tps, atMs, kpax.ReadUncommitted); err != nil {
			return err
		}
	}
	if *asJSON {
		type jo struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Earliest  int64  `json:"earliest"`
			Latest    int64  `json:"latest"`
			At        *int64 `json:"at,omitempty"`
		}
		out := []jo{}
		for _, p := range tps {
			o := jo{Topic: p.topic, Partition: p.partition, Earliest: first[p], Latest: last[p]}
			if atOff != nil {
				v := atOff[p]
				o.At = &v
			}
			out = append(out, o)
		}
		return e.printJSON(out)
	}
	tw := newTable(e.stdout)
	hdr := "TOPIC\tPARTITION\tEARLIEST\tLATEST"
	if atOff != nil {
		hdr += "\tAT " + *at
	}
	fmt.Fprintln(tw, hdr)
	for _, p := range tps {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d", p.topic, p.partition, first[p], last[p])
		if atOff != nil {
			if o := atOff[p]; o >= 0 {
				fmt.Fprintf(tw, "\t%d", o)
			} else {
				fmt.Fprintf(tw, "\t-")
			}
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
