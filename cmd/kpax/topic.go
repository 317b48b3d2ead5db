package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"h12.me/kpax"
)

func runTopic(ctx context.Context, e *env, args []string) error {
	return runSubcommand(ctx, e, args, "topic", topicUsage, []subcommand{
		{"create", topicCreate},
		{"add-partitions", topicAddPartitions},
		{"delete", topicDelete},
		{"describe", topicDescribe},
		{"list", topicList},
	})
}

const topicUsage = `usage: kpax topic create|add-partitions|delete|describe|list [flags] [TOPIC...]

  create          create topics
  add-partitions  add partitions to topics
  delete    delete topics
  describe  partitions, leaders, replicas and the settings of topics
  list      the names of the topics

Run kpax topic SUBCOMMAND -h for its flags.
`

// kvFlag is a repeatable name=value flag.
type kvFlag []string

func (f *kvFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(*f, ",")
}

func (f *kvFlag) Set(s string) error {
	if name, _, ok := strings.Cut(s, "="); !ok || name == "" {
		return fmt.Errorf("want name=value, not %q", s)
	}
	*f = append(*f, s)
	return nil
}

func topicCreate(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic create", "TOPIC...", "Creates topics and waits until their partitions have leaders.")
	partitions := fs.Int("partitions", -1, "number of partitions (-1: the broker's num.partitions)")
	replicas := fs.Int("replication-factor", -1, "replicas of each partition (-1: the broker's default.replication.factor)")
	var configs kvFlag
	fs.Var(&configs, "config", "topic setting `name=value`, e.g. retention.ms=3600000 (repeatable)")
	ifNotExists := fs.Bool("if-not-exists", false, "a topic that exists already is not an error")
	validate := fs.Bool("validate-only", false, "only ask the controller whether it would create the topics")
	pos, err := parseSome(fs, args, "topic create: name at least one topic")
	if err != nil {
		return err
	}
	if *partitions == 0 || *partitions < -1 || *partitions > 1<<31-1 {
		return usagef("-partitions %d: want a positive number, or -1", *partitions)
	}
	if *replicas == 0 || *replicas < -1 || *replicas > 1<<15-1 {
		return usagef("-replication-factor %d: want a positive number, or -1", *replicas)
	}
	cfg := map[string]string{}
	for _, c := range configs {
		k, v, _ := strings.Cut(c, "=")
		cfg[k] = v
	}
	var topics []kpax.NewTopic
	for _, name := range pos {
		if err := checkTopicName(name); err != nil {
			return err
		}
		topics = append(topics, kpax.NewTopic{Name: name, Partitions: int32(*partitions), ReplicationFactor: int16(*replicas), Configs: cfg})
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	adm := cl.Admin()
	create := adm.CreateTopics
	if *validate {
		create = adm.ValidateCreateTopics
	}
	res, err := create(ctx, topics...)
	if res == nil {
		return timeoutErr(ctx, err)
	}
	var created []string
	var failed []error
	for _, r := range res {
		switch {
		case r.Err == nil && *validate:
			fmt.Fprintf(e.stdout, "topic %q would be created\n", r.Name)
		case r.Err == nil:
			created = append(created, r.Name)
			fmt.Fprintf(e.stdout, "created topic %q\n", r.Name)
		case *ifNotExists && errors.Is(r.Err, kpax.ErrTopicAlreadyExists):
			fmt.Fprintf(e.stdout, "topic %q exists already\n", r.Name)
		default:
			failed = append(failed, r.Err)
		}
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	if len(created) == 0 {
		return nil
	}
	return timeoutErr(ctx, adm.WaitForLeaders(ctx, created...))
}

// checkTopicName rejects names Kafka would reject, before asking it.
func checkTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return usagef("bad topic name %q", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return usagef("bad topic name %q: use letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

// waitForLeaders waits until metadata shows the topics with a leader for
// every partition, so that the next command can use them at once.
func topicAddPartitions(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic add-partitions", "TOPIC...", "Adds partitions to topics (keys may map to other partitions afterwards).")
	n := fs.Int("n", 0, "how many partitions to add")
	total := fs.Int("total", 0, "raise the partition count to this many instead")
	pos, err := parseSome(fs, args, "topic add-partitions: name at least one topic")
	if err != nil {
		return err
	}
	if (*n > 0) == (*total > 0) || *n < 0 || *total < 0 {
		return usagef("topic add-partitions: want -n N or -total N")
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	var res []kpax.PartitionsResult
	if *n > 0 {
		res, err = cl.Admin().AddPartitions(ctx, int32(*n), pos...)
	} else {
		res, err = cl.Admin().SetPartitions(ctx, int32(*total), pos...)
	}
	for _, r := range res {
		if r.Err == nil {
			fmt.Fprintf(e.stdout, "topic %q now has %d partitions\n", r.Topic, r.Partitions)
		}
	}
	return timeoutErr(ctx, err)
}

func topicDelete(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic delete", "TOPIC...", "Deletes topics.")
	ifExists := fs.Bool("if-exists", false, "a topic that does not exist is not an error")
	pos, err := parseSome(fs, args, "topic delete: name at least one topic")
	if err != nil {
		return err
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	res, err := cl.Admin().DeleteTopics(ctx, pos...)
	if res == nil {
		return timeoutErr(ctx, err)
	}
	var failed []error
	for _, r := range res {
		switch {
		case r.Err == nil:
			fmt.Fprintf(e.stdout, "deleted topic %q\n", r.Name)
		case *ifExists && errors.Is(r.Err, kpax.ErrUnknownTopicOrPartition):
			fmt.Fprintf(e.stdout, "topic %q does not exist\n", r.Name)
		default:
			failed = append(failed, r.Err)
		}
	}
	return errors.Join(failed...)
}

func topicList(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic list", "", "Prints the names of the topics, one a line.")
	internal := fs.Bool("internal", false, "include internal topics (__consumer_offsets, ...)")
	asJSON := jsonFlag(fs)
	ctx, cl, done, err := e.adminNoArgs(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	ts, err := cl.Admin().ListTopics(ctx)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	names := []string{}
	for _, t := range ts {
		if *internal || !t.Internal {
			names = append(names, t.Name)
		}
	}
	if *asJSON {
		return e.printJSON(names)
	}
	for _, n := range names {
		fmt.Fprintln(e.stdout, n)
	}
	return nil
}

func topicDescribe(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic describe", "TOPIC...", "Shows the partitions, leaders and replicas of topics, and their settings that differ from\nthe broker's (with -all, every setting and where its value comes from).")
	all := fs.Bool("all", false, "show every setting, defaults included")
	pos, err := parseSome(fs, args, "topic describe: name at least one topic")
	if err != nil {
		return err
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	adm := cl.Admin()
	ts, err := adm.DescribeTopics(ctx, pos...)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	var res []kpax.ConfigResource
	for _, n := range pos {
		res = append(res, kpax.ConfigResource{Type: kpax.ConfigTopic, Name: n})
	}
	cfgs, err := adm.DescribeConfigs(ctx, nil, res...)
	if cfgs == nil {
		return timeoutErr(ctx, err)
	}
	for i, t := range ts {
		printTopic(e.stdout, t)
		printConfigs(e, cfgs[i], *all, "  ")
	}
	return err
}

// printConfigs prints a resource's configs: those set on it, or with all
// every one and its source. Sensitive values are never printed.
func printConfigs(e *env, rc kpax.ResourceConfigs, all bool, indent string) {
	tw := newTable(e.stdout)
	for _, c := range rc.Configs {
		if !all && c.Source != kpax.ConfigSourceTopic && c.Source != kpax.ConfigSourceDynamicBroker && c.Source != kpax.ConfigSourceGroup {
			continue
		}
		v := "null"
		switch {
		case c.Sensitive:
			v = "(sensitive)"
		case c.Value != nil:
			v = *c.Value
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", indent, c.Name, v, sourceName(c.Source))
	}
	tw.Flush()
}

// sourceName is a short name of where a config's value comes from.
func sourceName(s kpax.ConfigSource) string {
	names := []string{"unknown", "topic", "broker", "cluster default", "static broker", "default", "broker logger", "client metrics", "group"}
	if s >= 0 && int(s) < len(names) {
		return names[s]
	}
	return s.String()
}
