package kpax

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestSCRAMHostileErrorText: what a hostile server puts in a SCRAM message
// reaches the error text truncated, however long it is.
func TestSCRAMHostileErrorText(t *testing.T) {
	const cnonce = "clientnonce"
	huge := strings.Repeat("x", 1<<20)
	first := "r=" + cnonce + "srv,s=c2FsdHk=,i=4096"
	tests := []struct {
		name         string
		first, final string // final: "" for a failure on the first message
		want         string
	}{
		{"server-first error", "e=" + huge, "", "xxx..."},
		{"salt not base64", "r=" + cnonce + "srv,s=" + strings.Repeat("!", 1<<20) + ",i=4096", "", "salt"},
		{"server-final error", first, "e=" + huge, "xxx..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := SASLScramSHA256("alice", "secret").(*scramMechanism)
			m.nonce = func() (string, error) { return cnonce, nil }
			s, _, err := m.Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = s.Challenge([]byte(tt.first))
			if tt.final != "" {
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = s.Challenge([]byte(tt.final))
			}
			if !errors.Is(err, errSCRAM) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %.200v, want one saying %q", err, tt.want)
			}
			if n := len(err.Error()); n > 200 {
				t.Errorf("error text of %d bytes", n)
			}
		})
	}
}
