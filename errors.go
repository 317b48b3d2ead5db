package kpax

import (
	"errors"
	"fmt"
)

// Error is a Kafka error code, as the protocol guide's error table defines
// it. Every known code has one value (ErrOffsetOutOfRange, ...), so
// errors.Is(err, kpax.ErrNotLeaderOrFollower) works through any wrapping.
// Code 0 (NONE) has no Error.
type Error struct {
	code      int16
	name      string
	retriable bool
	desc      string
}

// Code returns the numeric error code.
func (e *Error) Code() int16 { return e.code }

// Name returns the code's name in the protocol guide, e.g. "NOT_LEADER_OR_FOLLOWER".
func (e *Error) Name() string { return e.name }

// Retriable reports whether the guide marks the error as retriable: the same
// request may succeed later, typically after a metadata refresh.
func (e *Error) Retriable() bool { return e.retriable }

// Description returns the guide's description of the error.
func (e *Error) Description() string { return e.desc }

// Error returns "kafka: NAME (code): description".
func (e *Error) Error() string {
	if e.desc == "" {
		return fmt.Sprintf("kafka: %s (%d)", e.name, e.code)
	}
	return fmt.Sprintf("kafka: %s (%d): %s", e.name, e.code, e.desc)
}

// ErrorForCode returns the error of a Kafka error code: nil for 0, the
// package's value for a known code, and a new *Error named
// UNKNOWN_CODE_<n> for a code this package does not know.
func ErrorForCode(code int16) error {
	if code == 0 {
		return nil
	}
	if e := errorForCode(code); e != nil {
		return e
	}
	return &Error{code: code, name: fmt.Sprintf("UNKNOWN_CODE_%d", code)}
}

// IsRetriable reports whether err is, or wraps, a retriable Kafka error.
func IsRetriable(err error) bool {
	var ke *Error
	return errors.As(err, &ke) && ke.retriable
}

// Errors of the client itself, as opposed to Kafka error codes.
var (
	// ErrClientClosed is returned by calls on a closed Client, and fails the
	// requests that were waiting when it closed.
	ErrClientClosed = errors.New("kpax: client closed")
	// ErrResponseTimeout means a broker sent no response within the request
	// timeout; the connection was closed.
	ErrResponseTimeout = errors.New("kpax: no response within the request timeout")
	// ErrNoBroker means no broker could be reached for a request.
	ErrNoBroker = errors.New("kpax: no broker reachable")
)

// BrokerError is a failure to talk to one broker: a dial, TLS, SASL or
// network error, or a malformed response. It says which broker and wraps the
// cause.
type BrokerError struct {
	NodeID int32  // the broker's node ID, or -1 for a seed broker
	Addr   string // host:port
	Err    error
}

// Error names the broker (node ID and address) and the cause.
func (e *BrokerError) Error() string {
	if e.NodeID < 0 {
		return fmt.Sprintf("kpax: broker %s: %v", e.Addr, e.Err)
	}
	return fmt.Sprintf("kpax: broker %d (%s): %v", e.NodeID, e.Addr, e.Err)
}

// Unwrap returns the cause.
func (e *BrokerError) Unwrap() error { return e.Err }

// PartitionError is a Kafka error code returned for one partition.
type PartitionError struct {
	Topic     string
	Partition int32
	Err       error // usually an *Error
}

// Error names the topic partition and the cause.
func (e *PartitionError) Error() string {
	return fmt.Sprintf("kpax: %s/%d: %v", e.Topic, e.Partition, e.Err)
}

// Unwrap returns the cause.
func (e *PartitionError) Unwrap() error { return e.Err }
