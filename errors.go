package kpax

import (
	"context"
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

// ErrorClass says what a caller can do about an error, in the vocabulary of
// KIP-1050 (consistent error handling for transactions). ClassOf gives the
// class of any error this package returns.
type ErrorClass int8

const (
	// ClassNone is the class of a nil error.
	ClassNone ErrorClass = iota
	// ClassRetriable: a transient condition (a leader moved, a broker is
	// down, a coordinator is loading, the caller's context ended). The
	// client already retried within its timeouts; trying the operation
	// again may work.
	ClassRetriable
	// ClassAbortable: the operation failed for good and the same call would
	// fail again (a record too large, a topic not authorized, a bad
	// argument, a call out of order), but the producer or consumer is
	// still usable. Inside a transaction, abort it (AbortTransaction); a
	// new transaction may succeed.
	ClassAbortable
	// ClassFatal: the producer, consumer or client is unusable and must be
	// closed (fenced by a newer instance, closed, not authorized for its
	// transactional ID or cluster, a broker too old for what it needs).
	ClassFatal
)

// String returns "none", "retriable", "abortable" or "fatal".
func (c ErrorClass) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassRetriable:
		return "retriable"
	case ClassAbortable:
		return "abortable"
	case ClassFatal:
		return "fatal"
	}
	return fmt.Sprintf("ErrorClass(%d)", int8(c))
}

// ClassOf returns the class of err, looking through its wrapping:
//
//   - an error the package classified where it returned it (a transaction's
//     errors, whose class depends on where a Kafka code came back) has
//     that class;
//   - ErrClientClosed, ErrProducerClosed and ErrConsumerClosed are fatal;
//   - a Kafka error code (*Error) has its code's class: fatal for fencing,
//     authorization of the cluster, the transactional ID or the group,
//     SASL failures and unsupported versions or features; retriable where
//     the protocol guide marks it retriable, and a few more that clear by
//     themselves (REBALANCE_IN_PROGRESS, BROKER_NOT_AVAILABLE, ...);
//     abortable otherwise;
//   - failures to reach or hear from a broker (*BrokerError, ErrNoBroker,
//     ErrResponseTimeout, ErrMalformed), an ended context and
//     ErrMaybePersisted are retriable;
//   - anything else (a bad argument, a call out of order) is abortable.
func ClassOf(err error) ErrorClass {
	if err == nil {
		return ClassNone
	}
	var ce *classedError
	if errors.As(err, &ce) {
		return ce.class
	}
	if errors.Is(err, ErrClientClosed) || errors.Is(err, ErrProducerClosed) || errors.Is(err, ErrConsumerClosed) {
		return ClassFatal
	}
	var ke *Error
	if errors.As(err, &ke) {
		return codeClass(ke)
	}
	var be *BrokerError
	switch {
	case errors.As(err, &be), errors.Is(err, ErrNoBroker), errors.Is(err, ErrResponseTimeout),
		errors.Is(err, ErrMalformed), errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrMaybePersisted):
		return ClassRetriable
	}
	return ClassAbortable
}

// codeClassOverrides are the Kafka codes whose class is not what the guide's
// retriable flag says (retriable, else abortable).
var codeClassOverrides = map[int16]ErrorClass{
	8:   ClassRetriable, // BROKER_NOT_AVAILABLE
	27:  ClassRetriable, // REBALANCE_IN_PROGRESS
	30:  ClassFatal,     // GROUP_AUTHORIZATION_FAILED
	31:  ClassFatal,     // CLUSTER_AUTHORIZATION_FAILED
	33:  ClassFatal,     // UNSUPPORTED_SASL_MECHANISM
	34:  ClassFatal,     // ILLEGAL_SASL_STATE
	35:  ClassFatal,     // UNSUPPORTED_VERSION
	43:  ClassFatal,     // UNSUPPORTED_FOR_MESSAGE_FORMAT
	50:  ClassFatal,     // INVALID_TRANSACTION_TIMEOUT: the option is out of the broker's range
	52:  ClassFatal,     // TRANSACTION_COORDINATOR_FENCED
	53:  ClassFatal,     // TRANSACTIONAL_ID_AUTHORIZATION_FAILED
	54:  ClassFatal,     // SECURITY_DISABLED
	58:  ClassFatal,     // SASL_AUTHENTICATION_FAILED
	76:  ClassFatal,     // UNSUPPORTED_COMPRESSION_TYPE
	82:  ClassFatal,     // FENCED_INSTANCE_ID
	90:  ClassFatal,     // PRODUCER_FENCED
	111: ClassFatal,     // UNRELEASED_INSTANCE_ID
	112: ClassFatal,     // UNSUPPORTED_ASSIGNOR
}

func codeClass(e *Error) ErrorClass {
	if c, ok := codeClassOverrides[e.code]; ok {
		return c
	}
	if e.retriable {
		return ClassRetriable
	}
	return ClassAbortable
}

// classedError gives err a class where it was returned, overriding what
// ClassOf would find inside it.
type classedError struct {
	class ErrorClass
	err   error
}

func (e *classedError) Error() string { return e.err.Error() }
func (e *classedError) Unwrap() error { return e.err }

// withClass classifies err (nil stays nil).
func withClass(c ErrorClass, err error) error {
	if err == nil {
		return nil
	}
	return &classedError{class: c, err: err}
}
