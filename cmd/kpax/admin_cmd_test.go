package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestCLIAdminCommands runs the commands built on the admin API against the
// test broker: configs, topic add-partitions, delete-records, group
// reset-offsets and delete-offsets, acl, request, metadata -J, offsets -J,
// apiversions and -V.
func TestCLIAdminCommands(t *testing.T) {
	b := testBroker(t)
	topic := newTopic(t, b, 1)
	mustKpax(t, b, "a\nb\nc\nd\n", "produce", topic)

	mustKpax(t, b, "", "configs", "set", "topic", topic, "retention.ms=7200000")
	if out := mustKpax(t, b, "", "configs", "get", "topic", topic); !strings.Contains(out, "retention.ms") || !strings.Contains(out, "7200000") {
		t.Fatalf("configs get: %q", out)
	}
	var cfgs []struct {
		Name   string  `json:"name"`
		Value  *string `json:"value"`
		Source string  `json:"source"`
	}
	if err := json.Unmarshal([]byte(mustKpax(t, b, "", "configs", "get", "-J", "topic", topic, "retention.ms")), &cfgs); err != nil || len(cfgs) != 1 || *cfgs[0].Value != "7200000" {
		t.Fatalf("configs get -J: %v %+v", err, cfgs)
	}
	mustKpax(t, b, "", "configs", "set", "-delete", "retention.ms=", "topic", topic)
	if r := runKpax(t, b, "", "configs", "set", "topic", topic, "no.such.config=1"); r.code != 1 || !strings.Contains(r.stderr, "INVALID_CONFIG") {
		t.Fatalf("configs set unknown: %v", r)
	}
	if r := runKpax(t, b, "", "configs", "get", "table", "x"); r.code != 2 {
		t.Fatalf("configs get table: %v", r)
	}

	if out := mustKpax(t, b, "", "topic", "add-partitions", "-n", "2", topic); out != fmt.Sprintf("topic %q now has 3 partitions\n", topic) {
		t.Fatalf("add-partitions: %q", out)
	}
	if out := mustKpax(t, b, "", "delete-records", topic+":0=2"); !strings.Contains(out, "now starts at offset 2") {
		t.Fatalf("delete-records: %q", out)
	}

	var offsets []struct {
		Partition int32 `json:"partition"`
		Earliest  int64 `json:"earliest"`
		Latest    int64 `json:"latest"`
		At        int64 `json:"at"`
	}
	if err := json.Unmarshal([]byte(mustKpax(t, b, "", "offsets", "-J", "-at", "0", topic)), &offsets); err != nil || len(offsets) != 3 ||
		offsets[0].Earliest != 2 || offsets[0].Latest != 4 || offsets[0].At != 2 || offsets[2].At != -1 {
		t.Fatalf("offsets -J after delete-records: %v %+v", err, offsets)
	}

	group := "g-" + topic
	if r := runKpax(t, b, "", "group", "reset-offsets", "-to", "latest", "-execute", group); r.code != 2 || !strings.Contains(r.stderr, "no committed offsets") {
		t.Fatalf("reset-offsets of a group without offsets, no topics: %v", r)
	}
	plan := mustKpax(t, b, "", "group", "reset-offsets", "-to", "latest", group, topic+":0")
	if !strings.Contains(plan, "dry run") || !strings.Contains(plan, "4") {
		t.Fatalf("dry run: %q", plan)
	}
	if r := runKpax(t, b, "", "group", "offsets", group); !strings.Contains(r.stdout, "no committed offsets") {
		t.Fatalf("the dry run committed: %v", r)
	}
	mustKpax(t, b, "", "group", "reset-offsets", "-to", "latest", "-execute", group, topic+":0")
	mustKpax(t, b, "", "group", "reset-offsets", "-to", "-1", "-execute", group, topic+":0")
	if r := runKpax(t, b, "", "group", "reset-offsets", "-to", "-1", "-execute", group, topic+":0"); r.code != 0 {
		t.Fatalf("shift: %v", r)
	}
	if lag := mustKpax(t, b, "", "group", "lag", group); !strings.Contains(lag, "total lag 2\n") {
		t.Fatalf("lag after reset to latest and two shifts by -1:\n%s", lag)
	}
	mustKpax(t, b, "", "group", "reset-offsets", "-to", "1", "-execute", group, topic+":1")
	mustKpax(t, b, "", "group", "delete-offsets", group, topic+":0")
	var offs []struct {
		Partition int32 `json:"partition"`
		Offset    int64 `json:"offset"`
	}
	if err := json.Unmarshal([]byte(mustKpax(t, b, "", "group", "offsets", "-J", group)), &offs); err != nil || len(offs) != 1 || offs[0].Partition != 1 {
		t.Fatalf("offsets after delete-offsets: %v %+v", err, offs)
	}
	mustKpax(t, b, "", "group", "delete", group)

	if r := runKpax(t, b, "", "acl", "list"); r.code != 1 || !strings.Contains(r.stderr, "SECURITY_DISABLED") {
		t.Fatalf("acl list without an authorizer: %v", r)
	}
	if r := runKpax(t, b, "", "acl", "create", "-principal", "User:a", "-operation", "fly"); r.code != 2 {
		t.Fatalf("acl create -operation fly: %v", r)
	}

	var md struct {
		ControllerID int32 `json:"controllerid"`
		Topics       []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
				ISRs      []struct {
					ID int32 `json:"id"`
				} `json:"isrs"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(mustKpax(t, b, "", "metadata", "-J", topic)), &md); err != nil || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 3 || len(md.Topics[0].Partitions[0].ISRs) != 1 {
		t.Fatalf("metadata -J: %v %+v", err, md)
	}
	var avs []struct {
		Broker int32 `json:"broker"`
		APIs   []struct {
			Name string `json:"name"`
			Max  int16  `json:"max"`
			Use  int16  `json:"use"`
		} `json:"apis"`
	}
	if err := json.Unmarshal([]byte(mustKpax(t, b, "", "apiversions", "-J")), &avs); err != nil || len(avs) != 1 || len(avs[0].APIs) < 50 ||
		avs[0].APIs[1].Name != "Fetch" || avs[0].APIs[1].Use < 12 || avs[0].APIs[1].Use > avs[0].APIs[1].Max {
		t.Fatalf("apiversions -J: %v %+v", err, avs)
	}
	if out := mustKpax(t, b, "", "apiversions"); !strings.Contains(out, "USE") || !strings.Contains(out, "Fetch") {
		t.Fatalf("apiversions: %q", out)
	}
	var resp struct {
		Topics []struct {
			Name       string
			Partitions []struct{ PartitionIndex int32 }
		}
	}
	out := mustKpax(t, b, "", "request", "Metadata", fmt.Sprintf(`{"Topics":[{"Name":%q}]}`, topic))
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 3 {
		t.Fatalf("request Metadata: %v %s", err, out)
	}
	if r := runKpax(t, b, "", "request", "Metadata", `{"Nope":1}`); r.code != 2 || !strings.Contains(r.stderr, "Nope") {
		t.Fatalf("request with an unknown field: %v", r)
	}
	if r := runKpax(t, b, "", "request", "NoSuchAPI"); r.code != 2 {
		t.Fatalf("request NoSuchAPI: %v", r)
	}
	if out := mustKpax(t, "x:1", "", "-V"); !strings.HasPrefix(out, "kpax ") || !strings.Contains(out, "go1.") {
		t.Fatalf("-V: %q", out)
	}
}
