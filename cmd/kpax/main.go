// Command kpax is a command-line tool for Kafka built on the kpax package, in
// the spirit of kcat: produce lines from stdin, consume records to stdout
// (alone or in a consumer group), and look at and change topics, groups and
// offsets.
//
//	kpax [-brokers host:port,...] COMMAND [flags] [args]
//
// Commands:
//
//	produce       send the lines of stdin to a topic
//	consume       print the records of topics or partitions
//	topic         create, delete, describe or list topics
//	group         list, describe or delete consumer groups; their committed offsets and lag
//	offsets       earliest and latest offsets of each partition
//	metadata      brokers, topics, partitions, leaders and in-sync replicas
//	apiversions   the API versions each broker supports, and the ones kpax would use
//	configs       get or set the configs of topics, brokers and groups
//	delete-records delete the records of partitions before an offset
//	acl           list, create or delete ACLs
//	request       send any protocol request from JSON, print the response as JSON
//
// Security and client settings use kcat's (librdkafka's) property names:
// -X key=value (repeatable), -F FILE (key=value lines), or the environment
// (KPAX_ and the name in capitals with dots as underscores, e.g.
// KPAX_SASL_PASSWORD); -X wins over -F, -F over the environment. Known:
// bootstrap.servers, security.protocol (plaintext, ssl, sasl_plaintext,
// sasl_ssl), sasl.mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512),
// sasl.username, sasl.password, ssl.ca.location, ssl.certificate.location,
// ssl.key.location, ssl.key.password (of an encrypted key: PKCS#8 or
// legacy PEM), ssl.endpoint.identification.algorithm,
// enable.ssl.certificate.verification, ssl.server.name, client.id. The
// long flags -tls, -tls-ca, -tls-cert, -tls-key, -tls-key-password,
// -tls-server-name, -tls-insecure, -sasl-mechanism, -sasl-user and
// -sasl-password set the same. Passwords are never printed.
//
// Every command takes -brokers or -b (a comma-separated list of seed brokers), which
// defaults to bootstrap.servers, then $KPAX_BROKERS, then 127.0.0.1:9092; -timeout, how long the
// command may take (default 30s, none for produce and consume); -v, which logs
// the client's debug messages to stderr; and -h, its help.
//
// consume prints the value of each record on a line by default; -f sets a
// kcat-like format (%t topic, %p partition, %o offset, %k key, %v value, %T
// timestamp, %h headers, ...), -K a key delimiter, and -json prints one JSON
// object per record with kcat -J's field names (-J is the same). topic list,
// group list/describe/offsets/lag/reset-offsets, metadata (in kcat -L -J's
// shape), offsets, configs get and acl list print JSON with -json or -J.
// kpax -V prints the version the binary was built from. When stderr is a terminal, produce and consume keep a
// progress line there (consume only when its records go elsewhere).
//
// Errors are one line on stderr. The exit code is 0 on success, 1 on an
// error, 2 on a usage error (a bad flag or argument). Ctrl-C (or SIGTERM)
// stops produce and consume cleanly: what was read is sent, a group member
// commits its offsets and leaves the group.
//
// Examples:
//
//	kpax topic create -partitions 3 events
//	printf 'k1:hello\nk2:world\n' | kpax produce -K : events
//	kpax consume -o earliest -e -f '%p/%o %k=%v\n' events
//	kpax consume -group g1 -c 10 events
//	kpax group lag g1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"h12.me/kpax"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process at once.
		<-ctx.Done()
		stop()
	}()
	e := &env{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		stderrTTY: isTerminal(os.Stderr),
		stdoutTTY: isTerminal(os.Stdout),
	}
	err := e.run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, errorLine(err))
	}
	os.Exit(exitCode(err))
}

// errorLine formats err as the one line kpax prints: "kpax: ...".
func errorLine(err error) string {
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	// The package's errors say "kpax: " at every level of wrapping.
	return "kpax: " + strings.ReplaceAll(msg, "kpax: ", "")
}

// usageError is a bad command line: exit code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue), errors.Is(err, kpax.ErrInvalidArgument): // the admin API checks input too
		return 2
	}
	return 1
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func defaultBrokers() string {
	if b := os.Getenv("KPAX_BROKERS"); b != "" {
		return b
	}
	return "127.0.0.1:9092"
}

// env is what a command runs with: its streams and the flags every command
// shares.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stderrTTY      bool // progress lines go to stderr only when it is a terminal
	stdoutTTY      bool // and, for consume, when the records do not go there too

	brokers    string
	brokersSet bool  // -b/-brokers given: it wins over bootstrap.servers
	xprops     props // -X and the long security flags
	fprops     props // -F
	useTLS     bool  // -tls
	timeout    time.Duration
	timeoutSet bool
	verbose    bool
}

// timeoutFlag is -timeout: it remembers whether it was given, since the
// default depends on the command.
type timeoutFlag struct{ e *env }

func (f timeoutFlag) String() string {
	if f.e == nil || !f.e.timeoutSet {
		return ""
	}
	return f.e.timeout.String()
}

func (f timeoutFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 30s or 2m")
	}
	if d < 0 {
		return errors.New("must not be negative")
	}
	f.e.timeout, f.e.timeoutSet = d, true
	return nil
}

// common registers the flags every command takes.
func (e *env) common(fs *flag.FlagSet) {
	for _, name := range []string{"brokers", "b"} {
		fs.Var(brokersFlag{e}, name, "comma-separated seed brokers, host:port (from bootstrap.servers, $KPAX_BROKERS, else 127.0.0.1:9092)")
	}
	e.securityFlags(fs)
	fs.Var(timeoutFlag{e}, "timeout", "how long the command may take, a `duration` such as 10s; 0: no limit (default 30s; none for produce and consume)")
	fs.BoolVar(&e.verbose, "v", e.verbose, "log the client's debug messages to stderr")
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"produce", "send the lines of stdin to a topic", runProduce},
		{"consume", "print the records of topics or partitions", runConsume},
		{"topic", "create, delete, describe or list topics", runTopic},
		{"group", "list, describe or delete consumer groups; their committed offsets and lag", runGroup},
		{"offsets", "earliest and latest offsets of each partition", runOffsets},
		{"metadata", "brokers, topics, partitions, leaders and in-sync replicas", runMetadata},
		{"apiversions", "API versions of each broker, and the ones kpax would use", runAPIVersions},
		{"configs", "get or set the configs of topics, brokers and groups", runConfigs},
		{"delete-records", "delete the records of partitions before an offset", runDeleteRecords},
		{"acl", "list, create or delete ACLs", runACL},
		{"request", "send any protocol request from JSON, print the response as JSON", runRequest},
	}
}

func (e *env) run(ctx context.Context, args []string) error {
	e.brokers = defaultBrokers()
	e.xprops, e.fprops = props{}, props{}
	fs := flag.NewFlagSet("kpax", flag.ContinueOnError)
	e.common(fs)
	version := fs.Bool("V", false, "print kpax's version (from the build) and exit")
	fs.Usage = func() {
		w := e.stderr
		fmt.Fprintf(w, "usage: kpax [-brokers host:port,...] COMMAND [flags] [args]\n\nCommands:\n")
		for _, c := range commands() {
			fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(w, "\nRun kpax COMMAND -h for a command's flags. Flags of every command:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if _, err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(e.stdout, versionLine())
		return nil
	}
	if fs.NArg() == 0 {
		return usagef("no command (try kpax -h)")
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		if len(rest) == 0 {
			fs.Usage()
			return flag.ErrHelp
		}
		name, rest = rest[0], []string{"-h"}
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		return c.run(ctx, e, rest)
	}
	return usagef("unknown command %q (try kpax -h)", name)
}

// flags returns the flag set of a command, with the common flags.
func (e *env) flags(name, synopsis, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("kpax "+name, flag.ContinueOnError)
	e.common(fs)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: kpax %s [flags] %s\n\n%s\n\nFlags:\n", name, synopsis, summary)
		fs.SetOutput(e.stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args with fs and returns the positional arguments. With
// interleaved, flags may also follow positional arguments (kpax consume t1
// -c 5), up to a "--".
func parseFlags(fs *flag.FlagSet, args []string, interleaved bool) ([]string, error) {
	// Errors are reported by main, in one line; the usage only for -h.
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, err
			}
			name := strings.TrimPrefix(fs.Name(), "kpax ")
			return nil, usagef("%s: %v (try %s -h)", name, err, fs.Name())
		}
		rest := fs.Args()
		if !interleaved {
			return rest, nil
		}
		used := len(args) - len(rest)
		if len(rest) == 0 || (used > 0 && args[used-1] == "--") {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseCmd parses the flags of a command, with flags allowed after the
// positional arguments.
func parseCmd(fs *flag.FlagSet, args []string) ([]string, error) {
	return parseFlags(fs, args, true)
}

// deadline applies -timeout to ctx (def when -timeout was not given).
func (e *env) deadline(ctx context.Context, def time.Duration) (context.Context, context.CancelFunc) {
	d := def
	if e.timeoutSet {
		d = e.timeout
	}
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// client returns a client for -brokers.
func (e *env) client(opts ...kpax.Option) (*kpax.Client, error) {
	p := e.properties()
	brokers := e.brokers
	if !e.brokersSet {
		brokers = cmp(cmp(p["bootstrap.servers"], p["metadata.broker.list"]), brokers)
	}
	var seeds []string
	for _, s := range strings.Split(brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil, usagef("no brokers: set -brokers or $KPAX_BROKERS")
	}
	sec, err := securityOptions(p)
	if err != nil {
		return nil, err
	}
	base := append([]kpax.Option{kpax.WithSeedBrokers(seeds...), kpax.WithClientID(cmp(p["client.id"], "kpax-cli"))}, sec...)
	if e.verbose {
		base = append(base, kpax.WithLogger(slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	cl, err := kpax.New(append(base, opts...)...)
	if err != nil {
		return nil, usagef("-brokers %q: %s", brokers, strings.TrimPrefix(err.Error(), "kpax: "))
	}
	return cl, nil
}

// adminTimeout is the default -timeout of the commands that are not streams.
const adminTimeout = 30 * time.Second

// timeoutErr points at -timeout when err comes from ctx's deadline.
func timeoutErr(ctx context.Context, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (raise -timeout?)", err)
	}
	return err
}
