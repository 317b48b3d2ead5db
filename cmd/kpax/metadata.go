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
	asJSON := jsonFlag(fs)
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
	if *asJSON {
		return e.printJSON(kcatMetadata(md))
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

// kcatMetadata is md in the shape of kcat -L -J, with kpax's additions
// (cluster_id, topic_id, internal, leader_epoch, offline, error).
func kcatMetadata(md *kpax.ClusterMetadata) any {
	type id struct {
		ID int32 `json:"id"`
	}
	type jb struct {
		ID   int32  `json:"id"`
		Name string `json:"name"`
		Rack string `json:"rack,omitempty"`
	}
	type jp struct {
		Partition   int32   `json:"partition"`
		Leader      int32   `json:"leader"`
		LeaderEpoch int32   `json:"leader_epoch"`
		Replicas    []id    `json:"replicas"`
		ISRs        []id    `json:"isrs"`
		Offline     []int32 `json:"offline,omitempty"`
		Error       string  `json:"error,omitempty"`
	}
	type jt struct {
		Topic      string `json:"topic"`
		TopicID    string `json:"topic_id"`
		Internal   bool   `json:"internal,omitempty"`
		Error      string `json:"error,omitempty"`
		Partitions []jp   `json:"partitions"`
	}
	ids := func(ns []int32) []id {
		out := []id{}
		for _, n := range ns {
			out = append(out, id{n})
		}
		return out
	}
	out := struct {
		ClusterID    string `json:"cluster_id"`
		ControllerID int32  `json:"controllerid"`
		Brokers      []jb   `json:"brokers"`
		Topics       []jt   `json:"topics"`
	}{ClusterID: md.ClusterID, ControllerID: md.Controller, Brokers: []jb{}, Topics: []jt{}}
	for _, b := range md.Brokers {
		out.Brokers = append(out.Brokers, jb{b.NodeID, b.Addr(), b.Rack})
	}
	sort.Slice(md.Topics, func(i, j int) bool { return md.Topics[i].Name < md.Topics[j].Name })
	for _, t := range md.Topics {
		tj := jt{Topic: t.Name, TopicID: t.ID.String(), Internal: t.Internal, Error: errString(t.Err), Partitions: []jp{}}
		for _, p := range t.Partitions {
			tj.Partitions = append(tj.Partitions, jp{p.Partition, p.Leader, p.LeaderEpoch, ids(p.Replicas), ids(p.ISR), p.Offline, errString(p.Err)})
		}
		out.Topics = append(out.Topics, tj)
	}
	return out
}
