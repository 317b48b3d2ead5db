package main

import (
	"fmt"
	"strconv"
	"strings"
)

// The overlay: what the protocol guide's HTML does not say but a client
// needs. The HTML's BNF shows a flexible version's tagged fields only as
// TAG_BUFFER, and it does not mark which arrays (and structures) may be null.
// Both come from Kafka's message definitions (clients/src/main/resources/
// common/message/*.json in the Apache Kafka source): "taggedVersions" and
// "nullableVersions". Only what the client uses is listed; any other tagged
// field still decodes, into the structure's UnknownTags, and re-encodes
// unchanged. Decoding accepts null for every array whatever this says; the
// list matters when encoding, where a nil slice is written as null only for
// a nullable field (and as an empty array otherwise).
//
// The message definitions also give fields a "default": the value a field
// has in the versions that do not carry it. Go's zero value is the default of
// most fields; the others are listed here, so that decoding a version without
// the field gives the value Kafka means (PreferredReadReplica -1, "no
// preferred replica", rather than 0, "node 0"). Only fields that some version
// of their structure lacks are listed: a field every version carries always
// has the decoded value. Tagged fields are pointers, nil when absent, and
// strings and nullable values default to "" and nil, so neither appears.

type overlay struct {
	nullable []nullableField
	tagged   []taggedField
	defaults []fieldDefault
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

// fieldDefault gives the primitive field at path of msg the value, a Go
// literal ("-1", "0x7fffffff", "true"), in the versions of its structure that
// lack it. Decoding such a version sets the field to the value; encoding never
// writes it.
type fieldDefault struct {
	msg, path, value string
}

const (
	leaderIDEpoch = `current_leader => leader_id leader_epoch TAG_BUFFER
  leader_id => INT32
  leader_epoch => INT32`
	nodeEndpoints = `node_endpoints => node_id host port rack TAG_BUFFER
  node_id => INT32
  host => COMPACT_STRING
  port => INT32
  rack => COMPACT_NULLABLE_STRING`
)

func defaultOverlay() *overlay {
	return &overlay{
		nullable: []nullableField{
			{"Metadata Request", "topics", 1, -1}, // null: every topic
			{"Fetch Response", "responses.partitions.aborted_transactions", 4, -1},
			{"OffsetFetch Request", "topics", 2, 7}, // null: every committed partition
			{"OffsetFetch Request", "groups.topics", 8, -1},
			{"DescribeConfigs Request", "resources.configuration_keys", 0, -1},
			{"CreateTopics Response", "topics.configs", 5, -1},
			{"CreatePartitions Request", "topics.assignments", 0, -1}, // null: the broker places the new partitions
			{"AlterPartitionReassignments Request", "topics.partitions.replicas", 0, -1},
			{"ListPartitionReassignments Request", "topics", 0, -1},
			{"ElectLeaders Request", "topic_partitions", 0, -1},
			{"DescribeLogDirs Request", "topics", 0, -1},
			{"DescribeDelegationToken Request", "owners", 0, -1},
			{"DescribeUserScramCredentials Request", "users", 0, -1},
			{"DescribeClientQuotas Response", "entries", 0, -1},
			{"ConsumerGroupHeartbeat Request", "subscribed_topic_names", 0, -1},
			{"ConsumerGroupHeartbeat Request", "topic_partitions", 0, -1},
			{"ConsumerGroupHeartbeat Response", "assignment", 0, -1},
			{"ShareGroupHeartbeat Request", "subscribed_topic_names", 0, -1},
			{"ShareGroupHeartbeat Response", "assignment", 0, -1},
			{"DescribeTopicPartitions Request", "cursor", 0, -1},
			{"DescribeTopicPartitions Response", "next_cursor", 0, -1},
		},
		tagged: []taggedField{
			// KIP-951: leader hints so a client can move to a new leader without a metadata round trip.
			{msg: "Produce Response", path: "responses.partition_responses", tag: 0, from: 10, bnf: leaderIDEpoch,
				doc: "The leader broker that the producer should use for future requests (KIP-951)."},
			{msg: "Produce Response", path: "", tag: 0, from: 10, array: true, bnf: nodeEndpoints,
				doc: "Endpoints for all current leaders enumerated in PartitionProduceResponses, with errors NOT_LEADER_OR_FOLLOWER (KIP-951)."},
			{msg: "Fetch Response", path: "", tag: 0, from: 16, array: true, bnf: nodeEndpoints,
				doc: "Endpoints for all current leaders enumerated in PartitionData, with errors NOT_LEADER_OR_FOLLOWER (KIP-951)."},
			// KIP-320: the divergence point after a leader epoch change (log truncation).
			{msg: "Fetch Response", path: "responses.partitions", tag: 0, from: 12, bnf: `diverging_epoch => epoch end_offset TAG_BUFFER
  epoch => INT32
  end_offset => INT64`,
				doc: "In case divergence is detected based on the LastFetchedEpoch and FetchOffset in the request, this field indicates the largest epoch and its end offset such that subsequent records are known to diverge (KIP-320)."},
			{msg: "Fetch Response", path: "responses.partitions", tag: 1, from: 12, bnf: leaderIDEpoch,
				doc: "The current leader of the partition, when the request failed with NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH (KIP-951)."},
			{msg: "Fetch Response", path: "responses.partitions", tag: 2, from: 12, bnf: `snapshot_id => end_offset epoch TAG_BUFFER
  end_offset => INT64
  epoch => INT32`,
				doc: "In the case of fetching an offset less than the LogStartOffset, this is the end offset and epoch that should be used in the FetchSnapshot request."},
			{msg: "Fetch Request", path: "", tag: 0, from: 12, bnf: `cluster_id => COMPACT_NULLABLE_STRING`,
				doc: "The clusterId if known. This is used to validate metadata fetches prior to broker registration."},
			{msg: "Fetch Request", path: "", tag: 1, from: 15, bnf: `replica_state => replica_id replica_epoch TAG_BUFFER
  replica_id => INT32
  replica_epoch => INT64`,
				doc: "The state of the replica in the follower (brokers only)."},
			{msg: "Fetch Request", path: "topics.partitions", tag: 0, from: 17, bnf: `replica_directory_id => UUID`,
				doc: "The directory id of the follower fetching (brokers only)."},
			// KIP-584: feature versions.
			{msg: "ApiVersions Response", path: "", tag: 0, from: 3, array: true, bnf: `supported_features => name min_version max_version TAG_BUFFER
  name => COMPACT_STRING
  min_version => INT16
  max_version => INT16`,
				doc: "Features supported by the broker."},
			{msg: "ApiVersions Response", path: "", tag: 1, from: 3, bnf: `finalized_features_epoch => INT64`,
				doc: "The monotonically increasing epoch for the finalized features information. Absent means unknown (-1)."},
			{msg: "ApiVersions Response", path: "", tag: 2, from: 3, array: true, bnf: `finalized_features => name max_version_level min_version_level TAG_BUFFER
  name => COMPACT_STRING
  max_version_level => INT16
  min_version_level => INT16`,
				doc: "List of cluster-wide finalized features. The information is valid only if FinalizedFeaturesEpoch is set."},
			{msg: "ApiVersions Response", path: "", tag: 3, from: 3, bnf: `zk_migration_ready => BOOLEAN`,
				doc: "Set by a KRaft controller if the required configurations for ZK migration are present."},
			{msg: "CreateTopics Response", path: "topics", tag: 0, from: 5, bnf: `topic_config_error_code => INT16`,
				doc: "Optional topic config error returned if configs are not returned in the response."},
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
			{"TxnOffsetCommit Request", "generation_id", "-1"},
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
		f.nullable |= versionsFrom(n.from, to) & f.versions
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
