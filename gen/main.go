// Command gen writes kpax's protocol code from the Kafka protocol guide.
//
//	go run ./gen -spec kafka-protocol-3.9.2.html -spec kafka-protocol-4.4.0.html -o protocol_gen.go
//
// The guide is the HTML page "Kafka protocol guide" of the Apache Kafka
// documentation with its generated parts: the primitive types, the error
// code table, the API key table and the BNF of every request and response
// version. scripts/spec.sh VERSION prints those parts from the kafka-clients
// jar of that release into a cache outside the tree. gen parses the tables
// and the BNFs (in Kafka 3.x's notation or Kafka 4's), merges the guides
// given oldest first (merge.go: old versions from the older guide, the rest
// from the newest), merges each message's versions into one Go type per
// structure, adds what the HTML does not say from overlay.go, and writes
// gofmt'ed Go with an encoder and a decoder for every version. The output is
// written only when all of that succeeded; "-o -" writes to standard output.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// specFlags is the -spec flag, given once per guide.
type specFlags []string

func (s *specFlags) String() string     { return strings.Join(*s, ",") }
func (s *specFlags) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var specs specFlags
	flag.Var(&specs, "spec", "path of a Kafka protocol guide HTML (required; repeat it, oldest release first, to merge guides)")
	out := flag.String("o", "protocol_gen.go", `output file ("-" for standard output)`)
	flag.Parse()
	if len(specs) == 0 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gen -spec kafka-protocol.html [-spec newer.html ...] [-o protocol_gen.go]")
		os.Exit(2)
	}
	if err := run(specs, *out, defaultOverlay()); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// run generates from the guides at specPaths (oldest first) with the
// overlay ov and writes the result to out, through a temporary file renamed
// into place, so that out is left as it was when anything fails.
func run(specPaths []string, out string, ov *overlay) error {
	var docs []namedDoc
	for _, p := range specPaths {
		doc, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		docs = append(docs, namedDoc{name: filepath.Base(p), doc: string(doc)})
	}
	src, err := generate(ov, docs...)
	if err != nil {
		return err
	}
	if out == "-" {
		_, err = os.Stdout.Write(src)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".gen-*.go")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(src); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// namedDoc is a guide's HTML and its name (the file's), for messages.
type namedDoc struct{ name, doc string }

// generate turns the guides' HTML, oldest first, completed by the overlay
// ov, into the Go source of protocol_gen.go.
func generate(ov *overlay, docs ...namedDoc) ([]byte, error) {
	var specs []namedSpec
	for _, d := range docs {
		sp, err := parseSpec(d.doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		specs = append(specs, namedSpec{name: d.name, sp: sp})
	}
	sp, err := mergeSpecs(specs)
	if err != nil {
		return nil, err
	}
	msgs, err := buildMessages(sp, ov)
	if err != nil {
		return nil, err
	}
	if err := checkComplete(sp, msgs); err != nil {
		return nil, err
	}
	return emit(sp, msgs, ov.routes)
}

// checkComplete makes sure every API of the key table has a request and a
// response with the same versions.
func checkComplete(sp *spec, msgs []*message) error {
	have := map[string]*message{}
	for _, m := range msgs {
		have[m.goName()] = m
	}
	for _, a := range sp.apis {
		req, resp := have[a.name+"Request"], have[a.name+"Response"]
		if req == nil || resp == nil {
			return fmt.Errorf("API %s (key %d) lacks its request or response BNF", a.name, a.key)
		}
		if req.key != a.key {
			return fmt.Errorf("API %s: key %d in the table, %d in its section", a.name, a.key, req.key)
		}
		if req.versions != resp.versions {
			return fmt.Errorf("API %s: request versions %s, response versions %s", a.name,
				vrange(req.versions, 63), vrange(resp.versions, 63))
		}
	}
	if len(msgs) != 2*len(sp.apis) {
		return fmt.Errorf("%d messages for %d APIs", len(msgs), len(sp.apis))
	}
	return nil
}
