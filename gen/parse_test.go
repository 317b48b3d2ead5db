package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The fixtures under testdata are excerpts of the Kafka 3.9 protocol guide
// (testdata/README.md says which lines): the error code and API key tables cut
// down to a few rows, and the whole sections of three APIs.
const (
	fixtureErrors   = "errors.html"          // 8 rows of the error code table
	fixtureAPIKeys  = "apikeys.html"         // the rows of the three APIs below
	fixtureSasl     = "sasl_handshake.html"  // never flexible
	fixtureGroups   = "describe_groups.html" // flexible from v5, arrays of structures in arrays
	fixtureVersions = "api_versions.html"    // flexible from v3, tagged fields in the overlay
)

func readFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fixtureSpec is a small protocol guide made of the fixtures: both tables and
// the sections of the three APIs.
func fixtureSpec(t testing.TB) string {
	var b strings.Builder
	for _, n := range []string{fixtureErrors, fixtureAPIKeys, fixtureGroups, fixtureSasl, fixtureVersions} {
		b.WriteString(readFixture(t, n))
	}
	return b.String()
}

// bnfString writes a parsed BNF structure compactly: "name:PRIM",
// "[name]:PRIM" for arrays of primitives, "name{...}" / "[name]{...}" for
// structures, and "+tags" when a tagged-field buffer ends the structure.
func bnfString(st *bnfStruct) string {
	var parts []string
	for _, f := range st.fields {
		n := f.name
		if f.array {
			n = "[" + n + "]"
		}
		if f.sub != nil {
			n += "{" + bnfString(f.sub) + "}"
		} else {
			n += ":" + f.prim
		}
		parts = append(parts, n)
	}
	if st.hasTags {
		parts = append(parts, "+tags")
	}
	return strings.Join(parts, " ")
}

func TestParseErrorTable(t *testing.T) {
	got, err := parseErrorTable(readFixture(t, fixtureErrors))
	if err != nil {
		t.Fatal(err)
	}
	want := []specError{
		{"UNKNOWN_SERVER_ERROR", -1, false, "The server experienced an unexpected error when processing the request."},
		{"NONE", 0, false, ""},
		{"OFFSET_OUT_OF_RANGE", 1, false, "The requested offset is not within the range of offsets maintained by the server."},
		{"CORRUPT_MESSAGE", 2, true, "This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt."},
		{"UNKNOWN_TOPIC_OR_PARTITION", 3, true, "This server does not host this topic-partition."},
		{"INVALID_RECORD_STATE", 121, false, "The record state is invalid. The acknowledgement of delivery could not be completed."},
		{"SHARE_SESSION_NOT_FOUND", 122, true, "The share session was not found."},
		{"VOTER_NOT_FOUND", 127, false, "The voter is not part of the set of voters."},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(specError{})); d != "" {
		t.Errorf("error table (-want +got):\n%s", d)
	}
}

func TestParseAPITable(t *testing.T) {
	got, err := parseAPITable(readFixture(t, fixtureAPIKeys))
	if err != nil {
		t.Fatal(err)
	}
	want := []specAPI{{"DescribeGroups", 15}, {"SaslHandshake", 17}, {"ApiVersions", 18}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(specAPI{})); d != "" {
		t.Errorf("API key table (-want +got):\n%s", d)
	}
}

// TestParseSection checks the BNF model of chosen versions of the fixture
// APIs, and the field descriptions that follow each BNF.
func TestParseSection(t *testing.T) {
	sections := map[string][]*specMessage{}
	for _, fx := range []struct {
		file, api string
		key       int
	}{{fixtureSasl, "SaslHandshake", 17}, {fixtureGroups, "DescribeGroups", 15}, {fixtureVersions, "ApiVersions", 18}} {
		doc := readFixture(t, fx.file)
		_, body, ok := strings.Cut(doc, "</a></h5>")
		if !ok {
			t.Fatalf("%s: no section heading", fx.file)
		}
		msgs, err := parseAPISection(fx.api, fx.key, body)
		if err != nil {
			t.Fatalf("%s: %v", fx.file, err)
		}
		sections[fx.api] = msgs
	}
	counts := map[string]int{"SaslHandshake": 4, "DescribeGroups": 12, "ApiVersions": 10}
	for api, n := range counts {
		if got := len(sections[api]); got != n {
			t.Errorf("%s: %d BNFs, want %d", api, got, n)
		}
	}
	find := func(api, kind string, v int) *specMessage {
		for _, m := range sections[api] {
			if m.kind == kind && m.version == v {
				return m
			}
		}
		return nil
	}
	tests := []struct {
		api, kind string
		version   int
		bnf       string
		docs      int    // rows of the description table
		doc0      string // the first row, "name: description"
	}{
		{"SaslHandshake", "Request", 0, "mechanism:STRING", 1, "mechanism: The SASL mechanism chosen by the client."},
		{"SaslHandshake", "Response", 1, "error_code:INT16 [mechanisms]:STRING", 2, "error_code: The error code, or 0 if there was no error."},
		{"DescribeGroups", "Request", 3, "[groups]:STRING include_authorized_operations:BOOLEAN", 2, "groups: The names of the groups to describe"},
		{"DescribeGroups", "Request", 5, "[groups]:COMPACT_STRING include_authorized_operations:BOOLEAN +tags", 3, "groups: The names of the groups to describe"},
		{"DescribeGroups", "Response", 0,
			"[groups]{error_code:INT16 group_id:STRING group_state:STRING protocol_type:STRING protocol_data:STRING " +
				"[members]{member_id:STRING client_id:STRING client_host:STRING member_metadata:BYTES member_assignment:BYTES}}",
			12, "groups: Each described group."},
		{"DescribeGroups", "Response", 4,
			"throttle_time_ms:INT32 [groups]{error_code:INT16 group_id:STRING group_state:STRING protocol_type:STRING protocol_data:STRING " +
				"[members]{member_id:STRING group_instance_id:NULLABLE_STRING client_id:STRING client_host:STRING member_metadata:BYTES member_assignment:BYTES} " +
				"authorized_operations:INT32}",
			15, "throttle_time_ms: The duration in milliseconds for which the request was throttled due to a quota violation, or zero if the request did not violate any quota."},
		{"DescribeGroups", "Response", 5,
			"throttle_time_ms:INT32 [groups]{error_code:INT16 group_id:COMPACT_STRING group_state:COMPACT_STRING protocol_type:COMPACT_STRING protocol_data:COMPACT_STRING " +
				"[members]{member_id:COMPACT_STRING group_instance_id:COMPACT_NULLABLE_STRING client_id:COMPACT_STRING client_host:COMPACT_STRING member_metadata:COMPACT_BYTES member_assignment:COMPACT_BYTES +tags} " +
				"authorized_operations:INT32 +tags} +tags",
			18, "throttle_time_ms: The duration in milliseconds for which the request was throttled due to a quota violation, or zero if the request did not violate any quota."},
		{"ApiVersions", "Request", 0, "", 0, ""},
		{"ApiVersions", "Request", 3, "client_software_name:COMPACT_STRING client_software_version:COMPACT_STRING +tags", 3, "client_software_name: The name of the client."},
		{"ApiVersions", "Response", 3, "error_code:INT16 [api_keys]{api_key:INT16 min_version:INT16 max_version:INT16 +tags} throttle_time_ms:INT32 +tags", 8, "error_code: The top-level error code."},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s%s/v%d", tt.api, tt.kind, tt.version), func(t *testing.T) {
			m := find(tt.api, tt.kind, tt.version)
			if m == nil {
				t.Fatal("not parsed")
			}
			if got := bnfString(m.root); got != tt.bnf {
				t.Errorf("BNF\n got %s\nwant %s", got, tt.bnf)
			}
			if len(m.docs) != tt.docs {
				t.Errorf("%d description rows, want %d: %q", len(m.docs), tt.docs, m.docs)
			}
			if tt.docs > 0 {
				if got := m.docs[0].name + ": " + m.docs[0].desc; got != tt.doc0 {
					t.Errorf("first description %q, want %q", got, tt.doc0)
				}
			}
		})
	}
}

// TestParseSpecFixture parses the whole fixture guide: the tables, and every
// section's messages in document order with their API keys.
func TestParseSpecFixture(t *testing.T) {
	sp, err := parseSpec(fixtureSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.errors) != 8 || len(sp.apis) != 3 || len(sp.messages) != 26 {
		t.Fatalf("%d errors, %d APIs, %d messages; want 8, 3, 26", len(sp.errors), len(sp.apis), len(sp.messages))
	}
	for _, m := range sp.messages {
		want := map[string]int{"DescribeGroups": 15, "SaslHandshake": 17, "ApiVersions": 18}[m.api]
		if m.key != want {
			t.Errorf("%s %s v%d: key %d, want %d", m.api, m.kind, m.version, m.key, want)
		}
	}
}

// TestParseSpecSectionOnlyAPI: an API with a section but no row in the key
// table (3.9's share-group APIs) is taken from its section, in key order.
func TestParseSpecSectionOnlyAPI(t *testing.T) {
	keys := strings.Replace(readFixture(t, fixtureAPIKeys),
		`<td><a href="#The_Messages_SaslHandshake">SaslHandshake</a></td><td>17</td></tr>`, "", 1)
	doc := readFixture(t, fixtureErrors) + keys + readFixture(t, fixtureGroups) + readFixture(t, fixtureSasl) + readFixture(t, fixtureVersions)
	sp, err := parseSpec(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []specAPI{{"DescribeGroups", 15}, {"SaslHandshake", 17}, {"ApiVersions", 18}}
	if d := cmp.Diff(want, sp.apis, cmp.AllowUnexported(specAPI{})); d != "" {
		t.Errorf("APIs (-want +got):\n%s", d)
	}
}

// section writes an API section the way the guide does, with one BNF per
// entry of pres (each "Api Request (Version: N) => ..." plus its lines).
func section(api string, key int, pres ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<h5><a name=\"The_Messages_%s\">%s API (Key: %d):</a></h5>\n\n<b>Requests:</b><br>\n", api, api, key)
	for _, p := range pres {
		fmt.Fprintf(&b, "<div><pre>%s\n</pre><table class=\"data-table\"><tbody>\n<tr><th>Field</th>\n<th>Description</th>\n</tr></tbody></table>\n</div>\n", p)
	}
	return b.String()
}

// TestParseSpecErrors feeds broken guides: each gives an error naming the
// problem, never a panic and never a partial model.
func TestParseSpecErrors(t *testing.T) {
	errs := func(t *testing.T) string { return readFixture(t, fixtureErrors) }
	keys := func(t *testing.T) string { return readFixture(t, fixtureAPIKeys) }
	sasl := func(t *testing.T) string { return readFixture(t, fixtureSasl) }
	tests := []struct {
		name string
		doc  func(t *testing.T) string
		want string
	}{
		{"empty", func(t *testing.T) string { return "" }, `no section "protocol_error_codes"`},
		{"error table without table", func(t *testing.T) string {
			return `<a id="protocol_error_codes"></a>`
		}, "has no table"},
		{"empty error table", func(t *testing.T) string {
			return `<a id="protocol_error_codes"></a><table><tr><th>Error</th></tr></table>`
		}, "empty error table"},
		{"error row with 3 cells", func(t *testing.T) string {
			return `<a id="protocol_error_codes"></a><table><tr><td>NONE</td><td>0</td><td>False</td></tr></table>`
		}, "want 4 cells"},
		{"error code not a number", func(t *testing.T) string {
			return `<a id="protocol_error_codes"></a><table><tr><td>NONE</td><td>zero</td><td>False</td><td></td></tr></table>`
		}, `parsing "zero"`},
		{"no API key table", errs, `no section "protocol_api_keys"`},
		{"API key row with 3 cells", func(t *testing.T) string {
			return errs(t) + `<a id="protocol_api_keys"></a><table><tr><td>Produce</td><td>0</td><td>x</td></tr></table>`
		}, "want 2 cells"},
		{"API key not a number", func(t *testing.T) string {
			return errs(t) + `<a id="protocol_api_keys"></a><table><tr><td>Produce</td><td>-</td></tr></table>`
		}, `API key table row`},
		{"no sections", func(t *testing.T) string { return errs(t) + keys(t) }, "no API sections"},
		{"key differs from the table", func(t *testing.T) string {
			return errs(t) + keys(t) + strings.Replace(sasl(t), "(Key: 17)", "(Key: 71)", 1)
		}, "key 17 in the table, 71 in its section"},
		{"section without BNF", func(t *testing.T) string {
			return errs(t) + keys(t) + section("SaslHandshake", 17)
		}, "no BNF found"},
		{"BNF of another API", func(t *testing.T) string {
			return errs(t) + keys(t) + section("SaslHandshake", 17, "Heartbeat Request (Version: 0) => group_id\n  group_id => STRING")
		}, "inside the section of API SaslHandshake"},
		{"bad BNF header", func(t *testing.T) string {
			return errs(t) + keys(t) + section("SaslHandshake", 17, "SaslHandshake Request (Version 0) => mechanism\n  mechanism => STRING")
		}, "unexpected BNF header"},
		{"field without definition", func(t *testing.T) string {
			return errs(t) + keys(t) + section("SaslHandshake", 17, "SaslHandshake Request (Version: 0) => mechanism")
		}, `field "mechanism" has no definition line`},
		{"line without =>", func(t *testing.T) string {
			return errs(t) + keys(t) + section("SaslHandshake", 17, "SaslHandshake Request (Version: 0) => mechanism\n  mechanism STRING")
		}, "BNF line without '=>'"},
		{"definition not indented", func(t *testing.T) string {
			return errs(t) + keys(t) + section("SaslHandshake", 17, "SaslHandshake Request (Version: 0) => [a]\n  a => b\n  b => STRING")
		}, `field "b" is not indented under its structure`},
		{"extra definition", func(t *testing.T) string {
			return errs(t) + keys(t) + section("SaslHandshake", 17, "SaslHandshake Request (Version: 0) => mechanism\n  mechanism => STRING\n  other => INT8")
		}, `BNF line "other" defines no field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := parseSpec(tt.doc(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if sp != nil {
				t.Errorf("a model came with the error")
			}
		})
	}
}

func TestCellText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<a href="#The_Messages_Produce">Produce</a>`, "Produce"},
		{"The  voter key\n doesn&#39;t match", "The voter key doesn't match"},
		{"<code>a &lt; b</code> &amp; c", "a < b & c"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := cellText(tt.in); got != tt.want {
			t.Errorf("cellText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
