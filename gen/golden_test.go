package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// goldenFile is the code generated from the fixture guide with fixtureOverlay.
const goldenFile = "testdata/fixture_gen.go.golden"

// fullSpecs returns the protocol guides protocol_gen.go is generated from,
// oldest first: the paths in KPAX_SPECS (space-separated), which the
// Makefile sets from scripts/spec.sh. Without it the test is skipped.
func fullSpecs(t *testing.T) []namedDoc {
	t.Helper()
	paths := strings.Fields(os.Getenv("KPAX_SPECS"))
	if len(paths) == 0 {
		t.Skip("KPAX_SPECS is not set: make gotest sets it to the guides of scripts/spec.sh")
	}
	var docs []namedDoc
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, namedDoc{name: filepath.Base(p), doc: string(b)})
	}
	return docs
}

// fullMessages parses and merges the full guides and builds the messages
// with the overlay.
func fullMessages(t *testing.T, ov *overlay) (*spec, []*message) {
	t.Helper()
	var specs []namedSpec
	for _, d := range fullSpecs(t) {
		sp, err := parseSpec(d.doc)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, namedSpec{name: d.name, sp: sp})
	}
	sp, err := mergeSpecs(specs)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := buildMessages(sp, ov)
	if err != nil {
		t.Fatal(err)
	}
	return sp, msgs
}

// TestGolden generates the fixture APIs and compares the code with the
// golden file; go test -run Golden -update rewrites it.
func TestGolden(t *testing.T) {
	got, err := generate(fixtureOverlay(), namedDoc{"fixture", fixtureSpec(t)})
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(goldenFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", goldenFile)
		return
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("%v (go test -run Golden -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("generated code differs from %s (go test -run Golden -update rewrites it) %s", goldenFile, firstDiff(want, got))
	}
}

// firstDiff shows the first differing line of two texts with some context.
func firstDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		if i < len(w) && i < len(g) && w[i] == g[i] {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "at line %d:\n", i+1)
		for j := max(0, i-2); j <= i+2; j++ {
			if j < len(w) {
				fmt.Fprintf(&b, "-%s\n", w[j])
			}
			if j < len(g) {
				fmt.Fprintf(&b, "+%s\n", g[j])
			}
		}
		return b.String()
	}
	return "(same lines, different bytes)"
}

// TestFullSpec generates from the full guides (Kafka 3.9.2 and 4.x, merged):
// 86 APIs, and exactly the bytes of ../protocol_gen.go.
func TestFullSpec(t *testing.T) {
	docs := fullSpecs(t)
	sp, msgs := fullMessages(t, defaultOverlay())
	versions := 0
	for _, m := range msgs {
		versions += m.versions.max() - m.versions.min() + 1
	}
	t.Logf("%d APIs, %d error codes, %d messages, %d message versions", len(sp.apis), len(sp.errors), len(msgs), versions)
	if len(docs) == 2 && (len(sp.apis) < 86 || len(msgs) != 2*len(sp.apis)) {
		t.Errorf("%d APIs and %d messages, want at least 86 and twice as many", len(sp.apis), len(msgs))
	}
	got, err := generate(defaultOverlay(), docs...)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../protocol_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("../protocol_gen.go is not what the generator writes; run make generate in the repository root %s", firstDiff(want, got))
	}
}

// TestDefaultOverlayApplies checks, on the full guides, that every overlay
// entry lands: nullable versions set where it says, tagged fields present
// with their tags from their first version, tagged arrays made arrays,
// defaults on fields that some version of their structure lacks. (An entry
// that the guides state or contradict fails buildMessages itself.)
func TestDefaultOverlayApplies(t *testing.T) {
	ov := defaultOverlay()
	_, msgs := fullMessages(t, ov)
	byName := map[string]*message{}
	for _, m := range msgs {
		byName[m.api+" "+m.kind] = m
	}
	for _, n := range ov.nullable {
		m := byName[n.msg]
		f, err := findField(m.root, n.path)
		if err != nil {
			t.Errorf("%s %s: %v", n.msg, n.path, err)
			continue
		}
		to := n.to
		if to < 0 {
			to = m.versions.max()
		}
		if want := versionsFrom(n.from, to) & f.versions; want == 0 || f.nullable&want != want {
			t.Errorf("%s %s: nullable in %s, want %s", n.msg, n.path, vrange(f.nullable, m.versions.max()), vrange(want, m.versions.max()))
		}
	}
	for _, tf := range ov.tagged {
		m := byName[tf.msg]
		st := m.root
		if tf.path != "" {
			f, err := findField(m.root, tf.path)
			if err != nil {
				t.Errorf("%s %s: %v", tf.msg, tf.path, err)
				continue
			}
			st = f.st
		}
		name, _, _ := strings.Cut(tf.bnf, " =>")
		i := slices.IndexFunc(st.fields, func(f *field) bool { return f.name == name })
		if i < 0 {
			t.Errorf("%s %s: no tagged field %s", tf.msg, tf.path, name)
			continue
		}
		f := st.fields[i]
		if f.tag != tf.tag || f.versions != versionsFrom(tf.from, m.versions.max()) || (f.kind == kindArray) != tf.array || f.doc != tf.doc {
			t.Errorf("%s %s.%s: tag %d versions %s array %v; want tag %d versions %d+ array %v", tf.msg, tf.path, name,
				f.tag, vrange(f.versions, m.versions.max()), f.kind == kindArray, tf.tag, tf.from, tf.array)
		}
	}
	for _, ta := range ov.taggedArrays {
		f, err := findField(byName[ta.msg].root, ta.path)
		if err != nil || f.kind != kindArray || f.tag < 0 {
			t.Errorf("%s %s: not a tagged array (%v)", ta.msg, ta.path, err)
		}
	}
	seen := map[string]bool{}
	for _, d := range ov.defaults {
		if seen[d.msg+" "+d.path] {
			t.Errorf("%s %s: listed twice", d.msg, d.path)
		}
		seen[d.msg+" "+d.path] = true
		st, f, err := findFieldIn(byName[d.msg].root, d.path)
		if err != nil {
			t.Errorf("%s %s: %v", d.msg, d.path, err)
			continue
		}
		if f.def != d.value || st.versions&^f.versions == 0 {
			t.Errorf("%s %s: default %q in versions %s of %s, want %q", d.msg, d.path, f.def,
				vrange(f.versions, byName[d.msg].versions.max()), vrange(st.versions, byName[d.msg].versions.max()), d.value)
		}
	}
	// The fields a client reads or a fake broker decodes, whose zero value
	// would mean something else (node 0, offset 0, epoch 0).
	for _, want := range []string{
		"Fetch Response responses.partitions.preferred_read_replica",
		"Fetch Response responses.partitions.last_stable_offset",
		"Fetch Response responses.partitions.log_start_offset",
		"Produce Response responses.partition_responses.log_append_time_ms",
		"Produce Response responses.partition_responses.log_start_offset",
		"Metadata Response controller_id",
		"Metadata Response topics.partitions.leader_epoch",
		"ListOffsets Response topics.partitions.offset",
		"ListOffsets Response topics.partitions.leader_epoch",
		"OffsetFetch Response topics.partitions.committed_leader_epoch",
		"OffsetForLeaderEpoch Response topics.partitions.leader_epoch",
		"Fetch Request replica_id",
		"Fetch Request topics.partitions.current_leader_epoch",
		"OffsetCommit Request topics.partitions.committed_leader_epoch",
	} {
		if !seen[want] {
			t.Errorf("no default for %s", want)
		}
	}
}

// TestOverlayErrors: an overlay entry that does not fit the guide is an
// error, never silently ignored.
func TestOverlayErrors(t *testing.T) {
	const flag8 = "flag => INT8"
	tests := []struct {
		name string
		ov   overlay
		want string
	}{
		{"nullable: no message", overlay{nullable: []nullableField{{"Nope Request", "x", 0, -1}}},
			`overlay: no message "Nope Request"`},
		{"nullable: no field", overlay{nullable: []nullableField{{"DescribeGroups Request", "groupz", 0, -1}}},
			`overlay: DescribeGroups Request groupz: no field "groupz"`},
		{"nullable: no nested field", overlay{nullable: []nullableField{{"DescribeGroups Response", "groups.memberz", 0, -1}}},
			`no field "memberz"`},
		{"nullable: path through a primitive", overlay{nullable: []nullableField{{"DescribeGroups Response", "throttle_time_ms.x", 0, -1}}},
			`no field "x"`},
		{"nullable: a primitive", overlay{nullable: []nullableField{{"DescribeGroups Response", "throttle_time_ms", 1, -1}}},
			"is neither an array nor a structure"},
		{"tagged: no message", overlay{tagged: []taggedField{{msg: "Nope Response", tag: 0, from: 0, bnf: flag8}}},
			`overlay: no message "Nope Response"`},
		{"tagged: no structure", overlay{tagged: []taggedField{{msg: "DescribeGroups Response", path: "groups.nope", tag: 0, from: 5, bnf: flag8}}},
			`no structure at "groups.nope"`},
		{"tagged: path to a primitive", overlay{tagged: []taggedField{{msg: "DescribeGroups Response", path: "throttle_time_ms", tag: 0, from: 5, bnf: flag8}}},
			`no structure at "throttle_time_ms"`},
		{"tagged: before the flexible versions", overlay{tagged: []taggedField{{msg: "ApiVersions Response", tag: 0, from: 2, bnf: flag8}}},
			"version 2 is not a flexible version"},
		{"tagged: never flexible", overlay{tagged: []taggedField{{msg: "SaslHandshake Response", tag: 0, from: 1, bnf: flag8}}},
			"version 1 is not a flexible version"},
		{"tagged: tag twice", overlay{tagged: []taggedField{
			{msg: "ApiVersions Response", tag: 0, from: 3, bnf: flag8},
			{msg: "ApiVersions Response", tag: 0, from: 4, bnf: "other => INT8"}}},
			"tag 0 used twice"},
		{"tagged: broken definition", overlay{tagged: []taggedField{{msg: "ApiVersions Response", tag: 0, from: 3, bnf: "x => y z"}}},
			`field "y" has no definition line`},
		{"default: no message", overlay{defaults: []fieldDefault{{"Nope Response", "x", "-1"}}},
			`overlay: no message "Nope Response"`},
		{"default: no field", overlay{defaults: []fieldDefault{{"DescribeGroups Response", "groups.nope", "-1"}}},
			`overlay: DescribeGroups Response groups.nope: no field "nope"`},
		{"default: in every version", overlay{defaults: []fieldDefault{{"DescribeGroups Response", "groups.error_code", "-1"}}},
			"every version carries the field"},
		{"default: an array", overlay{defaults: []fieldDefault{{"DescribeGroups Response", "groups", "-1"}}},
			"needs a primitive field"},
		{"default: a tagged field", overlay{defaults: []fieldDefault{{"ApiVersions Response", "finalized_features_epoch", "-1"}},
			tagged: fixtureOverlay().tagged}, "needs a primitive field that is not tagged"},
		{"default: a string", overlay{defaults: []fieldDefault{{"DescribeGroups Response", "groups.members.group_instance_id", `"x"`}}},
			"no defaults for STRING fields"},
		{"default: out of range", overlay{defaults: []fieldDefault{{"DescribeGroups Response", "throttle_time_ms", "0x80000000"}}},
			`default "0x80000000" is not a INT32`},
		{"default: not a literal", overlay{defaults: []fieldDefault{{"DescribeGroups Response", "throttle_time_ms", "minus one"}}},
			`default "minus one" is not a INT32`},
		{"default: not a bool", overlay{defaults: []fieldDefault{{"DescribeGroups Request", "include_authorized_operations", "1"}}},
			`default "1" is not a BOOLEAN`},
		{"default: the zero value", overlay{defaults: []fieldDefault{{"DescribeGroups Response", "groups.authorized_operations", "0"}}},
			"is the zero value"},
		{"default: twice", overlay{defaults: []fieldDefault{
			{"DescribeGroups Response", "groups.authorized_operations", "-1"},
			{"DescribeGroups Response", "groups.authorized_operations", "-2"}}},
			"two defaults"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := parseSpec(fixtureSpec(t))
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := buildMessages(sp, &tt.ov)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if msgs != nil {
				t.Errorf("messages came with the error")
			}
		})
	}
}

// TestRunWritesOnlyOnSuccess: when generation fails, the output file is
// neither created nor changed and no temporary file is left; when it
// succeeds, the output holds the generated code.
func TestRunWritesOnlyOnSuccess(t *testing.T) {
	fixture := fixtureSpec(t)
	tests := []struct {
		name string
		spec *string // nil: no spec file
		old  string  // the output file's content before, "" for none
		ov   *overlay
		want string
	}{
		{"no spec file", nil, "", fixtureOverlay(), "no such file"},
		{"not the guide", ptr("<html><body>Kafka</body></html>"), "", fixtureOverlay(), "no section"},
		{"broken BNF", ptr(strings.Replace(fixture, "  mechanism => STRING\n", "", 1)), "", fixtureOverlay(), `field "mechanism" has no definition line`},
		{"broken BNF, old output kept", ptr(strings.Replace(fixture, "  mechanism => STRING\n", "", 1)), "// old\n", fixtureOverlay(), `field "mechanism" has no definition line`},
		{"overlay does not fit", &fixture, "// old\n", defaultOverlay(), "overlay: no message"},
		{"success", &fixture, "", fixtureOverlay(), ""},
		{"success over an old output", &fixture, "// old\n", fixtureOverlay(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			specPath := filepath.Join(dir, "spec.html")
			out := filepath.Join(dir, "protocol_gen.go")
			want := []string{}
			if tt.spec != nil {
				if err := os.WriteFile(specPath, []byte(*tt.spec), 0o644); err != nil {
					t.Fatal(err)
				}
				want = append(want, "spec.html")
			}
			if tt.old != "" || tt.want == "" {
				want = append(want, "protocol_gen.go")
			}
			if tt.old != "" {
				if err := os.WriteFile(out, []byte(tt.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := run([]string{specPath}, out, tt.ov)
			if tt.want == "" && err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			slices.Sort(names)
			slices.Sort(want)
			if !slices.Equal(names, want) {
				t.Errorf("files %q, want %q", names, want)
			}
			got, _ := os.ReadFile(out)
			switch {
			case tt.want != "" && string(got) != tt.old:
				t.Errorf("output changed on failure: %.40q", got)
			case tt.want == "" && !bytes.HasPrefix(got, []byte("// Code generated by gen from the Kafka protocol spec. DO NOT EDIT.\n")):
				t.Errorf("output %.60q is not the generated code", got)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
