package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
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
func resolve(ctx context.Context, cl *kpax.Client, specs []topicSpec) (*kpax.ClusterMetadata, []tp, error) {
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
		return nil, nil, timeoutErr(ctx, err)
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
			return nil, nil, fmt.Errorf("topic %q: %w", s.topic, kpax.ErrUnknownTopicOrPartition)
		case t.Err != nil:
			return nil, nil, fmt.Errorf("topic %q: %w", s.topic, t.Err)
		}
		parts := s.partitions
		if parts == nil {
			for _, p := range t.Partitions {
				parts = append(parts, p.Partition)
			}
		}
		for _, p := range parts {
			if int(p) >= len(t.Partitions) {
				return nil, nil, fmt.Errorf("topic %q has %d partitions, no partition %d", s.topic, len(t.Partitions), p)
			}
			k := tp{s.topic, p}
			if !dup[k] {
				dup[k] = true
				tps = append(tps, k)
			}
		}
	}
	return md, tps, nil
}

// Special timestamps of ListOffsets.
const (
	tsLatest   = -1
	tsEarliest = -2
)

// listOffsets asks the partitions' leaders for the offset of each partition
// at ts: tsEarliest, tsLatest, or a time in Unix milliseconds (the first
// offset whose timestamp is at or after it, -1 if none). It retries a few
// times on retriable errors (a leader that moved).
func listOffsets(ctx context.Context, cl *kpax.Client, md *kpax.ClusterMetadata, tps []tp, ts int64) (map[tp]int64, error) {
	return listOffsetsIsolated(ctx, cl, md, tps, ts, kpax.ReadUncommitted)
}

// listOffsetsIsolated is listOffsets at an isolation level: with
// ReadCommitted, the latest offset is the last stable offset.
func listOffsetsIsolated(ctx context.Context, cl *kpax.Client, md *kpax.ClusterMetadata, tps []tp, ts int64, iso kpax.IsolationLevel) (map[tp]int64, error) {
	out := make(map[tp]int64, len(tps))
	todo := tps
	for attempt := 0; ; attempt++ {
		retry, err := listOffsetsOnce(ctx, cl, md, todo, ts, iso, out)
		if err != nil || len(retry) == 0 {
			return out, timeoutErr(ctx, err)
		}
		if attempt >= 4 {
			return out, fmt.Errorf("offsets of %s: %w", retry[0].p, retry[0].err)
		}
		todo = todo[:0:0]
		for _, r := range retry {
			todo = append(todo, r.p)
		}
		select {
		case <-ctx.Done():
			return out, timeoutErr(ctx, ctx.Err())
		case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
		}
		if md, err = cl.Metadata(ctx, topicsOf(todo)...); err != nil {
			return out, timeoutErr(ctx, err)
		}
	}
}

type tpError struct {
	p   tp
	err error
}

func topicsOf(tps []tp) []string {
	var names []string
	seen := make(map[string]bool)
	for _, p := range tps {
		if !seen[p.topic] {
			seen[p.topic] = true
			names = append(names, p.topic)
		}
	}
	return names
}

func listOffsetsOnce(ctx context.Context, cl *kpax.Client, md *kpax.ClusterMetadata, tps []tp, ts int64, iso kpax.IsolationLevel, out map[tp]int64) ([]tpError, error) {
	leaders := make(map[tp]int32)
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			leaders[tp{t.Name, p.Partition}] = p.Leader
		}
	}
	var retry []tpError
	byLeader := make(map[int32]map[string][]int32)
	for _, p := range tps {
		l, ok := leaders[p]
		if !ok || l < 0 {
			retry = append(retry, tpError{p, kpax.ErrLeaderNotAvailable})
			continue
		}
		if byLeader[l] == nil {
			byLeader[l] = make(map[string][]int32)
		}
		byLeader[l][p.topic] = append(byLeader[l][p.topic], p.partition)
	}
	nodes := make([]int32, 0, len(byLeader))
	for n := range byLeader {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i] < nodes[j] })
	for _, node := range nodes {
		req := &kpax.ListOffsetsRequest{ReplicaID: -1, IsolationLevel: int8(iso)}
		for topic, parts := range byLeader[node] {
			rt := kpax.ListOffsetsRequestTopic{Name: topic}
			for _, p := range parts {
				rt.Partitions = append(rt.Partitions, kpax.ListOffsetsRequestTopicPartition{
					PartitionIndex: p, CurrentLeaderEpoch: -1, Timestamp: ts, MaxNumOffsets: 1,
				})
			}
			req.Topics = append(req.Topics, rt)
		}
		r, err := cl.RequestBroker(ctx, node, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			for topic, parts := range byLeader[node] {
				for _, p := range parts {
					retry = append(retry, tpError{tp{topic, p}, err})
				}
			}
			continue
		}
		resp, ok := r.(*kpax.ListOffsetsResponse)
		if !ok {
			return nil, fmt.Errorf("broker %d: unexpected response %T to ListOffsets", node, r)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				k := tp{t.Name, p.PartitionIndex}
				if err := kpax.ErrorForCode(p.ErrorCode); err != nil {
					if !kpax.IsRetriable(err) {
						return nil, fmt.Errorf("offsets of %s: %w", k, err)
					}
					retry = append(retry, tpError{k, err})
					continue
				}
				off := p.Offset
				if len(p.OldStyleOffsets) > 0 { // ListOffsets v0
					off = p.OldStyleOffsets[0]
				}
				out[k] = off
			}
		}
	}
	for _, p := range tps {
		if _, ok := out[p]; ok {
			continue
		}
		if !containsTP(retry, p) {
			retry = append(retry, tpError{p, errors.New("missing from the ListOffsets response")})
		}
	}
	return retry, nil
}

func containsTP(errs []tpError, p tp) bool {
	for _, e := range errs {
		if e.p == p {
			return true
		}
	}
	return false
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
	var atMs int64 = -3
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
	md, tps, err := resolve(ctx, cl, specs)
	if err != nil {
		return err
	}
	first, err := listOffsets(ctx, cl, md, tps, tsEarliest)
	if err != nil {
		return err
	}
	last, err := listOffsets(ctx, cl, md, tps, tsLatest)
	if err != nil {
		return err
	}
	var atOff map[tp]int64
	if atMs != -3 {
		if atOff, err = listOffsets(ctx, cl, md, tps, atMs); err != nil {
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
