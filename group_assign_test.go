package kpax

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// groupHex reads hex with spaces and | separators, for golden bytes written by
// hand from the Java client's ConsumerProtocol schemas.
func groupHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGroupProtocolSubscriptionGolden(t *testing.T) {
	rack := "r"
	tests := []struct {
		name string
		sub  groupSubscription
		hex  string
	}{
		{"v0 empty user data (librdkafka)", groupSubscription{version: 0, topics: []string{"t1"}, userData: []byte{}, generation: -1},
			"0000 | 00000001 0002 7431 | 00000000"},
		{"v1 owned", groupSubscription{version: 1, topics: []string{"t1", "t2"}, owned: map[string][]int32{"t1": {0, 2}}, generation: -1},
			"0001 | 00000002 0002 7431 0002 7432 | ffffffff | 00000001 0002 7431 00000002 00000000 00000002"},
		{"v2 generation, sticky user data", groupSubscription{version: 2, topics: []string{"t1"}, userData: []byte{0, 0, 0, 5}, owned: map[string][]int32{}, generation: 5},
			"0002 | 00000001 0002 7431 | 00000004 00000005 | 00000000 | 00000005"},
		{"v3 rack", groupSubscription{version: 3, topics: []string{"t1"}, owned: map[string][]int32{"t1": {1}}, generation: 7, rack: &rack},
			"0003 | 00000001 0002 7431 | ffffffff | 00000001 0002 7431 00000001 00000001 | 00000007 | 0001 72"},
		{"v3 no rack", groupSubscription{version: 3, topics: []string{"t1"}, owned: map[string][]int32{}, generation: -1},
			"0003 | 00000001 0002 7431 | ffffffff | 00000000 | ffffffff | ffff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := groupHex(t, tt.hex)
			if got := tt.sub.appendTo(nil); !bytes.Equal(got, want) {
				t.Fatalf("encoded\n got %x\nwant %x", got, want)
			}
			got, err := decodeGroupSubscription(want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.sub, got, cmp.AllowUnexported(groupSubscription{})); diff != "" {
				t.Fatalf("decoded (-want +got):\n%s", diff)
			}
		})
	}
	// A newer version's extra fields come last and are ignored.
	b := append(groupHex(t, "0004 | 00000001 0002 7431 | ffffffff | 00000000 | 00000009 | ffff"), 1, 2, 3)
	s, err := decodeGroupSubscription(b)
	if err != nil || s.generation != 9 || !slices.Equal(s.topics, []string{"t1"}) {
		t.Fatalf("v4: %+v, %v", s, err)
	}
}

func TestGroupProtocolAssignmentGolden(t *testing.T) {
	a := groupAssignment{version: 3, parts: map[string][]int32{"t2": {1}, "t1": {1, 3}}}
	want := groupHex(t, "0003 | 00000002 0002 7431 00000002 00000001 00000003 0002 7432 00000001 00000001 | ffffffff")
	if got := a.appendTo(nil); !bytes.Equal(got, want) {
		t.Fatalf("encoded\n got %x\nwant %x", got, want)
	}
	got, err := decodeGroupAssignment(want)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got, cmp.AllowUnexported(groupAssignment{})); diff != "" {
		t.Fatalf("decoded (-want +got):\n%s", diff)
	}
	if got, err := decodeGroupAssignment(nil); err != nil || len(got.parts) != 0 {
		t.Fatalf("empty assignment: %+v %v", got, err)
	}
}

func TestGroupProtocolMalformed(t *testing.T) {
	for _, s := range []string{"", "00", "0000", "0000 7fffffff", "0001 00000001 0002 7431 ffffffff 7fffffff", "ffff 00000000 ffffffff", "0003 00000001 0005 7431"} {
		b := groupHex(t, s)
		if _, err := decodeGroupSubscription(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("subscription %q: err %v, want ErrMalformed", s, err)
		}
	}
	for _, s := range []string{"00", "0000 00000001", "0000 00000001 0002 7431 10000000", "ffff 00000000"} {
		if _, err := decodeGroupAssignment(groupHex(t, s)); !errors.Is(err, ErrMalformed) {
			t.Errorf("assignment %q: err %v, want ErrMalformed", s, err)
		}
	}
}

func FuzzGroupProtocol(f *testing.F) {
	f.Add(groupHex(f, "0003 | 00000001 0002 7431 | ffffffff | 00000001 0002 7431 00000001 00000001 | 00000007 | 0001 72"))
	f.Add(groupHex(f, "0003 | 00000002 0002 7431 00000002 00000001 00000003 0002 7432 00000001 00000001 | ffffffff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := decodeGroupSubscription(b); err == nil {
			if s2, err := decodeGroupSubscription(s.appendTo(nil)); err != nil || !slices.Equal(s.topics, s2.topics) {
				t.Fatalf("re-decode: %v", err)
			}
		}
		if a, err := decodeGroupAssignment(b); err == nil {
			if _, err := decodeGroupAssignment(a.appendTo(nil)); err != nil {
				t.Fatalf("re-decode: %v", err)
			}
		}
		stickyGeneration(b)
	})
}

func TestGroupMemberStickyUserData(t *testing.T) {
	// librdkafka's sticky user data: [topic [partition]] generation.
	ud := groupHex(t, "00000001 0002 7431 00000001 00000002 | 0000000c")
	m, err := groupMember("m", nil, (&groupSubscription{version: 1, topics: []string{"t1"}, userData: ud, owned: map[string][]int32{"t1": {2}}}).appendTo(nil))
	if err != nil || m.Generation != 12 || !slices.Equal(m.Owned["t1"], []int32{2}) {
		t.Fatalf("%+v %v", m, err)
	}
	// The Java cooperative-sticky user data: the generation alone.
	m, err = groupMember("m", ptr("i"), (&groupSubscription{version: 1, topics: []string{"t1"}, userData: []byte{0, 0, 0, 3}}).appendTo(nil))
	if err != nil || m.Generation != 3 || m.InstanceID != "i" {
		t.Fatalf("%+v %v", m, err)
	}
}

func members(subs ...string) []GroupMember {
	var ms []GroupMember
	for _, s := range subs {
		id, topics, _ := strings.Cut(s, ":")
		ms = append(ms, GroupMember{ID: id, Topics: strings.Split(topics, ","), Generation: -1})
	}
	return ms
}

type plan = map[string]map[string][]int32

func TestGroupBalancers(t *testing.T) {
	tests := []struct {
		name  string
		b     Balancer
		ms    []GroupMember
		parts map[string]int32
		want  plan
	}{
		{"range even", RangeBalancer(), members("b:t", "a:t"), map[string]int32{"t": 4},
			plan{"a": {"t": {0, 1}}, "b": {"t": {2, 3}}}},
		{"range extra to first", RangeBalancer(), members("a:t,u", "b:t,u", "c:t,u"), map[string]int32{"t": 5, "u": 2},
			plan{"a": {"t": {0, 1}, "u": {0}}, "b": {"t": {2, 3}, "u": {1}}, "c": {"t": {4}}}},
		{"range static first", RangeBalancer(), []GroupMember{{ID: "a", Topics: []string{"t"}}, {ID: "z", InstanceID: "i1", Topics: []string{"t"}}},
			map[string]int32{"t": 3}, plan{"z": {"t": {0, 1}}, "a": {"t": {2}}}},
		{"range unknown topic", RangeBalancer(), members("a:t,x"), map[string]int32{"t": 1},
			plan{"a": {"t": {0}}}},
		{"roundrobin", RoundRobinBalancer(), members("b:t0,t1", "a:t0,t1"), map[string]int32{"t0": 3, "t1": 2},
			plan{"a": {"t0": {0, 2}, "t1": {1}}, "b": {"t0": {1}, "t1": {0}}}},
		{"roundrobin skips non-subscribers", RoundRobinBalancer(), members("a:t0", "b:t0,t1", "c:t1"), map[string]int32{"t0": 3, "t1": 3},
			plan{"a": {"t0": {0, 2}}, "b": {"t0": {1}, "t1": {0, 2}}, "c": {"t1": {1}}}},
		{"sticky fresh", CooperativeStickyBalancer(), members("a:t", "b:t", "c:t"), map[string]int32{"t": 6},
			plan{"a": {"t": {0, 3}}, "b": {"t": {1, 4}}, "c": {"t": {2, 5}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.b.Balance(tt.ms, tt.parts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestGroupStickyKeepsOwned(t *testing.T) {
	ms := members("a:t", "b:t", "c:t")
	ms[0].Owned, ms[0].Generation = map[string][]int32{"t": {0, 1, 2, 3}}, 4
	ms[1].Owned, ms[1].Generation = map[string][]int32{"t": {4, 5, 6, 7}}, 4
	got := CooperativeStickyBalancer().Balance(ms, map[string]int32{"t": 8})
	moved := 0
	for _, m := range ms {
		for _, p := range got[m.ID]["t"] {
			if !slices.Contains(m.Owned["t"], p) {
				moved++
			}
		}
		if n := len(got[m.ID]["t"]); n < 2 || n > 3 {
			t.Fatalf("%s has %d partitions: %v", m.ID, n, got)
		}
	}
	if moved != 2 {
		t.Fatalf("%d partitions moved, want 2: %v", moved, got)
	}

	// Two claims of one partition: the higher generation keeps it; stale
	// claims of partitions that no longer exist are dropped.
	ms = members("a:t", "b:t")
	ms[0].Owned, ms[0].Generation = map[string][]int32{"t": {0, 1, 9}}, 3
	ms[1].Owned, ms[1].Generation = map[string][]int32{"t": {1}}, 5
	got = CooperativeStickyBalancer().Balance(ms, map[string]int32{"t": 2})
	if diff := cmp.Diff(plan{"a": {"t": {0}}, "b": {"t": {1}}}, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

// TestGroupBalancersProperties checks random groups: every partition of a
// subscribed topic goes to exactly one subscriber, and with identical
// subscriptions the counts differ by at most one.
func TestGroupBalancersProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 300 {
		nt, nm := 1+r.IntN(4), 1+r.IntN(7)
		parts := map[string]int32{}
		for i := range nt {
			parts[fmt.Sprint("t", i)] = int32(r.IntN(12))
		}
		same := iter%2 == 0
		var ms []GroupMember
		for i := range nm {
			m := GroupMember{ID: fmt.Sprint("m", i), Generation: int32(r.IntN(3))}
			for tn := range parts {
				if same || r.IntN(2) == 0 {
					m.Topics = append(m.Topics, tn)
				}
			}
			m.Owned = map[string][]int32{}
			for range r.IntN(4) {
				tn := fmt.Sprint("t", r.IntN(nt))
				m.Owned[tn] = append(m.Owned[tn], int32(r.IntN(14)))
			}
			ms = append(ms, m)
		}
		for _, b := range []Balancer{RangeBalancer(), RoundRobinBalancer(), CooperativeStickyBalancer()} {
			got := b.Balance(ms, parts)
			seen := map[tpKey]string{}
			var counts []int
			for _, m := range ms {
				n := 0
				for tn, ps := range got[m.ID] {
					if !subscribes(&m, tn) {
						t.Fatalf("%s: %s got unsubscribed %s", b.Protocol(), m.ID, tn)
					}
					for _, p := range ps {
						k := tpKey{tn, p}
						if o, dup := seen[k]; dup {
							t.Fatalf("%s: %v to %s and %s", b.Protocol(), k, o, m.ID)
						}
						seen[k] = m.ID
						n++
					}
				}
				counts = append(counts, n)
			}
			for tn, n := range parts {
				subscribed := slices.ContainsFunc(ms, func(m GroupMember) bool { return subscribes(&m, tn) })
				for p := range n {
					if _, ok := seen[tpKey{tn, p}]; ok != subscribed {
						t.Fatalf("%s: %s/%d assigned %v, subscribed %v", b.Protocol(), tn, p, ok, subscribed)
					}
				}
			}
			if same && b.Protocol() != "range" && slices.Max(counts)-slices.Min(counts) > 1 {
				t.Fatalf("%s: unbalanced %v: %v", b.Protocol(), counts, got)
			}
		}
	}
}

// BenchmarkGroupBalance balances 1000 partitions (10 topics) among 100
// members: fresh, and after a member joined a balanced group.
func BenchmarkGroupBalance(b *testing.B) {
	parts := map[string]int32{}
	var topics []string
	for i := range 10 {
		t := fmt.Sprint("topic", i)
		parts[t] = 100
		topics = append(topics, t)
	}
	fresh := make([]GroupMember, 100)
	for i := range fresh {
		fresh[i] = GroupMember{ID: fmt.Sprintf("member-%03d", i), Topics: topics, Generation: -1}
	}
	for _, bal := range []Balancer{RangeBalancer(), RoundRobinBalancer(), CooperativeStickyBalancer()} {
		b.Run(bal.Protocol()+"/fresh", func(b *testing.B) {
			for range b.N {
				bal.Balance(fresh, parts)
			}
		})
	}
	plan := CooperativeStickyBalancer().Balance(fresh[:99], parts)
	joined := slices.Clone(fresh)
	for i := range joined[:99] {
		joined[i].Owned, joined[i].Generation = plan[joined[i].ID], 5
	}
	b.Run("cooperative-sticky/joined", func(b *testing.B) {
		for range b.N {
			CooperativeStickyBalancer().Balance(joined, parts)
		}
	})
}
