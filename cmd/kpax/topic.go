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

func runTopic(ctx context.Context, e *env, args []string) error {
	return runSubcommand(ctx, e, args, "topic", topicUsage, []subcommand{
		{"create", topicCreate},
		{"delete", topicDelete},
		{"describe", topicDescribe},
		{"list", topicList},
	})
}

const topicUsage = `usage: kpax topic create|delete|describe|list [flags] [TOPIC...]

  create    create topics
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
	req := &kpax.CreateTopicsRequest{TimeoutMs: 30000}
	for _, name := range pos {
		if err := checkTopicName(name); err != nil {
			return err
		}
		t := kpax.CreateTopicsRequestTopic{Name: name, NumPartitions: int32(*partitions), ReplicationFactor: int16(*replicas)}
		for _, c := range configs {
			k, v, _ := strings.Cut(c, "=")
			t.Configs = append(t.Configs, kpax.CreateTopicsRequestTopicConfig{Name: k, Value: &v})
		}
		req.Topics = append(req.Topics, t)
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := request[*kpax.CreateTopicsResponse](ctx, cl, req)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	var created []string
	for _, t := range resp.Topics {
		err := kpax.ErrorForCode(t.ErrorCode)
		switch {
		case err == nil:
			created = append(created, t.Name)
			fmt.Fprintf(e.stdout, "created topic %q\n", t.Name)
		case *ifNotExists && errors.Is(err, kpax.ErrTopicAlreadyExists):
			fmt.Fprintf(e.stdout, "topic %q exists already\n", t.Name)
		default:
			return fmt.Errorf("creating topic %q: %w%s", t.Name, err, detail(t.ErrorMessage, err))
		}
	}
	if len(created) == 0 {
		return nil
	}
	return timeoutErr(ctx, waitForLeaders(ctx, cl, created))
}

// detail returns the broker's error message when it says more than err.
func detail(msg *string, err error) string {
	if msg == nil || *msg == "" || strings.Contains(err.Error(), *msg) {
		return ""
	}
	return " (" + *msg + ")"
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
func waitForLeaders(ctx context.Context, cl *kpax.Client, topics []string) error {
	for {
		md, err := cl.Metadata(ctx, topics...)
		if err != nil {
			return err
		}
		ready := len(md.Topics) == len(topics)
		for _, t := range md.Topics {
			if t.Err != nil || len(t.Partitions) == 0 {
				ready = false
			}
			for _, p := range t.Partitions {
				if p.Leader < 0 {
					ready = false
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the leaders of %v: %w", topics, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func topicDelete(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic delete", "TOPIC...", "Deletes topics.")
	ifExists := fs.Bool("if-exists", false, "a topic that does not exist is not an error")
	pos, err := parseSome(fs, args, "topic delete: name at least one topic")
	if err != nil {
		return err
	}
	req := &kpax.DeleteTopicsRequest{TimeoutMs: 30000}
	for i := range pos {
		// TopicNames up to v5, Topics from v6: the encoder picks.
		req.TopicNames = append(req.TopicNames, pos[i])
		req.Topics = append(req.Topics, kpax.DeleteTopicsRequestTopic{Name: &pos[i]})
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := request[*kpax.DeleteTopicsResponse](ctx, cl, req)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	for _, t := range resp.Responses {
		name := t.TopicID.String()
		if t.Name != nil {
			name = *t.Name
		}
		err := kpax.ErrorForCode(t.ErrorCode)
		switch {
		case err == nil:
			fmt.Fprintf(e.stdout, "deleted topic %q\n", name)
		case *ifExists && errors.Is(err, kpax.ErrUnknownTopicOrPartition):
			fmt.Fprintf(e.stdout, "topic %q does not exist\n", name)
		default:
			return fmt.Errorf("deleting topic %q: %w%s", name, err, detail(t.ErrorMessage, err))
		}
	}
	return nil
}

func topicList(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic list", "", "Prints the names of the topics, one a line.")
	internal := fs.Bool("internal", false, "include internal topics (__consumer_offsets, ...)")
	ctx, cl, done, err := e.adminNoArgs(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	md, err := cl.Metadata(ctx)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	var names []string
	for _, t := range md.Topics {
		if *internal || !t.Internal {
			names = append(names, t.Name)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(e.stdout, n)
	}
	return nil
}

// configSource names DescribeConfigs' config_source values.
func configSource(s int8) string {
	switch s {
	case 1:
		return "topic"
	case 2:
		return "broker"
	case 3:
		return "cluster default"
	case 4:
		return "static broker"
	case 5:
		return "default"
	case 6:
		return "broker logger"
	case 7:
		return "client metrics"
	case 8:
		return "group"
	}
	return "unknown"
}

// resourceTopic is DescribeConfigs' resource type of a topic.
const resourceTopic = 2

func topicDescribe(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic describe", "TOPIC...", "Shows the partitions, leaders and replicas of topics, and their settings that differ from\nthe broker's (with -all, every setting and where its value comes from).")
	all := fs.Bool("all", false, "show every setting, defaults included")
	specs, err := parseTopicArgs(fs, args, "topic describe: name at least one topic")
	if err != nil {
		return err
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	md, _, err := resolve(ctx, cl, specs)
	if err != nil {
		return err
	}
	req := &kpax.DescribeConfigsRequest{}
	for _, s := range specs {
		req.Resources = append(req.Resources, kpax.DescribeConfigsRequestResource{ResourceType: resourceTopic, ResourceName: s.topic})
	}
	resp, err := request[*kpax.DescribeConfigsResponse](ctx, cl, req)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	configs := make(map[string]kpax.DescribeConfigsResponseResult)
	for _, res := range resp.Results {
		if err := kpax.ErrorForCode(res.ErrorCode); err != nil {
			return fmt.Errorf("settings of topic %q: %w%s", res.ResourceName, err, detail(res.ErrorMessage, err))
		}
		configs[res.ResourceName] = res
	}
	for _, s := range specs {
		for _, t := range md.Topics {
			if t.Name != s.topic {
				continue
			}
			printTopic(e.stdout, t)
			cs := configs[t.Name].Configs
			sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
			tw := newTable(e.stdout)
			shown := 0
			for _, c := range cs {
				// ConfigSource 1 (or IsDefault false, v0) is a topic setting.
				own := c.ConfigSource == 1 || (c.ConfigSource == 0 && !c.IsDefault)
				if !*all && !own {
					continue
				}
				if shown == 0 {
					fmt.Fprintln(tw, "  SETTING\tVALUE\tSOURCE")
				}
				shown++
				v := "null"
				switch {
				case c.IsSensitive:
					v = "(sensitive)"
				case c.Value != nil:
					v = *c.Value
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Name, v, configSource(c.ConfigSource))
			}
			if shown == 0 {
				fmt.Fprintln(tw, "  (no settings of its own: see -all)")
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}
