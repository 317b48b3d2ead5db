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

// Is reports whether target is the class error (ErrRetriable, ErrAbortable
// or ErrFatal) of the code's class, the one ClassOf gives.
func (e *Error) Is(target error) bool {
	c, ok := target.(classError)
	return ok && codeClass(e) == ErrorClass(c)
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
	ErrClientClosed = classedValue(ClassFatal, "kpax: client closed")
	// ErrResponseTimeout means a broker sent no response within the request
	// timeout; the connection was closed.
	ErrResponseTimeout = classedValue(ClassRetriable, "kpax: no response within the request timeout")
	// ErrNoBroker means no broker could be reached for a request.
	ErrNoBroker = classedValue(ClassRetriable, "kpax: no broker reachable")
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

// Is reports whether target is ErrRetriable, unless the cause has a class
// of its own (a SASL failure's Kafka code, say), which errors.Is finds
// there.
func (e *BrokerError) Is(target error) bool { return defaultClassIs(e, target, e.Err) }

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

// Is reports whether target is ErrAbortable where the cause has no class
// of its own; errors.Is finds a cause's class in the cause.
func (e *PartitionError) Is(target error) bool { return defaultClassIs(e, target, e.Err) }

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
	var cv classError
	if errors.As(err, &cv) {
		return ErrorClass(cv)
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
// ClassOf would find inside it. It has no Unwrap, so that errors.Is finds
// its class and not the classes of the errors inside: Is and As look
// inside for everything else.
type classedError struct {
	class ErrorClass
	err   error
}

func (e *classedError) Error() string { return e.err.Error() }

// Is answers a class error with the error's class, anything else from the
// error inside.
func (e *classedError) Is(target error) bool {
	if c, ok := target.(classError); ok {
		return e.class == ErrorClass(c)
	}
	return errors.Is(e.err, target)
}

// As looks inside.
func (e *classedError) As(target any) bool { return errors.As(e.err, target) }

// withClass classifies err (nil stays nil).
func withClass(c ErrorClass, err error) error {
	if err == nil {
		return nil
	}
	return &classedError{class: c, err: err}
}

// classify freezes err's class (ClassOf) where the package builds an
// error of parts with different classes, or returns one that may have no
// class of its own (a context's error, a bad argument): errors.Is then
// matches exactly one class error, ClassOf's. nil stays nil.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if ce, ok := err.(*classedError); ok {
		return ce
	}
	return &classedError{class: ClassOf(err), err: err}
}

// defaultClassIs is the Is of the package's error types that wrap causes:
// where no cause has a class of its own (ClassOf's default applies), err
// matches the class error of ClassOf(err); otherwise the causes answer.
func defaultClassIs(err, target error, causes ...error) bool {
	c, ok := target.(classError)
	if !ok {
		return false
	}
	for _, cause := range causes {
		if hasClass(cause) {
			return false
		}
	}
	return ClassOf(err) == ErrorClass(c)
}

// hasClass reports whether err matches a class error.
func hasClass(err error) bool {
	return errors.Is(err, ErrRetriable) || errors.Is(err, ErrAbortable) || errors.Is(err, ErrFatal)
}

// valueError is an error value of the package (ErrClientClosed, ...) with
// its class.
type valueError struct {
	msg   string
	class ErrorClass
}

// classedValue returns a new error value of the class.
func classedValue(c ErrorClass, msg string) error { return &valueError{msg: msg, class: c} }

func (e *valueError) Error() string { return e.msg }

// Is reports whether target is the class error of the value's class.
func (e *valueError) Is(target error) bool {
	c, ok := target.(classError)
	return ok && e.class == ErrorClass(c)
}

// The class errors: errors.Is(err, ErrAbortable) reports whether err is
// of ClassAbortable, and so on, so that a caller can switch on what to do
// without ClassOf. For every Kafka error code (*Error), every error value
// and type of the package, any wrapping of them with %w, and every error
// the producer and its transaction calls return, exactly one of the three
// matches, the class ClassOf gives. An error that the caller joins from
// errors of different classes matches each of their classes (errors.Is
// looks at every error inside), while ClassOf picks one; an error of no
// class (the caller's own, a bare context error) matches none, and
// ClassOf gives its default. In a transaction loop:
//
//	err := produceAndCommit(ctx, p) // BeginTransaction ... CommitTransaction
//	switch {
//	case err == nil:
//	case errors.Is(err, kpax.ErrFatal):
//		return err // fenced, say: close the producer, start over with a new one
//	case errors.Is(err, kpax.ErrAbortable):
//		if err := p.AbortTransaction(ctx); err != nil {
//			return err
//		}
//		// begin again: a new transaction may succeed
//	case errors.Is(err, kpax.ErrRetriable):
//		// the transaction stays open: commit again
//	}
var (
	// ErrRetriable matches the errors of ClassRetriable.
	ErrRetriable error = classError(ClassRetriable)
	// ErrAbortable matches the errors of ClassAbortable.
	ErrAbortable error = classError(ClassAbortable)
	// ErrFatal matches the errors of ClassFatal.
	ErrFatal error = classError(ClassFatal)
)

// classError is the type of ErrRetriable, ErrAbortable and ErrFatal; each is
// of its own class.
type classError ErrorClass

// Error returns "kpax: retriable error", ...
func (c classError) Error() string { return "kpax: " + ErrorClass(c).String() + " error" }
