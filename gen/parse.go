package main

import (
	"fmt"
	"html"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// This file reads the Kafka protocol guide (HTML): the error code table, the
// API key table and, for every API, the BNF of each request and response
// version with the field descriptions that follow it.

// spec is what the protocol guide says.
type spec struct {
	errors   []specError
	apis     []specAPI
	messages []*specMessage // one per API, request or response, and version
}

type specError struct {
	name      string
	code      int
	retriable bool
	desc      string
}

type specAPI struct {
	name string
	key  int
}

// specMessage is one version of one request or response, as its BNF says.
type specMessage struct {
	api     string
	key     int
	kind    string // "Request" or "Response"
	version int
	root    *bnfStruct
	docs    []fieldDoc // field descriptions, in the order of the table
	// explicit: the BNF is in Kafka 4's notation, which states tagged
	// fields and nullable arrays and structures (the 3.x notation shows
	// neither, the overlay adds them).
	explicit bool
	unstable bool   // the guide marks the version unstable (Kafka 4)
	source   string // the guide it comes from, for messages
	renamed  string // the API's name in an older guide, when it differs (see merge.go)
}

type fieldDoc struct{ name, desc string }

// bnfStruct is a structure in one version's BNF: its fields in wire order and
// whether a tagged-field buffer ends it (a flexible version).
type bnfStruct struct {
	fields  []*bnfField
	hasTags bool
}

type bnfField struct {
	name     string
	array    bool
	compact  bool       // a compact array, "(x)" (Kafka 4 notation)
	nullable bool       // a nullable array or structure: "?(x)", "?[x]", "?{ }" (Kafka 4 notation)
	tag      int        // the tag of a tagged field, "x<tag: N>" (Kafka 4 notation); -1 when untagged
	prim     string     // the primitive type, e.g. "COMPACT_STRING"; "" for a structure
	sub      *bnfStruct // the structure, for a structure or an array of them
}

// primitives are the BNF's primitive type names.
var primitives = map[string]bool{
	"BOOLEAN": true, "INT8": true, "INT16": true, "INT32": true, "INT64": true,
	"UINT16": true, "UINT32": true, "FLOAT64": true, "UUID": true,
	"VARINT": true, "VARLONG": true,
	"STRING": true, "COMPACT_STRING": true, "NULLABLE_STRING": true, "COMPACT_NULLABLE_STRING": true,
	"BYTES": true, "COMPACT_BYTES": true, "NULLABLE_BYTES": true, "COMPACT_NULLABLE_BYTES": true,
	"RECORDS": true, "COMPACT_RECORDS": true, "NULLABLE_RECORDS": true, "COMPACT_NULLABLE_RECORDS": true,
}

var (
	reTag       = regexp.MustCompile(`<[^>]*>`)
	reRow       = regexp.MustCompile(`(?s)<tr>(.*?)</tr>`)
	reCell      = regexp.MustCompile(`(?s)<td>(.*?)</td>`)
	reAPISec    = regexp.MustCompile(`<a name="The_Messages_(\w+)">(\w+) API \(Key: (\d+)\):</a>`)
	reBNFHeader = regexp.MustCompile(`^(\w+) (Request|Response) \(Version: (\d+)\) =>(.*)$`)
	rePre       = regexp.MustCompile(`(?s)<pre>(.*?)</pre>(.*?)(?:</table>|$)`)
	reHeaderVer = regexp.MustCompile(`<b>(Request|Response) header version:</b> (\d+)`)
	reTagMark   = regexp.MustCompile(`<tag: (\d+)>`)
	reFieldTok  = regexp.MustCompile(`^(\??)([\[(]?)(\w+)([\])]?)(?:<tag:(\d+)>)?$`)
)

// unstableMark is how the Kafka 4 guide marks a version that brokers do not
// offer unless configured to (unstable.api.versions.enable).
const unstableMark = "This version of the request is unstable."

func cellText(s string) string {
	s = reTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	return strings.Join(strings.Fields(s), " ")
}

func parseSpec(doc string) (*spec, error) {
	sp := &spec{}
	var err error
	if sp.errors, err = parseErrorTable(doc); err != nil {
		return nil, err
	}
	if sp.apis, err = parseAPITable(doc); err != nil {
		return nil, err
	}
	secs := reAPISec.FindAllStringSubmatchIndex(doc, -1)
	if len(secs) == 0 {
		return nil, fmt.Errorf("no API sections (<a name=\"The_Messages_...\">) found")
	}
	for i, loc := range secs {
		name := doc[loc[4]:loc[5]]
		key, _ := strconv.Atoi(doc[loc[6]:loc[7]])
		end := len(doc)
		if i+1 < len(secs) {
			end = secs[i+1][0]
		}
		msgs, err := parseAPISection(name, key, doc[loc[1]:end])
		if err != nil {
			return nil, fmt.Errorf("API %s: %w", name, err)
		}
		sp.messages = append(sp.messages, msgs...)
		// The 3.9 key table leaves out the APIs of early-access features
		// (share groups, KIP-932) that have sections of their own: take them
		// from their sections.
		known := false
		for _, a := range sp.apis {
			if a.name == name {
				if a.key != key {
					return nil, fmt.Errorf("API %s: key %d in the table, %d in its section", name, a.key, key)
				}
				known = true
			}
		}
		if !known {
			sp.apis = append(sp.apis, specAPI{name: name, key: key})
		}
	}
	sort.Slice(sp.apis, func(i, j int) bool { return sp.apis[i].key < sp.apis[j].key })
	return sp, nil
}

// tableAfter returns the rows of the first table after the anchor id.
func tableAfter(doc, id string) ([][]string, error) {
	i := strings.Index(doc, `id="`+id+`"`)
	if i < 0 {
		return nil, fmt.Errorf("no section %q", id)
	}
	doc = doc[i:]
	j := strings.Index(doc, "</table>")
	if j < 0 {
		return nil, fmt.Errorf("section %q has no table", id)
	}
	var rows [][]string
	for _, r := range reRow.FindAllStringSubmatch(doc[:j], -1) {
		var cells []string
		for _, c := range reCell.FindAllStringSubmatch(r[1], -1) {
			cells = append(cells, cellText(c[1]))
		}
		if len(cells) > 0 {
			rows = append(rows, cells)
		}
	}
	return rows, nil
}

func parseErrorTable(doc string) ([]specError, error) {
	rows, err := tableAfter(doc, "protocol_error_codes")
	if err != nil {
		return nil, err
	}
	var out []specError
	for _, r := range rows {
		if len(r) != 4 {
			return nil, fmt.Errorf("error table row %q: want 4 cells", r)
		}
		code, err := strconv.Atoi(r[1])
		if err != nil {
			return nil, fmt.Errorf("error table row %q: %w", r, err)
		}
		out = append(out, specError{name: r[0], code: code, retriable: r[2] == "True", desc: r[3]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty error table")
	}
	return out, nil
}

func parseAPITable(doc string) ([]specAPI, error) {
	rows, err := tableAfter(doc, "protocol_api_keys")
	if err != nil {
		return nil, err
	}
	var out []specAPI
	for _, r := range rows {
		if len(r) != 2 {
			return nil, fmt.Errorf("API key table row %q: want 2 cells", r)
		}
		key, err := strconv.Atoi(r[1])
		if err != nil {
			return nil, fmt.Errorf("API key table row %q: %w", r, err)
		}
		out = append(out, specAPI{name: r[0], key: key})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty API key table")
	}
	return out, nil
}

// parseAPISection parses the BNFs of one API's section. Kafka 3.x writes a
// structure as its field names ("a [b] TAG_BUFFER"), Kafka 4 in braces with
// the arrays' kind, nullability and tags inline ("{ a (b) ?[c] d<tag: 0> }")
// and the header version after the BNF; the header says whether a version is
// flexible (request header 2), as TAG_BUFFER does in 3.x.
func parseAPISection(api string, key int, sec string) ([]*specMessage, error) {
	var out []*specMessage
	flexReq := map[int]bool{} // Kafka 4: request header 2, by version
	for _, m := range rePre.FindAllStringSubmatch(sec, -1) {
		text := reTagMark.ReplaceAllString(html.UnescapeString(m[1]), "<tag:$1>")
		lines := strings.Split(strings.TrimRight(text, "\n "), "\n")
		h := reBNFHeader.FindStringSubmatch(strings.TrimRight(lines[0], " "))
		if h == nil {
			return nil, fmt.Errorf("unexpected BNF header %q", lines[0])
		}
		if h[1] != api {
			return nil, fmt.Errorf("BNF %q inside the section of API %s", lines[0], api)
		}
		v, _ := strconv.Atoi(h[3])
		msg := &specMessage{api: api, key: key, kind: h[2], version: v}
		def := strings.Fields(h[4])
		var err error
		if len(def) > 0 && (def[0] == "{" || def[0] == "?{") {
			msg.explicit = true
			msg.unstable = strings.Contains(m[2], unstableMark)
			hv := reHeaderVer.FindStringSubmatch(m[2])
			if hv == nil || hv[1] != h[2] {
				return nil, fmt.Errorf("%s %s v%d: no %s header version after the BNF", api, h[2], v, h[2])
			}
			flexible := false
			if h[2] == "Request" {
				flexible = hv[2] == "2"
				flexReq[v] = flexible
			} else {
				// A response's header does not say (ApiVersions answers
				// with header 0 in every version): its request does.
				f, ok := flexReq[v]
				if !ok {
					return nil, fmt.Errorf("%s Response v%d comes before its request", api, v)
				}
				flexible = f
			}
			msg.root, err = parseBNF4(def, lines[1:], flexible)
		} else {
			msg.root, err = parseBNF(def, lines[1:])
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s v%d: %w", api, h[2], v, err)
		}
		for _, r := range reRow.FindAllStringSubmatch(m[2], -1) {
			c := reCell.FindAllStringSubmatch(r[1], -1)
			if len(c) == 2 {
				msg.docs = append(msg.docs, fieldDoc{name: cellText(c[0][1]), desc: cellText(c[1][1])})
			}
		}
		out = append(out, msg)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no BNF found")
	}
	return out, nil
}

// bnfLine is one "name => definition" line of a BNF block.
type bnfLine struct {
	indent int
	name   string
	def    []string
}

// parseBNF parses a structure's field list (tokens) whose definitions are
// lines, in order, depth first.
func parseBNF(tokens []string, text []string) (*bnfStruct, error) {
	var lines []bnfLine
	for _, l := range text {
		if strings.TrimSpace(l) == "" {
			continue
		}
		name, def, ok := strings.Cut(l, "=>")
		if !ok {
			return nil, fmt.Errorf("BNF line without '=>': %q", l)
		}
		indent := len(name) - len(strings.TrimLeft(name, " "))
		lines = append(lines, bnfLine{indent: indent, name: strings.TrimSpace(name), def: strings.Fields(def)})
	}
	pos := 0
	st, err := parseStruct(tokens, lines, &pos, -1)
	if err != nil {
		return nil, err
	}
	if pos != len(lines) {
		return nil, fmt.Errorf("BNF line %q defines no field of its structure", lines[pos].name)
	}
	return st, nil
}

func parseStruct(tokens []string, lines []bnfLine, pos *int, indent int) (*bnfStruct, error) {
	st := &bnfStruct{}
	for _, tok := range tokens {
		if tok == "TAG_BUFFER" {
			st.hasTags = true
			continue
		}
		f := &bnfField{name: tok, tag: -1}
		if strings.HasPrefix(tok, "[") && strings.HasSuffix(tok, "]") {
			f.array = true
			f.name = tok[1 : len(tok)-1]
		}
		if *pos >= len(lines) || lines[*pos].name != f.name {
			return nil, fmt.Errorf("field %q has no definition line", f.name)
		}
		l := lines[*pos]
		if l.indent <= indent {
			return nil, fmt.Errorf("field %q is not indented under its structure", f.name)
		}
		*pos++
		if len(l.def) == 1 && primitives[l.def[0]] {
			f.prim = l.def[0]
		} else {
			sub, err := parseStruct(l.def, lines, pos, l.indent)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			f.sub = sub
		}
		st.fields = append(st.fields, f)
	}
	return st, nil
}

// parseBNF4 parses a structure in Kafka 4's notation: def is "{ fields }"
// (or "?{ fields }" for a nullable structure, which only a field can be).
// Every structure of a flexible version ends in a tagged-field buffer.
func parseBNF4(def []string, text []string, flexible bool) (*bnfStruct, error) {
	var lines []bnfLine
	for _, l := range text {
		if strings.TrimSpace(l) == "" {
			continue
		}
		name, d, ok := strings.Cut(l, "=>")
		if !ok {
			return nil, fmt.Errorf("BNF line without '=>': %q", l)
		}
		indent := len(name) - len(strings.TrimLeft(name, " "))
		lines = append(lines, bnfLine{indent: indent, name: strings.TrimSpace(name), def: strings.Fields(d)})
	}
	if def[0] != "{" {
		return nil, fmt.Errorf("a message cannot be null: %q", strings.Join(def, " "))
	}
	pos := 0
	st, err := parseStruct4(def, lines, &pos, -1, flexible)
	if err != nil {
		return nil, err
	}
	if pos != len(lines) {
		return nil, fmt.Errorf("BNF line %q defines no field of its structure", lines[pos].name)
	}
	return st, nil
}

// parseStruct4 parses def, "{ tokens }" or "?{ tokens }", whose fields are
// defined by lines from *pos on, indented deeper than indent.
func parseStruct4(def []string, lines []bnfLine, pos *int, indent int, flexible bool) (*bnfStruct, error) {
	if len(def) < 2 || (def[0] != "{" && def[0] != "?{") || def[len(def)-1] != "}" {
		return nil, fmt.Errorf("structure %q is not in braces", strings.Join(def, " "))
	}
	st := &bnfStruct{hasTags: flexible}
	for _, tok := range def[1 : len(def)-1] {
		t := reFieldTok.FindStringSubmatch(tok)
		if t == nil || (t[2] == "") != (t[4] == "") || (t[2] == "[") != (t[4] == "]") || (t[1] == "?" && t[2] == "") {
			return nil, fmt.Errorf("unexpected field %q", tok)
		}
		f := &bnfField{name: t[3], array: t[2] != "", compact: t[2] == "(", nullable: t[1] == "?", tag: -1}
		key := f.name
		if t[5] != "" {
			f.tag, _ = strconv.Atoi(t[5])
			key += "<tag:" + t[5] + ">"
			if !flexible {
				return nil, fmt.Errorf("tagged field %q in a version that is not flexible", tok)
			}
		}
		if f.array && f.compact != flexible {
			return nil, fmt.Errorf("field %q: a %s array in a version that is %sflexible", tok,
				map[bool]string{true: "compact", false: "non-compact"}[f.compact], map[bool]string{true: "", false: "not "}[flexible])
		}
		if *pos >= len(lines) || lines[*pos].name != key {
			return nil, fmt.Errorf("field %q has no definition line", key)
		}
		l := lines[*pos]
		if l.indent <= indent {
			return nil, fmt.Errorf("field %q is not indented under its structure", key)
		}
		*pos++
		switch {
		case len(l.def) == 1 && primitives[l.def[0]]:
			f.prim = l.def[0]
			if f.nullable && !f.array {
				return nil, fmt.Errorf("field %q: a nullable marker on a primitive", tok)
			}
		case len(l.def) > 0 && l.def[0] == "?{":
			if f.array {
				return nil, fmt.Errorf("field %q: an array of nullable structures", tok)
			}
			f.nullable = true
			fallthrough
		default:
			sub, err := parseStruct4(l.def, lines, pos, l.indent, flexible)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			f.sub = sub
		}
		st.fields = append(st.fields, f)
	}
	return st, nil
}
