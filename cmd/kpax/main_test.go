package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// kpaxBin is the command built once by TestMain.
var kpaxBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kpax-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	kpaxBin = filepath.Join(dir, "kpax")
	out, err := exec.Command("go", "build", "-o", kpaxBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// testBroker returns the Kafka 4 broker of the tests, or skips the test.
func testBroker(t *testing.T) string {
	t.Helper()
	b := os.Getenv("KPAX_TEST_KAFKA4")
	if b == "" {
		t.Skip("KPAX_TEST_KAFKA4 not set: no broker to test against")
	}
	return b
}

// result is what a run of the command gave.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// runKpax runs the command with KPAX_BROKERS=brokers, stdin and args.
func runKpax(t *testing.T, brokers, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kpaxBin, args...)
	cmd.Env = append(os.Environ(), "KPAX_BROKERS="+brokers)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("kpax %q: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("kpax %q: timed out: %v", args, r)
	}
	return r
}

// mustKpax runs the command and fails the test unless it succeeds.
func mustKpax(t *testing.T, brokers, stdin string, args ...string) string {
	t.Helper()
	r := runKpax(t, brokers, stdin, args...)
	if r.code != 0 {
		t.Fatalf("kpax %q: %v", args, r)
	}
	return r.stdout
}

// newTopic creates a topic for the test and deletes it at the end.
func newTopic(t *testing.T, brokers string, partitions int) string {
	t.Helper()
	name := fmt.Sprintf("kpax-cli-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), rand.Uint32())
	mustKpax(t, brokers, "", "topic", "create", "-partitions", fmt.Sprint(partitions), name)
	t.Cleanup(func() { runKpax(t, brokers, "", "topic", "delete", "-if-exists", name) })
	return name
}

func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n") && len(a) == len(b)
}

// testLines returns n keyed lines, KEY:VALUE, some with odd bytes.
func testLines(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("k%d:value %d ünïcode\ttab %s", i%7, i, strings.Repeat("x", i%13))
	}
	return out
}

func TestCLIRoundTrip(t *testing.T) {
	b := testBroker(t)
	roundTrip(t, b)
	t.Run("kafka3.9", func(t *testing.T) {
		b := os.Getenv("KPAX_TEST_KAFKA39")
		if b == "" {
			t.Skip("KPAX_TEST_KAFKA39 not set")
		}
		roundTrip(t, b)
	})
}

// roundTrip produces lines and consumes them back, in several formats.
func roundTrip(t *testing.T, b string) {
	topic := newTopic(t, b, 1)
	in := testLines(200)
	in = append(in, "no key at all", "empty:", ":empty key")
	mustKpax(t, b, strings.Join(in, "\n")+"\n", "produce", "-K", ":", "-z", "zstd", topic)
	out := mustKpax(t, b, "", "consume", "-e", "-K", ":", topic)
	want := append([]string(nil), in...)
	want[len(want)-3] = ":no key at all" // a null key prints as nothing before the delimiter
	if got := lines(out); !equal(got, want) {
		t.Fatalf("consumed %d lines, want %d:\n%q\nwant\n%q", len(got), len(want), got, want)
	}

	t.Run("format", func(t *testing.T) {
		out := mustKpax(t, b, "", "consume", "-o", "2", "-c", "2", "-f", `%t|%p|%o|%k|%v|%K|%V|%h\n`, topic)
		want := []string{
			fmt.Sprintf("%s|0|2|k2|value 2 ünïcode\ttab xx|2|%d|", topic, len("value 2 ünïcode\ttab xx")),
			fmt.Sprintf("%s|0|3|k3|value 3 ünïcode\ttab xxx|2|%d|", topic, len("value 3 ünïcode\ttab xxx")),
		}
		if got := lines(out); !equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("relative", func(t *testing.T) {
		out := mustKpax(t, b, "", "consume", "-o", "-2", "-e", topic)
		if got, want := lines(out), []string{"", "empty key"}; !equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("offsets", func(t *testing.T) {
		out := mustKpax(t, b, "", "offsets", topic)
		want := fmt.Sprintf("%s  0          0         %d", topic, len(in))
		if !strings.Contains(out, want) {
			t.Fatalf("offsets: got %q, want a line %q", out, want)
		}
	})
}

// TestCLIInProcess runs commands inside the test, with stderr taken for a
// terminal: the progress line, and topic settings.
func TestCLIInProcess(t *testing.T) {
	b := testBroker(t)
	run := func(stdin string, args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		e := &env{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr, stderrTTY: true}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.run(ctx, append([]string{"-brokers", b}, args...)); err != nil {
			t.Fatalf("kpax %q: %v (stderr %q)", args, err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	topic := fmt.Sprintf("kpax-cli-inprocess-%d", rand.Uint32())
	out, _ := run("", "topic", "create", "-partitions", "2", "-config", "retention.ms=3600000", "-config", "cleanup.policy=compact", topic)
	t.Cleanup(func() { run("", "topic", "delete", topic) })
	if out != fmt.Sprintf("created topic %q\n", topic) {
		t.Fatalf("topic create: %q", out)
	}
	desc, _ := run("", "topic", "describe", topic)
	for _, want := range []string{"retention.ms    3600000  topic", "cleanup.policy  compact  topic"} {
		if !strings.Contains(desc, want) {
			t.Errorf("topic describe lacks %q:\n%s", want, desc)
		}
	}
	_, stderr := run("k:a\nk:b\nk:c\n", "produce", "-K", ":", topic)
	if !strings.Contains(stderr, "\r\x1b[Kproduced 3 records") || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("produce progress line: %q", stderr)
	}
	out, stderr = run("", "consume", "-e", topic)
	if out != "a\nb\nc\n" || !strings.Contains(stderr, "\r\x1b[Kconsumed 3 records") {
		t.Errorf("consume: stdout %q, progress %q", out, stderr)
	}
}

// startKpax starts kpax with args against brokers, for a test that talks to
// it while it runs: pipe opens the stream it does so through
// ((*exec.Cmd).StdinPipe or StdoutPipe), and stderr collects kpax's stderr.
// kpax is killed after 30 seconds, or when the test ends.
func startKpax[P any](t *testing.T, brokers string, pipe func(*exec.Cmd) (P, error), args ...string) (cmd *exec.Cmd, p P, stderr *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cmd = exec.CommandContext(ctx, kpaxBin, args...)
	cmd.Env = append(os.Environ(), "KPAX_BROKERS="+brokers)
	p, err := pipe(cmd)
	if err != nil {
		t.Fatal(err)
	}
	stderr = new(bytes.Buffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, p, stderr
}

// TestCLIProduceInterrupt stops produce with SIGINT while stdin is still
// open: what was read is sent, and the exit code is 0.
func TestCLIProduceInterrupt(t *testing.T) {
	b := testBroker(t)
	topic := newTopic(t, b, 1)
	cmd, stdin, stderr := startKpax(t, b, (*exec.Cmd).StdinPipe, "produce", "-linger", "1h", topic)
	defer stdin.Close()
	if _, err := stdin.Write([]byte("one\ntwo\n")); err != nil {
		t.Fatal(err)
	}
	// The lines wait for the 1h linger; let produce read them first.
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGINT: %v, stderr %q", err, stderr.String())
	}
	if out := mustKpax(t, b, "", "consume", "-e", topic); out != "one\ntwo\n" {
		t.Fatalf("consumed %q, want the two lines", out)
	}
}

func TestCLIPartitionsHeadersJSON(t *testing.T) {
	b := testBroker(t)
	topic := newTopic(t, b, 3)
	mustKpax(t, b, "a\nb\n", "produce", "-p", "2", "-H", "h1=v1", "-H", "h2=", topic)
	mustKpax(t, b, "c\n", "produce", "-p", "0", "-acks", "1", "-z", "gzip", topic)
	start := time.Now().Add(-time.Minute).UnixMilli()
	out := mustKpax(t, b, "", "consume", "-e", "-o", fmt.Sprintf("@%d", start), "-f", `%p %o %v [%h]\n`, topic)
	if got, want := sorted(lines(out)), []string{"0 0 c []", "2 0 a [h1=v1,h2=]", "2 1 b [h1=v1,h2=]"}; !equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	out = mustKpax(t, b, "", "consume", "-e", "-json", topic+":2")
	want := fmt.Sprintf(`{"topic":%q,"partition":2,"offset":0,"tstype":"create","ts":`, topic)
	if !strings.HasPrefix(out, want) || !strings.Contains(out, `"headers":["h1","v1","h2",""],"key":null,"payload":"a"}`) {
		t.Fatalf("json: got %q", out)
	}
	if n := len(lines(out)); n != 2 {
		t.Fatalf("json: %d lines, want 2: %q", n, out)
	}
	desc := mustKpax(t, b, "", "topic", "describe", topic)
	if !strings.Contains(desc, fmt.Sprintf("topic %q with 3 partitions", topic)) {
		t.Fatalf("describe: %q", desc)
	}
	if list := mustKpax(t, b, "", "topic", "list"); !strings.Contains(list, topic+"\n") {
		t.Fatalf("topic list lacks %s: %q", topic, list)
	}
}

func TestCLIErrors(t *testing.T) {
	b := os.Getenv("KPAX_TEST_KAFKA4")
	known := "kpax-cli-known" // a topic that exists, for the unknown partition
	if b != "" {
		known = newTopic(t, b, 1)
	}
	tests := []struct {
		name    string
		brokers string
		args    []string
		code    int
		stderr  string
		broker  bool // needs the test broker
	}{
		{"refused", "127.0.0.1:1", []string{"metadata"}, 1, "connection refused", false},
		{"no such host", "nosuchhost.invalid:9092", []string{"consume", "t"}, 1, "nosuchhost.invalid", false},
		{"bad address", "nohostport", []string{"metadata"}, 2, `seed broker "nohostport": want host:port`, false},
		{"no brokers", ",", []string{"metadata"}, 2, "no brokers", false},
		{"no command", "x:1", nil, 2, "no command", false},
		{"unknown command", "x:1", []string{"frobnicate"}, 2, `unknown command "frobnicate"`, false},
		{"bad flag", "x:1", []string{"consume", "-nope", "t"}, 2, "flag provided but not defined: -nope", false},
		{"bad flag value", "x:1", []string{"consume", "-c", "many", "t"}, 2, `invalid value "many" for flag -c`, false},
		{"bad start", "x:1", []string{"consume", "-o", "soon", "t"}, 2, `bad start "soon"`, false},
		{"bad format", "x:1", []string{"consume", "-f", "%q", "t"}, 2, "unknown verb %q", false},
		{"bad partition", "x:1", []string{"consume", "t:x"}, 2, `bad partition "x"`, false},
		{"no topic", "x:1", []string{"consume"}, 2, "name at least one topic", false},
		{"bad compression", "x:1", []string{"produce", "-z", "rar", "t"}, 2, "-z", false},
		{"bad acks", "x:1", []string{"produce", "-acks", "2", "t"}, 2, "-acks", false},
		{"bad header", "x:1", []string{"produce", "-H", "nohdr", "t"}, 2, "want name=value", false},
		{"two topics", "x:1", []string{"produce", "a", "b"}, 2, "want one TOPIC", false},
		{"bad topic name", "x:1", []string{"topic", "create", "a/b"}, 2, "bad topic name", false},
		{"group -e", "x:1", []string{"consume", "-group", "g", "-e", "t"}, 2, "-e does not go with -group", false},
		{"unknown topic consume", b, []string{"consume", "kpax-cli-no-such-topic"}, 1, "UNKNOWN_TOPIC_OR_PARTITION", true},
		{"unknown topic produce", b, []string{"produce", "kpax-cli-no-such-topic"}, 1, "UNKNOWN_TOPIC_OR_PARTITION", true},
		{"unknown topic offsets", b, []string{"offsets", "kpax-cli-no-such-topic"}, 1, "UNKNOWN_TOPIC_OR_PARTITION", true},
		{"unknown topic delete", b, []string{"topic", "delete", "kpax-cli-no-such-topic"}, 1, "UNKNOWN_TOPIC_OR_PARTITION", true},
		{"unknown partition", b, []string{"consume", known + ":9999"}, 1, "no partition 9999", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.broker && b == "" {
				t.Skip("KPAX_TEST_KAFKA4 not set")
			}
			r := runKpax(t, tt.brokers, "", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("got %v, want exit %d and stderr with %q", r, tt.code, tt.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if !strings.HasPrefix(r.stderr, "kpax: ") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line starting with kpax:", r.stderr)
			}
		})
	}
}

func TestCLIHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"produce", "-h"}, {"consume", "-h"}, {"topic", "-h"}, {"topic", "create", "-h"}, {"group", "lag", "-h"}, {"help", "offsets"}} {
		r := runKpax(t, "x:1", "", args...)
		if r.code != 0 || !strings.HasPrefix(r.stderr, "usage: kpax") || r.stdout != "" {
			t.Errorf("kpax %q: %v, want exit 0 and usage on stderr", args, r)
		}
	}
}

func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not found: install it with scripts/deps.sh")
	}
	return p
}

func runKcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcatPath(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %q: %v: %s", args, err, stderr.String())
	}
	return stdout.String()
}

func TestCLIKcatInterop(t *testing.T) {
	b := testBroker(t)
	kcatPath(t)
	t.Run("kpax to kcat", func(t *testing.T) {
		topic := newTopic(t, b, 3)
		in := testLines(100)
		mustKpax(t, b, strings.Join(in, "\n")+"\n", "produce", "-K", ":", "-z", "lz4", "-H", "src=kpax", topic)
		out := runKcat(t, "", "-b", b, "-C", "-t", topic, "-e", "-q", "-f", `%k:%s|%h\n`)
		want := make([]string, len(in))
		for i, l := range in {
			want[i] = l + "|src=kpax"
		}
		if got := sorted(lines(out)); !equal(got, sorted(want)) {
			t.Fatalf("kcat read %d lines, want %d:\n%q", len(lines(out)), len(want), got)
		}
		// kpax and kcat see the same partitions, and every key in one.
		kp := mustKpax(t, b, "", "consume", "-e", "-f", `%k %p\n`, topic)
		kc := runKcat(t, "", "-b", b, "-C", "-t", topic, "-e", "-q", "-f", `%k %p\n`)
		if !equal(sorted(lines(kp)), sorted(lines(kc))) {
			t.Fatalf("kpax and kcat disagree on partitions")
		}
		partOf := make(map[string]string)
		for _, l := range lines(kp) {
			k, p, _ := strings.Cut(l, " ")
			if q, ok := partOf[k]; ok && q != p {
				t.Fatalf("key %s in partitions %s and %s", k, p, q)
			}
			partOf[k] = p
		}
	})
	t.Run("kcat to kpax", func(t *testing.T) {
		topic := newTopic(t, b, 2)
		in := testLines(100)
		runKcat(t, strings.Join(in, "\n")+"\n", "-b", b, "-P", "-t", topic, "-K", ":", "-z", "snappy", "-H", "src=kcat")
		out := mustKpax(t, b, "", "consume", "-e", "-f", `%k:%v|%h\n`, topic)
		want := make([]string, len(in))
		for i, l := range in {
			want[i] = l + "|src=kcat"
		}
		if got := sorted(lines(out)); !equal(got, sorted(want)) {
			t.Fatalf("kpax read %d lines, want %d:\n%q", len(lines(out)), len(want), got)
		}
	})
}

func TestCLIGroup(t *testing.T) {
	b := testBroker(t)
	topic := newTopic(t, b, 3)
	group := "g-" + topic
	t.Cleanup(func() { runKpax(t, b, "", "group", "delete", "-if-exists", group) })
	var in []string
	for i := range 20 {
		in = append(in, fmt.Sprintf("line %02d", i))
	}
	mustKpax(t, b, strings.Join(in, "\n")+"\n", "produce", topic)

	// -c stops in the middle of what a Poll returned: the group commits only
	// what was printed.
	first := lines(mustKpax(t, b, "", "consume", "-group", group, "-c", "7", "-timeout", "30s", topic))
	if len(first) != 7 {
		t.Fatalf("consumed %d lines, want 7: %q", len(first), first)
	}
	if lag := mustKpax(t, b, "", "group", "lag", group); !strings.Contains(lag, "total lag 13\n") {
		t.Fatalf("group lag after 7 of 20:\n%s", lag)
	}
	rest := lines(mustKpax(t, b, "", "consume", "-group", group, "-c", "13", "-timeout", "30s", topic))
	if got := sorted(append(first, rest...)); !equal(got, in) {
		t.Fatalf("two runs in the group consumed %q, want %q", got, in)
	}
	lag := mustKpax(t, b, "", "group", "lag", group)
	if !strings.Contains(lag, "total lag 0\n") || !strings.Contains(lag, topic) {
		t.Fatalf("group lag at the end:\n%s", lag)
	}
	offs := mustKpax(t, b, "", "group", "offsets", group)
	if !strings.HasPrefix(offs, "TOPIC") || strings.Count(offs, topic) == 0 {
		t.Fatalf("group offsets:\n%s", offs)
	}
	if list := mustKpax(t, b, "", "group", "list"); !strings.Contains(list, group+" ") {
		t.Fatalf("group list lacks %s:\n%s", group, list)
	}
	desc := mustKpax(t, b, "", "group", "describe", group)
	if !strings.Contains(desc, fmt.Sprintf("group %q: state Empty", group)) {
		t.Fatalf("group describe after the member left:\n%s", desc)
	}
	if r := runKpax(t, b, "", "consume", "-group", group, "-c", "1", "-timeout", "1s", topic); r.code != 1 || !strings.Contains(r.stderr, "got 0 of 1 records before -timeout") {
		t.Fatalf("consume past the end with -timeout: %v", r)
	}
	if r := runKpax(t, b, "", "consume", "-group", group, "kpax-cli-no-such-topic"); r.code != 1 || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("consume -group of an unknown topic: %v", r)
	}
	if out := mustKpax(t, b, "", "group", "delete", group); out != fmt.Sprintf("deleted group %q\n", group) {
		t.Fatalf("group delete: %q", out)
	}
	if r := runKpax(t, b, "", "group", "delete", group); r.code != 1 || !strings.Contains(r.stderr, "GROUP_ID_NOT_FOUND") {
		t.Fatalf("group delete of a deleted group: %v", r)
	}
}

// TestCLIGroupInterrupt stops a group member with SIGINT: it exits 0, and it
// committed what it printed and left the group.
func TestCLIGroupInterrupt(t *testing.T) {
	b := testBroker(t)
	topic := newTopic(t, b, 2)
	group := "g-" + topic
	t.Cleanup(func() { runKpax(t, b, "", "group", "delete", "-if-exists", group) })
	mustKpax(t, b, "a\nb\nc\n", "produce", topic)

	cmd, out, stderr := startKpax(t, b, (*exec.Cmd).StdoutPipe, "consume", "-group", group, topic)
	got := make([]byte, 0, 6)
	buf := make([]byte, 64)
	for len(got) < 6 { // "a\nb\nc\n" in any order
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("reading the output: %v (got %q, stderr %q)", err, got, stderr.String())
		}
		got = append(got, buf[:n]...)
	}
	// While it runs, the member owns both partitions.
	if desc := mustKpax(t, b, "", "group", "describe", group); !strings.Contains(desc, "state Stable") || !strings.Contains(desc, topic+":0,1") {
		t.Errorf("group describe while consuming:\n%s", desc)
	}
	if lag := mustKpax(t, b, "", "group", "lag", group); strings.Count(lag, " kpax-cli-") != 2 {
		t.Errorf("group lag while consuming, want a member for both partitions:\n%s", lag)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGINT: %v, stderr %q", err, stderr.String())
	}
	if g := sorted(lines(string(got))); !equal(g, []string{"a", "b", "c"}) {
		t.Fatalf("consumed %q", g)
	}
	if lag := mustKpax(t, b, "", "group", "lag", group); !strings.Contains(lag, "total lag 0\n") {
		t.Fatalf("group lag after SIGINT:\n%s", lag)
	}
	if desc := mustKpax(t, b, "", "group", "describe", group); !strings.Contains(desc, "state Empty") {
		t.Fatalf("the member did not leave the group:\n%s", desc)
	}
}
