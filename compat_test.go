package kpax

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The compatibility suite (make test-compat, scripts/compat.sh): on every
// broker in KPAX_TEST_COMPAT (VERSION=HOST:PORT,...), one each of Kafka 0.8.2
// to 4.x, it runs what that version supports and checks that what it lacks
// fails at once with an error naming the broker's version. With
// KPAX_COMPAT_TABLE set it writes the results there as a markdown table (the
// README's compatibility table).

// compatBroker is one broker of the suite.
type compatBroker struct {
	version string
	addr    string
	num     [3]int // major, minor, patch (0.10.2.2: 0, 10, 2)
}

func (b compatBroker) atLeast(v string) bool {
	w := parseCompatVersion(v)
	return slices.Compare(b.num[:], w[:]) >= 0
}

func parseCompatVersion(v string) [3]int {
	var n [3]int
	for i, f := range strings.SplitN(v, ".", 4) {
		if i < 3 {
			n[i], _ = strconv.Atoi(f)
		}
	}
	return n
}

func compatBrokers(t *testing.T) []compatBroker {
	env := os.Getenv("KPAX_TEST_COMPAT")
	if env == "" {
		t.Skip("KPAX_TEST_COMPAT not set (make test-compat sets it)")
	}
	var bs []compatBroker
	for _, f := range strings.Split(env, ",") {
		v, addr, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok || v == "" || addr == "" {
			t.Fatalf("KPAX_TEST_COMPAT: bad entry %q, want VERSION=HOST:PORT", f)
		}
		bs = append(bs, compatBroker{version: v, addr: addr, num: parseCompatVersion(v)})
	}
	return bs
}

// compatFeature is one column of the table.
type compatFeature struct {
	name  string
	since string // the first Kafka version that has it
	doc   string // what the check does, for the README
	// run checks the feature on a broker that has it, lacking (if not nil)
	// the clear error on one that does not.
	run, lacking func(t *testing.T, s *compatSession)
}

// compatSession is what the checks of one broker share.
type compatSession struct {
	b   compatBroker
	cl  *Client
	cli string // the kpax binary
	ctx context.Context
}

// compatFeatures is the table's columns, in order.
var compatFeatures = []compatFeature{
	{name: "first request", run: compatFirstRequest,
		doc: "a fresh client's first request (Metadata) succeeds, also on brokers without ApiVersions"},
	{name: "metadata", run: compatMetadata, doc: "Metadata names the broker at its address"},
	{name: "create/delete topics", since: "0.10.1", run: compatTopics, lacking: compatLacksTopics,
		doc: "CreateTopics with the broker's defaults (-1, from 2.4; before, the error saying so, then explicit values) and DeleteTopics"},
	{name: "gzip", run: compatCodec(CompressionGzip), doc: "5 records produced gzip-compressed are read back by a Consumer"},
	{name: "snappy", run: compatCodec(CompressionSnappy), doc: "the same with snappy"},
	{name: "lz4", run: compatCodec(CompressionLZ4), doc: "the same with lz4 (0.8-0.9: message format v0 and its LZ4 checksum)"},
	{name: "zstd", since: "2.1", run: compatCodec(CompressionZstd), lacking: compatLacksZstd, doc: "the same with zstd"},
	{name: "headers", since: "0.11", run: compatHeaders, lacking: compatLacksHeaders,
		doc: "records with headers (one with a null value) come back with them"},
	{name: "idempotence", since: "0.11", run: compatIdempotence, lacking: compatLacksIdempotence,
		doc: "a producer with WithIdempotence(true) and acks=all: records read back"},
	{name: "groups, commits, lag", since: "0.9", run: compatGroups, lacking: compatLacksGroups,
		doc: "a GroupConsumer joins, reads, commits offset 3 of 4; `kpax group lag` shows lag 1"},
	{name: "CLI", run: compatCLI,
		doc: "`kpax` metadata, apiversions (before 0.10: the versions of its release), topic create/delete (0.10.1+), " +
			"produce, consume -e, offsets, consume -group and group lag (0.9+)"},
}

// compatResult values.
const (
	compatOK      = "✓"
	compatFailed  = "✗"
	compatLacking = "–" // the broker lacks it; the error says so
)

func TestCompat(t *testing.T) {
	brokers := compatBrokers(t)
	cli := filepath.Join(t.TempDir(), "kpax")
	if out, err := exec.Command("go", "build", "-o", cli, "./cmd/kpax").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kpax: %v\n%s", err, out)
	}
	var mu sync.Mutex
	results := map[string]map[string]string{}
	t.Run("brokers", func(t *testing.T) {
		for _, b := range brokers {
			t.Run(b.version, func(t *testing.T) {
				t.Parallel()
				got := compatRun(t, b, cli)
				mu.Lock()
				results[b.version] = got
				mu.Unlock()
			})
		}
	})
	if path := os.Getenv("KPAX_COMPAT_TABLE"); path != "" {
		if err := os.WriteFile(path, []byte(compatTable(brokers, results)), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// compatRun runs every feature's check on one broker.
func compatRun(t *testing.T, b compatBroker, cli string) map[string]string {
	got := map[string]string{}
	for _, f := range compatFeatures {
		has := f.since == "" || b.atLeast(f.since)
		check := f.run
		if !has {
			check = f.lacking
		}
		if check == nil {
			got[f.name] = compatLacking
			continue
		}
		start, ran := time.Now(), false
		ok := t.Run(f.name, func(t *testing.T) {
			ran = true
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			opts := []Option{WithSeedBrokers(b.addr), WithRequestTimeout(10 * time.Second)}
			if !b.atLeast("0.10") {
				// A 0.9 broker leaves ApiVersions unanswered: the client waits
				// half the dial timeout (5s by default) before it knows. The
				// CLI's commands keep the default.
				opts = append(opts, WithDialTimeout(2*time.Second))
			}
			cl, err := New(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			check(t, &compatSession{b: b, cl: cl, cli: cli, ctx: ctx})
		})
		t.Logf("%s %s: %v in %v", b.version, f.name, ok, time.Since(start).Round(time.Millisecond))
		switch {
		case !ran: // left out by -run
		case !ok:
			got[f.name] = compatFailed
		case has:
			got[f.name] = compatOK
		default:
			got[f.name] = compatLacking
		}
	}
	return got
}

// compatTable renders the results as markdown, one row per version.
func compatTable(brokers []compatBroker, results map[string]map[string]string) string {
	var sb strings.Builder
	sb.WriteString("| Kafka |")
	for _, f := range compatFeatures {
		sb.WriteString(" " + f.name + " |")
	}
	sb.WriteString("\n|---|")
	for range compatFeatures {
		sb.WriteString(":-:|")
	}
	sb.WriteString("\n")
	for _, b := range brokers {
		mode := "KRaft"
		if !b.atLeast("3.3") {
			mode = "ZooKeeper"
		}
		fmt.Fprintf(&sb, "| %s (%s) |", b.version, mode)
		for _, f := range compatFeatures {
			r := results[b.version][f.name]
			if r == "" {
				r = "?"
			}
			sb.WriteString(" " + r + " |")
		}
		sb.WriteString("\n")
	}
	fmt.Fprintf(&sb, "\n%s passed; %s the broker lacks it, and kpax says so at once with an error naming "+
		"the broker's version (checked); %s failed.\n\n", compatOK, compatLacking, compatFailed)
	for _, f := range compatFeatures {
		since := ""
		if f.since != "" {
			since = " (Kafka " + f.since + "+)"
		}
		fmt.Fprintf(&sb, "- **%s**%s: %s.\n", f.name, since, f.doc)
	}
	return sb.String()
}

// compatTopic makes a fresh topic with one partition: with CreateTopics
// where the broker has it, else auto-created by the first produce.
func compatTopic(t *testing.T, s *compatSession, what string) string {
	t.Helper()
	name := fmt.Sprintf("compat-%s-%d", strings.ReplaceAll(what, " ", "-"), time.Now().UnixNano())
	if s.b.atLeast("0.10.1") {
		compatCreate(t, s, name, 1, 1)
	}
	return name
}

func compatCreate(t *testing.T, s *compatSession, name string, partitions int32, replicas int16) {
	t.Helper()
	r, err := s.cl.Request(s.ctx, &CreateTopicsRequest{TimeoutMs: 10000, Topics: []CreateTopicsRequestTopic{
		{Name: name, NumPartitions: partitions, ReplicationFactor: replicas}}})
	if err != nil {
		t.Fatalf("CreateTopics %s: %v", name, err)
	}
	if c := r.(*CreateTopicsResponse).Topics[0].ErrorCode; c != 0 {
		t.Fatalf("CreateTopics %s: %v", name, ErrorForCode(c))
	}
}

// wantLacking checks that err says the broker lacks something, naming its version.
func wantLacking(t *testing.T, s *compatSession, err error, what string) {
	t.Helper()
	mm := fmt.Sprintf("Kafka %d.%d", s.b.num[0], s.b.num[1])
	if err == nil || !strings.Contains(err.Error(), mm) {
		t.Fatalf("%s on Kafka %s: error %v, want one naming %q", what, s.b.version, err, mm)
	}
	t.Logf("%s on Kafka %s: %v", what, s.b.version, err)
}

func compatFirstRequest(t *testing.T, s *compatSession) {
	start := time.Now()
	md, err := s.cl.Metadata(s.ctx)
	if err != nil {
		t.Fatalf("the first request of a fresh client: %v", err)
	}
	t.Logf("first request answered in %v: %d brokers", time.Since(start).Round(time.Millisecond), len(md.Brokers))
}

func compatMetadata(t *testing.T, s *compatSession) {
	md, err := s.cl.Metadata(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(s.b.addr, ":")
	if len(md.Brokers) != 1 || strconv.Itoa(int(md.Brokers[0].Port)) != port {
		t.Fatalf("brokers %+v, want the one at %s", md.Brokers, s.b.addr)
	}
}

func compatTopics(t *testing.T, s *compatSession) {
	name := fmt.Sprintf("compat-create-%d", time.Now().UnixNano())
	_, err := s.cl.Request(s.ctx, &CreateTopicsRequest{TimeoutMs: 10000, Topics: []CreateTopicsRequestTopic{
		{Name: name, NumPartitions: -1, ReplicationFactor: -1}}})
	if s.b.atLeast("2.4") {
		if err != nil {
			t.Fatalf("CreateTopics with the broker's defaults: %v", err)
		}
	} else {
		// Broker defaults (-1) need CreateTopics v4 (2.4): a clear error before sending.
		if !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), "Kafka 2.4") {
			t.Fatalf("CreateTopics with -1 on %s: %v, want an error saying it needs Kafka 2.4", s.b.version, err)
		}
		compatCreate(t, s, name, 2, 1)
	}
	md, err := s.cl.Metadata(s.ctx, name)
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Err != nil {
		t.Fatalf("metadata of the new topic: %+v, %v", md, err)
	}
	r, err := s.cl.Request(s.ctx, &DeleteTopicsRequest{TimeoutMs: 10000, TopicNames: []string{name},
		Topics: []DeleteTopicsRequestTopic{{Name: &name}}})
	if err != nil {
		t.Fatalf("DeleteTopics: %v", err)
	}
	if c := r.(*DeleteTopicsResponse).Responses[0].ErrorCode; c != 0 {
		t.Fatalf("DeleteTopics: %v", ErrorForCode(c))
	}
}

func compatLacksTopics(t *testing.T, s *compatSession) {
	_, err := s.cl.Request(s.ctx, &CreateTopicsRequest{Topics: []CreateTopicsRequestTopic{{Name: "x", NumPartitions: 1, ReplicationFactor: 1}}})
	wantLacking(t, s, err, "CreateTopics")
}

// compatRoundTrip produces recs to a fresh topic and reads them back.
func compatRoundTrip(t *testing.T, s *compatSession, what string, recs []*Record, opts ...Option) []Record {
	t.Helper()
	topic := compatTopic(t, s, what)
	for _, r := range recs {
		r.Topic = topic
	}
	produceKpax(t, s.cl, recs, opts...)
	got := consumeAll(t, s.cl, topic, 1)[0]
	if len(got) != len(recs) {
		t.Fatalf("read %d records back, want %d", len(got), len(recs))
	}
	for i, r := range got {
		if !bytes.Equal(r.Value, recs[i].Value) || !bytes.Equal(r.Key, recs[i].Key) {
			t.Fatalf("record %d: %q=%q, want %q=%q", i, r.Key, r.Value, recs[i].Key, recs[i].Value)
		}
	}
	return got
}

func compatRecords(n int) []*Record {
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = &Record{Key: []byte(fmt.Sprint("k", i)), Value: bytes.Repeat([]byte(fmt.Sprint("value ", i, " ")), 20)}
	}
	return recs
}

func compatCodec(c Compression) func(t *testing.T, s *compatSession) {
	return func(t *testing.T, s *compatSession) {
		compatRoundTrip(t, s, fmt.Sprint(c), compatRecords(5), WithCompression(c))
	}
}

func compatLacksZstd(t *testing.T, s *compatSession) {
	p, err := s.cl.NewProducer(WithCompression(CompressionZstd))
	if err == nil {
		defer p.Close(s.ctx)
		err = p.ProduceSync(s.ctx, &Record{Topic: compatTopic(t, s, "zstd"), Value: []byte("v")})
	}
	wantLacking(t, s, err, "zstd")
}

func compatHeaders(t *testing.T, s *compatSession) {
	recs := compatRecords(3)
	for _, r := range recs {
		r.Headers = []Header{{Key: "h", Value: []byte("hv")}, {Key: "null"}}
	}
	got := compatRoundTrip(t, s, "headers", recs)
	for i, r := range got {
		if len(r.Headers) != 2 || r.Headers[0].Key != "h" || string(r.Headers[0].Value) != "hv" || r.Headers[1].Value != nil {
			t.Fatalf("record %d headers %+v", i, r.Headers)
		}
	}
}

func compatLacksHeaders(t *testing.T, s *compatSession) {
	p, err := s.cl.NewProducer()
	if err == nil {
		defer p.Close(s.ctx)
		err = p.ProduceSync(s.ctx, &Record{Topic: compatTopic(t, s, "headers"), Value: []byte("v"),
			Headers: []Header{{Key: "h", Value: []byte("hv")}}})
	}
	wantLacking(t, s, err, "headers")
}

func compatIdempotence(t *testing.T, s *compatSession) {
	compatRoundTrip(t, s, "idempotence", compatRecords(5), WithIdempotence(true), WithAcks(-1))
}

func compatLacksIdempotence(t *testing.T, s *compatSession) {
	p, err := s.cl.NewProducer(WithIdempotence(true), WithAcks(-1))
	if err == nil {
		defer p.Close(s.ctx)
		err = p.ProduceSync(s.ctx, &Record{Topic: compatTopic(t, s, "idempotence"), Value: []byte("v")})
	}
	wantLacking(t, s, err, "idempotence")
}

func compatGroups(t *testing.T, s *compatSession) {
	recs := compatRecords(4)
	topic := compatTopic(t, s, "group")
	for _, r := range recs {
		r.Topic = topic
	}
	produceKpax(t, s.cl, recs)
	group := "compat-" + topic
	g, err := s.cl.NewGroupConsumer(group, []string{topic}, WithStartOffset(Earliest()))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for n < 3 {
		f, err := g.Poll(s.ctx)
		if err != nil {
			g.Close(s.ctx)
			t.Fatalf("group poll after %d records: %v", n, err)
		}
		n += len(f.Records)
	}
	if err := g.CommitOffsets(s.ctx, map[string]map[int32]int64{topic: {0: 3}}); err != nil {
		g.Close(s.ctx)
		t.Fatalf("commit: %v", err)
	}
	if err := g.CloseWithoutCommit(s.ctx); err != nil { // Close would commit the position, 4
		t.Fatalf("close: %v", err)
	}
	out := compatRunCLI(t, s, "", "group", "lag", group)
	if !regexpLag1(out) {
		t.Fatalf("kpax group lag %s: want lag 1 of partition 0, got:\n%s", group, out)
	}
}

// regexpLag1 reports whether the CLI's lag table says partition 0 is 1
// behind: the LAG column of the row of partition 0.
func regexpLag1(out string) bool {
	lines := strings.Split(out, "\n")
	if len(lines) == 0 {
		return false
	}
	head := strings.Fields(lines[0])
	part, lag := slices.Index(head, "PARTITION"), slices.Index(head, "LAG")
	if part < 0 || lag < 0 {
		return false
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) == len(head) && f[part] == "0" {
			return f[lag] == "1"
		}
	}
	return false
}

func compatLacksGroups(t *testing.T, s *compatSession) {
	g, err := s.cl.NewGroupConsumer("compat-group", []string{compatTopic(t, s, "group")})
	if err == nil {
		ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
		defer cancel()
		_, err = g.Poll(ctx)
		g.Close(ctx)
	}
	wantLacking(t, s, err, "a consumer group")
}

// compatRunCLI runs the kpax binary against the broker with stdin.
func compatRunCLI(t *testing.T, s *compatSession, stdin string, args ...string) string {
	t.Helper()
	out, err := compatCLIOutput(s, stdin, args...)
	if err != nil {
		t.Fatalf("kpax %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// compatCLIOutput runs the kpax binary; a failure's error is its output.
func compatCLIOutput(s *compatSession, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.cli, append([]string{"-brokers", s.b.addr}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, out)
	}
	return string(out), nil
}

func compatCLI(t *testing.T, s *compatSession) {
	topic := fmt.Sprintf("compat-cli-%d", time.Now().UnixNano())
	compatRunCLI(t, s, "", "metadata")
	// Before 0.10 there is no ApiVersions: the command lists the versions
	// of the broker's release (Admin.APIVersions).
	if out := compatRunCLI(t, s, "", "apiversions"); !strings.Contains(out, "Metadata") {
		t.Fatalf("kpax apiversions: no Metadata row in %q", out)
	}
	if s.b.atLeast("0.10.1") {
		compatRunCLI(t, s, "", "topic", "create", "-partitions", "1", "-replication-factor", "1", topic)
	}
	compatRunCLI(t, s, "a\nb\nc\n", "produce", topic)
	if out := compatRunCLI(t, s, "", "consume", "-e", topic); out != "a\nb\nc\n" {
		t.Fatalf("kpax consume -e: %q", out)
	}
	compatRunCLI(t, s, "", "offsets", topic)
	if s.b.atLeast("0.9") {
		group := "compat-cli-" + topic
		compatRunCLI(t, s, "", "consume", "-group", group, "-c", "3", topic)
		compatRunCLI(t, s, "", "group", "lag", group)
	}
	if s.b.atLeast("0.10.1") {
		compatRunCLI(t, s, "", "topic", "delete", topic)
	}
}
