package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"h12.me/kpax"
)

func formatRecord(t *testing.T, w recordWriter, r *kpax.Record) string {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	if err := w.write(bw, r); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	return buf.String()
}

func TestCLIFormat(t *testing.T) {
	r := &kpax.Record{
		Topic: "t", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v%1"),
		Timestamp: time.UnixMilli(1700000000123),
		Headers:   []kpax.Header{{Key: "a", Value: []byte("1")}, {Key: "b"}},
	}
	tests := []struct {
		format, keyDelim string
		json             bool
		rec              *kpax.Record
		want             string
	}{
		{"", "", false, r, "v%1\n"},
		{"", "=", false, r, "k=v%1\n"},
		{"", `%\`, false, r, `k%\v%1` + "\n"},
		{`%t %p %o %k %v %s %K %V %S %T %h %%\t\\\0\r\n`, "", false, r, "t 3 42 k v%1 v%1 1 3 3 1700000000123 a=1,b= %\t\\\x00\r\n"},
		{`%K %V %T|%k|%v|%h`, "", false, &kpax.Record{}, "-1 -1 -1|||"},
		{"", "", true, r, `{"topic":"t","partition":3,"offset":42,"tstype":"create","ts":1700000000123,"headers":["a","1","b",null],"key":"k","payload":"v%1"}` + "\n"},
		{"", "", true, &kpax.Record{Key: []byte{0xff}, Value: []byte{}}, `{"topic":"","partition":0,"offset":0,"tstype":"none","ts":-1,"key_base64":"/w==","payload":""}` + "\n"},
	}
	for _, tt := range tests {
		w, err := newRecordWriter(tt.format, tt.keyDelim, tt.json)
		if err != nil {
			t.Fatalf("%q: %v", tt.format, err)
		}
		if got := formatRecord(t, w, tt.rec); got != tt.want {
			t.Errorf("format %q -K %q -json %v: got %q, want %q", tt.format, tt.keyDelim, tt.json, got, tt.want)
		}
	}
	for _, bad := range []string{"%", "%x", `\`, `\q`, "ok %"} {
		if _, err := newRecordWriter(bad, "", false); err == nil || exitCode(err) != 2 {
			t.Errorf("format %q: err %v, want a usage error", bad, err)
		}
	}
	if _, err := newRecordWriter("%v", "", true); err == nil {
		t.Error("-json with -f: no error")
	}
}

func TestCLIParseStart(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"earliest", "earliest"},
		{"beginning", "earliest"},
		{"latest", "latest"},
		{"end", "latest"},
		{"17", "offset 17"},
		{"-5", "offset 95"}, // 5 before an end of 100
		{"-500", "offset 0"},
		{"@1700000000000", "time " + time.UnixMilli(1700000000000).Format(time.RFC3339Nano)},
		{"@2024-01-02T03:04:05Z", "time 2024-01-02T03:04:05Z"},
	}
	for _, tt := range tests {
		s, err := parseStart(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got := s.offset(100).String(); got != tt.want {
			t.Errorf("%q: got %s, want %s", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", "soon", "@", "@-1", "@yesterday", "-9223372036854775808", "1.5"} {
		if _, err := parseStart(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCLIParseTopicSpecs(t *testing.T) {
	specs, err := parseTopicSpecs([]string{"a", "b:1,2", "c.d-e:0"})
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, s := range specs {
		got += fmt.Sprintf("%s=%v;", s.topic, s.partitions)
	}
	if want := "a=[];b=[1 2];c.d-e=[0];"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, bad := range []string{":1", "a:", "a:x", "a:-1", "a:1,,2", "a:99999999999"} {
		if _, err := parseTopicSpecs([]string{bad}); err == nil || exitCode(err) != 2 {
			t.Errorf("%q: err %v, want a usage error", bad, err)
		}
	}
}

// assignment encodes a ConsumerProtocolAssignment v0.
func assignment(topics map[string][]int32) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	for t, ps := range topics {
		b = binary.BigEndian.AppendUint16(b, uint16(len(t)))
		b = append(b, t...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(ps)))
		for _, p := range ps {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
		}
	}
	return binary.BigEndian.AppendUint32(b, 0xffffffff) // null user data
}

func TestCLIDecodeAssignment(t *testing.T) {
	b := assignment(map[string][]int32{"events": {2, 0}})
	a, err := kpax.DecodeConsumerAssignment(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatAssignment(a); got != "events:0,2" {
		t.Fatalf("got %q", got)
	}
	// Every truncation, and hostile counts, give an error and no panic.
	for i := 1; i < len(b)-4; i++ {
		if _, err := kpax.DecodeConsumerAssignment(b[:i]); err == nil {
			t.Errorf("truncated to %d bytes: no error", i)
		}
	}
	for _, bad := range [][]byte{
		{0, 0, 0x7f, 0xff, 0xff, 0xff},
		{0, 0, 0, 0, 0, 1, 0x7f, 0xff, 'a'},
		{0, 0, 0, 0, 0, 1, 0, 1, 'a', 0x7f, 0xff, 0xff, 0xff},
		{0, 0, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := kpax.DecodeConsumerAssignment(bad); err == nil {
			t.Errorf("%x: no error", bad)
		}
	}
}

func FuzzDecodeAssignment(f *testing.F) {
	f.Add(assignment(map[string][]int32{"a": {1}, "bb": {0, 1, 2}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := kpax.DecodeConsumerAssignment(b)
		if err == nil {
			_ = formatAssignment(a)
		}
	})
}
