package main

import (
	"strings"
	"testing"
)

// TestCLIProduceTxn produces in transactions (one per run, one per 2
// lines) and checks what read_committed and read_uncommitted consumers see,
// an aborted run (a line too large for the broker) included.
func TestCLIProduceTxn(t *testing.T) {
	b := testBroker(t)
	topic := newTopic(t, b, 1)
	id := "kpax-cli-txn-" + topic
	mustKpax(t, b, "a\nb\nc\n", "produce", "-txn", id, topic)
	mustKpax(t, b, "d\ne\nf\n", "produce", "-txn", id, "-txn-lines", "2", topic)
	// A record over the broker's 1 MiB limit fails; the run's transaction
	// aborts, so the line before it is not visible either.
	big := strings.Repeat("x", 1100000)
	if r := runKpax(t, b, "g\n"+big+"\n", "produce", "-txn", id, "-linger", "0s", topic); r.code == 0 {
		t.Fatalf("produce of a too large record in a transaction succeeded: %v", r)
	}
	want := []string{"a", "b", "c", "d", "e", "f"}
	if got := lines(mustKpax(t, b, "", "consume", "-e", "-read-committed", topic)); !equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
	all := lines(mustKpax(t, b, "", "consume", "-e", "-f", `%v\n`, topic))
	if len(all) < 6 || len(all) > 7 {
		t.Fatalf("read_uncommitted: %d records, want the 6 committed and at most the aborted g", len(all))
	}
	if r := runKpax(t, b, "x\n", "produce", "-txn-lines", "2", topic); r.code == 0 || !strings.Contains(r.stderr, "-txn-lines needs -txn") {
		t.Fatalf("-txn-lines without -txn: %v", r)
	}
	if r := runKpax(t, b, "x\n", "produce", "-txn", id, "-acks", "1", topic); r.code == 0 {
		t.Fatalf("-txn with -acks 1 accepted: %v", r)
	}
}
