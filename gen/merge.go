package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// This file merges protocol guides of several Kafka releases into one spec.
//
// Kafka 4.0 dropped the oldest versions of many APIs (KIP-896) and its guide
// lists only what 4.x brokers speak; the 3.9 guide is the last that lists
// every version back to v0. The generator reads both, oldest first, and
// folds them:
//
//   - An API's versions below the newest guide's minimum come from the older
//     guide; the rest come from the newest guide. An API the newest guide
//     does not list (the ZooKeeper-era broker APIs: LeaderAndIsr,
//     UpdateMetadata, ...) comes whole from the older guide.
//   - A version both guides list must agree on the wire: the same fields in
//     the same order with the same types and array kinds. Only what the
//     older notation cannot show (tagged fields, nullable arrays and
//     structures) and field descriptions may differ. Anything else is an
//     error that names the API, version, field and what each guide says.
//   - APIs are matched by key; the name is the newest guide's. A key whose
//     name changed (74: ListClientMetricsResources in 3.x, ListConfigResources
//     since 4.1, KIP-1142) must be listed in renames, which also allows the
//     field names of the versions both list to differ (the wire is the
//     same); the generator emits the old names as deprecated aliases of the
//     new Request and Response types.
//   - Versions the newest guide marks unstable are left out: brokers do not
//     offer them unless configured to.
//   - Error codes: the newest guide's table, plus any code only an older one
//     lists; a code whose name changed is an error.

// renames are the API keys whose name changed between guides, old name to new.
var renames = map[string]string{
	"ListClientMetricsResources": "ListConfigResources", // key 74, KIP-1142 (Kafka 4.1)
}

// fieldRenames are fields renamed between guides in versions both list,
// keyed by message ("API Request"): old dotted path to the new name. The
// older guide's versions take the new name, so that the merged type has one
// field.
var fieldRenames = map[string]map[string]string{
	// KIP-848: v5+ carry the member epoch of a consumer group in the same field.
	"TxnOffsetCommit Request": {"generation_id": "generation_id_or_member_epoch"},
}

// earlyAccess are APIs whose versions in an older guide were early access
// and changed incompatibly before release: for the versions the newest guide
// also lists, the newest guide's definition is taken without comparison.
var earlyAccess = map[string]string{
	"ReadShareGroupStateSummary": "KIP-932 share groups were early access in Kafka 3.9; 4.0's v0 added leader_epoch",
}

// namedSpec is a parsed guide and where it comes from (for messages).
type namedSpec struct {
	name string
	sp   *spec
}

// mergeSpecs folds guides, oldest first, into one spec as described above.
func mergeSpecs(specs []namedSpec) (*spec, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("no protocol guide")
	}
	out := stable(specs[0].sp)
	for _, ns := range specs[1:] {
		var err error
		if out, err = mergeTwo(out, specs[0].name, stable(ns.sp), ns.name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// stable returns sp without the versions its guide marks unstable.
func stable(sp *spec) *spec {
	unstable := map[string]bool{}
	for _, m := range sp.messages {
		if m.unstable {
			unstable[fmt.Sprintf("%d %d", m.key, m.version)] = true
		}
	}
	out := &spec{errors: sp.errors, apis: sp.apis}
	for _, m := range sp.messages {
		if !unstable[fmt.Sprintf("%d %d", m.key, m.version)] {
			out.messages = append(out.messages, m)
		}
	}
	return out
}

func mergeTwo(old *spec, oldName string, nw *spec, newName string) (*spec, error) {
	out := &spec{}
	errs, err := mergeErrors(old.errors, nw.errors)
	if err != nil {
		return nil, err
	}
	out.errors = errs
	names := map[int]string{}
	for _, a := range nw.apis {
		names[a.key] = a.name
	}
	for _, a := range old.apis {
		n, ok := names[a.key]
		switch {
		case !ok:
			names[a.key] = a.name
		case n != a.name && renames[a.name] != n:
			return nil, fmt.Errorf("API key %d is %s in %s and %s in %s: list the rename in gen/merge.go if it is one",
				a.key, a.name, oldName, n, newName)
		}
	}
	for k, n := range names {
		out.apis = append(out.apis, specAPI{name: n, key: k})
	}
	sort.Slice(out.apis, func(i, j int) bool { return out.apis[i].key < out.apis[j].key })

	newMin := map[int]int{} // API key -> the newest guide's oldest version
	newMsg := map[string]*specMessage{}
	for _, m := range nw.messages {
		if v, ok := newMin[m.key]; !ok || m.version < v {
			newMin[m.key] = m.version
		}
		newMsg[fmt.Sprintf("%d %s %d", m.key, m.kind, m.version)] = m
	}
	var disagree []error
	used := map[string]bool{}
	for _, m := range old.messages {
		renameFields(m, used)
		min, inNew := newMin[m.key]
		if inNew && m.version >= min && earlyAccess[names[m.key]] != "" {
			continue
		}
		if inNew && m.version >= min {
			nm := newMsg[fmt.Sprintf("%d %s %d", m.key, m.kind, m.version)]
			if nm == nil {
				return nil, fmt.Errorf("%s %s v%d is in %s but not in %s", m.api, m.kind, m.version, oldName, newName)
			}
			renamed := m.api != nm.api
			if err := agree(m.root, nm.root, renamed, m.api+" "+m.kind); err != nil {
				disagree = append(disagree, fmt.Errorf("%s %s v%d: %s and %s disagree: %w", nm.api, m.kind, m.version, oldName, newName, err))
			}
			continue
		}
		c := *m
		if n := names[m.key]; n != m.api {
			c.api, c.renamed = n, m.api
		}
		if c.source == "" {
			c.source = oldName
		}
		out.messages = append(out.messages, &c)
	}
	oldAPIs := map[string]bool{}
	for _, a := range old.apis {
		oldAPIs[a.name] = true
	}
	for msg, paths := range fieldRenames {
		api, _, _ := strings.Cut(msg, " ")
		for path := range paths {
			if oldAPIs[api] && !used[msg+" "+path] {
				disagree = append(disagree, fmt.Errorf("merge: no version of %s in %s has the field %s to rename", msg, oldName, path))
			}
		}
	}
	if len(disagree) > 0 {
		return nil, errors.Join(disagree...)
	}
	for _, m := range nw.messages {
		c := *m
		if c.source == "" {
			c.source = newName
		}
		for _, o := range old.apis {
			if o.key == m.key && o.name != m.api {
				c.renamed = o.name
			}
		}
		out.messages = append(out.messages, &c)
	}
	// Keep each API's messages together, requests first, by version, so
	// that the newest guide's field descriptions are attached last.
	sort.SliceStable(out.messages, func(i, j int) bool {
		a, b := out.messages[i], out.messages[j]
		if a.key != b.key {
			return a.key < b.key
		}
		if a.kind != b.kind {
			return a.kind == "Request"
		}
		return a.version < b.version
	})
	return out, nil
}

// agree compares the wire format of one version as two guides write it:
// old may lack tagged fields and nullability of arrays and structures, which
// the newer notation states. renamed allows field names to differ.
func agree(old, nw *bnfStruct, renamed bool, where string) error {
	var nf []*bnfField
	for _, f := range nw.fields {
		if f.tag < 0 {
			nf = append(nf, f)
		}
	}
	var of []*bnfField
	for _, f := range old.fields {
		if f.tag < 0 {
			of = append(of, f)
		}
	}
	if old.hasTags != nw.hasTags {
		return fmt.Errorf("%s: flexible in one guide only", where)
	}
	for i := 0; i < len(of) || i < len(nf); i++ {
		if i >= len(of) || i >= len(nf) {
			return fmt.Errorf("%s: fields %s, then %s", where, bnfNames(of), bnfNames(nf))
		}
		o, n := of[i], nf[i]
		at := where + "." + n.name
		if o.name != n.name && !renamed {
			return fmt.Errorf("%s: field %d is %s, then %s", where, i, o.name, n.name)
		}
		if o.array != n.array || (o.sub == nil) != (n.sub == nil) {
			return fmt.Errorf("%s: array %v structure %v, then array %v structure %v", at, o.array, o.sub != nil, n.array, n.sub != nil)
		}
		if o.sub != nil {
			if err := agree(o.sub, n.sub, renamed, at); err != nil {
				return err
			}
			continue
		}
		ob, oc, on := basePrim(o.prim)
		nb, nc, nn := basePrim(n.prim)
		if ob != nb || oc != nc || on != nn {
			return fmt.Errorf("%s: %s, then %s", at, o.prim, n.prim)
		}
	}
	return nil
}

func bnfNames(fs []*bnfField) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.name)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func mergeErrors(old, nw []specError) ([]specError, error) {
	byCode := map[int]specError{}
	for _, e := range nw {
		byCode[e.code] = e
	}
	out := append([]specError(nil), nw...)
	for _, e := range old {
		n, ok := byCode[e.code]
		if !ok {
			out = append(out, e)
			continue
		}
		if n.name != e.name {
			return nil, fmt.Errorf("error code %d is %s, then %s", e.code, e.name, n.name)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].code < out[j].code })
	return out, nil
}

// renameFields gives the fields of m listed in fieldRenames their new names
// and records each renamed path in used.
func renameFields(m *specMessage, used map[string]bool) {
	for path, to := range fieldRenames[m.api+" "+m.kind] {
		st := m.root
		parts := strings.Split(path, ".")
		for i, name := range parts {
			var f *bnfField
			for _, c := range st.fields {
				if c.name == name {
					f = c
				}
			}
			if f == nil || (i < len(parts)-1 && f.sub == nil) {
				break // not in this version
			}
			if i == len(parts)-1 {
				f.name = to
				used[m.api+" "+m.kind+" "+path] = true
				break
			}
			st = f.sub
		}
	}
}
