package kpax

import (
	"syscall"
	"time"
)

// recordNow is the time Produce gives a record without a Timestamp: the
// wall clock, without a monotonic reading (a record's time is sent in
// milliseconds). Here one vDSO gettimeofday call, half the cost of
// time.Now, which reads the monotonic clock too.
func recordNow() time.Time {
	var tv syscall.Timeval
	if syscall.Gettimeofday(&tv) != nil {
		return time.Now().Round(0)
	}
	return time.Unix(tv.Sec, tv.Usec*1000)
}
