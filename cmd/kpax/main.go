// Command kpax is a command-line tool for Kafka built on the kpax package.
//
//	kpax [-brokers host:port,...] COMMAND [flags]
//
// Commands:
//
//	apiversions   the API versions each broker supports, and the ones kpax would use
//	metadata      brokers, topics, partitions, leaders and in-sync replicas
//
// The brokers default to $KPAX_BROKERS, then 127.0.0.1:9092.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"h12.me/kpax"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "kpax:", strings.TrimPrefix(err.Error(), "kpax: "))
		}
		os.Exit(exitCode(err))
	}
}

type usageError struct{ error }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

func defaultBrokers() string {
	if b := os.Getenv("KPAX_BROKERS"); b != "" {
		return b
	}
	return "127.0.0.1:9092"
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kpax", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", defaultBrokers(), "comma-separated seed brokers (default $KPAX_BROKERS or 127.0.0.1:9092)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long a command may take")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kpax [-brokers host:port,...] COMMAND [flags]\n\ncommands:\n  apiversions  API versions of each broker\n  metadata     brokers, topics, partitions, leaders, ISR\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usageError{errors.New("no command")}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cl, err := kpax.New(kpax.WithSeedBrokers(strings.Split(*brokers, ",")...), kpax.WithClientID("kpax-cli"))
	if err != nil {
		return usageError{err}
	}
	defer cl.Close()
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "apiversions":
		return apiVersions(ctx, cl, rest, stdout, stderr)
	case "metadata":
		return metadata(ctx, cl, rest, stdout, stderr)
	}
	return usageError{fmt.Errorf("unknown command %q (try -h)", cmd)}
}

func apiVersions(ctx context.Context, cl *kpax.Client, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apiversions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	md, err := cl.Metadata(ctx, []string{}...)
	if err != nil {
		return err
	}
	for _, b := range md.Brokers {
		r, err := cl.RequestBroker(ctx, b.NodeID, &kpax.ApiVersionsRequest{ClientSoftwareName: "kpax-cli", ClientSoftwareVersion: "0.1.0"})
		if err != nil {
			return err
		}
		resp := r.(*kpax.ApiVersionsResponse)
		if err := kpax.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("broker %d: %w", b.NodeID, err)
		}
		fmt.Fprintf(stdout, "broker %d (%s):\n", b.NodeID, b.Addr())
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  KEY\tAPI\tBROKER\tKPAX")
		for _, k := range resp.ApiKeys {
			ours := "-"
			if req := kpax.NewRequest(k.ApiKey); req != nil {
				ours = fmt.Sprintf("v%d-%d", req.MinVersion(), req.MaxVersion())
			}
			name := kpax.APIName(k.ApiKey)
			if name == "" {
				name = "?"
			}
			fmt.Fprintf(tw, "  %d\t%s\tv%d-%d\t%s\n", k.ApiKey, name, k.MinVersion, k.MaxVersion, ours)
		}
		tw.Flush()
	}
	return nil
}

func metadata(ctx context.Context, cl *kpax.Client, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("metadata", flag.ContinueOnError)
	fs.SetOutput(stderr)
	topics := fs.String("topics", "", "comma-separated topics (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var names []string
	if *topics != "" {
		names = strings.Split(*topics, ",")
	}
	md, err := cl.Metadata(ctx, names...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cluster %s, controller %d\n", md.ClusterID, md.Controller)
	for _, b := range md.Brokers {
		rack := ""
		if b.Rack != "" {
			rack = " rack " + b.Rack
		}
		fmt.Fprintf(stdout, "broker %d at %s%s\n", b.NodeID, b.Addr(), rack)
	}
	sort.Slice(md.Topics, func(i, j int) bool { return md.Topics[i].Name < md.Topics[j].Name })
	for _, t := range md.Topics {
		if t.Err != nil {
			fmt.Fprintf(stdout, "topic %q: %v\n", t.Name, t.Err)
			continue
		}
		fmt.Fprintf(stdout, "topic %q with %d partitions (id %s)\n", t.Name, len(t.Partitions), t.ID)
		for _, p := range t.Partitions {
			fmt.Fprintf(stdout, "  partition %d: leader %d epoch %d replicas %v isr %v", p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR)
			if p.Err != nil {
				fmt.Fprintf(stdout, " error %v", p.Err)
			}
			fmt.Fprintln(stdout)
		}
	}
	return nil
}
