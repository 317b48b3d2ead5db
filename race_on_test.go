//go:build race

package kpax

// raceEnabled reports that the race detector is on: it multiplies the
// memory a process uses, so RSS measurements skip.
const raceEnabled = true
