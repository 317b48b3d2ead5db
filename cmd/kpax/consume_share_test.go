package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestCLIShare: kpax consume -share prints records of a share group and
// acknowledges them: released ones come back to the next member, accepted
// ones do not. Flags that do not go with -share are usage errors.
func TestCLIShare(t *testing.T) {
	b := testBroker(t)
	topic := newTopic(t, b, 1)
	group := "kpax-cli-share-" + topic
	mustKpax(t, b, "", "configs", "set", "group", group, "share.auto.offset.reset=earliest")
	var in []string
	for i := range 10 {
		in = append(in, fmt.Sprintf("v%d", i))
	}
	mustKpax(t, b, strings.Join(in, "\n")+"\n", "produce", topic)
	first := lines(mustKpax(t, b, "", "consume", "-share", group, "-ack", "release", "-c", "4", "-timeout", "60s", topic))
	if len(first) != 4 {
		t.Fatalf("first consume printed %q", first)
	}
	all := lines(mustKpax(t, b, "", "consume", "-share", group, "-c", "10", "-timeout", "60s", topic))
	if !equal(sorted(all), sorted(in)) {
		t.Fatalf("second consume printed %q, want every record (the released ones back)", all)
	}
	if r := runKpax(t, b, "", "consume", "-share", group, "-c", "1", "-timeout", "8s", topic); r.code == 0 || r.stdout != "" {
		t.Errorf("third consume after acceptance: %v", r)
	}
	for _, args := range [][]string{
		{"-share", "g", "-group", "g"},
		{"-share", "g", "-e"},
		{"-share", "g", "-o", "latest"},
		{"-share", "g", "-ack", "maybe"},
		{"-ack", "release"},
	} {
		r := runKpax(t, b, "", append(append([]string{"consume"}, args...), topic)...)
		if r.code != 2 {
			t.Errorf("consume %q: %v, want a usage error (exit 2)", args, r)
		}
	}
}
