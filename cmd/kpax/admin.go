package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"h12.me/kpax"
)

// This file holds what the commands that look at and change the cluster
// (topic, group, offsets, metadata, apiversions) share: subcommand dispatch,
// argument checks, the client they run with, typed requests and tables.

// subcommand is one subcommand of a command that has them (topic, group).
type subcommand struct {
	name string
	run  func(ctx context.Context, e *env, args []string) error
}

// runSubcommand runs the subcommand of cmd that args[0] names, with the rest
// of args. -h, -help, --help and help print usage to stderr; no subcommand or
// an unknown one is a usage error that lists the subcommands, in order.
func runSubcommand(ctx context.Context, e *env, args []string, cmd, usage string, subs []subcommand) error {
	sub := ""
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	names := make([]string, len(subs))
	for i, s := range subs {
		if s.name == sub {
			return s.run(ctx, e, args)
		}
		names[i] = s.name
	}
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	switch sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stderr, usage)
		return flag.ErrHelp
	case "":
		return usagef("%s: want %s (try kpax %s -h)", cmd, want, cmd)
	}
	return usagef("%s: unknown subcommand %q: want %s", cmd, sub, want)
}

// parseNoArgs parses the flags of a command that takes no positional
// arguments: any is a usage error.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("%s takes no arguments, not %q", strings.TrimPrefix(fs.Name(), "kpax "), pos)
	}
	return nil
}

// adminNoArgs is parseNoArgs, then adminClient.
func (e *env) adminNoArgs(ctx context.Context, fs *flag.FlagSet, args []string) (_ context.Context, _ *kpax.Client, done func(), _ error) {
	if err := parseNoArgs(fs, args); err != nil {
		return nil, nil, nil, err
	}
	return e.adminClient(ctx)
}

// parseSome parses the flags of a command that wants at least one
// positional argument, and returns them; none is the usage error missing.
func parseSome(fs *flag.FlagSet, args []string, missing string) ([]string, error) {
	pos, err := parseCmd(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) == 0 {
		return nil, usageError{errors.New(missing)}
	}
	return pos, nil
}

// parseTopicArgs is parseSome for TOPIC[:PARTITION,...] arguments.
func parseTopicArgs(fs *flag.FlagSet, args []string, missing string) ([]topicSpec, error) {
	pos, err := parseSome(fs, args, missing)
	if err != nil {
		return nil, err
	}
	return parseTopicSpecs(pos)
}

// adminClient applies -timeout (adminTimeout by default) to ctx and returns
// it with a client for -brokers; done closes the client and cancels ctx.
func (e *env) adminClient(ctx context.Context) (_ context.Context, _ *kpax.Client, done func(), _ error) {
	ctx, cancel := e.deadline(ctx, adminTimeout)
	cl, err := e.client()
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, cl, func() { cl.Close(); cancel() }, nil
}

// request sends req to the broker the client picks for it and returns the
// response as an R. Errors are not passed through timeoutErr.
func request[R kpax.Response](ctx context.Context, cl *kpax.Client, req kpax.Request) (R, error) {
	r, err := cl.Request(ctx, req)
	return typed[R](r, err, req)
}

// requestBroker is request to the broker node.
func requestBroker[R kpax.Response](ctx context.Context, cl *kpax.Client, node int32, req kpax.Request) (R, error) {
	r, err := cl.RequestBroker(ctx, node, req)
	return typed[R](r, err, req)
}

// typed returns r as an R, or err, or an error when r is of another type.
func typed[R kpax.Response](r kpax.Response, err error, req kpax.Request) (R, error) {
	var zero R
	if err != nil {
		return zero, err
	}
	resp, ok := r.(R)
	if !ok {
		return zero, fmt.Errorf("unexpected response %T to %s", r, kpax.APIName(req.APIKey()))
	}
	return resp, nil
}

// eachBroker calls f with every broker of the cluster, in the order of the
// metadata, and stops at the first error.
func eachBroker(ctx context.Context, cl *kpax.Client, f func(b kpax.Broker) error) error {
	md, err := cl.Metadata(ctx, []string{}...)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	for _, b := range md.Brokers {
		if err := f(b); err != nil {
			return err
		}
	}
	return nil
}

// partitionErr returns the error of a partition's error code, prefixed with
// TOPIC:PARTITION, or nil.
func partitionErr(topic string, partition int32, code int16) error {
	if err := kpax.ErrorForCode(code); err != nil {
		return fmt.Errorf("%s:%d: %w", topic, partition, err)
	}
	return nil
}

// newTable returns the writer of a table of tab-separated columns, aligned
// the same way in every command; Flush writes it to w.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}
