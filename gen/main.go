// Command gen writes kpax's protocol code from the Kafka protocol guide.
//
//	go run ./gen -spec kafka-protocol-3.9.html -o protocol_gen.go
//
// The guide is the HTML page "Kafka protocol guide" of the Apache Kafka
// documentation (kafka.apache.org/39/protocol.html for 3.9) with its
// generated parts inlined: the primitive types, the error code table, the API
// key table and the BNF of every request and response version. gen parses the
// tables and the BNFs, merges each message's versions into one Go type per
// structure, adds what the HTML does not say from overlay.go, and writes
// gofmt'ed Go with an encoder and a decoder for every version. The output is
// written only when all of that succeeded; "-o -" writes to standard output.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	specPath := flag.String("spec", "", "path of the Kafka protocol guide HTML (required)")
	out := flag.String("o", "protocol_gen.go", `output file ("-" for standard output)`)
	flag.Parse()
	if *specPath == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gen -spec kafka-protocol.html [-o protocol_gen.go]")
		os.Exit(2)
	}
	if err := run(*specPath, *out, defaultOverlay()); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// run generates from the guide at specPath with the overlay ov and writes
// the result to out, through a temporary file renamed into place, so that out
// is left as it was when anything fails.
func run(specPath, out string, ov *overlay) error {
	doc, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	src, err := generate(string(doc), ov)
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

// generate turns the guide's HTML, completed by the overlay ov, into the Go
// source of protocol_gen.go.
func generate(doc string, ov *overlay) ([]byte, error) {
	sp, err := parseSpec(doc)
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
	return emit(sp, msgs)
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
