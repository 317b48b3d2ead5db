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
