package kpax

//go:generate make --no-print-directory generate

// protocol_gen.go is generated from the Kafka protocol guides of two
// releases, merged: 3.9.2, the last that lists every version back to v0, and
// the newest 4.x (the Makefile's KAFKA_NEWEST), for everything 4.x lists.
// scripts/spec.sh prints a guide's generated parts (primitive types, error
// codes, API keys, the BNF of every message version) from that release's
// kafka-clients jar into a cache outside the tree; `make generate` (which
// go generate runs) feeds them to gen/. gen/merge.go says how the guides
// are merged.

import (
	"encoding/binary"
	"fmt"
)

// Message is a Kafka request or response body, of any version the protocol
// guide lists. Every generated type (ProduceRequest, FetchResponse, ...)
// implements it.
type Message interface {
	// APIKey returns the API key.
	APIKey() int16
	// MinVersion and MaxVersion return the range of versions this package
	// can encode and decode.
	MinVersion() int16
	MaxVersion() int16
	// IsFlexible reports whether a version uses compact types and tagged fields.
	IsFlexible(version int16) bool
	// AppendTo appends the body encoded at the version to dst. Fields that
	// the version does not carry are left out.
	AppendTo(dst []byte, version int16) []byte
	// Decode replaces the message with src decoded at the version. Byte
	// slices in the message alias src. Malformed input gives an error that
	// wraps ErrMalformed, never a panic.
	Decode(src []byte, version int16) error
}

// Request is a Message that a client sends.
type Request interface {
	Message
	// NewResponse returns a new, empty response of the same API.
	NewResponse() Response
}

// Response is a Message that a broker sends back.
type Response interface {
	Message
	isResponse()
}

// requestHeaderVersion is the request header version used with a request:
// v2 (with tagged fields) for flexible versions, v1 otherwise, and v0 (no
// client ID) for ControlledShutdown v0.
func requestHeaderVersion(r Request, version int16) int {
	switch {
	case r.IsFlexible(version):
		return 2
	case r.APIKey() == apiKeyControlledShutdown && version == 0:
		return 0
	}
	return 1
}

// responseHeaderVersion is v1 (with tagged fields) for flexible versions,
// except that ApiVersions responses always use v0 so that a client can read
// them whatever version it asked for.
func responseHeaderVersion(r Request, version int16) int {
	if r.IsFlexible(version) && r.APIKey() != apiKeyApiVersions {
		return 1
	}
	return 0
}

// appendRequest appends a whole request frame: the size, the header and the
// body of r at the version.
func appendRequest(dst []byte, r Request, version int16, correlationID int32, clientID string) []byte {
	start := len(dst)
	dst = appendRequestHeader(dst, r, version, correlationID, clientID)
	dst = r.AppendTo(dst, version)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// appendRequestHeader appends a request frame's size (zero, for the caller
// to set once the body is appended) and the request header.
func appendRequestHeader(dst []byte, r Request, version int16, correlationID int32, clientID string) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = appendInt16(dst, r.APIKey())
	dst = appendInt16(dst, version)
	dst = appendInt32(dst, correlationID)
	if hv := requestHeaderVersion(r, version); hv >= 1 {
		dst = appendString(dst, clientID, false) // the client ID is never compact
		if hv >= 2 {
			dst = append(dst, 0) // no tagged fields
		}
	}
	return dst
}

// responseCorrelationID reads the correlation ID that starts every response
// frame (the frame without its size prefix).
func responseCorrelationID(frame []byte) (int32, error) {
	if len(frame) < 4 {
		return 0, fmt.Errorf("%w: response of %d bytes has no correlation ID", ErrMalformed, len(frame))
	}
	return int32(binary.BigEndian.Uint32(frame)), nil
}

// decodeResponse decodes a response frame (without its size prefix) to the
// request r sent at the version into resp.
func decodeResponse(frame []byte, r Request, version int16, resp Response) error {
	d := decoder{b: frame}
	d.int32() // the correlation ID, matched by the caller
	if responseHeaderVersion(r, version) >= 1 {
		for n := d.tagCount(); n > 0 && d.err == nil; n-- {
			d.tag()
		}
	}
	if d.err != nil {
		return fmt.Errorf("%s response header: %w", APIName(r.APIKey()), d.err)
	}
	if err := resp.Decode(frame[d.off:], version); err != nil {
		return fmt.Errorf("%s v%d response: %w", APIName(r.APIKey()), version, err)
	}
	return nil
}
