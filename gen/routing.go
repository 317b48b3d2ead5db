package main

import (
	"fmt"
	"strings"
)

// Routing: where a request goes and which connection lane carries it. The
// protocol guide does not say; the table below does, as the Java client
// routes (KafkaProducer, KafkaConsumer, KafkaAdminClient): to the leader of
// a partition, to the controller, to a group or transaction coordinator, or
// (every API not listed) to any broker. The generator checks every path
// against the merged messages and emits, into protocol_gen.go, an API key
// constant per API (apiKeyProduce, ...), apiRoute and apiLane keyed by API,
// and per request the method that reads the routing key out of it, so that
// the hand-written client holds no per-API switch.

type route struct {
	api  string
	kind string // "leader", "controller", "group", "txn"; "any" for a lane only
	// keys (group, txn): the paths of the coordinator key, tried in order;
	// the first non-empty value is the key (a path through an array reads
	// its first element). No value: the request goes to any broker.
	keys []string
	// leader: the paths of the first partition's topic name, topic ID ("" if
	// the API has none) and partition index.
	topic, topicID, partition string
	// lane: "fetch" or "group" for requests the broker holds on purpose (a
	// fetch waits for data, a join for the rebalance), so that they do not
	// delay others on the same connection.
	lane string
}

func defaultRoutes() []route {
	return []route{
		{api: "Produce", kind: "leader", topic: "topic_data.name", topicID: "topic_data.topic_id", partition: "topic_data.partition_data.index"},
		{api: "Fetch", kind: "leader", topic: "topics.topic", topicID: "topics.topic_id", partition: "topics.partitions.partition", lane: "fetch"},
		{api: "ListOffsets", kind: "leader", topic: "topics.name", partition: "topics.partitions.partition_index"},
		{api: "DeleteRecords", kind: "leader", topic: "topics.name", partition: "topics.partitions.partition_index"},
		{api: "OffsetForLeaderEpoch", kind: "leader", topic: "topics.topic", partition: "topics.partitions.partition"},
		// A share consumer sends these to each leader by node ID; the broker holds share fetches.
		{api: "ShareFetch", kind: "any", lane: "fetch"},

		{api: "CreateTopics", kind: "controller"},
		{api: "DeleteTopics", kind: "controller"},
		{api: "CreatePartitions", kind: "controller"},
		{api: "ElectLeaders", kind: "controller"},
		{api: "AlterPartitionReassignments", kind: "controller"},
		{api: "ListPartitionReassignments", kind: "controller"},
		{api: "UpdateFeatures", kind: "controller"},

		{api: "JoinGroup", kind: "group", keys: []string{"group_id"}, lane: "group"},
		{api: "SyncGroup", kind: "group", keys: []string{"group_id"}, lane: "group"},
		{api: "Heartbeat", kind: "group", keys: []string{"group_id"}},
		{api: "LeaveGroup", kind: "group", keys: []string{"group_id"}},
		{api: "OffsetCommit", kind: "group", keys: []string{"group_id"}},
		{api: "OffsetFetch", kind: "group", keys: []string{"groups.group_id", "group_id"}},
		{api: "DescribeGroups", kind: "group", keys: []string{"groups"}},
		{api: "DeleteGroups", kind: "group", keys: []string{"groups_names"}},
		{api: "OffsetDelete", kind: "group", keys: []string{"group_id"}},
		{api: "TxnOffsetCommit", kind: "group", keys: []string{"group_id"}}, // the consumer group's coordinator
		{api: "ConsumerGroupHeartbeat", kind: "group", keys: []string{"group_id"}},
		{api: "ConsumerGroupDescribe", kind: "group", keys: []string{"group_ids"}},
		{api: "ShareGroupHeartbeat", kind: "group", keys: []string{"group_id"}},
		{api: "ShareGroupDescribe", kind: "group", keys: []string{"group_ids"}},
		{api: "DescribeShareGroupOffsets", kind: "group", keys: []string{"groups.group_id"}},
		{api: "AlterShareGroupOffsets", kind: "group", keys: []string{"group_id"}},
		{api: "DeleteShareGroupOffsets", kind: "group", keys: []string{"group_id"}},

		{api: "InitProducerId", kind: "txn", keys: []string{"transactional_id"}}, // none: an idempotent producer, any broker
		{api: "AddPartitionsToTxn", kind: "txn", keys: []string{"v3_and_below_transactional_id"}},
		{api: "AddOffsetsToTxn", kind: "txn", keys: []string{"transactional_id"}},
		{api: "EndTxn", kind: "txn", keys: []string{"transactional_id"}},
	}
}

var routeKinds = map[string]string{
	"any": "routeAny", "leader": "routeLeader", "controller": "routeController", "group": "routeGroupCoordinator", "txn": "routeTxnCoordinator",
}

var lanes = map[string]string{"fetch": "laneFetch", "group": "laneGroup"}

// checkRoutes makes sure every route names an API and fields that exist,
// with the types the emitted code reads.
func checkRoutes(routes []route, msgs map[string]*message) error {
	seen := map[string]bool{}
	for _, r := range routes {
		m := msgs[r.api+" Request"]
		if m == nil {
			return fmt.Errorf("routing: no API %q", r.api)
		}
		if seen[r.api] {
			return fmt.Errorf("routing: %s listed twice", r.api)
		}
		seen[r.api] = true
		if routeKinds[r.kind] == "" || (r.lane != "" && lanes[r.lane] == "") {
			return fmt.Errorf("routing: %s: kind %q, lane %q", r.api, r.kind, r.lane)
		}
		check := func(path, prim string) error {
			if path == "" {
				return nil
			}
			fs, err := fieldPath(m.root, path)
			if err != nil {
				return fmt.Errorf("routing: %s %s: %w", r.api, path, err)
			}
			last := fs[len(fs)-1]
			if last.prim != prim || last.tag >= 0 {
				return fmt.Errorf("routing: %s %s is %s, want an untagged %s", r.api, path, last.prim, prim)
			}
			for _, f := range fs[:len(fs)-1] {
				if f.kind == kindStruct || f.tag >= 0 {
					return fmt.Errorf("routing: %s %s: goes through %s, not an array", r.api, path, f.name)
				}
			}
			return nil
		}
		for _, p := range append(append([]string{}, r.keys...), r.topic) {
			if err := check(p, "STRING"); err != nil {
				return err
			}
		}
		if err := check(r.topicID, "UUID"); err != nil {
			return err
		}
		if err := check(r.partition, "INT32"); err != nil {
			return err
		}
		if (r.kind == "leader") != (r.topic != "" && r.partition != "") || (r.kind == "group" || r.kind == "txn") != (len(r.keys) > 0) {
			return fmt.Errorf("routing: %s: a %s route with keys %v topic %q partition %q", r.api, r.kind, r.keys, r.topic, r.partition)
		}
	}
	return nil
}

// fieldPath returns the fields along path from st.
func fieldPath(st *structType, path string) ([]*field, error) {
	var out []*field
	for _, name := range strings.Split(path, ".") {
		if st == nil {
			return nil, fmt.Errorf("no field %q", name)
		}
		var f *field
		for _, c := range st.fields {
			if c.name == name {
				f = c
			}
		}
		if f == nil {
			return nil, fmt.Errorf("no field %q", name)
		}
		out = append(out, f)
		st = f.st
	}
	return out, nil
}

func emitRouting(e *emitter, apis []specAPI, msgs map[string]*message, routes []route) error {
	if err := checkRoutes(routes, msgs); err != nil {
		return err
	}
	e.p("// The API keys of the protocol guides.")
	e.p("const (")
	for _, a := range apis {
		e.p("\tapiKey%s int16 = %d", a.name, a.key)
	}
	e.p(")")
	e.p("")
	e.p("// routeKind says which broker a request goes to (gen/routing.go).")
	e.p("type routeKind int8")
	e.p("")
	e.p("const (")
	e.p("\trouteAny routeKind = iota // any broker")
	e.p("\trouteLeader // the leader of the request's first partition (leaderPartition)")
	e.p("\trouteController // the controller")
	e.p("\trouteGroupCoordinator // the coordinator of the group (coordinatorKey)")
	e.p("\trouteTxnCoordinator // the coordinator of the transactional ID (coordinatorKey)")
	e.p(")")
	e.p("")
	e.p("// apiRoute returns where requests of the API key go.")
	e.p("func apiRoute(key int16) routeKind {")
	e.p("\tswitch key {")
	for _, kind := range []string{"leader", "controller", "group", "txn"} {
		var keys []string
		for _, r := range routes {
			if r.kind == kind {
				keys = append(keys, "apiKey"+r.api)
			}
		}
		if len(keys) > 0 {
			e.p("\tcase %s:\n\t\treturn %s", strings.Join(keys, ", "), routeKinds[kind])
		}
	}
	e.p("\t}")
	e.p("\treturn routeAny")
	e.p("}")
	e.p("")
	e.p("// apiLane returns the connection lane for requests of the API key: the broker holds fetches and")
	e.p("// group joins on purpose, so they do not share a connection with other requests.")
	e.p("func apiLane(key int16) int {")
	e.p("\tswitch key {")
	for _, lane := range []string{"fetch", "group"} {
		var keys []string
		for _, r := range routes {
			if r.lane == lane {
				keys = append(keys, "apiKey"+r.api)
			}
		}
		if len(keys) > 0 {
			e.p("\tcase %s:\n\t\treturn %s", strings.Join(keys, ", "), lanes[lane])
		}
	}
	e.p("\t}")
	e.p("\treturn laneDefault")
	e.p("}")
	e.p("")
	for _, r := range routes {
		m := msgs[r.api+" Request"]
		switch r.kind {
		case "leader":
			emitLeaderPartition(e, m, r)
		case "group", "txn":
			emitCoordinatorKey(e, m, r)
			emitHasErrorCode(e, msgs[r.api+" Response"])
		}
	}
	return nil
}

// access writes the Go expression for path from "r", with the guards its
// arrays need (first elements): "len(r.A) > 0", "r.A[0].B".
func access(st *structType, path string) (guards []string, expr string, f *field) {
	fs, _ := fieldPath(st, path)
	expr = "r"
	for i, f := range fs {
		expr += "." + f.goName
		if f.kind == kindArray && i < len(fs)-1 {
			guards = append(guards, fmt.Sprintf("len(%s) > 0", expr))
			expr += "[0]"
		}
	}
	return guards, expr, fs[len(fs)-1]
}

func emitLeaderPartition(e *emitter, m *message, r route) {
	e.p("// leaderPartition returns the first partition of the request, which routes it to its leader:")
	e.p("// the topic's name, its ID (zero if none), the partition; ok is false if there is none.")
	e.p("func (r *%s) leaderPartition() (topic string, topicID UUID, partition int32, ok bool) {", m.goName())
	guards, part, _ := access(m.root, r.partition)
	_, topic, _ := access(m.root, r.topic)
	e.p("\tif %s {", strings.Join(guards, " && "))
	if r.topicID != "" {
		_, id, _ := access(m.root, r.topicID)
		e.p("\t\treturn %s, %s, %s, true", topic, id, part)
	} else {
		e.p("\t\treturn %s, UUID{}, %s, true", topic, part)
	}
	e.p("\t}")
	e.p("\treturn \"\", UUID{}, 0, false")
	e.p("}")
	e.p("")
}

func emitCoordinatorKey(e *emitter, m *message, r route) {
	e.p("// coordinatorKey returns the %s the request's coordinator is found by (%s); ok is false if it has none.",
		map[string]string{"group": "group ID", "txn": "transactional ID"}[r.kind], strings.Join(r.keys, ", then "))
	e.p("func (r *%s) coordinatorKey() (key string, ok bool) {", m.goName())
	for _, k := range r.keys {
		guards, expr, f := access(m.root, k)
		if f.kind == kindArray { // an array of strings: its first element
			guards = append(guards, fmt.Sprintf("len(%s) > 0", expr))
			expr += "[0]"
		}
		val := expr
		if goType(f) == "*string" || (f.kind == kindPrim && f.nullable != 0) {
			guards = append(guards, expr+" != nil")
			val = "*" + expr
		}
		guards = append(guards, val+` != ""`)
		e.p("\tif %s {", strings.Join(guards, " && "))
		e.p("\t\treturn %s, true", val)
		e.p("\t}")
	}
	e.p("\treturn \"\", false")
	e.p("}")
	e.p("")
}

// emitHasErrorCode writes a method that reports whether any error_code of
// the response, at any depth, matches.
func emitHasErrorCode(e *emitter, m *message) {
	e.p("// hasErrorCode reports whether match is true of an error code anywhere in the response.")
	e.p("func (r *%s) hasErrorCode(match func(int16) bool) bool {", m.goName())
	var walk func(st *structType, x string, depth int)
	walk = func(st *structType, x string, depth int) {
		for _, f := range st.fields {
			switch {
			case f.name == "error_code" && f.kind == kindPrim && f.prim == "INT16":
				e.p("if match(%s.%s) {", x, f.goName)
				e.p("return true")
				e.p("}")
			case f.kind == kindArray && f.st != nil && hasErrorCodeField(f.st):
				v := fmt.Sprintf("x%d", depth)
				e.p("for i := range %s.%s {", x, f.goName)
				e.p("%s := &%s.%s[i]", v, x, f.goName)
				walk(f.st, v, depth+1)
				e.p("}")
			case f.kind == kindStruct && hasErrorCodeField(f.st):
				v := fmt.Sprintf("s%d", depth)
				if strings.HasPrefix(goType(f), "*") {
					e.p("if %s := %s.%s; %s != nil {", v, x, f.goName, v)
				} else {
					e.p("{")
					e.p("%s := &%s.%s", v, x, f.goName)
				}
				walk(f.st, v, depth+1)
				e.p("}")
			}
		}
	}
	walk(m.root, "r", 0)
	e.p("\treturn false")
	e.p("}")
	e.p("")
}

func hasErrorCodeField(st *structType) bool {
	for _, f := range st.fields {
		if f.name == "error_code" && f.kind == kindPrim {
			return true
		}
		if f.st != nil && hasErrorCodeField(f.st) {
			return true
		}
	}
	return false
}
