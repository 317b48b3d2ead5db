package kpax

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fieldVersions reads a generated field's kafka struct tag.
type fieldVersions struct {
	versions, nullable string
	tag                int
	def                string // the value in the versions without the field, "" for the zero value
}

func parseKafkaTag(s string) fieldVersions {
	fv := fieldVersions{tag: -1}
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "versions":
			fv.versions = v
		case "nullable":
			fv.nullable = v
		case "tag":
			fv.tag, _ = strconv.Atoi(v)
		case "default":
			fv.def = v
		}
	}
	return fv
}

// inRange reports whether version v is in a range list like "0-2,5+".
func inRange(list string, v int16) bool {
	for _, r := range strings.Split(list, ",") {
		if r == "" {
			continue
		}
		if lo, ok := strings.CutSuffix(r, "+"); ok {
			n, _ := strconv.Atoi(lo)
			if int(v) >= n {
				return true
			}
			continue
		}
		lo, hi, found := strings.Cut(r, "-")
		if !found {
			hi = lo
		}
		a, _ := strconv.Atoi(lo)
		b, _ := strconv.Atoi(hi)
		if int(v) >= a && int(v) <= b {
			return true
		}
	}
	return false
}

// setDefault sets v to the literal of a kafka struct tag's default.
func setDefault(v reflect.Value, lit string) {
	switch v.Kind() {
	case reflect.Bool:
		b, err := strconv.ParseBool(lit)
		if err != nil {
			panic(err)
		}
		v.SetBool(b)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(lit, 0, v.Type().Bits())
		if err != nil {
			panic(err)
		}
		v.SetInt(n)
	case reflect.Uint16:
		n, err := strconv.ParseUint(lit, 0, 16)
		if err != nil {
			panic(err)
		}
		v.SetUint(n)
	default:
		panic("setDefault: unexpected kind " + v.Kind().String())
	}
}

// filler fills generated messages with random values, using only the fields
// that a version carries (as their kafka struct tags say), so that a round
// trip through that version must give back an equal value. A field the
// version lacks is left at its default: the zero value, or the tag's default=,
// which decoding must give back.
type filler struct {
	r *rand.Rand
	v int16
}

func (f *filler) fillStruct(sv reflect.Value, depth int) {
	st := sv.Type()
	for i := 0; i < st.NumField(); i++ {
		sf := st.Field(i)
		fv := parseKafkaTag(sf.Tag.Get("kafka"))
		if !inRange(fv.versions, f.v) {
			if fv.def != "" {
				setDefault(sv.Field(i), fv.def)
			}
			continue
		}
		if sf.Name == "UnknownTags" {
			if f.r.IntN(2) == 0 {
				var tags []TaggedField
				for _, tag := range []uint32{7, 42, 1000} {
					if f.r.IntN(2) == 0 {
						tags = append(tags, TaggedField{Tag: tag, Data: []byte{byte(tag), 1, 2}})
					}
				}
				if tags != nil {
					sv.Field(i).Set(reflect.ValueOf(tags))
				}
			}
			continue
		}
		nullable := inRange(fv.nullable, f.v) || fv.tag >= 0
		f.fill(sv.Field(i), nullable, depth)
	}
}

func (f *filler) fill(v reflect.Value, nullable bool, depth int) {
	if nullable && f.r.IntN(3) == 0 {
		return // leave nil: null, or an absent tagged field
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem(), false, depth)
		v.Set(p)
	case reflect.Array: // UUID
		for i := 0; i < v.Len(); i++ {
			v.Index(i).SetUint(uint64(f.r.Uint32() & 0xff))
		}
	case reflect.Struct:
		f.fillStruct(v, depth+1)
	case reflect.Slice:
		n := f.r.IntN(3)
		if depth > 4 {
			n = 0
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		if v.Type().Elem().Kind() == reflect.Uint8 {
			for i := 0; i < n; i++ {
				s.Index(i).SetUint(uint64(f.r.Uint32() & 0xff))
			}
		} else {
			for i := 0; i < n; i++ {
				f.fill(s.Index(i), false, depth+1)
			}
		}
		v.Set(s)
	case reflect.String:
		v.SetString([]string{"", "a", "topic-1", "ünïcode"}[f.r.IntN(4)])
	case reflect.Bool:
		v.SetBool(f.r.IntN(2) == 0)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.r.Uint64()) >> (64 - v.Type().Bits()))
	case reflect.Uint16:
		v.SetUint(uint64(f.r.Uint32() & 0xffff))
	case reflect.Float64:
		v.SetFloat(f.r.NormFloat64())
	default:
		panic("filler: unexpected kind " + v.Kind().String())
	}
}

// allMessages returns a new request and response of every API key.
func allMessages() []Message {
	var out []Message
	for _, key := range apiKeys() {
		req := NewRequest(key)
		out = append(out, req, req.NewResponse())
	}
	return out
}

// TestRoundTripEveryVersion encodes random values of every generated type at
// every version, decodes them and compares; it fails if any API or version
// was left out.
func TestRoundTripEveryVersion(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var apis, pairs int
	for _, msg := range allMessages() {
		typ := reflect.TypeOf(msg).Elem()
		if msg.MinVersion() > msg.MaxVersion() || msg.MinVersion() < 0 {
			t.Errorf("%s: versions %d-%d", typ.Name(), msg.MinVersion(), msg.MaxVersion())
		}
		apis++
		for v := msg.MinVersion(); v <= msg.MaxVersion(); v++ {
			pairs++
			for round := 0; round < 8; round++ {
				x := reflect.New(typ)
				(&filler{r: r, v: v}).fillStruct(x.Elem(), 0)
				in := x.Interface().(Message)
				b := in.AppendTo(nil, v)
				out := reflect.New(typ).Interface().(Message)
				if err := out.Decode(b, v); err != nil {
					t.Fatalf("%s v%d: decode: %v", typ.Name(), v, err)
				}
				if diff := cmp.Diff(in, out); diff != "" {
					t.Fatalf("%s v%d: round trip differs (-in +out):\n%s", typ.Name(), v, diff)
				}
				if b2 := out.AppendTo(nil, v); string(b2) != string(b) {
					t.Fatalf("%s v%d: re-encoding differs", typ.Name(), v)
				}
			}
		}
	}
	// Every API of the merged protocol guides (Kafka 3.9.2 and 4.4.0), each with a request and a response.
	const wantAPIs, wantPairs = 86, 2 * 347
	t.Logf("round-tripped %d message types (%d APIs), %d type×version pairs", apis, apis/2, pairs)
	if apis != 2*wantAPIs || pairs != wantPairs {
		t.Errorf("covered %d types and %d type×version pairs, want %d and %d", apis, pairs, 2*wantAPIs, wantPairs)
	}
}

// TestDecodeDefaults: a field that the decoded version lacks gets the value
// Kafka's message definitions give it, not Go's zero value; a version that
// carries the field gives what was sent. The expectations are written out
// here, apart from the overlay they check.
func TestDecodeDefaults(t *testing.T) {
	const noOps = -2147483648 // authorized operations not requested
	fetchResp := func() Message {
		return &FetchResponse{Responses: []FetchResponseItem{{Partitions: []FetchResponseItemPartition{{
			LastStableOffset: 7, LogStartOffset: 8, PreferredReadReplica: 2}}}}}
	}
	fetchPart := func(m Message) FetchResponseItemPartition {
		return m.(*FetchResponse).Responses[0].Partitions[0]
	}
	produceResp := func() Message {
		return &ProduceResponse{Responses: []ProduceResponseItem{{PartitionResponses: []ProduceResponseItemPartitionResponse{{
			LogAppendTimeMs: 7, LogStartOffset: 8}}}}}
	}
	producePart := func(m Message) ProduceResponseItemPartitionResponse {
		return m.(*ProduceResponse).Responses[0].PartitionResponses[0]
	}
	metaResp := func() Message {
		return &MetadataResponse{ControllerID: 3, ClusterAuthorizedOperations: 5, Topics: []MetadataResponseTopic{{
			TopicAuthorizedOperations: 6, Partitions: []MetadataResponseTopicPartition{{LeaderEpoch: 4}}}}}
	}
	metaTopic := func(m Message) MetadataResponseTopic { return m.(*MetadataResponse).Topics[0] }
	listResp := func() Message {
		return &ListOffsetsResponse{Topics: []ListOffsetsResponseTopic{{Partitions: []ListOffsetsResponseTopicPartition{{
			Timestamp: 7, Offset: 8, LeaderEpoch: 9}}}}}
	}
	listPart := func(m Message) ListOffsetsResponseTopicPartition {
		return m.(*ListOffsetsResponse).Topics[0].Partitions[0]
	}
	fetchReq := func() Message {
		return &FetchRequest{ReplicaID: 3, MaxBytes: 100, SessionEpoch: 2, Topics: []FetchRequestTopic{{Partitions: []FetchRequestTopicPartition{{
			CurrentLeaderEpoch: 4, LastFetchedEpoch: 5, LogStartOffset: 6}}}}}
	}
	fetchReqPart := func(m Message) FetchRequestTopicPartition { return m.(*FetchRequest).Topics[0].Partitions[0] }
	tests := []struct {
		name    string
		msg     func() Message
		version int16
		got     func(Message) any
		want    any
	}{
		{"Fetch response PreferredReadReplica v1", fetchResp, 1, func(m Message) any { return fetchPart(m).PreferredReadReplica }, int32(-1)},
		{"Fetch response PreferredReadReplica v10", fetchResp, 10, func(m Message) any { return fetchPart(m).PreferredReadReplica }, int32(-1)},
		{"Fetch response PreferredReadReplica v11", fetchResp, 11, func(m Message) any { return fetchPart(m).PreferredReadReplica }, int32(2)},
		{"Fetch response LastStableOffset v3", fetchResp, 3, func(m Message) any { return fetchPart(m).LastStableOffset }, int64(-1)},
		{"Fetch response LastStableOffset v4", fetchResp, 4, func(m Message) any { return fetchPart(m).LastStableOffset }, int64(7)},
		{"Fetch response LogStartOffset v4", fetchResp, 4, func(m Message) any { return fetchPart(m).LogStartOffset }, int64(-1)},
		{"Fetch response LogStartOffset v5", fetchResp, 5, func(m Message) any { return fetchPart(m).LogStartOffset }, int64(8)},
		{"Produce response LogAppendTimeMs v1", produceResp, 1, func(m Message) any { return producePart(m).LogAppendTimeMs }, int64(-1)},
		{"Produce response LogAppendTimeMs v2", produceResp, 2, func(m Message) any { return producePart(m).LogAppendTimeMs }, int64(7)},
		{"Produce response LogStartOffset v4", produceResp, 4, func(m Message) any { return producePart(m).LogStartOffset }, int64(-1)},
		{"Metadata response ControllerID v0", metaResp, 0, func(m Message) any { return m.(*MetadataResponse).ControllerID }, int32(-1)},
		{"Metadata response ControllerID v1", metaResp, 1, func(m Message) any { return m.(*MetadataResponse).ControllerID }, int32(3)},
		{"Metadata response LeaderEpoch v6", metaResp, 6, func(m Message) any { return metaTopic(m).Partitions[0].LeaderEpoch }, int32(-1)},
		{"Metadata response LeaderEpoch v7", metaResp, 7, func(m Message) any { return metaTopic(m).Partitions[0].LeaderEpoch }, int32(4)},
		{"Metadata response TopicAuthorizedOperations v7", metaResp, 7, func(m Message) any { return metaTopic(m).TopicAuthorizedOperations }, int32(noOps)},
		{"Metadata response ClusterAuthorizedOperations v7", metaResp, 7, func(m Message) any { return m.(*MetadataResponse).ClusterAuthorizedOperations }, int32(noOps)},
		{"Metadata response ClusterAuthorizedOperations v10", metaResp, 10, func(m Message) any { return m.(*MetadataResponse).ClusterAuthorizedOperations }, int32(5)},
		{"Metadata response ClusterAuthorizedOperations v11", metaResp, 11, func(m Message) any { return m.(*MetadataResponse).ClusterAuthorizedOperations }, int32(noOps)},
		{"ListOffsets response Timestamp v0", listResp, 0, func(m Message) any { return listPart(m).Timestamp }, int64(-1)},
		{"ListOffsets response Offset v0", listResp, 0, func(m Message) any { return listPart(m).Offset }, int64(-1)},
		{"ListOffsets response Offset v1", listResp, 1, func(m Message) any { return listPart(m).Offset }, int64(8)},
		{"ListOffsets response LeaderEpoch v3", listResp, 3, func(m Message) any { return listPart(m).LeaderEpoch }, int32(-1)},
		{"OffsetFetch response CommittedLeaderEpoch v4", func() Message {
			return &OffsetFetchResponse{Topics: []OffsetFetchResponseTopic{{Partitions: []OffsetFetchResponseTopicPartition{{CommittedLeaderEpoch: 3}}}}}
		}, 4, func(m Message) any { return m.(*OffsetFetchResponse).Topics[0].Partitions[0].CommittedLeaderEpoch }, int32(-1)},
		{"OffsetForLeaderEpoch response LeaderEpoch v0", func() Message {
			return &OffsetForLeaderEpochResponse{Topics: []OffsetForLeaderEpochResponseTopic{{Partitions: []OffsetForLeaderEpochResponseTopicPartition{{LeaderEpoch: 3}}}}}
		}, 0, func(m Message) any { return m.(*OffsetForLeaderEpochResponse).Topics[0].Partitions[0].LeaderEpoch }, int32(-1)},
		{"Fetch request ReplicaID v15", fetchReq, 15, func(m Message) any { return m.(*FetchRequest).ReplicaID }, int32(-1)},
		{"Fetch request ReplicaID v14", fetchReq, 14, func(m Message) any { return m.(*FetchRequest).ReplicaID }, int32(3)},
		{"Fetch request MaxBytes v2", fetchReq, 2, func(m Message) any { return m.(*FetchRequest).MaxBytes }, int32(0x7fffffff)},
		{"Fetch request SessionEpoch v6", fetchReq, 6, func(m Message) any { return m.(*FetchRequest).SessionEpoch }, int32(-1)},
		{"Fetch request CurrentLeaderEpoch v8", fetchReq, 8, func(m Message) any { return fetchReqPart(m).CurrentLeaderEpoch }, int32(-1)},
		{"Fetch request LastFetchedEpoch v11", fetchReq, 11, func(m Message) any { return fetchReqPart(m).LastFetchedEpoch }, int32(-1)},
		{"Fetch request LogStartOffset v4", fetchReq, 4, func(m Message) any { return fetchReqPart(m).LogStartOffset }, int64(-1)},
		{"ListOffsets request CurrentLeaderEpoch v3", func() Message {
			return &ListOffsetsRequest{Topics: []ListOffsetsRequestTopic{{Partitions: []ListOffsetsRequestTopicPartition{{CurrentLeaderEpoch: 3, MaxNumOffsets: 5}}}}}
		}, 3, func(m Message) any { return m.(*ListOffsetsRequest).Topics[0].Partitions[0].CurrentLeaderEpoch }, int32(-1)},
		{"ListOffsets request MaxNumOffsets v1", func() Message {
			return &ListOffsetsRequest{Topics: []ListOffsetsRequestTopic{{Partitions: []ListOffsetsRequestTopicPartition{{MaxNumOffsets: 5}}}}}
		}, 1, func(m Message) any { return m.(*ListOffsetsRequest).Topics[0].Partitions[0].MaxNumOffsets }, int32(1)},
		{"OffsetCommit request GenerationIDOrMemberEpoch v0", func() Message { return &OffsetCommitRequest{GenerationIDOrMemberEpoch: 3} },
			0, func(m Message) any { return m.(*OffsetCommitRequest).GenerationIDOrMemberEpoch }, int32(-1)},
		{"OffsetCommit request CommittedLeaderEpoch v5", func() Message {
			return &OffsetCommitRequest{Topics: []OffsetCommitRequestTopic{{Partitions: []OffsetCommitRequestTopicPartition{{CommittedLeaderEpoch: 3}}}}}
		}, 5, func(m Message) any { return m.(*OffsetCommitRequest).Topics[0].Partitions[0].CommittedLeaderEpoch }, int32(-1)},
		{"Metadata request AllowAutoTopicCreation v3", func() Message { return &MetadataRequest{} },
			3, func(m Message) any { return m.(*MetadataRequest).AllowAutoTopicCreation }, true},
		{"Metadata request AllowAutoTopicCreation v4", func() Message { return &MetadataRequest{} },
			4, func(m Message) any { return m.(*MetadataRequest).AllowAutoTopicCreation }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.msg()
			out := reflect.New(reflect.TypeOf(in).Elem()).Interface().(Message)
			if err := out.Decode(in.AppendTo(nil, tt.version), tt.version); err != nil {
				t.Fatal(err)
			}
			if got := tt.got(out); got != tt.want {
				t.Errorf("decoded %v (%T), want %v", got, got, tt.want)
			}
		})
	}
}

// TestDecodeTruncated decodes every prefix of valid encodings: each must
// give an error that wraps ErrMalformed (or decode, for prefixes that are
// themselves valid), never a panic.
func TestDecodeTruncated(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, msg := range allMessages() {
		typ := reflect.TypeOf(msg).Elem()
		for v := msg.MinVersion(); v <= msg.MaxVersion(); v++ {
			x := reflect.New(typ)
			(&filler{r: r, v: v}).fillStruct(x.Elem(), 0)
			b := x.Interface().(Message).AppendTo(nil, v)
			out := reflect.New(typ).Interface().(Message)
			for n := 0; n < len(b); n++ {
				if err := out.Decode(b[:n:n], v); err != nil && !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s v%d: prefix %d: error %v does not wrap ErrMalformed", typ.Name(), v, n, err)
				}
			}
		}
	}
}

func TestErrorForCode(t *testing.T) {
	tests := []struct {
		code      int16
		want      error
		name      string
		retriable bool
	}{
		{0, nil, "", false},
		{1, ErrOffsetOutOfRange, "OFFSET_OUT_OF_RANGE", false},
		{6, ErrNotLeaderOrFollower, "NOT_LEADER_OR_FOLLOWER", true},
		{-1, ErrUnknownServerError, "UNKNOWN_SERVER_ERROR", false},
		{32000, nil, "UNKNOWN_CODE_32000", false},
	}
	for _, tt := range tests {
		err := ErrorForCode(tt.code)
		if tt.code == 0 {
			if err != nil {
				t.Errorf("code 0: got %v, want nil", err)
			}
			continue
		}
		var ke *Error
		if !errors.As(err, &ke) || ke.Name() != tt.name || ke.Code() != tt.code || ke.Retriable() != tt.retriable {
			t.Errorf("code %d: got %#v", tt.code, err)
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("code %d: errors.Is(%v, %v) = false", tt.code, err, tt.want)
		}
		if IsRetriable(err) != tt.retriable {
			t.Errorf("code %d: IsRetriable = %v", tt.code, !tt.retriable)
		}
	}
}
