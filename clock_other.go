//go:build !(linux && amd64)

package kpax

import "time"

// recordNow is the time Produce gives a record without a Timestamp: the
// wall clock, without a monotonic reading (a record's time is sent in
// milliseconds).
func recordNow() time.Time { return time.Now().Round(0) }
