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
	fs := e.flags("apiversions", "", "Shows the API versions each broker supports, the range kpax speaks and the version kpax uses.")
	asJSON := jsonFlag(fs)
	ctx, cl, done, err := e.adminNoArgs(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	bvs, err := cl.Admin().APIVersions(ctx)
	if bvs == nil {
		return timeoutErr(ctx, err)
	}
	if *asJSON {
		type api struct {
			Key     int16  `json:"key"`
			Name    string `json:"name"`
			Min     int16  `json:"min"`
			Max     int16  `json:"max"`
			KpaxMin int16  `json:"kpax_min"`
			KpaxMax int16  `json:"kpax_max"`
			Use     int16  `json:"use"`
		}
		type broker struct {
			Broker  int32  `json:"broker"`
			Release string `json:"release,omitempty"`
			APIs    []api  `json:"apis"`
			Error   string `json:"error,omitempty"`
		}
		out := []broker{}
		for _, bv := range bvs {
			b := broker{Broker: bv.Broker, Release: bv.Release, APIs: []api{}}
			if bv.Err != nil {
				b.Error = bv.Err.Error()
			}
			for _, r := range bv.APIs {
				b.APIs = append(b.APIs, api{r.Key, r.Name, r.Min, r.Max, r.KpaxMin, r.KpaxMax, r.Use})
			}
			out = append(out, b)
		}
		if perr := e.printJSON(out); perr != nil {
			return perr
		}
		return err
	}
	for _, bv := range bvs {
		if bv.Err != nil {
			continue
		}
		fmt.Fprintf(e.stdout, "broker %d (%s):\n", bv.Broker, bv.Release)
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "  KEY\tAPI\tBROKER\tKPAX\tUSE")
		for _, r := range bv.APIs {
			ours, use, name := "-", "-", r.Name
			if r.KpaxMax >= 0 {
				ours = fmt.Sprintf("v%d-%d", r.KpaxMin, r.KpaxMax)
			}
			if r.Use >= 0 {
				use = fmt.Sprintf("v%d", r.Use)
			}
			if name == "" {
				name = "?"
			}
			fmt.Fprintf(tw, "  %d\t%s\tv%d-%d\t%s\t%s\n", r.Key, name, r.Min, r.Max, ours, use)
		}
		if ferr := tw.Flush(); ferr != nil {
			return ferr
		}
	}
	return err
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
