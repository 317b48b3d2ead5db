package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"h12.me/kpax"
)

// formatHelp documents -f.
const formatHelp = `output format of each record (kcat-like): %t topic, %p partition, %o offset,
%k key, %v (or %s) value, %K and %V their lengths (-1 for null), %T timestamp in Unix ms (-1 if none),
%h headers as name=value,..., %% a percent sign; \n \t \r \\ \0 escapes`

// recordWriter writes consumed records to the output.
type recordWriter interface {
	write(w *bufio.Writer, r *kpax.Record) error
}

// verb is one piece of a parsed -f format: a literal or a %-verb.
type verb struct {
	lit []byte
	c   byte // 0 for a literal
}

type formatWriter []verb

// parseFormat parses a -f format.
func parseFormat(s string) (formatWriter, error) {
	var f formatWriter
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			f = append(f, verb{lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("bad format %q: trailing \\", s)
			}
			i++
			switch s[i] {
			case 'n':
				lit = append(lit, '\n')
			case 't':
				lit = append(lit, '\t')
			case 'r':
				lit = append(lit, '\r')
			case '0':
				lit = append(lit, 0)
			case '\\':
				lit = append(lit, '\\')
			default:
				return nil, fmt.Errorf("bad format %q: unknown escape \\%c (want \\n \\t \\r \\0 \\\\)", s, s[i])
			}
		case '%':
			if i+1 == len(s) {
				return nil, fmt.Errorf("bad format %q: trailing %%", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit = append(lit, '%')
			case 't', 'p', 'o', 'k', 'v', 's', 'K', 'V', 'S', 'T', 'h':
				flush()
				f = append(f, verb{c: v})
			default:
				return nil, fmt.Errorf("bad format %q: unknown verb %%%c (want %%t %%p %%o %%k %%v %%K %%V %%T %%h %%%%)", s, v)
			}
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return f, nil
}

func (f formatWriter) write(w *bufio.Writer, r *kpax.Record) error {
	var num [24]byte
	for _, v := range f {
		switch v.c {
		case 0:
			w.Write(v.lit)
		case 't':
			w.WriteString(r.Topic)
		case 'p':
			w.Write(strconv.AppendInt(num[:0], int64(r.Partition), 10))
		case 'o':
			w.Write(strconv.AppendInt(num[:0], r.Offset, 10))
		case 'k':
			w.Write(r.Key)
		case 'v', 's':
			w.Write(r.Value)
		case 'K':
			w.Write(strconv.AppendInt(num[:0], bytesLen(r.Key), 10))
		case 'V', 'S':
			w.Write(strconv.AppendInt(num[:0], bytesLen(r.Value), 10))
		case 'T':
			w.Write(strconv.AppendInt(num[:0], timestampMs(r), 10))
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					w.WriteByte(',')
				}
				w.WriteString(h.Key)
				w.WriteByte('=')
				w.Write(h.Value)
			}
		}
	}
	return nil
}

func bytesLen(b []byte) int64 {
	if b == nil {
		return -1
	}
	return int64(len(b))
}

func timestampMs(r *kpax.Record) int64 {
	if r.Timestamp.IsZero() {
		return -1
	}
	return r.Timestamp.UnixMilli()
}

// jsonWriter writes one JSON object per record and line, with the field
// names of kcat -J:
//
//	{"topic":"t","partition":0,"offset":42,"tstype":"create","ts":1700000000000,
//	 "headers":["h","x"],"key":"k","payload":"v"}
//
// headers alternate names and values, as kcat's do. A null key, payload or
// header value is null. A key or payload that is not valid UTF-8 is given
// in base64 as "key_base64" or "payload_base64" instead (kcat prints the
// raw bytes, which is not JSON); a header value likewise as null, with the
// base64 in "headers_base64" at the same index. kcat's "broker" is left out:
// a record does not say which broker served it.
type jsonWriter struct{}

type jsonRecord struct {
	Topic         string            `json:"topic"`
	Partition     int32             `json:"partition"`
	Offset        int64             `json:"offset"`
	TsType        string            `json:"tstype"`
	Ts            int64             `json:"ts"`
	Headers       []json.RawMessage `json:"headers,omitempty"`
	HeadersBase64 map[int]string    `json:"headers_base64,omitempty"`
	Key           json.RawMessage   `json:"key,omitempty"`
	KeyBase64     string            `json:"key_base64,omitempty"`
	Payload       json.RawMessage   `json:"payload,omitempty"`
	PayloadBase64 string            `json:"payload_base64,omitempty"`
}

// jsonBytes returns b as a JSON string (null for nil), or when it is not
// UTF-8 as base64 (and no JSON string).
func jsonBytes(b []byte) (s json.RawMessage, b64 string) {
	switch {
	case b == nil:
		return json.RawMessage("null"), ""
	case utf8.Valid(b):
		s, _ = json.Marshal(string(b)) // a string always marshals
		return s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

func (jsonWriter) write(w *bufio.Writer, r *kpax.Record) error {
	jr := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, TsType: "create", Ts: timestampMs(r)}
	if r.Attrs.LogAppendTime() {
		jr.TsType = "logappend"
	}
	if jr.Ts < 0 {
		jr.TsType = "none"
	}
	jr.Key, jr.KeyBase64 = jsonBytes(r.Key)
	jr.Payload, jr.PayloadBase64 = jsonBytes(r.Value)
	for _, h := range r.Headers {
		name, _ := json.Marshal(h.Key) // a string always marshals
		v, b64 := jsonBytes(h.Value)
		if b64 != "" {
			if jr.HeadersBase64 == nil {
				jr.HeadersBase64 = map[int]string{}
			}
			jr.HeadersBase64[len(jr.Headers)+1] = b64
			v = json.RawMessage("null")
		}
		jr.Headers = append(jr.Headers, name, v)
	}
	b, err := json.Marshal(jr)
	if err != nil {
		return fmt.Errorf("record %s:%d@%d as JSON: %w", r.Topic, r.Partition, r.Offset, err)
	}
	w.Write(b)
	return w.WriteByte('\n')
}

// newRecordWriter picks the output of consume from -f, -K and -json.
func newRecordWriter(format, keyDelim string, asJSON bool) (recordWriter, error) {
	switch {
	case asJSON && format != "":
		return nil, usagef("-json (-J) and -f do not go together")
	case asJSON:
		return jsonWriter{}, nil
	case format == "" && keyDelim != "":
		format = "%k" + strings.ReplaceAll(strings.ReplaceAll(keyDelim, `\`, `\\`), "%", "%%") + `%v\n`
	case format == "":
		format = `%v\n`
	}
	f, err := parseFormat(format)
	if err != nil {
		return nil, usagef("-f: %v", err)
	}
	return f, nil
}
