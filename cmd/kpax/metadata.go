package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"h12.me/kpax"
)

func runAPIVersions(ctx context.Context, e *env, args []string) error {
	fs := e.flags("apiversions", "", "Shows the API versions each broker supports, and the range kpax speaks.")
	ctx, cl, done, err := e.adminNoArgs(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	return eachBroker(ctx, cl, func(b kpax.Broker) error {
		resp, err := requestBroker[*kpax.ApiVersionsResponse](ctx, cl, b.NodeID, &kpax.ApiVersionsRequest{ClientSoftwareName: "kpax-cli", ClientSoftwareVersion: "0.1.0"})
		if err != nil {
			return timeoutErr(ctx, err)
		}
		if err := kpax.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("broker %d: %w", b.NodeID, err)
		}
		fmt.Fprintf(e.stdout, "broker %d (%s):\n", b.NodeID, b.Addr())
		tw := newTable(e.stdout)
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
		return tw.Flush()
	})
}

func runMetadata(ctx context.Context, e *env, args []string) error {
	fs := e.flags("metadata", "[TOPIC...]", "Shows the brokers, and the partitions, leaders and in-sync replicas of the topics (all topics by default).")
	topics := fs.String("topics", "", "comma-separated topics, as well as the arguments")
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	var names []string
	if *topics != "" {
		names = strings.Split(*topics, ",")
	}
	names = append(names, pos...)
	ctx, cl, done, err := e.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	md, err := cl.Metadata(ctx, names...)
	if err != nil {
		return timeoutErr(ctx, err)
	}
	w := e.stdout
	fmt.Fprintf(w, "cluster %s, controller %d\n", md.ClusterID, md.Controller)
	for _, b := range md.Brokers {
		rack := ""
		if b.Rack != "" {
			rack = " rack " + b.Rack
		}
		fmt.Fprintf(w, "broker %d at %s%s\n", b.NodeID, b.Addr(), rack)
	}
	sort.Slice(md.Topics, func(i, j int) bool { return md.Topics[i].Name < md.Topics[j].Name })
	for _, t := range md.Topics {
		if t.Err != nil {
			fmt.Fprintf(w, "topic %q: %v\n", t.Name, t.Err)
			continue
		}
		printTopic(w, t)
	}
	return nil
}

// printTopic prints a topic's partitions as metadata and topic describe show
// them.
func printTopic(w io.Writer, t kpax.TopicMetadata) {
	internal := ""
	if t.Internal {
		internal = ", internal"
	}
	fmt.Fprintf(w, "topic %q with %d partitions (id %s%s)\n", t.Name, len(t.Partitions), t.ID, internal)
	for _, p := range t.Partitions {
		fmt.Fprintf(w, "  partition %d: leader %d epoch %d replicas %v isr %v", p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR)
		if len(p.Offline) > 0 {
			fmt.Fprintf(w, " offline %v", p.Offline)
		}
		if p.Err != nil {
			fmt.Fprintf(w, " error %v", p.Err)
		}
		fmt.Fprintln(w)
	}
}
