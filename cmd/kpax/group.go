package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"h12.me/kpax"
)

func runGroup(ctx context.Context, e *env, args []string) error {
	return runSubcommand(ctx, e, args, "group", groupUsage, []subcommand{
		{"list", groupList},
		{"describe", groupDescribe},
		{"offsets", func(ctx context.Context, e *env, args []string) error { return groupOffsets(ctx, e, args, false) }},
		{"lag", func(ctx context.Context, e *env, args []string) error { return groupOffsets(ctx, e, args, true) }},
		{"delete", groupDelete},
	})
}

const groupUsage = `usage: kpax group list|describe|offsets|lag|delete [flags] [GROUP...]

  list      the groups of the cluster, their state and type
  describe  the members of groups and the partitions assigned to each
  offsets   the offsets a group committed
  lag       how far a group is behind the end of each partition it committed
  delete    delete empty groups and their committed offsets

Run kpax group SUBCOMMAND -h for its flags.
`

// retryGroup calls f until it returns nil or an error that is not
// retriable (a coordinator that is loading or moving), a few times at most.
func retryGroup(ctx context.Context, f func() error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		if err = f(); err == nil || !kpax.IsRetriable(err) || ctx.Err() != nil {
			return timeoutErr(ctx, err)
		}
		select {
		case <-ctx.Done():
			return timeoutErr(ctx, err)
		case <-time.After(time.Duration(50<<min(attempt, 4)) * time.Millisecond):
		}
	}
	return err
}

func groupList(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group list", "", "Lists the groups of the cluster (from every broker), with their state and type.")
	ctx, cl, done, err := e.adminNoArgs(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	var groups []kpax.ListGroupsResponseGroup
	err = eachBroker(ctx, cl, func(b kpax.Broker) error {
		err := retryGroup(ctx, func() error {
			resp, err := requestBroker[*kpax.ListGroupsResponse](ctx, cl, b.NodeID, &kpax.ListGroupsRequest{})
			if err != nil {
				return err
			}
			if err := kpax.ErrorForCode(resp.ErrorCode); err != nil {
				return err
			}
			groups = append(groups, resp.Groups...)
			return nil
		})
		if err != nil {
			return fmt.Errorf("groups of broker %d: %w", b.NodeID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].GroupID < groups[j].GroupID })
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "GROUP\tSTATE\tTYPE\tPROTOCOL")
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.GroupID, dash(g.GroupState), dash(g.GroupType), dash(g.ProtocolType))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupInfo describes a group, whichever protocol it follows.
type groupInfo struct {
	id, state    string
	protocolType string // "consumer" for consumer groups
	protocol     string // the assignor
	members      []memberInfo
}

type memberInfo struct {
	id, clientID, host string
	assigned           map[string][]int32 // nil if unknown
	err                error              // a malformed assignment
}

// describeGroup asks the group's coordinator about it: DescribeGroups, and
// for a group of the consumer protocol (KIP-848), which DescribeGroups does
// not know, ConsumerGroupDescribe.
func describeGroup(ctx context.Context, cl *kpax.Client, group string) (groupInfo, error) {
	g, err := describeOne(ctx, cl, &kpax.DescribeGroupsRequest{Groups: []string{group}},
		func(r *kpax.DescribeGroupsResponse) []kpax.DescribeGroupsResponseGroup { return r.Groups },
		func(g kpax.DescribeGroupsResponseGroup) int16 { return g.ErrorCode })
	if errors.Is(err, kpax.ErrGroupIdNotFound) || (err == nil && g.GroupState == "Dead") {
		if info, cerr := describeConsumerGroup(ctx, cl, group); cerr == nil {
			return info, nil
		}
	}
	if err != nil {
		return groupInfo{}, fmt.Errorf("group %q: %w", group, err)
	}
	info := groupInfo{id: g.GroupID, state: g.GroupState, protocolType: g.ProtocolType, protocol: g.ProtocolData}
	for _, m := range g.Members {
		mi := memberInfo{id: m.MemberID, clientID: m.ClientID, host: m.ClientHost}
		if g.ProtocolType == "consumer" {
			mi.assigned, mi.err = kpax.DecodeConsumerAssignment(m.MemberAssignment)
		}
		info.members = append(info.members, mi)
	}
	return info, nil
}

// describeOne sends req, a request about one group, to the group's
// coordinator (retrying while it loads or moves) and returns that group of
// the response: groups lists the response's groups, code a group's error code.
// The group is returned with the error of its code, if any.
func describeOne[R kpax.Response, G any](ctx context.Context, cl *kpax.Client, req kpax.Request, groups func(R) []G, code func(G) int16) (G, error) {
	var g G
	err := retryGroup(ctx, func() error {
		resp, err := request[R](ctx, cl, req)
		if err != nil {
			return err
		}
		gs := groups(resp)
		if len(gs) != 1 {
			return fmt.Errorf("%s answered with %d groups, not 1", kpax.APIName(req.APIKey()), len(gs))
		}
		g = gs[0]
		return kpax.ErrorForCode(code(g))
	})
	return g, err
}

// describeConsumerGroup describes a group of the consumer protocol.
func describeConsumerGroup(ctx context.Context, cl *kpax.Client, group string) (groupInfo, error) {
	g, err := describeOne(ctx, cl, &kpax.ConsumerGroupDescribeRequest{GroupIDs: []string{group}},
		func(r *kpax.ConsumerGroupDescribeResponse) []kpax.ConsumerGroupDescribeResponseGroup { return r.Groups },
		func(g kpax.ConsumerGroupDescribeResponseGroup) int16 { return g.ErrorCode })
	if err != nil {
		return groupInfo{}, err
	}
	info := groupInfo{id: g.GroupID, state: g.GroupState, protocolType: "consumer", protocol: g.AssignorName}
	for _, m := range g.Members {
		mi := memberInfo{id: m.MemberID, clientID: m.ClientID, host: m.ClientHost, assigned: map[string][]int32{}}
		for _, tp := range m.Assignment.TopicPartitions {
			name := tp.TopicName
			if name == "" {
				name = tp.TopicID.String()
			}
			mi.assigned[name] = append(mi.assigned[name], tp.Partitions...)
		}
		info.members = append(info.members, mi)
	}
	return info, nil
}

func groupDescribe(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group describe", "GROUP...", "Shows the state of groups, their members and the partitions assigned to each.")
	pos, err := parseSome(fs, args, "group describe: name at least one group")
	if err != nil {
		return err
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	for _, name := range pos {
		g, err := describeGroup(ctx, cl, name)
		if err != nil {
			return err
		}
		if g.state == "Dead" && len(g.members) == 0 {
			fmt.Fprintf(e.stdout, "group %q: no such group (state Dead)\n", name)
			continue
		}
		fmt.Fprintf(e.stdout, "group %q: state %s, protocol type %s, protocol %s, %d members\n",
			g.id, g.state, dash(g.protocolType), dash(g.protocol), len(g.members))
		if len(g.members) == 0 {
			continue
		}
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "  MEMBER\tCLIENT\tHOST\tASSIGNMENT")
		for _, m := range g.members {
			assigned := formatAssignment(m.assigned)
			if m.err != nil {
				assigned = "(" + m.err.Error() + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.id, m.clientID, m.host, assigned)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func formatAssignment(a map[string][]int32) string {
	if len(a) == 0 {
		return "-"
	}
	topics := make([]string, 0, len(a))
	for t := range a {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	var sb strings.Builder
	for i, t := range topics {
		if i > 0 {
			sb.WriteByte(' ')
		}
		ps := a[t]
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		fmt.Fprintf(&sb, "%s:", t)
		for j, p := range ps {
			if j > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "%d", p)
		}
	}
	return sb.String()
}

// committedPartition is a partition of an OffsetFetch response.
type committedPartition struct {
	p      tp
	offset int64 // -1: none
	code   int16
}

// committedOffsets returns the offsets the group committed, of every topic.
func committedOffsets(ctx context.Context, cl *kpax.Client, group string) (map[tp]int64, error) {
	out := make(map[tp]int64)
	err := retryGroup(ctx, func() error {
		clear(out)
		// GroupID up to v7, Groups from v8: the encoder picks. Null topics:
		// every topic.
		resp, err := request[*kpax.OffsetFetchResponse](ctx, cl, &kpax.OffsetFetchRequest{
			GroupID: group,
			Groups:  []kpax.OffsetFetchRequestGroup{{GroupID: group, MemberEpoch: -1}},
		})
		if err != nil {
			return err
		}
		// v8+ answers in Groups, older versions at the top level.
		code, parts := resp.ErrorCode, []committedPartition(nil)
		if len(resp.Groups) > 0 {
			g := resp.Groups[0]
			code = g.ErrorCode
			for _, t := range g.Topics {
				for _, p := range t.Partitions {
					parts = append(parts, committedPartition{tp{t.Name, p.PartitionIndex}, p.CommittedOffset, p.ErrorCode})
				}
			}
		} else {
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					parts = append(parts, committedPartition{tp{t.Name, p.PartitionIndex}, p.CommittedOffset, p.ErrorCode})
				}
			}
		}
		if err := kpax.ErrorForCode(code); err != nil {
			return err
		}
		for _, c := range parts {
			if err := partitionErr(c.p.topic, c.p.partition, c.code); err != nil {
				return err
			}
			if c.offset >= 0 {
				out[c.p] = c.offset
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("offsets of group %q: %w", group, err)
	}
	return out, nil
}

func sortedTPs(m map[tp]int64) []tp {
	tps := make([]tp, 0, len(m))
	for p := range m {
		tps = append(tps, p)
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].topic != tps[j].topic {
			return tps[i].topic < tps[j].topic
		}
		return tps[i].partition < tps[j].partition
	})
	return tps
}

// groupOffsets is group offsets and, with lag, group lag.
func groupOffsets(ctx context.Context, e *env, args []string, lag bool) error {
	name, summary := "group offsets", "Shows the offsets a group committed, per partition."
	if lag {
		name, summary = "group lag", "Shows, per partition a group committed an offset of, the committed offset, the end of the\npartition, the lag between them and the member the partition is assigned to."
	}
	fs := e.flags(name, "GROUP", summary)
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("%s: want one GROUP, not %d arguments", name, len(pos))
	}
	group := pos[0]
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	committed, err := committedOffsets(ctx, cl, group)
	if err != nil {
		return err
	}
	tw := newTable(e.stdout)
	if !lag {
		if len(committed) == 0 {
			fmt.Fprintf(e.stdout, "group %q has no committed offsets\n", group)
			return nil
		}
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tOFFSET")
		for _, p := range sortedTPs(committed) {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", p.topic, p.partition, committed[p])
		}
		return tw.Flush()
	}
	// The partitions with a committed offset, and those assigned to a
	// member without one yet.
	owners := make(map[tp]string)
	if g, err := describeGroup(ctx, cl, group); err == nil {
		for _, m := range g.members {
			for t, ps := range m.assigned {
				for _, p := range ps {
					owners[tp{t, p}] = m.id
				}
			}
		}
	}
	all := make(map[tp]int64, len(committed))
	for p, off := range committed {
		all[p] = off
	}
	for p := range owners {
		if _, ok := all[p]; !ok {
			all[p] = -1
		}
	}
	if len(all) == 0 {
		fmt.Fprintf(e.stdout, "group %q has no committed offsets and no members\n", group)
		return nil
	}
	tps := sortedTPs(all)
	md, err := cl.Metadata(ctx, topicsOf(tps)...)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	var live []tp // partitions of topics that still exist
	exists := make(map[tp]bool)
	for _, t := range md.Topics {
		if t.Err != nil {
			continue
		}
		for _, p := range t.Partitions {
			exists[tp{t.Name, p.Partition}] = true
		}
	}
	for _, p := range tps {
		if exists[p] {
			live = append(live, p)
		}
	}
	ends, err := listOffsets(ctx, cl, md, live, tsLatest)
	if err != nil {
		return err
	}
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
	var total int64
	for _, p := range tps {
		off, owner := "-", dash(owners[p])
		if c := all[p]; c >= 0 {
			off = fmt.Sprint(c)
		}
		end, ok := ends[p]
		switch {
		case !ok:
			fmt.Fprintf(tw, "%s\t%d\t%s\t-\t-\t(topic gone)\n", p.topic, p.partition, off)
		case all[p] < 0:
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t-\t%s\n", p.topic, p.partition, off, end, owner)
		default:
			l := max(end-all[p], 0)
			total += l
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\n", p.topic, p.partition, off, end, l, owner)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "total lag %d\n", total)
	return nil
}

func groupDelete(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group delete", "GROUP...", "Deletes groups that have no members, with their committed offsets.")
	ifExists := fs.Bool("if-exists", false, "a group that does not exist is not an error")
	pos, err := parseSome(fs, args, "group delete: name at least one group")
	if err != nil {
		return err
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	for _, group := range pos {
		// One request per group: each goes to its own coordinator.
		err := retryGroup(ctx, func() error {
			resp, err := request[*kpax.DeleteGroupsResponse](ctx, cl, &kpax.DeleteGroupsRequest{GroupsNames: []string{group}})
			if err != nil {
				return err
			}
			for _, res := range resp.Results {
				if err := kpax.ErrorForCode(res.ErrorCode); err != nil {
					return err
				}
			}
			return nil
		})
		switch {
		case err == nil:
			fmt.Fprintf(e.stdout, "deleted group %q\n", group)
		case *ifExists && errors.Is(err, kpax.ErrGroupIdNotFound):
			fmt.Fprintf(e.stdout, "group %q does not exist\n", group)
		default:
			return fmt.Errorf("deleting group %q: %w", group, err)
		}
	}
	return nil
}
