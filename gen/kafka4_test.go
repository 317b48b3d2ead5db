package main

import (
	"fmt"
	"strings"
	"testing"
)

// Tests of Kafka 4's notation and of merging guides, on small guides written
// here: section4 writes an API section as Kafka 4's guide lays it out.

// bnf4 is one version of a request or response: its BNF lines (header
// first) and the header version printed after it.
type bnf4 struct {
	lines    string
	header   int
	unstable bool
}

func section4(api string, key int, reqs, resps []bnf4) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<h5><a name=\"The_Messages_%s\">%s API (Key: %d):</a></h5>\n\n<b>Requests:</b><br>\n", api, api, key)
	write := func(kind string, vs []bnf4) {
		for _, v := range vs {
			text := strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(v.lines)
			fmt.Fprintf(&b, "<div><pre>%s\n</pre>", text)
			if v.unstable {
				b.WriteString("<p>" + unstableMark + "</p>")
			}
			fmt.Fprintf(&b, "<p><b>%s header version:</b> %d</p>\n", kind, v.header)
			b.WriteString("<table class=\"data-table\"><tbody>\n<tr><th>Field</th>\n<th>Description</th>\n</tr></tbody></table>\n</div>\n")
		}
	}
	write("Request", reqs)
	b.WriteString("<b>Responses:</b><br>\n")
	write("Response", resps)
	return b.String()
}

// tables4 is an error and an API key table with the given APIs.
func tables4(apis ...specAPI) string {
	var b strings.Builder
	b.WriteString(`<a id="protocol_error_codes"></a><table class="data-table"><tbody><tr><th>Error</th><th>Code</th><th>Retriable</th><th>Description</th></tr>` +
		"<tr><td>NONE</td><td>0</td><td>False</td><td></td></tr></tbody></table>\n")
	b.WriteString(`<a id="protocol_api_keys"></a><table class="data-table"><tbody><tr><th>Name</th><th>Key</th></tr>`)
	for _, a := range apis {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td></tr>", a.name, a.key)
	}
	b.WriteString("</tbody></table>\n")
	return b.String()
}

// toy4 is a Kafka 4 guide of one API, Toy (key 90): v1 not flexible, v2
// flexible with a nullable compact array, a nullable structure and tagged
// fields, v3 unstable.
func toy4() string {
	return tables4(specAPI{"Toy", 90}) + section4("Toy", 90, []bnf4{
		{lines: `Toy Request (Version: 1) => { name ?[topics] }
  name => STRING
  topics => { id [parts] }
    id => UUID
    parts => INT32`, header: 1},
		{lines: `Toy Request (Version: 2) => { name ?(topics) cursor hint<tag: 0> ends<tag: 1> }
  name => COMPACT_STRING
  topics => { id (parts) }
    id => UUID
    parts => INT32
  cursor => ?{ topic partition }
    topic => COMPACT_STRING
    partition => INT32
  hint<tag: 0> => COMPACT_NULLABLE_STRING
  ends<tag: 1> => { node }
    node => INT32`, header: 2},
		{lines: `Toy Request (Version: 3) => { name }
  name => COMPACT_STRING`, header: 2, unstable: true},
	}, []bnf4{
		{lines: `Toy Response (Version: 1) => { error_code records }
  error_code => INT16
  records => NULLABLE_RECORDS`, header: 0},
		{lines: `Toy Response (Version: 2) => { error_code records }
  error_code => INT16
  records => COMPACT_NULLABLE_RECORDS`, header: 1},
		{lines: `Toy Response (Version: 3) => { error_code records }
  error_code => INT16
  records => COMPACT_NULLABLE_RECORDS`, header: 1},
	})
}

func TestParseKafka4Notation(t *testing.T) {
	sp, err := parseSpec(toy4())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range sp.messages {
		got[fmt.Sprintf("%s v%d", m.kind, m.version)] = fmt.Sprintf("explicit=%v unstable=%v %s", m.explicit, m.unstable, bnf4String(m.root))
	}
	want := map[string]string{
		"Request v1":  "explicit=true unstable=false name:STRING ?[topics]{id:UUID [parts]:INT32}",
		"Request v2":  "explicit=true unstable=false name:COMPACT_STRING ?(topics){id:UUID (parts):INT32 +tags} ?cursor{topic:COMPACT_STRING partition:INT32 +tags} hint<0>:COMPACT_NULLABLE_STRING ends<1>{node:INT32 +tags} +tags",
		"Request v3":  "explicit=true unstable=true name:COMPACT_STRING +tags",
		"Response v1": "explicit=true unstable=false error_code:INT16 records:NULLABLE_RECORDS",
		"Response v2": "explicit=true unstable=false error_code:INT16 records:COMPACT_NULLABLE_RECORDS +tags",
		"Response v3": "explicit=true unstable=false error_code:INT16 records:COMPACT_NULLABLE_RECORDS +tags",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s:\n got %s\nwant %s", k, got[k], w)
		}
	}
}

// bnf4String is bnfString with Kafka 4's markers: "?" for nullable,
// "(x)" for compact arrays, "<N>" for tags.
func bnf4String(st *bnfStruct) string {
	var parts []string
	for _, f := range st.fields {
		n := f.name
		switch {
		case f.array && f.compact:
			n = "(" + n + ")"
		case f.array:
			n = "[" + n + "]"
		}
		if f.nullable {
			n = "?" + n
		}
		if f.tag >= 0 {
			n += fmt.Sprintf("<%d>", f.tag)
		}
		if f.sub != nil {
			n += "{" + bnf4String(f.sub) + "}"
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

// TestBuildKafka4: the model takes nullability and tags from the BNF, and
// the unstable version is left out.
func TestBuildKafka4(t *testing.T) {
	sp, err := parseSpec(toy4())
	if err != nil {
		t.Fatal(err)
	}
	merged, err := mergeSpecs([]namedSpec{{"toy4", sp}})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := buildMessages(merged, &overlay{taggedArrays: []taggedArray{{"Toy Request", "ends"}}})
	if err != nil {
		t.Fatal(err)
	}
	req := msgs[0]
	if req.goName() != "ToyRequest" || vrange(req.versions, 63) != "1-2" || vrange(req.flexible, 2) != "2+" {
		t.Fatalf("%s versions %s flexible %s", req.goName(), vrange(req.versions, 63), vrange(req.flexible, 63))
	}
	want := `
ToyRequest min=4
  Name STRING v1+
  Topics []ToyRequestTopic v1+ null=1+
    ToyRequestTopic min=18
      ID UUID v1+
      Parts []INT32 v1+
  Cursor ToyRequestCursor v2+ null=2+
    ToyRequestCursor min=6
      Topic STRING v2+
      Partition INT32 v2+
  Hint STRING v2+ null=2+ tag=0
  Ends []ToyRequestEnd v2+ tag=1
    ToyRequestEnd min=5
      Node INT32 v2+
`
	if got := "\n" + modelString(req.root, 2, ""); got != want {
		t.Errorf("model:\n%s\nwant:%s", got, want)
	}
	if _, err := emit(merged, msgs, nil); err != nil {
		t.Fatal(err)
	}
}

// TestOverlayAgainstKafka4: an overlay entry that a Kafka 4 guide states,
// or that contradicts it, is an error.
func TestOverlayAgainstKafka4(t *testing.T) {
	tests := []struct {
		name string
		ov   overlay
		want string
	}{
		{"nullable: stated", overlay{nullable: []nullableField{{"Toy Request", "topics", 1, -1}}},
			"the guide states it nullable in versions 1+"},
		{"nullable: contradicts", overlay{nullable: []nullableField{{"Toy Request", "topics.parts", 1, -1}}},
			"contradicts the guide, which says versions 1+ are not nullable"},
		{"tagged: stated", overlay{tagged: []taggedField{{msg: "Toy Request", tag: 0, from: 2, bnf: "hint => COMPACT_NULLABLE_STRING"}}},
			"the guide states the tagged field in versions 2+"},
		{"tagged: contradicts", overlay{tagged: []taggedField{{msg: "Toy Request", tag: 5, from: 2, bnf: "other => INT8"}}},
			"contradicts the guide, which has no tagged field other with tag 5"},
		{"tagged array: not tagged", overlay{taggedArrays: []taggedArray{{"Toy Request", "cursor"}}},
			"contradicts the guide, which has no tagged field there"},
		{"tagged array: a primitive", overlay{taggedArrays: []taggedArray{{"Toy Request", "hint"}}},
			"contradicts the guide, which has no (non-nullable) structure there"},
		{"tagged array: already an array", overlay{taggedArrays: []taggedArray{{"Toy Request", "ends"}, {"Toy Request", "ends"}}},
			"the guide states the array: drop the entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := parseSpec(toy4())
			if err != nil {
				t.Fatal(err)
			}
			sp, _ = mergeSpecs([]namedSpec{{"toy4", sp}})
			_, err = buildMessages(sp, &tt.ov)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// toy3 is Toy in Kafka 3.9's notation, v0-2, named Toy3 when renamed.
func toy3(name string, v2field string) string {
	return tables4(specAPI{name, 90}) + section(name, 90,
		name+` Request (Version: 0) => name 
  name => STRING`,
		name+` Request (Version: 1) => name [topics] 
  name => STRING
  topics => id [parts] 
    id => UUID
    parts => INT32`,
		name+` Request (Version: 2) => name [topics] `+v2field+` TAG_BUFFER 
  name => COMPACT_STRING
  topics => id [parts] TAG_BUFFER 
    id => UUID
    parts => INT32
  `+v2field+` => topic partition TAG_BUFFER 
    topic => COMPACT_STRING
    partition => INT32`,
		name+` Response (Version: 0) => error_code records 
  error_code => INT16
  records => RECORDS`,
		name+` Response (Version: 1) => error_code records 
  error_code => INT16
  records => RECORDS`,
		name+` Response (Version: 2) => error_code records TAG_BUFFER 
  error_code => INT16
  records => COMPACT_RECORDS`)
}

func TestMergeGuides(t *testing.T) {
	parse := func(doc string) *spec {
		sp, err := parseSpec(doc)
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	t.Run("old versions from the older guide", func(t *testing.T) {
		sp, err := mergeSpecs([]namedSpec{{"old", parse(toy3("Toy", "cursor"))}, {"new", parse(toy4())}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range sp.messages {
			got = append(got, fmt.Sprintf("%s v%d explicit=%v from %s", m.kind, m.version, m.explicit, m.source))
		}
		want := "Request v0 explicit=false from old|Request v1 explicit=true from new|Request v2 explicit=true from new|" +
			"Response v0 explicit=false from old|Response v1 explicit=true from new|Response v2 explicit=true from new"
		if strings.Join(got, "|") != want {
			t.Errorf("got  %s\nwant %s", strings.Join(got, "|"), want)
		}
		msgs, err := buildMessages(sp, &overlay{taggedArrays: []taggedArray{{"Toy Request", "ends"}}})
		if err != nil {
			t.Fatal(err)
		}
		if vrange(msgs[0].versions, 63) != "0-2" || vrange(msgs[0].explicit, 2) != "1+" {
			t.Errorf("versions %s explicit %s", vrange(msgs[0].versions, 63), vrange(msgs[0].explicit, 63))
		}
	})
	t.Run("disagreement names the field", func(t *testing.T) {
		_, err := mergeSpecs([]namedSpec{{"old", parse(toy3("Toy", "where"))}, {"new", parse(toy4())}})
		want := "Toy Request v2: old and new disagree: Toy Request: field 2 is where, then cursor"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want %q", err, want)
		}
	})
	t.Run("an unlisted rename is an error", func(t *testing.T) {
		_, err := mergeSpecs([]namedSpec{{"old", parse(toy3("OldToy", "cursor"))}, {"new", parse(toy4())}})
		want := "API key 90 is OldToy in old and Toy in new: list the rename"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want %q", err, want)
		}
	})
	t.Run("a listed rename takes the new name and keeps an alias", func(t *testing.T) {
		renames["OldToy"] = "Toy"
		defer delete(renames, "OldToy")
		sp, err := mergeSpecs([]namedSpec{{"old", parse(toy3("OldToy", "place"))}, {"new", parse(toy4())}})
		if err != nil {
			t.Fatal(err)
		}
		if len(sp.apis) != 1 || sp.apis[0].name != "Toy" {
			t.Fatalf("APIs %v", sp.apis)
		}
		msgs, err := buildMessages(sp, &overlay{taggedArrays: []taggedArray{{"Toy Request", "ends"}}})
		if err != nil {
			t.Fatal(err)
		}
		src, err := emit(sp, msgs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), "type OldToyRequest = ToyRequest") || !strings.Contains(string(src), "type OldToyResponse = ToyResponse") {
			t.Errorf("no deprecated aliases for the old name")
		}
	})
}

// TestDestutter: the names of nested structures never repeat their
// parent's last words.
func TestDestutter(t *testing.T) {
	tests := []struct{ parent, part, want string }{
		{"ProduceResponse", "Response", "Item"},
		{"ProduceResponseItem", "PartitionResponse", "PartitionResponse"},
		{"FetchResponse", "Response", "Item"},
		{"FooTopic", "TopicPartition", "Partition"},
		{"FooTopicPartition", "TopicPartition", "Item"},
		{"FooRepartitionSourceTopic", "TopicConfig", "Config"},
		{"AddPartitionsToTxnResponseResultsByTransactionTopicResult", "ResultsByPartition", "ResultsByPartition"},
		{"MetadataResponse", "Topic", "Topic"},
		{"FooTopicIDs", "IDs", "Item"},
		{"DescribeClusterResponse", "Broker", "Broker"},
	}
	for _, tt := range tests {
		if got := destutter(tt.parent, tt.part); got != tt.want {
			t.Errorf("destutter(%q, %q) = %q, want %q", tt.parent, tt.part, got, tt.want)
		}
	}
}

// TestParseKafka4Errors: broken Kafka 4 BNFs give an error naming the
// problem, never a panic.
func TestParseKafka4Errors(t *testing.T) {
	resp := []bnf4{{lines: "Toy Response (Version: 1) => { }", header: 0}}
	tests := []struct {
		name string
		req  bnf4
		want string
	}{
		{"unbalanced bracket", bnf4{lines: "Toy Request (Version: 1) => { (a] }\n  a => INT8", header: 1}, `unexpected field "(a]"`},
		{"nullable plain field", bnf4{lines: "Toy Request (Version: 1) => { ?a }\n  a => INT8", header: 1}, `unexpected field "?a"`},
		{"nullable array of primitives", bnf4{lines: "Toy Request (Version: 1) => { ?(a) b }\n  a => INT8\n  b => INT8", header: 2}, ""},
		{"tag in a version that is not flexible", bnf4{lines: "Toy Request (Version: 1) => { a<tag: 0> }\n  a<tag: 0> => INT8", header: 1}, "tagged field"},
		{"compact array, not flexible", bnf4{lines: "Toy Request (Version: 1) => { (a) }\n  a => INT8", header: 1}, "a compact array in a version that is not flexible"},
		{"array, flexible", bnf4{lines: "Toy Request (Version: 1) => { [a] }\n  a => INT8", header: 2}, "a non-compact array in a version that is flexible"},
		{"no definition", bnf4{lines: "Toy Request (Version: 1) => { a b }\n  a => INT8", header: 1}, `field "b" has no definition line`},
		{"no braces", bnf4{lines: "Toy Request (Version: 1) => { a }\n  a => b c", header: 1}, `structure "b c" is not in braces`},
		{"extra line", bnf4{lines: "Toy Request (Version: 1) => { a }\n  a => INT8\n  b => INT8", header: 1}, `BNF line "b" defines no field`},
		{"null message", bnf4{lines: "Toy Request (Version: 1) => ?{ a }\n  a => INT8", header: 1}, "a message cannot be null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSpec(tables4(specAPI{"Toy", 90}) + section4("Toy", 90, []bnf4{tt.req}, resp))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("no header version", func(t *testing.T) {
		doc := tables4(specAPI{"Toy", 90}) + "<h5><a name=\"The_Messages_Toy\">Toy API (Key: 90):</a></h5>\n<div><pre>Toy Request (Version: 1) => { }\n</pre></div>"
		if _, err := parseSpec(doc); err == nil || !strings.Contains(err.Error(), "no Request header version") {
			t.Fatalf("error %v", err)
		}
	})
}

// TestCheckRoutes: a route that does not fit the messages is an error.
func TestCheckRoutes(t *testing.T) {
	sp, err := parseSpec(toy4())
	if err != nil {
		t.Fatal(err)
	}
	sp, _ = mergeSpecs([]namedSpec{{"toy4", sp}})
	msgs, err := buildMessages(sp, &overlay{taggedArrays: []taggedArray{{"Toy Request", "ends"}}})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*message{}
	for _, m := range msgs {
		byName[m.api+" "+m.kind] = m
	}
	tests := []struct {
		name string
		r    route
		want string
	}{
		{"ok: group", route{api: "Toy", kind: "group", keys: []string{"name"}}, ""},
		{"ok: leader", route{api: "Toy", kind: "leader", topic: "cursor.topic", partition: "cursor.partition"}, "goes through cursor, not an array"},
		{"no API", route{api: "Nope", kind: "group", keys: []string{"name"}}, `no API "Nope"`},
		{"no field", route{api: "Toy", kind: "group", keys: []string{"nope"}}, `no field "nope"`},
		{"wrong type", route{api: "Toy", kind: "leader", topic: "name", partition: "topics.id"}, "topics.id is UUID, want an untagged INT32"},
		{"tagged key", route{api: "Toy", kind: "txn", keys: []string{"hint"}}, "want an untagged STRING"},
		{"bad kind", route{api: "Toy", kind: "broker"}, `kind "broker"`},
		{"group without keys", route{api: "Toy", kind: "group"}, "a group route with keys []"},
		{"leader without partition", route{api: "Toy", kind: "leader", topic: "name"}, "a leader route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRoutes([]route{tt.r}, byName)
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
