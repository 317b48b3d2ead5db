package main

import (
	"fmt"
	"strconv"
	"strings"
)

// The overlay: what the protocol guide's HTML does not say but a client
// needs. Kafka 4's guide states tagged fields and which arrays and
// structures may be null, in its BNF; Kafka 3.9's shows tagged fields only as
// TAG_BUFFER and no nullability of arrays or structures. The merged guides
// (merge.go) take every version from 4.x that 4.x lists, so the overlay is
// left with:
//   - nullable and tagged entries for the versions that only 3.9 lists
//     (below 4.x's oldest version), where 3.9's notation is silent;
//   - tagged arrays: Kafka 4's BNF writes a tagged array like a tagged
//     structure ("node_endpoints<tag: 0> => { ... }", no brackets), so the
//     entries below say which tagged fields are arrays;
//   - defaults: the value a field has in the versions that do not carry it,
//     which no guide prints.
//
// The facts come from Kafka's message definitions (clients/src/main/
// resources/common/message/*.json in the Apache Kafka source):
// "nullableVersions", "taggedVersions" and "default". Only what the client
// uses is listed; any other tagged field still decodes, into the structure's
// UnknownTags, and re-encodes unchanged. Decoding accepts null for every
// array whatever this says; the list matters when encoding, where a nil slice
// is written as null only for a nullable field (and as an empty array
// otherwise).
//
// An entry that the guides state (a nullable or tagged entry that reaches a
// version in Kafka 4's notation, a tagged array the BNF already brackets) is
// an error, and so is one that contradicts them: the overlay holds only what
// the guides do not say.
//
// Defaults: Go's zero value is the default of most fields; the others are
// listed here, so that decoding a version without the field gives the value
// Kafka means (PreferredReadReplica -1, "no preferred replica", rather than 0,
// "node 0"). Only fields that some version of their structure lacks are
// listed: a field every version carries always has the decoded value. Tagged
// fields are pointers, nil when absent, and strings and nullable values
// default to "" and nil, so neither appears.

type overlay struct {
	nullable     []nullableField
	tagged       []taggedField
	taggedArrays []taggedArray
	defaults     []fieldDefault
	routes       []route // where requests go (routing.go)
}

// nullableField marks the field at path (dot-separated spec names) of msg
// ("Api Request" or "Api Response") nullable in versions from..to (to -1:
// through the newest).
type nullableField struct {
	msg, path string
	from, to  int
}

// taggedField adds a tagged field to the structure at path ("" for the top
// level) of msg, in versions from on. bnf defines the field as the guide
// would: its first line is "name => ..." and the lines after it, indented,
// define its parts. array makes the field an array of that definition.
type taggedField struct {
	msg, path string
	tag, from int
	array     bool
	bnf       string
	doc       string
}

// taggedArray says that the tagged field at path of msg, which Kafka 4's
// BNF writes as a structure, is an array of that structure.
type taggedArray struct {
	msg, path string
}

// fieldDefault gives the primitive field at path of msg the value, a Go
// literal ("-1", "0x7fffffff", "true"), in the versions of its structure that
// lack it. Decoding such a version sets the field to the value; encoding never
// writes it.
type fieldDefault struct {
	msg, path, value string
}

func defaultOverlay() *overlay {
	return &overlay{
		routes: defaultRoutes(),
		// Versions only Kafka 3.9's guide lists (below 4.x's oldest).
		nullable: []nullableField{
			{"DescribeConfigs Request", "resources.configuration_keys", 0, 0},
			{"DescribeLogDirs Request", "topics", 0, 0},
			{"DescribeDelegationToken Request", "owners", 0, 0},
			{"ShareGroupHeartbeat Request", "subscribed_topic_names", 0, 0},
			{"ShareGroupHeartbeat Response", "assignment", 0, 0},
		},
		taggedArrays: []taggedArray{
			{"Produce Response", "node_endpoints"},
			{"Fetch Response", "node_endpoints"},
			{"ApiVersions Response", "supported_features"},
			{"ApiVersions Response", "finalized_features"},
		},
		defaults: []fieldDefault{
			{"Produce Response", "responses.partition_responses.log_append_time_ms", "-1"},
			{"Produce Response", "responses.partition_responses.log_start_offset", "-1"},
			{"Fetch Request", "replica_id", "-1"}, // v15+ carry it in the tagged replica_state
			{"Fetch Request", "max_bytes", "0x7fffffff"},
			{"Fetch Request", "session_epoch", "-1"},
			{"Fetch Request", "topics.partitions.current_leader_epoch", "-1"},
			{"Fetch Request", "topics.partitions.last_fetched_epoch", "-1"},
			{"Fetch Request", "topics.partitions.log_start_offset", "-1"},
			{"Fetch Response", "responses.partitions.last_stable_offset", "-1"},
			{"Fetch Response", "responses.partitions.log_start_offset", "-1"},
			{"Fetch Response", "responses.partitions.preferred_read_replica", "-1"},
			{"ListOffsets Request", "topics.partitions.current_leader_epoch", "-1"},
			{"ListOffsets Request", "topics.partitions.max_num_offsets", "1"},
			{"ListOffsets Response", "topics.partitions.timestamp", "-1"},
			{"ListOffsets Response", "topics.partitions.offset", "-1"},
			{"ListOffsets Response", "topics.partitions.leader_epoch", "-1"},
			{"Metadata Request", "allow_auto_topic_creation", "true"},
			{"Metadata Response", "controller_id", "-1"},
			{"Metadata Response", "topics.partitions.leader_epoch", "-1"},
			{"Metadata Response", "topics.topic_authorized_operations", "-2147483648"},
			{"Metadata Response", "cluster_authorized_operations", "-2147483648"},
			{"LeaderAndIsr Request", "broker_epoch", "-1"},
			{"StopReplica Request", "broker_epoch", "-1"},
			{"UpdateMetadata Request", "broker_epoch", "-1"},
			{"ControlledShutdown Request", "broker_epoch", "-1"},
			{"OffsetCommit Request", "generation_id_or_member_epoch", "-1"},
			{"OffsetCommit Request", "retention_time_ms", "-1"},
			{"OffsetCommit Request", "topics.partitions.committed_leader_epoch", "-1"},
			{"OffsetCommit Request", "topics.partitions.commit_timestamp", "-1"},
			{"OffsetFetch Request", "groups.member_epoch", "-1"},
			{"OffsetFetch Response", "topics.partitions.committed_leader_epoch", "-1"},
			{"JoinGroup Request", "rebalance_timeout_ms", "-1"},
			{"DescribeGroups Response", "groups.authorized_operations", "-2147483648"},
			{"CreateTopics Response", "topics.num_partitions", "-1"},
			{"CreateTopics Response", "topics.replication_factor", "-1"},
			{"InitProducerId Request", "producer_id", "-1"},
			{"InitProducerId Request", "producer_epoch", "-1"},
			{"OffsetForLeaderEpoch Request", "replica_id", "-2"}, // -2: a debugging consumer
			{"OffsetForLeaderEpoch Request", "topics.partitions.current_leader_epoch", "-1"},
			{"OffsetForLeaderEpoch Response", "topics.partitions.leader_epoch", "-1"},
			{"TxnOffsetCommit Request", "generation_id_or_member_epoch", "-1"},
			{"TxnOffsetCommit Request", "topics.partitions.committed_leader_epoch", "-1"},
			{"DescribeAcls Request", "pattern_type_filter", "3"}, // 3: LITERAL
			{"DescribeAcls Response", "resources.pattern_type", "3"},
			{"CreateAcls Request", "creations.resource_pattern_type", "3"},
			{"DeleteAcls Request", "filters.pattern_type_filter", "3"},
			{"DeleteAcls Response", "filter_results.matching_acls.pattern_type", "3"},
			{"DescribeConfigs Response", "results.configs.config_source", "-1"},
			{"DescribeLogDirs Response", "results.total_bytes", "-1"},
			{"DescribeLogDirs Response", "results.usable_bytes", "-1"},
			{"DescribeQuorum Response", "topics.partitions.current_voters.last_fetch_timestamp", "-1"},
			{"DescribeQuorum Response", "topics.partitions.current_voters.last_caught_up_timestamp", "-1"},
			{"DescribeQuorum Response", "topics.partitions.observers.last_fetch_timestamp", "-1"},
			{"DescribeQuorum Response", "topics.partitions.observers.last_caught_up_timestamp", "-1"},
			{"UpdateFeatures Request", "feature_updates.upgrade_type", "1"}, // 1: upgrade only
			{"DescribeCluster Request", "endpoint_type", "1"},               // 1: brokers
			{"DescribeCluster Response", "endpoint_type", "1"},
			{"ListTransactions Request", "duration_filter", "-1"},
		},
	}
}

// findField walks path from st.
func findField(st *structType, path string) (*field, error) {
	_, f, err := findFieldIn(st, path)
	return f, err
}

// findFieldIn walks path from st and returns the field with the structure
// that holds it.
func findFieldIn(st *structType, path string) (*structType, *field, error) {
	var f *field
	var parent *structType
	for _, name := range strings.Split(path, ".") {
		f = nil
		parent = st
		if st != nil {
			for _, c := range st.fields {
				if c.name == name {
					f = c
					break
				}
			}
		}
		if f == nil {
			return nil, nil, fmt.Errorf("no field %q", name)
		}
		st = f.st
	}
	return parent, f, nil
}

func (ov *overlay) apply(msgs map[string]*message) error {
	for _, n := range ov.nullable {
		m := msgs[n.msg]
		if m == nil {
			return fmt.Errorf("overlay: no message %q", n.msg)
		}
		f, err := findField(m.root, n.path)
		if err != nil {
			return fmt.Errorf("overlay: %s %s: %w", n.msg, n.path, err)
		}
		if f.kind == kindPrim {
			return fmt.Errorf("overlay: %s %s is neither an array nor a structure", n.msg, n.path)
		}
		to := n.to
		if to < 0 {
			to = m.versions.max()
		}
		vs := versionsFrom(n.from, to) & f.versions
		if e := vs & m.explicit; e != 0 {
			max := m.versions.max()
			if f.nullable&e == e {
				return fmt.Errorf("overlay: %s %s: the guide states it nullable in versions %s: narrow the entry to the others or drop it", n.msg, n.path, vrange(e, max))
			}
			return fmt.Errorf("overlay: %s %s: contradicts the guide, which says versions %s are not nullable", n.msg, n.path, vrange(e&^f.nullable, max))
		}
		f.nullable |= vs
	}
	for _, ta := range ov.taggedArrays {
		m := msgs[ta.msg]
		if m == nil {
			return fmt.Errorf("overlay: no message %q", ta.msg)
		}
		f, err := findField(m.root, ta.path)
		if err != nil {
			return fmt.Errorf("overlay: %s %s: %w", ta.msg, ta.path, err)
		}
		switch {
		case f.tag < 0:
			return fmt.Errorf("overlay: %s %s: contradicts the guide, which has no tagged field there", ta.msg, ta.path)
		case f.kind == kindArray:
			return fmt.Errorf("overlay: %s %s: the guide states the array: drop the entry", ta.msg, ta.path)
		case f.kind != kindStruct || f.nullable != 0:
			return fmt.Errorf("overlay: %s %s: contradicts the guide, which has no (non-nullable) structure there", ta.msg, ta.path)
		}
		f.kind = kindArray
	}
	for _, t := range ov.tagged {
		m := msgs[t.msg]
		if m == nil {
			return fmt.Errorf("overlay: no message %q", t.msg)
		}
		st := m.root
		if t.path != "" {
			f, err := findField(m.root, t.path)
			if err != nil || f.st == nil {
				return fmt.Errorf("overlay: %s: no structure at %q", t.msg, t.path)
			}
			st = f.st
		}
		lines := strings.Split(t.bnf, "\n")
		name, _, _ := strings.Cut(lines[0], "=>")
		name = strings.TrimSpace(name)
		tok := name
		if t.array {
			tok = "[" + name + "]"
		}
		bs, err := parseBNF([]string{tok, "TAG_BUFFER"}, lines)
		if err != nil {
			return fmt.Errorf("overlay: %s %s: %w", t.msg, name, err)
		}
		if e := versionsFrom(t.from, m.versions.max()) & m.explicit; e != 0 {
			for _, o := range st.fields {
				if o.name == name && o.tag == t.tag && o.versions&e == e {
					return fmt.Errorf("overlay: %s %s: the guide states the tagged field in versions %s: drop the entry", t.msg, name, vrange(e, m.versions.max()))
				}
			}
			return fmt.Errorf("overlay: %s %s: contradicts the guide, which has no tagged field %s with tag %d in versions %s", t.msg, name, name, t.tag, vrange(e, m.versions.max()))
		}
		holder := &structType{}
		for v := t.from; v <= m.versions.max(); v++ {
			if !st.versions.has(v) || !m.flexible.has(v) {
				return fmt.Errorf("overlay: %s %s: version %d is not a flexible version of the structure", t.msg, name, v)
			}
			if err := mergeStruct(holder, bs, v, true, t.msg+" overlay"); err != nil {
				return err
			}
		}
		f := holder.fields[0]
		f.tag = t.tag
		f.doc = t.doc
		for _, o := range st.fields {
			if o.tag == t.tag && o.versions&f.versions != 0 {
				return fmt.Errorf("overlay: %s %s: tag %d used twice", t.msg, name, t.tag)
			}
		}
		st.fields = append(st.fields, f)
	}
	for _, d := range ov.defaults {
		m := msgs[d.msg]
		if m == nil {
			return fmt.Errorf("overlay: no message %q", d.msg)
		}
		st, f, err := findFieldIn(m.root, d.path)
		if err != nil {
			return fmt.Errorf("overlay: %s %s: %w", d.msg, d.path, err)
		}
		if err := checkDefault(f, d.value); err != nil {
			return fmt.Errorf("overlay: %s %s: %w", d.msg, d.path, err)
		}
		if st.versions&^f.versions == 0 {
			return fmt.Errorf("overlay: %s %s: every version carries the field, a default changes nothing", d.msg, d.path)
		}
		if f.def != "" {
			return fmt.Errorf("overlay: %s %s: two defaults", d.msg, d.path)
		}
		f.def = d.value
	}
	return nil
}

// checkDefault makes sure value is a non-zero Go literal of f's type.
func checkDefault(f *field, value string) error {
	if f.kind != kindPrim || f.tag >= 0 {
		return fmt.Errorf("a default needs a primitive field that is not tagged")
	}
	var err error
	zero := false
	switch f.prim {
	case "BOOLEAN":
		zero = value == "false"
		if value != "true" && !zero {
			err = strconv.ErrSyntax
		}
	case "INT8", "INT16", "INT32", "INT64":
		var n int64
		n, err = strconv.ParseInt(value, 0, primBits[f.prim])
		zero = n == 0
	case "UINT16", "UINT32":
		var n uint64
		n, err = strconv.ParseUint(value, 0, primBits[f.prim])
		zero = n == 0
	case "FLOAT64":
		var x float64
		x, err = strconv.ParseFloat(value, 64)
		zero = x == 0
	default:
		return fmt.Errorf("no defaults for %s fields", f.prim)
	}
	if err != nil {
		return fmt.Errorf("default %q is not a %s: %w", value, f.prim, err)
	}
	if zero {
		return fmt.Errorf("default %q is the zero value, which needs no entry", value)
	}
	return nil
}

var primBits = map[string]int{"INT8": 8, "INT16": 16, "INT32": 32, "INT64": 64, "UINT16": 16, "UINT32": 32}
