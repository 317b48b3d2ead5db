package main

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"

	"h12.me/kpax"
)

// runRequest is kpax request API [JSON]: any request of the protocol, from
// JSON, with its response printed as JSON.
//
// The JSON mapping is encoding/json on the generated types of
// protocol_gen.go, nothing generated on top: field names are the Go field
// names (e.g. {"Topics":[{"Name":"t"}]}; encoding/json matches them without
// regard to case), []byte fields are base64, a UUID is an array of 16
// numbers, nullable fields are null or their value, and fields the
// negotiated version does not carry are ignored when sending.
func runRequest(ctx context.Context, e *env, args []string) error {
	fs := e.flags("request", "API [JSON]",
		"Sends one request of the Kafka protocol, given as JSON (the argument, or stdin when it is - or missing),\n"+
			"and prints the response as JSON. API is a name (Metadata, DescribeConfigs, ...) or a key (3).\n"+
			"The JSON is encoding/json of the generated Go type, e.g. kpax request Metadata '{\"Topics\":[{\"Name\":\"t\"}]}'.\n"+
			"The request goes where kpax routes it (leader, controller, coordinator, any broker), or to -broker.")
	broker := fs.Int("broker", -1, "send to this broker `ID` instead")
	maxVersion := fs.Int("max-version", -1, "send at this version at most (default: the highest both sides support)")
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("request: want API [JSON]")
	}
	req := requestFor(pos[0])
	if req == nil {
		return usagef("request: unknown API %q", pos[0])
	}
	body := "{}"
	if len(pos) == 2 && pos[1] != "-" {
		body = pos[1]
	} else if len(pos) == 2 {
		b, err := io.ReadAll(e.stdin)
		if err != nil {
			return err
		}
		body = string(b)
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return usagef("request %s: bad JSON for %T: %v", kpax.APIName(req.APIKey()), req, err)
	}
	var opts []kpax.Option
	if *maxVersion >= 0 {
		opts = append(opts, kpax.WithMaxVersion(req.APIKey(), int16(*maxVersion)))
	}
	ctx, cancel := e.deadline(ctx, adminTimeout)
	defer cancel()
	cl, err := e.client(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var resp kpax.Response
	if *broker >= 0 {
		resp, err = cl.RequestBroker(ctx, int32(*broker), req)
	} else {
		resp, err = cl.Request(ctx, req)
	}
	if err != nil {
		return timeoutErr(ctx, err)
	}
	return e.printJSON(resp)
}

// requestFor returns a new request of the API named by name or key.
func requestFor(name string) kpax.Request {
	if k, err := strconv.Atoi(name); err == nil && k >= 0 && k < 1<<15 {
		return kpax.NewRequest(int16(k))
	}
	for k := int16(0); k < 200; k++ {
		if n := kpax.APIName(k); n != "" && strings.EqualFold(n, name) {
			return kpax.NewRequest(k)
		}
	}
	return nil
}
