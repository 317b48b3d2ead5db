package main

import (
	"fmt"
	"strings"
	"testing"
)

// modelString writes a merged structure one field a line: Go name, kind and
// type, versions, nullable versions, tag and default, nested structures
// indented.
func modelString(st *structType, max int, indent string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s%s min=%d\n", indent, st.goName, st.minSize)
	for _, f := range st.fields {
		typ := f.prim
		switch {
		case f.kind == kindArray && f.st != nil:
			typ = "[]" + f.st.goName
		case f.kind == kindArray:
			typ = "[]" + f.prim
		case f.kind == kindStruct:
			typ = f.st.goName
		}
		fmt.Fprintf(&b, "%s  %s %s v%s", indent, f.goName, typ, vrange(f.versions, max))
		if f.nullable != 0 {
			fmt.Fprintf(&b, " null=%s", vrange(f.nullable, max))
		}
		if f.tag >= 0 {
			fmt.Fprintf(&b, " tag=%d", f.tag)
		}
		if f.def != "" {
			fmt.Fprintf(&b, " default=%s", f.def)
		}
		b.WriteByte('\n')
		if f.st != nil {
			b.WriteString(modelString(f.st, max, indent+"    "))
		}
	}
	return b.String()
}

// fixtureOverlay is what the golden test generates with: the default
// overlay's entries for the fixture APIs (ApiVersions' tagged fields,
// DescribeGroups' default authorized operations), one nullable array and one
// boolean default.
func fixtureOverlay() *overlay {
	def := defaultOverlay()
	ov := &overlay{
		nullable: []nullableField{{"DescribeGroups Request", "groups", 0, -1}},
		// Not in the default overlay: Kafka's default is false.
		defaults: []fieldDefault{{"DescribeGroups Request", "include_authorized_operations", "true"}},
		routes:   []route{{api: "DescribeGroups", kind: "group", keys: []string{"groups"}}},
	}
	// The fixtures are in Kafka 3.9's notation, which does not show tagged
	// fields; Kafka 4's guide states these, so the default overlay no
	// longer lists them.
	ov.tagged = []taggedField{
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
	}
	for _, d := range def.defaults {
		if strings.HasPrefix(d.msg, "ApiVersions ") || strings.HasPrefix(d.msg, "DescribeGroups ") || strings.HasPrefix(d.msg, "SaslHandshake ") {
			ov.defaults = append(ov.defaults, d)
		}
	}
	return ov
}

func fixtureMessages(t *testing.T, ov *overlay) []*message {
	t.Helper()
	sp, err := parseSpec(fixtureSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := buildMessages(sp, ov)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkComplete(sp, msgs); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// TestBuildMessagesFixture checks the merged model of the fixture APIs: one
// type per structure, fields with the versions that carry them, nullable
// versions, overlay tags, names of nested structures and minimum sizes.
func TestBuildMessagesFixture(t *testing.T) {
	msgs := fixtureMessages(t, fixtureOverlay())
	want := []struct{ name, versions, flexible, model string }{
		{"DescribeGroupsRequest", "0+", "5+", `
DescribeGroupsRequest min=3
  Groups []STRING v0+ null=0+
  IncludeAuthorizedOperations BOOLEAN v3+ default=true
`},
		{"DescribeGroupsResponse", "0+", "5+", `
DescribeGroupsResponse min=4
  ThrottleTimeMs INT32 v1+
  Groups []DescribeGroupsResponseGroup v0+
    DescribeGroupsResponseGroup min=12
      ErrorCode INT16 v0+
      GroupID STRING v0+
      GroupState STRING v0+
      ProtocolType STRING v0+
      ProtocolData STRING v0+
      Members []DescribeGroupsResponseGroupMember v0+
        DescribeGroupsResponseGroupMember min=7
          MemberID STRING v0+
          GroupInstanceID STRING v4+ null=4+
          ClientID STRING v0+
          ClientHost STRING v0+
          MemberMetadata BYTES v0+
          MemberAssignment BYTES v0+
      AuthorizedOperations INT32 v3+ default=-2147483648
`},
		{"SaslHandshakeRequest", "0+", "", `
SaslHandshakeRequest min=2
  Mechanism STRING v0+
`},
		{"SaslHandshakeResponse", "0+", "", `
SaslHandshakeResponse min=6
  ErrorCode INT16 v0+
  Mechanisms []STRING v0+
`},
		{"ApiVersionsRequest", "0+", "3+", `
ApiVersionsRequest min=0
  ClientSoftwareName STRING v3+
  ClientSoftwareVersion STRING v3+
`},
		{"ApiVersionsResponse", "0+", "3+", `
ApiVersionsResponse min=6
  ErrorCode INT16 v0+
  ApiKeys []ApiVersionsResponseApiKey v0+
    ApiVersionsResponseApiKey min=6
      ApiKey INT16 v0+
      MinVersion INT16 v0+
      MaxVersion INT16 v0+
  ThrottleTimeMs INT32 v1+
  SupportedFeatures []ApiVersionsResponseSupportedFeature v3+ tag=0
    ApiVersionsResponseSupportedFeature min=6
      Name STRING v3+
      MinVersion INT16 v3+
      MaxVersion INT16 v3+
  FinalizedFeaturesEpoch INT64 v3+ tag=1
  FinalizedFeatures []ApiVersionsResponseFinalizedFeature v3+ tag=2
    ApiVersionsResponseFinalizedFeature min=6
      Name STRING v3+
      MaxVersionLevel INT16 v3+
      MinVersionLevel INT16 v3+
  ZkMigrationReady BOOLEAN v3+ tag=3
`},
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d", len(msgs), len(want))
	}
	for i, w := range want {
		m := msgs[i]
		max := m.versions.max()
		if m.goName() != w.name || vrange(m.versions, max) != w.versions || vrange(m.flexible, max) != w.flexible {
			t.Errorf("message %d: %s versions %s flexible %q; want %s %s %q", i, m.goName(),
				vrange(m.versions, max), vrange(m.flexible, max), w.name, w.versions, w.flexible)
		}
		if got := modelString(m.root, max, ""); got != w.model[1:] {
			t.Errorf("%s model:\n%s\nwant:\n%s", w.name, got, w.model[1:])
		}
	}
}

// TestBuildMessagesErrors: BNFs that cannot be merged into one type per
// structure are refused with the reason.
func TestBuildMessagesErrors(t *testing.T) {
	tests := []struct {
		name string
		pres []string
		want string
	}{
		{"version twice", []string{"X Request (Version: 0) => a\n  a => INT8", "X Request (Version: 0) => a\n  a => INT8"},
			"X Request v0 is listed twice"},
		{"versions not contiguous", []string{"X Request (Version: 0) => a\n  a => INT8", "X Request (Version: 2) => a\n  a => INT8"},
			"versions are not contiguous"},
		{"flexible versions not a tail", []string{"X Request (Version: 0) => a TAG_BUFFER\n  a => INT8", "X Request (Version: 1) => a\n  a => INT8"},
			"flexible versions are not a tail"},
		{"field order differs", []string{"X Request (Version: 0) => a b\n  a => INT8\n  b => INT8", "X Request (Version: 1) => b a\n  b => INT8\n  a => INT8"},
			"field order differs between versions"},
		{"type changes", []string{"X Request (Version: 0) => a\n  a => INT8", "X Request (Version: 1) => a\n  a => INT16"},
			"type changes from INT8 to INT16"},
		{"primitive becomes an array", []string{"X Request (Version: 0) => a\n  a => INT8", "X Request (Version: 1) => [a]\n  a => INT8"},
			"changes kind between versions"},
		{"structure becomes an array", []string{"X Request (Version: 0) => a\n  a => b\n    b => INT8", "X Request (Version: 1) => [a]\n  a => b\n    b => INT8"},
			"changes kind between versions"},
		{"compact string in an old version", []string{"X Request (Version: 0) => a\n  a => COMPACT_STRING"},
			"COMPACT_STRING in a version that is not flexible"},
		{"plain string in a flexible version", []string{"X Request (Version: 0) => a TAG_BUFFER\n  a => STRING"},
			"STRING in a version that is flexible"},
		{"array of nullable strings", []string{"X Request (Version: 0) => [a]\n  a => NULLABLE_STRING"},
			"arrays of nullable values are not supported"},
		{"nested structure without tags", []string{"X Request (Version: 0) => [a] TAG_BUFFER\n  a => b\n    b => INT8"},
			"tagged-field buffer does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, body, _ := strings.Cut(section("X", 99, tt.pres...), "</a></h5>")
			sms, err := parseAPISection("X", 99, body)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := buildMessages(&spec{messages: sms}, &overlay{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if msgs != nil {
				t.Errorf("messages came with the error")
			}
		})
	}
}

// TestCheckComplete: every API of the key table needs a request and a
// response with the same versions.
func TestCheckComplete(t *testing.T) {
	req := "X Request (Version: 0) => a\n  a => INT8"
	resp := "X Response (Version: 0) => a\n  a => INT8"
	resp1 := "X Response (Version: 1) => a\n  a => INT8"
	tests := []struct {
		name string
		key  int
		pres []string
		want string
	}{
		{"complete", 99, []string{req, resp}, ""},
		{"no response", 99, []string{req}, "API X (key 99) lacks its request or response BNF"},
		{"versions differ", 99, []string{req, resp, resp1}, "request versions 0, response versions 0-1"},
		{"key differs", 98, []string{req, resp}, "key 99 in the table, 98 in its section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, body, _ := strings.Cut(section("X", tt.key, tt.pres...), "</a></h5>")
			sms, err := parseAPISection("X", tt.key, body)
			if err != nil {
				t.Fatal(err)
			}
			sp := &spec{apis: []specAPI{{"X", 99}}, messages: sms}
			msgs, err := buildMessages(sp, &overlay{})
			if err != nil {
				t.Fatal(err)
			}
			err = checkComplete(sp, msgs)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ fn, in, want string }{
		{"goName", "throttle_time_ms", "ThrottleTimeMs"},
		{"goName", "group_id", "GroupID"},
		{"goName", "topic_ids", "TopicIDs"},
		{"goName", "isr_nodes", "ISRNodes"},
		{"goName", "incarnation_uuid", "IncarnationUUID"},
		{"goName", "_a__b", "AB"},
		{"singular", "Topics", "Topic"},
		{"singular", "Entries", "Entry"},
		{"singular", "Addresses", "Addresses"},
		{"singular", "Prefixes", "Prefixes"},
		{"singular", "PartitionStatus", "PartitionStatus"},
		{"singular", "Progress", "Progress"},
		{"singular", "Data", "Data"},
		{"camel", "UNKNOWN_TOPIC_OR_PARTITION", "UnknownTopicOrPartition"},
		{"camel", "NONE", "None"},
	}
	fns := map[string]func(string) string{"goName": goName, "singular": singular, "camel": camel}
	for _, tt := range tests {
		if got := fns[tt.fn](tt.in); got != tt.want {
			t.Errorf("%s(%q) = %q, want %q", tt.fn, tt.in, got, tt.want)
		}
	}
}

func TestVersionSets(t *testing.T) {
	tests := []struct {
		s, universe vset
		max         int
		vrange      string
		cond        string
	}{
		{versionsFrom(0, 5), versionsFrom(0, 5), 5, "0+", ""},
		{versionsFrom(3, 5), versionsFrom(0, 5), 5, "3+", "v >= 3"},
		{versionsFrom(0, 2), versionsFrom(0, 5), 5, "0-2", "v <= 2"},
		{1 << 4, versionsFrom(0, 9), 9, "4", "v == 4"},
		{versionsFrom(2, 4) | versionsFrom(7, 9), versionsFrom(0, 9), 9, "2-4,7+", "v >= 2 && v <= 4 || v >= 7"},
		{versionsFrom(4, 9), versionsFrom(4, 9), 9, "4+", ""},
		{versionsFrom(0, 3), versionsFrom(4, 9), 9, "0-3", "false"},
		{versionsFrom(0, 6), versionsFrom(4, 9), 9, "0-6", "v <= 6"},
	}
	for _, tt := range tests {
		if got := vrange(tt.s, tt.max); got != tt.vrange {
			t.Errorf("vrange(%b, %d) = %q, want %q", tt.s, tt.max, got, tt.vrange)
		}
		if got := cond(tt.s, tt.universe); got != tt.cond {
			t.Errorf("cond(%b, %b) = %q, want %q", tt.s, tt.universe, got, tt.cond)
		}
	}
	if s := versionsFrom(2, 7); s.min() != 2 || s.max() != 7 || !s.has(5) || s.has(8) {
		t.Errorf("versionsFrom(2, 7) = %b", s)
	}
}
