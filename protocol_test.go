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

// filler fills generated messages with random values, using only the fields
// that a version carries (as their kafka struct tags say), so that a round
// trip through that version must give back an equal value.
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
	// Every API of the protocol guide, each with a request and a response.
	const wantAPIs, wantPairs = 79, 2 * 305
	t.Logf("round-tripped %d message types (%d APIs), %d type×version pairs", apis, apis/2, pairs)
	if apis != 2*wantAPIs || pairs != wantPairs {
		t.Errorf("covered %d types and %d type×version pairs, want %d and %d", apis, pairs, 2*wantAPIs, wantPairs)
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
