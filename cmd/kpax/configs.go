package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"h12.me/kpax"
)

// configs, delete-records and acl: more thin commands on kpax.Admin.

func runConfigs(ctx context.Context, e *env, args []string) error {
	return runSubcommand(ctx, e, args, "configs", configsUsage, []subcommand{
		{"get", configsGet},
		{"set", configsSet},
	})
}

const configsUsage = `usage: kpax configs get|set [flags] TYPE NAME [name=value...]

  get  the configs of a topic, broker, broker-logger or group
  set  change configs incrementally: name=value sets, name= with -delete reverts

TYPE is topic, broker, broker-logger, client-metrics or group; NAME is the
topic, the broker ID ("" for the cluster-wide broker default) or the group.

Run kpax configs SUBCOMMAND -h for its flags.
`

func parseResource(typ, name string) (kpax.ConfigResource, error) {
	for _, t := range []kpax.ConfigResourceType{kpax.ConfigTopic, kpax.ConfigBroker, kpax.ConfigBrokerLogger, kpax.ConfigClientMetrics, kpax.ConfigGroup} {
		if t.String() == typ {
			return kpax.ConfigResource{Type: t, Name: name}, nil
		}
	}
	return kpax.ConfigResource{}, usagef("unknown config resource type %q: want topic, broker, broker-logger, client-metrics or group", typ)
}

func configsGet(ctx context.Context, e *env, args []string) error {
	fs := e.flags("configs get", "TYPE NAME [CONFIG...]", "Prints the configs of a resource: those set on it, or with -all every one and its source.")
	all := fs.Bool("all", false, "every config, defaults included, with where its value comes from")
	asJSON := jsonFlag(fs)
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("configs get: want TYPE NAME [CONFIG...]")
	}
	res, err := parseResource(pos[0], pos[1])
	if err != nil {
		return err
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	rcs, err := cl.Admin().DescribeConfigs(ctx, pos[2:], res)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	if *asJSON {
		type jc struct {
			Name      string  `json:"name"`
			Value     *string `json:"value"`
			Source    string  `json:"source"`
			ReadOnly  bool    `json:"read_only"`
			Sensitive bool    `json:"sensitive"`
		}
		out := []jc{}
		for _, c := range rcs[0].Configs {
			v := c.Value
			if c.Sensitive {
				v = nil
			}
			out = append(out, jc{c.Name, v, c.Source.String(), c.ReadOnly, c.Sensitive})
		}
		return e.printJSON(out)
	}
	printConfigs(e, rcs[0], *all || len(pos) > 2, "")
	return nil
}

func configsSet(ctx context.Context, e *env, args []string) error {
	fs := e.flags("configs set", "TYPE NAME name=value...", "Changes configs of a resource incrementally; others keep their values.")
	var del, appendList, subtract kvFlag
	fs.Var(&del, "delete", "revert config `name=` to its default (repeatable)")
	fs.Var(&appendList, "append", "add to a list config, `name=value` (repeatable)")
	fs.Var(&subtract, "subtract", "remove from a list config, `name=value` (repeatable)")
	validate := fs.Bool("validate-only", false, "only ask the broker whether it would accept the changes")
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("configs set: want TYPE NAME name=value...")
	}
	res, err := parseResource(pos[0], pos[1])
	if err != nil {
		return err
	}
	var changes []kpax.ConfigChange
	add := func(kvs []string, op kpax.ConfigOp) error {
		for _, kv := range kvs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usagef("configs set: want name=value, not %q", kv)
			}
			changes = append(changes, kpax.ConfigChange{Name: k, Op: op, Value: v})
		}
		return nil
	}
	for _, err := range []error{add(pos[2:], kpax.ConfigSet), add(del, kpax.ConfigDelete), add(appendList, kpax.ConfigAppend), add(subtract, kpax.ConfigSubtract)} {
		if err != nil {
			return err
		}
	}
	if len(changes) == 0 {
		return usagef("configs set: no changes")
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	alter := cl.Admin().AlterConfigs
	if *validate {
		alter = cl.Admin().ValidateAlterConfigs
	}
	if _, err := alter(ctx, kpax.AlterConfig{Resource: res, Changes: changes}); err != nil {
		return timeoutErr(ctx, err)
	}
	verb := "changed"
	if *validate {
		verb = "would change"
	}
	fmt.Fprintf(e.stdout, "%s %d configs of %v\n", verb, len(changes), res)
	return nil
}

func runDeleteRecords(ctx context.Context, e *env, args []string) error {
	fs := e.flags("delete-records", "TOPIC:PARTITION=OFFSET...", "Deletes the records before OFFSET of each partition (OFFSET -1: up to the end).")
	pos, err := parseSome(fs, args, "delete-records: name at least one TOPIC:PARTITION=OFFSET")
	if err != nil {
		return err
	}
	var offs []kpax.TopicPartitionOffset
	for _, a := range pos {
		tp, off, ok1 := strings.Cut(a, "=")
		topic, part, ok2 := strings.Cut(tp, ":")
		p, err1 := strconv.ParseInt(part, 10, 32)
		o, err2 := strconv.ParseInt(off, 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			return usagef("delete-records: want TOPIC:PARTITION=OFFSET, not %q", a)
		}
		offs = append(offs, kpax.TopicPartitionOffset{Topic: topic, Partition: int32(p), Offset: o})
	}
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	res, err := cl.Admin().DeleteRecords(ctx, offs...)
	for _, r := range res {
		if r.Err == nil {
			fmt.Fprintf(e.stdout, "%s:%d now starts at offset %d\n", r.Topic, r.Partition, r.LowWatermark)
		}
	}
	return timeoutErr(ctx, err)
}

func runACL(ctx context.Context, e *env, args []string) error {
	return runSubcommand(ctx, e, args, "acl", aclUsage, []subcommand{
		{"list", aclList},
		{"create", aclCreate},
		{"delete", aclDelete},
	})
}

const aclUsage = `usage: kpax acl list|create|delete [flags]

  list    the ACLs that match the flags
  create  create the ACL the flags describe
  delete  delete the ACLs that match the flags

Run kpax acl SUBCOMMAND -h for its flags.
`

// aclFlags registers the flags that describe an ACL or a filter.
func aclFlags(fs interface {
	StringVar(*string, string, string, string)
}, filter bool) func() (kpax.ACL, error) {
	def := func(create, f string) string {
		if filter {
			return f
		}
		return create
	}
	var typ, name, pattern, principal, host, op, perm string
	fs.StringVar(&typ, "type", def("topic", "any"), "resource type: topic, group, cluster, transactional-id, delegation-token, user"+def("", " or any"))
	fs.StringVar(&name, "name", def("", ""), "resource name (kafka-cluster for the cluster)"+def("", "; empty: any"))
	fs.StringVar(&pattern, "pattern", def("literal", "any"), "pattern type: literal, prefixed"+def("", ", match or any"))
	fs.StringVar(&principal, "principal", "", "principal, e.g. User:alice"+def("", "; empty: any"))
	fs.StringVar(&host, "host", def("*", ""), "host the principal connects from"+def(" (* for any)", "; empty: any"))
	fs.StringVar(&op, "operation", def("", "any"), "operation: read, write, create, delete, alter, describe, all, ...")
	fs.StringVar(&perm, "permission", def("allow", "any"), "allow or deny"+def("", " or any"))
	return func() (kpax.ACL, error) {
		a := kpax.ACL{Name: name, Principal: principal, Host: host}
		var err error
		if a.Type, err = kpax.ParseACLResource(typ); err != nil {
			return a, usageError{err}
		}
		if a.Pattern, err = kpax.ParseACLPattern(pattern); err != nil {
			return a, usageError{err}
		}
		if a.Operation, err = kpax.ParseACLOperation(op); err != nil {
			return a, usageError{err}
		}
		if a.Permission, err = kpax.ParseACLPermission(perm); err != nil {
			return a, usageError{err}
		}
		return a, nil
	}
}

func aclList(ctx context.Context, e *env, args []string) error {
	fs := e.flags("acl list", "", "Lists the ACLs that match the flags (all by default).")
	get := aclFlags(fs, true)
	asJSON := jsonFlag(fs)
	ctx, cl, done, err := e.adminNoArgs(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	filter, err := get()
	if err != nil {
		return err
	}
	acls, err := cl.Admin().DescribeACLs(ctx, filter)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	if *asJSON {
		type ja struct {
			Type, Name, Pattern, Principal, Host, Operation, Permission string
		}
		out := []ja{}
		for _, a := range acls {
			out = append(out, ja{a.Type.String(), a.Name, a.Pattern.String(), a.Principal, a.Host, a.Operation.String(), a.Permission.String()})
		}
		return e.printJSON(out)
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "PRINCIPAL\tHOST\tPERMISSION\tOPERATION\tTYPE\tPATTERN\tNAME")
	for _, a := range acls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Principal, a.Host, a.Permission, a.Operation, a.Type, a.Pattern, a.Name)
	}
	return tw.Flush()
}

func aclCreate(ctx context.Context, e *env, args []string) error {
	fs := e.flags("acl create", "", "Creates the ACL the flags describe.")
	get := aclFlags(fs, false)
	ctx, cl, done, err := e.adminNoArgs(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	acl, err := get()
	if err != nil {
		return err
	}
	if _, err := cl.Admin().CreateACLs(ctx, acl); err != nil {
		return timeoutErr(ctx, err)
	}
	fmt.Fprintf(e.stdout, "created %v\n", acl)
	return nil
}

func aclDelete(ctx context.Context, e *env, args []string) error {
	fs := e.flags("acl delete", "", "Deletes the ACLs that match the flags.")
	get := aclFlags(fs, true)
	ctx, cl, done, err := e.adminNoArgs(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	filter, err := get()
	if err != nil {
		return err
	}
	res, err := cl.Admin().DeleteACLs(ctx, filter)
	for _, r := range res {
		for _, a := range r.Deleted {
			fmt.Fprintf(e.stdout, "deleted %v\n", a)
		}
	}
	return timeoutErr(ctx, err)
}
