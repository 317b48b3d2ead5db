package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"h12.me/kpax"
)

// The group commands are thin: the work is the package's admin API
// (kpax.Admin); this file parses flags and prints tables or JSON.

func runGroup(ctx context.Context, e *env, args []string) error {
	return runSubcommand(ctx, e, args, "group", groupUsage, []subcommand{
		{"list", groupList},
		{"describe", groupDescribe},
		{"offsets", func(ctx context.Context, e *env, args []string) error { return groupOffsets(ctx, e, args, false) }},
		{"lag", func(ctx context.Context, e *env, args []string) error { return groupOffsets(ctx, e, args, true) }},
		{"reset-offsets", groupResetOffsets},
		{"delete-offsets", groupDeleteOffsets},
		{"delete", groupDelete},
	})
}

const groupUsage = `usage: kpax group list|describe|offsets|lag|reset-offsets|delete-offsets|delete [flags] [GROUP...]

  list            the groups of the cluster, their state and type
  describe        the members of groups and the partitions assigned to each
  offsets         the offsets a group committed
  lag             how far a group is behind the end of each partition
  reset-offsets   move a group's offsets (a dry run unless -execute)
  delete-offsets  delete a group's committed offsets of topics
  delete          delete empty groups and their committed offsets

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

// jsonFlag registers -json and its kcat alias -J.
func jsonFlag(fs interface {
	BoolVar(*bool, string, bool, string)
}) *bool {
	v := new(bool)
	fs.BoolVar(v, "json", false, "print JSON")
	fs.BoolVar(v, "J", false, "the same as -json")
	return v
}

// printJSON writes v as indented JSON.
func (e *env) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func groupList(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group list", "", "Lists the groups of the cluster (from every broker), with their state and type.")
	asJSON := jsonFlag(fs)
	ctx, cl, done, err := e.adminNoArgs(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	groups, err := cl.Admin().ListGroups(ctx)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	if *asJSON {
		type jg struct {
			Group        string `json:"group"`
			State        string `json:"state"`
			Type         string `json:"type"`
			ProtocolType string `json:"protocol_type"`
			Coordinator  int32  `json:"coordinator"`
		}
		out := []jg{}
		for _, g := range groups {
			out = append(out, jg{g.Group, g.State, g.Type, g.ProtocolType, g.Coordinator})
		}
		return e.printJSON(out)
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "GROUP\tSTATE\tTYPE\tPROTOCOL")
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Group, dash(g.State), dash(g.Type), dash(g.ProtocolType))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func groupDescribe(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group describe", "GROUP...", "Shows the state, protocol and members of groups, and the partitions assigned to each member.")
	asJSON := jsonFlag(fs)
	pos, err := parseSome(fs, args, "group describe: name at least one group")
	if err != nil {
		return err
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	ds, err := cl.Admin().DescribeGroups(ctx, pos...)
	if ds == nil {
		return timeoutErr(ctx, err)
	}
	if *asJSON {
		return e.printJSON(ds)
	}
	for _, d := range ds {
		if d.Err != nil {
			return fmt.Errorf("describing group %q: %w", d.Group, d.Err)
		}
		if d.State == "Dead" {
			fmt.Fprintf(e.stdout, "group %q: no such group (state Dead)\n", d.Group)
			continue
		}
		fmt.Fprintf(e.stdout, "group %q: state %s, type %s, protocol type %s, protocol %s, %d members\n",
			d.Group, d.State, d.Type, dash(d.ProtocolType), dash(d.Protocol), len(d.Members))
		if len(d.Members) == 0 {
			continue
		}
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "  MEMBER\tCLIENT\tHOST\tASSIGNMENT")
		for _, m := range d.Members {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.MemberID, m.ClientID, m.ClientHost, formatAssignment(m.Assigned))
		}
		tw.Flush()
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

// groupOffsets is group offsets, or with lag, group lag.
func groupOffsets(ctx context.Context, e *env, args []string, lag bool) error {
	name := "group offsets"
	what := "Shows the offsets a group committed."
	if lag {
		name, what = "group lag", "Shows how far a group is behind: per partition it committed or is assigned, the committed offset, the end offset and the difference, and the total."
	}
	fs := e.flags(name, "GROUP", what)
	asJSON := jsonFlag(fs)
	pos, err := parseSome(fs, args, name+": name a group")
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("%s: want one GROUP, not %q", name, pos)
	}
	group := pos[0]
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	if !lag {
		offs, err := cl.Admin().CommittedOffsets(ctx, group)
		if offs == nil && err != nil {
			return timeoutErr(ctx, err)
		}
		if *asJSON {
			return e.printJSON(jsonOffsets(offs))
		}
		if len(offs) == 0 {
			fmt.Fprintf(e.stdout, "group %q has no committed offsets\n", group)
			return nil
		}
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tOFFSET")
		for _, o := range offs {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", o.Topic, o.Partition, o.Offset)
		}
		tw.Flush()
		return err
	}
	gl, err := cl.Admin().Lag(ctx, group)
	if gl == nil {
		return timeoutErr(ctx, err)
	}
	if *asJSON {
		return e.printJSON(jsonLag(gl))
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
	for _, p := range gl.Partitions {
		off := "-"
		if p.Committed >= 0 {
			off = strconv.FormatInt(p.Committed, 10)
		}
		if p.Err != nil {
			fmt.Fprintf(tw, "%s\t%d\t%s\t-\t-\t%v\n", p.Topic, p.Partition, off, p.Err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\n", p.Topic, p.Partition, off, p.End, p.Lag, dash(p.Member))
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "total lag %d\n", gl.Total)
	return err
}

type jsonOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Metadata  string `json:"metadata,omitempty"`
	Error     string `json:"error,omitempty"`
}

func jsonOffsets(offs []kpax.GroupOffset) []jsonOffset {
	out := []jsonOffset{}
	for _, o := range offs {
		out = append(out, jsonOffset{o.Topic, o.Partition, o.Offset, o.Metadata, errString(o.Err)})
	}
	return out
}

func jsonLag(gl *kpax.GroupLag) any {
	type jp struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Committed int64  `json:"committed"`
		End       int64  `json:"end"`
		Lag       int64  `json:"lag"`
		Member    string `json:"member,omitempty"`
		Error     string `json:"error,omitempty"`
	}
	out := struct {
		Group      string `json:"group"`
		State      string `json:"state"`
		Partitions []jp   `json:"partitions"`
		Total      int64  `json:"total_lag"`
	}{Group: gl.Group, State: gl.State, Partitions: []jp{}, Total: gl.Total}
	for _, p := range gl.Partitions {
		out.Partitions = append(out.Partitions, jp{p.Topic, p.Partition, p.Committed, p.End, p.Lag, p.Member, errString(p.Err)})
	}
	return out
}

// parseTarget parses -to: earliest, latest, an offset, @TIME or +N/-N.
func parseTarget(s string) (kpax.OffsetTarget, error) {
	switch {
	case s == "earliest":
		return kpax.ToEarliest(), nil
	case s == "latest":
		return kpax.ToLatest(), nil
	case strings.HasPrefix(s, "@"):
		t, err := parseTime(s[1:])
		if err != nil {
			return kpax.OffsetTarget{}, err
		}
		return kpax.ToTime(t), nil
	case strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-"):
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return kpax.OffsetTarget{}, fmt.Errorf("bad shift %q", s)
		}
		return kpax.ShiftBy(n), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return kpax.OffsetTarget{}, fmt.Errorf("want earliest, latest, an offset, @TIME or +N/-N, not %q", s)
	}
	return kpax.ToOffset(n), nil
}

// topicPartitions turns TOPIC[:P,...] arguments into TopicPartitions (nil
// for none).
func topicPartitions(args []string) (kpax.TopicPartitions, error) {
	if len(args) == 0 {
		return nil, nil
	}
	specs, err := parseTopicSpecs(args)
	if err != nil {
		return nil, err
	}
	tp := kpax.TopicPartitions{}
	for _, s := range specs {
		tp[s.topic] = append(tp[s.topic], s.partitions...)
	}
	return tp, nil
}

func groupResetOffsets(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group reset-offsets", "GROUP [TOPIC[:PARTITION,...]...]",
		"Moves a group's committed offsets (of the topics given, else of every topic it committed). A dry run that prints the plan, unless -execute. The group must have no active members.")
	to := fs.String("to", "", "where to: earliest, latest, an offset, @TIME (Unix ms or RFC 3339) or +N/-N (a shift)")
	execute := fs.Bool("execute", false, "commit the new offsets (default: only print them)")
	asJSON := jsonFlag(fs)
	pos, err := parseSome(fs, args, "group reset-offsets: name a group")
	if err != nil {
		return err
	}
	target, err := parseTarget(*to)
	if err != nil {
		return usagef("-to: %v", err)
	}
	tp, err := topicPartitions(pos[1:])
	if err != nil {
		return err
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	var plan []kpax.GroupOffset
	if *execute {
		plan, err = cl.Admin().ResetGroupOffsets(ctx, pos[0], target, tp)
	} else {
		plan, err = cl.Admin().PlanResetOffsets(ctx, pos[0], target, tp)
	}
	if plan == nil {
		return timeoutErr(ctx, err)
	}
	if *asJSON {
		if jerr := e.printJSON(jsonOffsets(plan)); jerr != nil {
			return jerr
		}
		return err
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tNEW-OFFSET")
	for _, o := range plan {
		if o.Err != nil {
			fmt.Fprintf(tw, "%s\t%d\t-\t%v\n", o.Topic, o.Partition, o.Err)
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", o.Topic, o.Partition, o.Offset)
		}
	}
	tw.Flush()
	if !*execute && err == nil {
		fmt.Fprintln(e.stdout, "dry run: nothing committed (add -execute)")
	}
	return err
}

func groupDeleteOffsets(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group delete-offsets", "GROUP TOPIC[:PARTITION,...]...", "Deletes a group's committed offsets of the topics or partitions.")
	pos, err := parseSome(fs, args, "group delete-offsets: name a group and topics")
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("group delete-offsets: name a group and at least one topic")
	}
	tp, err := topicPartitions(pos[1:])
	if err != nil {
		return err
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	res, err := cl.Admin().DeleteGroupOffsets(ctx, pos[0], tp)
	for _, r := range res {
		if r.Err == nil {
			fmt.Fprintf(e.stdout, "deleted the offset of %s:%d\n", r.Topic, r.Partition)
		}
	}
	return timeoutErr(ctx, err)
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
	res, err := cl.Admin().DeleteGroups(ctx, pos...)
	if res == nil {
		return timeoutErr(ctx, err)
	}
	var failed []error
	for _, r := range res {
		switch {
		case r.Err == nil:
			fmt.Fprintf(e.stdout, "deleted group %q\n", r.Group)
		case *ifExists && errors.Is(r.Err, kpax.ErrGroupIdNotFound):
			fmt.Fprintf(e.stdout, "group %q does not exist\n", r.Group)
		default:
			failed = append(failed, r.Err)
		}
	}
	return errors.Join(failed...)
}
