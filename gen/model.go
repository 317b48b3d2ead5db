package main

import (
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"
)

// This file merges the per-version BNFs of each message into one Go type per
// structure: a field exists in a set of versions, may be nullable in some of
// them, and keeps the wire order of every version.

// vset is a set of versions (bit v for version v).
type vset uint64

func (s vset) has(v int) bool { return s&(1<<uint(v)) != 0 }
func (s vset) min() int       { return bits.TrailingZeros64(uint64(s)) }
func (s vset) max() int       { return 63 - bits.LeadingZeros64(uint64(s)) }

func versionsFrom(min, max int) vset {
	var s vset
	for v := min; v <= max; v++ {
		s |= 1 << uint(v)
	}
	return s
}

// message is a request or response type for all its versions.
type message struct {
	api      string
	key      int
	kind     string
	versions vset
	flexible vset
	explicit vset // versions whose BNF states tagged fields and nullability (Kafka 4 notation)
	root     *structType
	renamed  string // the API's name in an older guide, when it differs (see merge.go)
}

func (m *message) goName() string { return m.api + m.kind }

type structType struct {
	goName   string
	fields   []*field
	versions vset
	minSize  int // the smallest encoding of one value, over all versions
}

type fieldKind int

const (
	kindPrim fieldKind = iota
	kindArray
	kindStruct
)

type field struct {
	name     string // as in the spec, snake_case
	goName   string
	kind     fieldKind
	prim     string // base primitive (COMPACT_ and NULLABLE_ stripped); element type of an array of primitives
	st       *structType
	versions vset
	nullable vset // versions in which the value may be null
	tag      int  // tagged field number, or -1
	doc      string
	def      string // the value (a Go literal) in the versions that lack the field, "" for the zero value
}

// basePrim strips the compact and nullable variants off a primitive type.
func basePrim(p string) (base string, compact, nullable bool) {
	if strings.HasPrefix(p, "COMPACT_") {
		compact = true
		p = strings.TrimPrefix(p, "COMPACT_")
	}
	if strings.HasPrefix(p, "NULLABLE_") {
		nullable = true
		p = strings.TrimPrefix(p, "NULLABLE_")
	}
	if p == "RECORDS" {
		nullable = true
	}
	return p, compact, nullable
}

// buildMessages merges the spec's per-version BNFs with the overlay.
func buildMessages(sp *spec, ov *overlay) ([]*message, error) {
	byName := map[string]*message{}
	var order []*message
	for _, sm := range sp.messages {
		id := sm.api + " " + sm.kind
		m := byName[id]
		if m == nil {
			m = &message{api: sm.api, key: sm.key, kind: sm.kind, root: &structType{goName: sm.api + sm.kind}}
			byName[id] = m
			order = append(order, m)
		}
		if m.versions.has(sm.version) {
			return nil, fmt.Errorf("%s v%d is listed twice", id, sm.version)
		}
		m.versions |= 1 << uint(sm.version)
		if sm.explicit {
			m.explicit |= 1 << uint(sm.version)
		}
		if sm.renamed != "" {
			m.renamed = sm.renamed
		}
		flexible := sm.root.hasTags
		if flexible {
			m.flexible |= 1 << uint(sm.version)
		}
		if err := mergeStruct(m.root, sm.root, sm.version, flexible, id); err != nil {
			return nil, fmt.Errorf("%s v%d: %w", id, sm.version, err)
		}
		attachDocs(m.root, sm.docs)
	}
	for _, m := range order {
		if m.versions != versionsFrom(m.versions.min(), m.versions.max()) {
			return nil, fmt.Errorf("%s: versions are not contiguous", m.goName())
		}
		if m.flexible != 0 && m.flexible != versionsFrom(m.flexible.min(), m.versions.max()) {
			return nil, fmt.Errorf("%s: flexible versions are not a tail", m.goName())
		}
	}
	if err := ov.apply(byName); err != nil {
		return nil, err
	}
	for _, m := range order {
		nameStructs(m.root, map[string]bool{})
		computeMinSize(m.root, m)
	}
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].key != order[j].key {
			return order[i].key < order[j].key
		}
		return order[i].kind == "Request"
	})
	return order, nil
}

// mergeStruct adds version v's fields of b into st, keeping wire order.
func mergeStruct(st *structType, b *bnfStruct, v int, flexible bool, where string) error {
	if b.hasTags != flexible {
		return fmt.Errorf("%s: tagged-field buffer does not match the message's flexibility", where)
	}
	st.versions |= 1 << uint(v)
	last := -1
	for _, bf := range b.fields {
		idx := -1
		for i, f := range st.fields {
			if f.name == bf.name && f.tag == bf.tag {
				idx = i
				break
			}
		}
		if bf.tag >= 0 && !flexible {
			return fmt.Errorf("%s.%s: a tagged field in a version that is not flexible", where, bf.name)
		}
		if idx < 0 {
			f := &field{name: bf.name, goName: goName(bf.name), tag: bf.tag}
			switch {
			case bf.sub != nil && bf.array:
				f.kind = kindArray
				f.st = &structType{}
			case bf.sub != nil:
				f.kind = kindStruct
				f.st = &structType{}
			case bf.array:
				f.kind = kindArray
			default:
				f.kind = kindPrim
			}
			if bf.tag >= 0 {
				// Tagged fields go after the others, in the order of their
				// first version: their place on the wire is their tag's.
				idx = len(st.fields)
				st.fields = append(st.fields, f)
			} else {
				idx = last + 1
				st.fields = append(st.fields[:idx], append([]*field{f}, st.fields[idx:]...)...)
			}
		}
		f := st.fields[idx]
		if bf.tag < 0 {
			if idx <= last {
				return fmt.Errorf("%s: field order differs between versions", where+"."+bf.name)
			}
			last = idx
		} else {
			for _, o := range st.fields {
				if o != f && o.tag == bf.tag && o.versions.has(v) {
					return fmt.Errorf("%s.%s: tag %d is also %s's", where, bf.name, bf.tag, o.name)
				}
			}
		}
		f.versions |= 1 << uint(v)
		if bf.nullable {
			f.nullable |= 1 << uint(v)
		}
		sub := where + "." + bf.name
		switch {
		case bf.sub != nil:
			if f.st == nil || (f.kind == kindArray) != bf.array {
				return fmt.Errorf("%s: changes kind between versions", sub)
			}
			if err := mergeStruct(f.st, bf.sub, v, flexible, sub); err != nil {
				return err
			}
		default:
			if f.st != nil || (f.kind == kindArray) != bf.array {
				return fmt.Errorf("%s: changes kind between versions", sub)
			}
			base, compact, nullable := basePrim(bf.prim)
			if f.prim != "" && f.prim != base {
				return fmt.Errorf("%s: type changes from %s to %s", sub, f.prim, base)
			}
			f.prim = base
			isVar := base == "STRING" || base == "BYTES" || base == "RECORDS"
			if isVar && compact != flexible {
				return fmt.Errorf("%s: %s in a version that is %sflexible", sub, bf.prim, map[bool]string{true: "", false: "not "}[flexible])
			}
			if nullable {
				if f.kind == kindArray {
					return fmt.Errorf("%s: arrays of nullable values are not supported", sub)
				}
				f.nullable |= 1 << uint(v)
			}
		}
	}
	return nil
}

// attachDocs gives fields the descriptions of the table that follows a BNF;
// rows are in depth-first order, so the first unused row of a name is taken.
func attachDocs(st *structType, docs []fieldDoc) {
	used := make([]bool, len(docs))
	var walk func(st *structType)
	walk = func(st *structType) {
		for _, f := range st.fields {
			for i, d := range docs {
				if !used[i] && d.name == f.name {
					used[i] = true
					if d.desc != "" {
						f.doc = d.desc
					}
					break
				}
			}
			if f.st != nil {
				walk(f.st)
			}
		}
	}
	walk(st)
}

// nameStructs names nested structures after their parent and field, in the
// singular for arrays when that does not clash, without stutter: when the
// field's words begin with the words the parent's name ends with, those
// words are written once (a "topic_partitions" field of FooTopic gives
// FooTopicPartition, not FooTopicTopicPartition). When nothing is left (the
// "responses" field of ProduceResponse), the structure is named Item: one
// item of its parent's list (ProduceResponseItem). A name taken by another
// structure gets a trailing "_".
func nameStructs(st *structType, taken map[string]bool) {
	taken[st.goName] = true
	for _, f := range st.fields {
		if f.st == nil {
			continue
		}
		part := f.goName
		if f.kind == kindArray {
			if s := singular(f.goName); !taken[st.goName+destutter(st.goName, s)] && !fieldNamed(st, s) {
				part = s
			}
		}
		n := st.goName + destutter(st.goName, part)
		for taken[n] {
			n += "_"
		}
		f.st.goName = n
		nameStructs(f.st, taken)
	}
}

// destutter returns part without its leading words that repeat the words
// parent ends with (longest overlap first), or "Item" when that leaves
// nothing. Words are CamelCase runs: "ID" and "IDs" are one word.
func destutter(parent, part string) string {
	pw, fw := camelWords(parent), camelWords(part)
	for n := min(len(pw), len(fw)); n > 0; n-- {
		if slices.Equal(pw[len(pw)-n:], fw[:n]) {
			if rest := strings.Join(fw[n:], ""); rest != "" {
				return rest
			}
			return "Item"
		}
	}
	return part
}

// camelWords splits a Go name into words at upper-case letters; a run of
// capitals is one word with a trailing lower-case "s" ("IDs").
func camelWords(s string) []string {
	var words []string
	start := 0
	for i := 1; i < len(s); i++ {
		up := s[i] >= 'A' && s[i] <= 'Z'
		prevUp := s[i-1] >= 'A' && s[i-1] <= 'Z'
		if up && !prevUp {
			words = append(words, s[start:i])
			start = i
		}
	}
	return append(words, s[start:])
}

func fieldNamed(st *structType, goName string) bool {
	for _, f := range st.fields {
		if f.goName == goName {
			return true
		}
	}
	return false
}

func singular(s string) string {
	switch {
	case strings.HasSuffix(s, "ies"):
		return strings.TrimSuffix(s, "ies") + "y"
	case strings.HasSuffix(s, "sses"), strings.HasSuffix(s, "xes"), strings.HasSuffix(s, "Status"):
		return s
	case strings.HasSuffix(s, "s") && !strings.HasSuffix(s, "ss"):
		return strings.TrimSuffix(s, "s")
	}
	return s
}

// primMinSize is the smallest encoding of a primitive.
func primMinSize(p string, flexible bool) int {
	switch p {
	case "BOOLEAN", "INT8":
		return 1
	case "INT16", "UINT16":
		return 2
	case "INT32", "UINT32":
		return 4
	case "INT64", "FLOAT64":
		return 8
	case "UUID":
		return 16
	case "VARINT", "VARLONG":
		return 1
	case "STRING":
		if flexible {
			return 1
		}
		return 2
	default: // BYTES, RECORDS
		if flexible {
			return 1
		}
		return 4
	}
}

// computeMinSize sets, for every structure, the smallest size of one
// encoded value over all its versions: the bound that keeps a hostile array
// count from allocating more than the received bytes can hold.
func computeMinSize(st *structType, m *message) {
	st.minSize = -1
	for v := st.versions.min(); v <= st.versions.max(); v++ {
		if !st.versions.has(v) {
			continue
		}
		size := sizeAt(st, v, m.flexible.has(v))
		if st.minSize < 0 || size < st.minSize {
			st.minSize = size
		}
	}
	for _, f := range st.fields {
		if f.st != nil {
			computeMinSize(f.st, m)
		}
	}
}

func sizeAt(st *structType, v int, flexible bool) int {
	n := 0
	if flexible {
		n++ // the tagged-field count
	}
	for _, f := range st.fields {
		if !f.versions.has(v) || f.tag >= 0 {
			continue
		}
		switch {
		case f.kind == kindArray && flexible:
			n++
		case f.kind == kindArray:
			n += 4
		case f.kind == kindStruct && f.nullable.has(v):
			n++
		case f.kind == kindStruct:
			n += sizeAt(f.st, v, flexible)
		default:
			n += primMinSize(f.prim, flexible)
		}
	}
	return n
}

// initialisms are the words written in capitals in Go names.
var initialisms = map[string]string{"id": "ID", "ids": "IDs", "uuid": "UUID", "isr": "ISR", "url": "URL"}

func goName(snake string) string {
	var b strings.Builder
	for _, w := range strings.Split(snake, "_") {
		if w == "" {
			continue
		}
		if s, ok := initialisms[w]; ok {
			b.WriteString(s)
			continue
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}
