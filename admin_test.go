package kpax

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// adminFor returns a client of the broker at addr and its Admin, closed when
// the test ends, and a context that ends with the test (30s at most).
func adminFor(t *testing.T, addr string, opts ...Option) (context.Context, *Client, *Admin) {
	t.Helper()
	cl, err := New(append([]Option{WithSeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(func() { cancel(); cl.Close() })
	return ctx, cl, cl.Admin()
}

func uniq(prefix string) string { return prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) }

// eachBroker runs f as a subtest against every broker under test.
func eachBroker(t *testing.T, f func(t *testing.T, addr string)) {
	for name, addr := range testBrokers(t) {
		t.Run(name, func(t *testing.T) { f(t, addr) })
	}
}

// createTopic creates a topic with partitions and waits for its leaders.
func createTopic(t *testing.T, ctx context.Context, a *Admin, name string, partitions int32) {
	t.Helper()
	if _, err := a.CreateTopics(ctx, NewTopic{Name: name, Partitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitForLeaders(ctx, name); err != nil {
		t.Fatal(err)
	}
}

func TestAdminInvalidInput(t *testing.T) {
	cl, err := New(WithSeedBrokers("127.0.0.1:1")) // never dialed: every call fails before sending
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	a := cl.Admin()
	ctx := context.Background()
	calls := map[string]func() error{
		"empty topic": func() error {
			_, err := a.CreateTopics(ctx, NewTopic{Name: "", Partitions: 1, ReplicationFactor: 1})
			return err
		},
		"zero partitions":  func() error { _, err := a.CreateTopics(ctx, NewTopic{Name: "t", ReplicationFactor: 1}); return err },
		"zero replication": func() error { _, err := a.CreateTopics(ctx, NewTopic{Name: "t", Partitions: 1}); return err },
		"bad topic char":   func() error { _, err := a.DeleteTopics(ctx, "a/b"); return err },
		"no topics":        func() error { _, err := a.DeleteTopics(ctx); return err },
		"duplicate topics": func() error { _, err := a.DescribeTopics(ctx, "a", "a"); return err },
		"add zero":         func() error { _, err := a.AddPartitions(ctx, 0, "a"); return err },
		"resource type":    func() error { _, err := a.DescribeConfigs(ctx, nil, ConfigResource{Type: 99, Name: "x"}); return err },
		"broker name": func() error {
			_, err := a.DescribeConfigs(ctx, nil, ConfigResource{Type: ConfigBroker, Name: "x"})
			return err
		},
		"no changes": func() error {
			_, err := a.AlterConfigs(ctx, AlterConfig{Resource: ConfigResource{ConfigTopic, "t"}})
			return err
		},
		"empty group": func() error { _, err := a.DescribeGroups(ctx, ""); return err },
		"negative offset": func() error {
			_, err := a.AlterGroupOffsets(ctx, "g", TopicPartitionOffset{Topic: "t", Offset: -5})
			return err
		},
		"no reset":          func() error { _, err := a.PlanResetOffsets(ctx, "g", OffsetTarget{}, nil); return err },
		"list timestamp":    func() error { _, err := a.ListOffsets(ctx, -9, TopicPartitions{"t": nil}); return err },
		"delete records":    func() error { _, err := a.DeleteRecords(ctx, TopicPartitionOffset{Topic: "t", Offset: -2}); return err },
		"acl any in create": func() error { _, err := a.CreateACLs(ctx, ACL{Type: ACLResourceAny}); return err },
		"acl bad op": func() error {
			_, err := a.DescribeACLs(ctx, ACL{Type: ACLResourceAny, Pattern: ACLPatternAny, Operation: 99, Permission: ACLPermissionAny})
			return err
		},
		"scram no password": func() error {
			_, err := a.AlterScramUsers(ctx, []ScramUpsert{{User: "u", Mechanism: ScramSHA256}}, nil)
			return err
		},
		"quota no entity":    func() error { _, err := a.AlterClientQuotas(ctx, QuotaAlteration{}); return err },
		"reassign empty":     func() error { _, err := a.AlterPartitionReassignments(ctx); return err },
		"elect no partition": func() error { _, err := a.ElectLeaders(ctx, false, TopicPartitions{"t": nil}); return err },
		"txn empty":          func() error { _, err := a.DescribeTransactions(ctx, ""); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestAdminTopics(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		ctx, _, a := adminFor(t, addr)
		name := uniq("admin-topic")
		res, err := a.ValidateCreateTopics(ctx, NewTopic{Name: name, Partitions: 2, ReplicationFactor: 1})
		if err != nil || res[0].Err != nil {
			t.Fatalf("validate: %v %+v", err, res)
		}
		if d, _ := a.DescribeTopics(ctx, name); !errors.Is(d[0].Err, ErrUnknownTopicOrPartition) {
			t.Fatalf("validate-only created the topic: %+v", d[0])
		}
		res, err = a.CreateTopics(ctx, NewTopic{Name: name, Partitions: 2, ReplicationFactor: -1, Configs: map[string]string{"retention.ms": "3600000"}})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Partitions != 2 || res[0].ID == (UUID{}) {
			t.Errorf("created %+v", res[0])
		}
		if err := a.WaitForLeaders(ctx, name); err != nil {
			t.Fatal(err)
		}
		// Again, with a second new topic: one fails, one succeeds.
		other := uniq("admin-topic2")
		res, err = a.CreateTopics(ctx, NewTopic{Name: name, Partitions: 1, ReplicationFactor: 1}, NewTopic{Name: other, Partitions: 1, ReplicationFactor: 1})
		var ae *AdminError
		if !errors.As(err, &ae) || len(ae.Errors) != 1 || ae.Total != 2 || !errors.Is(err, ErrTopicAlreadyExists) {
			t.Fatalf("create existing: %v", err)
		}
		if !errors.Is(res[0].Err, ErrTopicAlreadyExists) || res[1].Err != nil {
			t.Fatalf("results %+v", res)
		}
		ds, err := a.DescribeTopics(ctx, name)
		if err != nil || len(ds[0].Partitions) != 2 || ds[0].Partitions[0].Leader < 0 || len(ds[0].Partitions[0].ISR) != 1 || ds[0].ID != res0ID(t, a, ctx, name) {
			t.Fatalf("describe: %v %+v", err, ds)
		}
		waitFor(t, func() bool { // other was just created: metadata may lag
			all, err := a.ListTopics(ctx)
			return err == nil && hasTopic(all, name) && hasTopic(all, other)
		})
		pr, err := a.AddPartitions(ctx, 2, name)
		if err != nil || pr[0].Partitions != 4 {
			t.Fatalf("add partitions: %v %+v", err, pr)
		}
		if err := a.WaitForLeaders(ctx, name); err != nil {
			t.Fatal(err)
		}
		if _, err := a.SetPartitions(ctx, 3, name); !errors.Is(err, ErrInvalidPartitions) {
			t.Fatalf("shrink: %v", err)
		}
		if _, err := a.AddPartitions(ctx, 1, uniq("missing")); !errors.Is(err, ErrUnknownTopicOrPartition) {
			t.Fatalf("add to missing: %v", err)
		}
		missing := uniq("missing")
		del, err := a.DeleteTopics(ctx, name, other, missing)
		if !errors.Is(err, ErrUnknownTopicOrPartition) || del[0].Err != nil || del[1].Err != nil || !errors.Is(del[2].Err, ErrUnknownTopicOrPartition) {
			t.Fatalf("delete: %v %+v", err, del)
		}
		// The topic is really gone (DeleteTopics v6 needs Topics, not TopicNames).
		deadline := time.Now().Add(10 * time.Second)
		for {
			d, _ := a.DescribeTopics(ctx, name)
			if errors.Is(d[0].Err, ErrUnknownTopicOrPartition) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("topic %s still exists after DeleteTopics", name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func res0ID(t *testing.T, a *Admin, ctx context.Context, name string) UUID {
	all, err := a.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range all {
		if tm.Name == name {
			return tm.ID
		}
	}
	return UUID{}
}

func hasTopic(ts []TopicMetadata, name string) bool {
	for _, t := range ts {
		if t.Name == name {
			return true
		}
	}
	return false
}

func TestAdminConfigs(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		ctx, _, a := adminFor(t, addr)
		name := uniq("admin-cfg")
		createTopic(t, ctx, a, name, 1)
		defer a.DeleteTopics(ctx, name)
		topic := ConfigResource{ConfigTopic, name}
		res, err := a.AlterConfigs(ctx, AlterConfig{Resource: topic, Changes: []ConfigChange{{Name: "retention.ms", Value: "123456"}}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("alter: %v %+v", err, res)
		}
		got := map[string]ConfigEntry{}
		waitFor(t, func() bool { // KRaft: the broker applies the controller's change shortly after
			rc, err := a.DescribeConfigs(ctx, []string{"retention.ms", "cleanup.policy"}, topic)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range rc[0].Configs {
				got[c.Name] = c
			}
			return got["retention.ms"].Source != ConfigSourceDefault
		})
		if e := got["retention.ms"]; deref(e.Value) != "123456" || e.Source != ConfigSourceTopic {
			t.Errorf("retention.ms = %+v", e)
		}
		if e := got["cleanup.policy"]; !e.IsDefault() {
			t.Errorf("cleanup.policy = %+v (source %v)", e, e.Source)
		}
		// Delete reverts; an unknown config and an unknown topic fail per item.
		missing := ConfigResource{ConfigTopic, uniq("missing")}
		res, err = a.AlterConfigs(ctx,
			AlterConfig{Resource: topic, Changes: []ConfigChange{{Name: "retention.ms", Op: ConfigDelete}}},
			AlterConfig{Resource: missing, Changes: []ConfigChange{{Name: "retention.ms", Value: "1"}}})
		if err == nil || res[0].Err != nil || !errors.Is(res[1].Err, ErrUnknownTopicOrPartition) {
			t.Fatalf("alter with a missing topic: %v %+v", err, res)
		}
		if _, err := a.ValidateAlterConfigs(ctx, AlterConfig{Resource: topic, Changes: []ConfigChange{{Name: "no.such.config", Value: "1"}}}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("unknown config: %v", err)
		}
		// Broker configs go to the broker.
		cd, err := a.DescribeCluster(ctx)
		if err != nil {
			t.Fatal(err)
		}
		broker := ConfigResource{ConfigBroker, strconv.Itoa(int(cd.Brokers[0].NodeID))}
		rc, err := a.DescribeConfigs(ctx, []string{"log.retention.hours"}, broker)
		if err != nil || len(rc[0].Configs) != 1 {
			t.Fatalf("broker configs: %v %+v", err, rc)
		}
		res, err = a.AlterConfigs(ctx, AlterConfig{Resource: broker, Changes: []ConfigChange{{Name: "log.cleaner.threads", Value: "1"}}})
		if err != nil {
			t.Fatalf("alter broker config: %v", err)
		}
		a.AlterConfigs(ctx, AlterConfig{Resource: broker, Changes: []ConfigChange{{Name: "log.cleaner.threads", Op: ConfigDelete}}})
	})
}

func TestAdminCluster(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		ctx, _, a := adminFor(t, addr)
		cd, err := a.DescribeCluster(ctx)
		if err != nil || cd.ClusterID == "" || cd.Controller < 0 && len(cd.Brokers) == 0 || len(cd.Brokers) == 0 {
			t.Fatalf("describe cluster: %v %+v", err, cd)
		}
		f, err := a.DescribeFeatures(ctx)
		if err != nil || len(f.Finalized) == 0 || f.Epoch < 0 {
			t.Fatalf("features: %v %+v", err, f)
		}
		avs, err := a.APIVersions(ctx)
		if err != nil || len(avs) != 1 || avs[0].Release != "Kafka 3.1 or later" {
			t.Fatalf("API versions: %v %+v", err, avs)
		}
		var fetch *APIVersionRange
		for i, r := range avs[0].APIs {
			if r.Key == 1 {
				fetch = &avs[0].APIs[i]
			}
		}
		if fetch == nil || fetch.Name != "Fetch" || fetch.Use > min(fetch.Max, fetch.KpaxMax) || fetch.Use < 12 {
			t.Errorf("Fetch versions: %+v", fetch)
		}
		if avs, err := a.APIVersions(ctx, 999); !errors.Is(err, avs[0].Err) || avs[0].Err == nil {
			t.Errorf("API versions of broker 999: %v %+v", err, avs)
		}
		name := uniq("admin-logdirs")
		createTopic(t, ctx, a, name, 2)
		defer a.DeleteTopics(ctx, name)
		// The broker creates the logs shortly after the partitions have leaders.
		waitFor(t, func() bool {
			dirs, err := a.DescribeLogDirs(ctx, TopicPartitions{name: nil})
			if err != nil {
				t.Fatal(err)
			}
			return len(dirs) == 1 && len(dirs[0].Partitions) == 2 && dirs[0].Partitions[1].Topic == name && dirs[0].TotalBytes > 0
		})
		if _, err := a.DescribeLogDirs(ctx, nil, 999); err == nil {
			t.Error("log dirs of broker 999: no error")
		}
	})
}

func TestAdminOffsets(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		ctx, cl, a := adminFor(t, addr)
		name := uniq("admin-offsets")
		createTopic(t, ctx, a, name, 2)
		defer a.DeleteTopics(ctx, name)
		base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		var recs []*Record
		for i := range 10 {
			recs = append(recs, &Record{Topic: name, Partition: 0, Value: []byte("v"), Timestamp: base.Add(time.Duration(i) * time.Minute)})
		}
		produceKpax(t, cl, recs, WithPartitioner(ManualPartitioner()))
		check := func(what string, got []ListedOffset, want0, want1 int64) {
			t.Helper()
			if len(got) != 2 || got[0].Offset != want0 || got[1].Offset != want1 || got[0].Err != nil {
				t.Errorf("%s: %+v, want %d and %d", what, got, want0, want1)
			}
		}
		got, err := a.ListEndOffsets(ctx, name)
		check("end", got, 10, 0)
		got, _ = a.ListStartOffsets(ctx, name)
		check("start", got, 0, 0)
		got, _ = a.ListOffsetsAfter(ctx, base.Add(150*time.Second), name)
		check("after 2.5 min", got, 3, -1)
		got, err = a.ListMaxTimestampOffsets(ctx, name)
		if err != nil || got[0].Offset != 9 || got[0].Timestamp != base.Add(9*time.Minute).UnixMilli() {
			t.Errorf("max timestamp: %v %+v", err, got)
		}
		got, err = a.ListOffsets(ctx, OffsetsLatest, TopicPartitions{name: {0, 7}})
		if !errors.Is(err, ErrUnknownTopicOrPartition) || got[0].Offset != 10 || got[1].Err == nil {
			t.Errorf("partition 7: %v %+v", err, got)
		}
		dr, err := a.DeleteRecords(ctx, TopicPartitionOffset{Topic: name, Partition: 0, Offset: 4}, TopicPartitionOffset{Topic: name, Partition: 1, Offset: 5})
		if !errors.Is(err, ErrOffsetOutOfRange) || dr[0].LowWatermark != 4 || !errors.Is(dr[1].Err, ErrOffsetOutOfRange) {
			t.Fatalf("delete records: %v %+v", err, dr)
		}
		got, _ = a.ListStartOffsets(ctx, name)
		check("start after delete", got, 4, 0)
		// An open transaction: the last stable offset stays before it.
		tp, err := cl.NewProducer(WithTransactionalID(uniq("admin-lso")), WithPartitioner(ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer tp.Close(context.Background())
		if err := tp.BeginTransaction(ctx); err != nil {
			t.Fatal(err)
		}
		if err := tp.ProduceSync(ctx, &Record{Topic: name, Partition: 0, Value: []byte("open")}); err != nil {
			t.Fatal(err)
		}
		got, _ = a.ListLastStableOffsets(ctx, TopicPartitions{name: nil})
		check("last stable in a transaction", got, 10, 0)
		got, _ = a.ListEndOffsets(ctx, name)
		check("end in a transaction", got, 11, 0)
		if err := tp.AbortTransaction(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { // past the abort marker, which the broker writes after the abort returns
			got, err := a.ListLastStableOffsets(ctx, TopicPartitions{name: nil})
			return err == nil && got[0].Offset == 12
		})
	})
}

func TestAdminGroups(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		ctx, cl, a := adminFor(t, addr)
		name := uniq("admin-group-topic")
		createTopic(t, ctx, a, name, 2)
		defer a.DeleteTopics(ctx, name)
		var recs []*Record
		for i := range 10 {
			recs = append(recs, &Record{Topic: name, Partition: int32(i % 2), Value: []byte("v")})
		}
		produceKpax(t, cl, recs, WithPartitioner(ManualPartitioner()))
		group := uniq("admin-group")
		res, err := a.AlterGroupOffsets(ctx, group, TopicPartitionOffset{Topic: name, Partition: 0, Offset: 2, Metadata: "m"})
		if err != nil || res[0].Err != nil {
			t.Fatalf("alter offsets: %v %+v", err, res)
		}
		co, err := a.CommittedOffsets(ctx, group)
		if err != nil || len(co) != 1 || co[0].Offset != 2 || co[0].Metadata != "m" {
			t.Fatalf("committed: %v %+v", err, co)
		}
		lag, err := a.Lag(ctx, group)
		if err != nil || lag.Total != 3 || len(lag.Partitions) != 1 || lag.Partitions[0].End != 5 {
			t.Fatalf("lag: %v %+v", err, lag)
		}
		plan, err := a.PlanResetOffsets(ctx, group, ShiftBy(-10), TopicPartitions{name: nil})
		if !errors.Is(err, ErrInvalidArgument) || plan[0].Offset != 0 || plan[1].Err == nil {
			t.Fatalf("plan shift (partition 1 has no commit): %v %+v", err, plan)
		}
		if co, _ := a.CommittedOffsets(ctx, group); co[0].Offset != 2 {
			t.Fatalf("the plan committed: %+v", co)
		}
		for _, tc := range []struct {
			to   OffsetTarget
			want int64
		}{{ToEarliest(), 0}, {ToLatest(), 5}, {ToOffset(99), 5}, {ToOffset(1), 1}, {ShiftBy(2), 3}, {ToTime(time.Now().Add(time.Hour)), 5}} {
			got, err := a.ResetGroupOffsets(ctx, group, tc.to, TopicPartitions{name: {0}})
			if err != nil || got[0].Offset != tc.want {
				t.Fatalf("reset to %v: %v %+v", tc.to, err, got)
			}
			if co, _ := a.CommittedOffsets(ctx, group, name); co[0].Offset != tc.want {
				t.Fatalf("after reset to %v: %+v", tc.to, co)
			}
		}
		ls, err := a.ListGroups(ctx)
		if err != nil || !hasGroup(ls, group) {
			t.Fatalf("list groups: %v", err)
		}
		ds, err := a.DescribeGroups(ctx, group)
		if err != nil || ds[0].State != "Empty" || len(ds[0].Members) != 0 {
			t.Fatalf("describe: %v %+v", err, ds)
		}
		// Kafka 3.9 drops an empty group with no offsets: keep one.
		if _, err := a.AlterGroupOffsets(ctx, group, TopicPartitionOffset{Topic: name, Partition: 1, Offset: 1}); err != nil {
			t.Fatal(err)
		}
		dr, err := a.DeleteGroupOffsets(ctx, group, TopicPartitions{name: {0}})
		if err != nil || dr[0].Err != nil {
			t.Fatalf("delete offsets: %v %+v", err, dr)
		}
		if co, _ := a.CommittedOffsets(ctx, group, name); co[0].Offset != -1 {
			t.Fatalf("after delete offsets: %+v", co)
		}
		missing := uniq("no-group")
		dg, err := a.DeleteGroups(ctx, group, missing)
		if !errors.Is(err, ErrGroupIdNotFound) || dg[0].Err != nil || !errors.Is(dg[1].Err, ErrGroupIdNotFound) {
			t.Fatalf("delete groups: %v %+v", err, dg)
		}
	})
}

func hasGroup(ls []GroupListing, g string) bool {
	for _, l := range ls {
		if l.Group == g {
			return l.Type != ""
		}
	}
	return false
}

func TestAdminGroupMembers(t *testing.T) {
	for name, addr := range testBrokers(t) {
		t.Run(name+"/classic", func(t *testing.T) { testAdminGroupMembers(t, addr, ClassicGroupProtocol) })
		if name == "4.x" { // KIP-848 groups: ConsumerGroupDescribe
			t.Run(name+"/consumer", func(t *testing.T) { testAdminGroupMembers(t, addr, ConsumerGroupProtocol) })
		}
	}
}

func testAdminGroupMembers(t *testing.T, addr string, protocol GroupProtocol) {
	{
		ctx, cl, a := adminFor(t, addr)
		name := uniq("admin-members")
		createTopic(t, ctx, a, name, 2)
		defer a.DeleteTopics(ctx, name)
		group := uniq("admin-members-group")
		gc, err := cl.NewGroupConsumer(group, []string{name}, WithGroupProtocol(protocol))
		if err != nil {
			t.Fatal(err)
		}
		defer gc.Close(context.Background())
		deadline := time.Now().Add(30 * time.Second)
		for {
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			gc.Poll(pctx)
			cancel()
			ds, err := a.DescribeGroups(ctx, group)
			if err == nil && ds[0].State == "Stable" && len(ds[0].Members) == 1 && len(ds[0].Members[0].Assigned[name]) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("group never stable with the member: %v %+v", err, ds)
			}
		}
		// A group with a member refuses an admin commit.
		if _, err := a.AlterGroupOffsets(ctx, group, TopicPartitionOffset{Topic: name, Offset: 0}); err == nil {
			t.Error("alter offsets of an active group: no error")
		}
		if _, err := a.DeleteGroups(ctx, group); !errors.Is(err, ErrNonEmptyGroup) {
			t.Errorf("delete an active group: %v", err)
		}
		lag, err := a.Lag(ctx, group)
		if err != nil || len(lag.Partitions) != 2 || lag.Partitions[0].Member == "" {
			t.Errorf("lag: %v %+v", err, lag)
		}
		ds, _ := a.DescribeGroups(ctx, group)
		if want := map[GroupProtocol]string{ClassicGroupProtocol: "classic", ConsumerGroupProtocol: "consumer"}[protocol]; ds[0].Type != want {
			t.Errorf("type %q, want %q", ds[0].Type, want)
		}
		ls, _ := a.ListGroups(ctx)
		for _, l := range ls {
			if l.Group == group && l.Type != ds[0].Type {
				t.Errorf("ListGroups type %q, DescribeGroups %q", l.Type, ds[0].Type)
			}
		}
	}
}

func TestAdminSecurityAPIs(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		ctx, _, a := adminFor(t, addr)
		// No authorizer on the test brokers: every ACL call says so, per item.
		acl := ACL{Type: ACLResourceTopic, Name: "t", Pattern: ACLPatternLiteral, Principal: "User:alice", Host: "*", Operation: ACLOperationRead, Permission: ACLPermissionAllow}
		cr, err := a.CreateACLs(ctx, acl)
		if !errors.Is(err, ErrSecurityDisabled) || !errors.Is(cr[0].Err, ErrSecurityDisabled) {
			t.Errorf("create ACLs: %v %+v", err, cr)
		}
		if _, err := a.DescribeACLs(ctx, ACL{Type: ACLResourceAny, Pattern: ACLPatternAny, Operation: ACLOperationAny, Permission: ACLPermissionAny}); !errors.Is(err, ErrSecurityDisabled) {
			t.Errorf("describe ACLs: %v", err)
		}
		if _, err := a.DeleteACLs(ctx, acl); !errors.Is(err, ErrSecurityDisabled) {
			t.Errorf("delete ACLs: %v", err)
		}
		// Client quotas.
		client := uniq("quota-client")
		entity := QuotaEntity{{Type: "client-id", Name: &client}}
		qr, err := a.AlterClientQuotas(ctx, QuotaAlteration{Entity: entity, Set: map[string]float64{"producer_byte_rate": 1 << 20}})
		if err != nil || qr[0].Err != nil {
			t.Fatalf("alter quotas: %v", err)
		}
		waitFor(t, func() bool {
			qs, err := a.DescribeClientQuotas(ctx, true, QuotaFilter{Type: "client-id", Name: client})
			return err == nil && len(qs) == 1 && qs[0].Values["producer_byte_rate"] == 1<<20
		})
		if _, err := a.AlterClientQuotas(ctx, QuotaAlteration{Entity: entity, Set: map[string]float64{"no_such_quota": 1}}); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("unknown quota key: %v", err)
		}
		a.AlterClientQuotas(ctx, QuotaAlteration{Entity: entity, Remove: []string{"producer_byte_rate"}})
		// SCRAM users.
		user := uniq("scram-user")
		sr, err := a.AlterScramUsers(ctx, []ScramUpsert{{User: user, Mechanism: ScramSHA256, Iterations: 8192, Password: "pw"}}, nil)
		if err != nil || len(sr) != 1 {
			t.Fatalf("upsert scram: %v %+v", err, sr)
		}
		waitFor(t, func() bool {
			us, err := a.DescribeScramUsers(ctx, user)
			return err == nil && len(us) == 1 && len(us[0].Credentials) == 1 && us[0].Credentials[0].Iterations == 8192
		})
		if _, err := a.AlterScramUsers(ctx, nil, []ScramDeletion{{User: user, Mechanism: ScramSHA512}}); !errors.Is(err, ErrResourceNotFound) {
			t.Errorf("delete a missing credential: %v", err)
		}
		a.AlterScramUsers(ctx, nil, []ScramDeletion{{User: user, Mechanism: ScramSHA256}})
		if us, err := a.DescribeScramUsers(ctx, uniq("nobody")); !errors.Is(err, ErrResourceNotFound) || len(us) != 1 {
			t.Errorf("describe a missing user: %v %+v", err, us)
		}
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}

func TestAdminPartitionsAndTxns(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		ctx, cl, a := adminFor(t, addr)
		name := uniq("admin-elect")
		createTopic(t, ctx, a, name, 1)
		defer a.DeleteTopics(ctx, name)
		er, err := a.ElectLeaders(ctx, false, TopicPartitions{name: {0}})
		if !errors.Is(err, ErrElectionNotNeeded) || len(er) != 1 {
			t.Errorf("elect: %v %+v", err, er)
		}
		ar, err := a.AlterPartitionReassignments(ctx, Reassignment{Topic: name, Partition: 0, Replicas: []int32{999}})
		if err == nil || len(ar) != 1 || ar[0].Err == nil {
			t.Errorf("reassign to a missing broker: %v %+v", err, ar)
		}
		if _, err := a.AlterPartitionReassignments(ctx, Reassignment{Topic: name, Partition: 0}); !errors.Is(err, ErrNoReassignmentInProgress) {
			t.Errorf("cancel with none in progress: %v", err)
		}
		lr, err := a.ListPartitionReassignments(ctx, nil)
		if err != nil || len(lr) != 0 {
			t.Errorf("list reassignments: %v %+v", err, lr)
		}
		produceKpax(t, cl, []*Record{{Topic: name, Value: []byte("v")}})
		pp, err := a.DescribeProducers(ctx, TopicPartitions{name: nil})
		if err != nil || len(pp) != 1 || len(pp[0].Producers) != 1 {
			t.Errorf("describe producers: %v %+v", err, pp)
		}
		if _, err := a.ListTransactions(ctx); err != nil {
			t.Errorf("list transactions: %v", err)
		}
		td, err := a.DescribeTransactions(ctx, uniq("no-txn"))
		if !errors.Is(err, ErrTransactionalIdNotFound) || len(td) != 1 {
			t.Errorf("describe a missing transaction: %v %+v", err, td)
		}
	})
}

func ExampleAdmin_CreateTopics() {
	cl, err := New(WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := cl.Admin()
	results, err := adm.CreateTopics(ctx,
		NewTopic{Name: "orders", Partitions: 6, ReplicationFactor: -1, Configs: map[string]string{"retention.ms": "86400000"}},
		NewTopic{Name: "audit", Partitions: 1, ReplicationFactor: -1})
	for _, r := range results {
		switch {
		case errors.Is(r.Err, ErrTopicAlreadyExists):
			fmt.Println(r.Name, "exists already")
		case r.Err != nil:
			fmt.Println(r.Name, "failed:", r.Err)
		default:
			fmt.Println(r.Name, "created with ID", r.ID)
		}
	}
	if err != nil && results == nil {
		fmt.Println(err) // no broker, timeout, ...
		return
	}
	if err := adm.WaitForLeaders(ctx, "orders", "audit"); err != nil {
		fmt.Println(err)
	}
}

func ExampleAdmin_Lag() {
	cl, err := New(WithSeedBrokers("127.0.0.1:9092"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lag, err := cl.Admin().Lag(ctx, "billing")
	if lag == nil {
		fmt.Println(err)
		return
	}
	for _, p := range lag.Partitions {
		fmt.Printf("%s/%d: committed %d, end %d, lag %d\n", p.Topic, p.Partition, p.Committed, p.End, p.Lag)
	}
	fmt.Println("total lag:", lag.Total)
}
