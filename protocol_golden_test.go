package kpax

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// unhex reads hex with spaces and | separators, for bytes written out field
// by field from the protocol guide.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func strp(s string) *string { return &s }

// TestGoldenBodies checks encodings worked out by hand from the BNFs of the
// protocol guide, for old, middle and flexible versions, both ways.
func TestGoldenBodies(t *testing.T) {
	epoch := int64(5)
	tests := []struct {
		name    string
		msg     Message
		version int16
		hex     string
	}{
		{"ApiVersionsRequest v0: empty", &ApiVersionsRequest{}, 0, ""},
		{"ApiVersionsRequest v3: compact strings + tags", &ApiVersionsRequest{ClientSoftwareName: "kpax", ClientSoftwareVersion: "1"}, 3,
			"05 6b706178 | 02 31 | 00"},
		// Fields a version lacks decode to their default (AllowAutoTopicCreation true before v4).
		{"MetadataRequest v0: one topic", &MetadataRequest{Topics: []MetadataRequestTopic{{Name: strp("a")}}, AllowAutoTopicCreation: true}, 0,
			"00000001 | 0001 61"},
		{"MetadataRequest v1: null topics = all", &MetadataRequest{AllowAutoTopicCreation: true}, 1, "ffffffff"},
		{"MetadataRequest v4: empty topics, auto-create", &MetadataRequest{Topics: []MetadataRequestTopic{}, AllowAutoTopicCreation: true}, 4,
			"00000000 | 01"},
		{"MetadataRequest v9: flexible null topics", &MetadataRequest{AllowAutoTopicCreation: true}, 9,
			"00 | 01 | 00 | 00 | 00"},
		{"ProduceRequest v3: message set bytes", &ProduceRequest{Acks: -1, TimeoutMs: 1000, TopicData: []ProduceRequestTopicData{{
			Name: "t", PartitionData: []ProduceRequestTopicDataPartitionData{{Index: 0, Records: []byte{0xaa}}}}}}, 3,
			"ffff | ffff | 000003e8 | 00000001 | 0001 74 | 00000001 | 00000000 | 00000001 aa"},
		{"ProduceRequest v9: flexible", &ProduceRequest{TransactionalID: strp("x"), Acks: 1, TimeoutMs: 30, TopicData: []ProduceRequestTopicData{{
			Name: "t", PartitionData: []ProduceRequestTopicDataPartitionData{{Index: 2, Records: []byte{0xaa, 0xbb}}}}}}, 9,
			"02 78 | 0001 | 0000001e | 02 | 02 74 | 02 | 00000002 | 03 aabb | 00 | 00 | 00"},
		{"ApiVersionsResponse v0", &ApiVersionsResponse{ApiKeys: []ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: 4}}}, 0,
			"0000 | 00000001 | 0012 0000 0004"},
		{"ApiVersionsResponse v3: a known tagged field", &ApiVersionsResponse{
			ApiKeys:                []ApiVersionsResponseApiKey{{ApiKey: 18, MaxVersion: 4}},
			FinalizedFeaturesEpoch: &epoch}, 3,
			"0000 | 02 0012 0000 0004 00 | 00000000 | 01 01 08 0000000000000005"},
		{"ApiVersionsResponse v3: known and unknown tags in tag order", &ApiVersionsResponse{
			ApiKeys:                []ApiVersionsResponseApiKey{},
			FinalizedFeaturesEpoch: &epoch,
			UnknownTags:            []TaggedField{{Tag: 4, Data: []byte{0x01}}, {Tag: 9, Data: []byte{}}}}, 3,
			"0000 | 01 | 00000000 | 03 | 01 08 0000000000000005 | 04 01 01 | 09 00"},
		{"FetchRequest v12: a tag unknown at this version stays unknown", &FetchRequest{
			ReplicaID: -1, MaxWaitMs: 500, MinBytes: 1, MaxBytes: 1 << 20, SessionEpoch: -1,
			Topics: []FetchRequestTopic{}, ForgottenTopicsData: []FetchRequestForgottenTopicsData{}, RackID: "",
			ClusterID:   strp("c"),
			UnknownTags: []TaggedField{{Tag: 1, Data: []byte{0xff}}}}, 12,
			"ffffffff | 000001f4 | 00000001 | 00100000 | 00 | 00000000 | ffffffff | 01 | 01 | 01 | 02 | 00 02 02 63 | 01 01 ff"},
		{"FetchResponse v4: null aborted transactions", &FetchResponse{ThrottleTimeMs: 1, Responses: []FetchResponseItem{{
			Topic: "t", Partitions: []FetchResponseItemPartition{{PartitionIndex: 0, HighWatermark: 10, LastStableOffset: 10,
				LogStartOffset: -1, PreferredReadReplica: -1, Records: []byte{0xcc}}}}}}, 4,
			"00000001 | 00000001 | 0001 74 | 00000001 | 00000000 | 0000 | 000000000000000a | 000000000000000a | ffffffff | 00000001 cc"},
		{"FetchResponse v12: diverging epoch and current leader", &FetchResponse{Responses: []FetchResponseItem{{
			Topic: "t", Partitions: []FetchResponseItemPartition{{
				PartitionIndex: 1, ErrorCode: 6, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, PreferredReadReplica: -1,
				DivergingEpoch: &FetchResponseItemPartitionDivergingEpoch{Epoch: 3, EndOffset: 7},
				CurrentLeader:  &FetchResponseItemPartitionCurrentLeader{LeaderID: 2, LeaderEpoch: 4}}}}}}, 12,
			"00000000 | 0000 | 00000000 | 02 | 02 74 | 02 | 00000001 | 0006 | ffffffffffffffff ffffffffffffffff ffffffffffffffff | 00 | ffffffff | 00 | " +
				"02 | 00 0d 00000003 0000000000000007 00 | 01 09 00000002 00000004 00 | 00 | 00"},
		{"OffsetCommitRequest v2: old retention field", &OffsetCommitRequest{GroupID: "g", GenerationIDOrMemberEpoch: 1, MemberID: "m", RetentionTimeMs: -1,
			Topics: []OffsetCommitRequestTopic{{Name: "t", Partitions: []OffsetCommitRequestTopicPartition{{PartitionIndex: 0, CommittedOffset: 42,
				CommittedLeaderEpoch: -1, CommitTimestamp: -1, CommittedMetadata: strp("")}}}}}, 2,
			"0001 67 | 00000001 | 0001 6d | ffffffffffffffff | 00000001 0001 74 | 00000001 00000000 000000000000002a 0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.hex)
			got := tt.msg.AppendTo(nil, tt.version)
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			back := NewRequest(tt.msg.APIKey()).(Message)
			if _, isResp := tt.msg.(Response); isResp {
				back = NewRequest(tt.msg.APIKey()).NewResponse()
			}
			if err := back.Decode(want, tt.version); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if diff := cmp.Diff(tt.msg, back); diff != "" {
				t.Fatalf("decode differs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGoldenFrames checks whole request frames: size, header version by
// flexibility, client ID.
func TestGoldenFrames(t *testing.T) {
	tests := []struct {
		name    string
		req     Request
		version int16
		hex     string
	}{
		{"ApiVersions v0, header v1", &ApiVersionsRequest{}, 0,
			"0000000d | 0012 0000 | 00000007 | 0003 6b7078"},
		{"Metadata v9, header v2", &MetadataRequest{}, 9,
			"00000013 | 0003 0009 | 00000007 | 0003 6b7078 | 00 | 00 00 00 00 00"},
		{"ControlledShutdown v0, header v0", &ControlledShutdownRequest{BrokerID: 1}, 0,
			"0000000c | 0007 0000 | 00000007 | 00000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendRequest(nil, tt.req, tt.version, 7, "kpx")
			if want := unhex(t, tt.hex); !bytes.Equal(got, want) {
				t.Fatalf("got %x\nwant %x", got, want)
			}
		})
	}
}

// TestDecodeResponseHeader checks that flexible responses skip the header's
// tagged fields, except ApiVersions, whose header is always v0.
func TestDecodeResponseHeader(t *testing.T) {
	var resp MetadataResponse
	frame := unhex(t, "00000007 | 00 | 00000000 | 01 | 00 | 00000000 | 01 | 00")
	if err := decodeResponse(frame, &MetadataRequest{}, 12, &resp); err != nil {
		t.Fatal(err)
	}
	var av ApiVersionsResponse
	frame = unhex(t, "00000007 | 0023 | 01 | 00000000 | 00")
	if err := decodeResponse(frame, &ApiVersionsRequest{}, 3, &av); err != nil {
		t.Fatal(err)
	}
	if av.ErrorCode != 35 {
		t.Fatalf("error code %d, want 35", av.ErrorCode)
	}
}
