package kpax

import (
	"context"
	"errors"
	"testing"
)

// TestAdminNilInputs: a nil context or a nil Admin is an error from every
// kind of admin call, never a panic, and the client still closes cleanly.
func TestAdminNilInputs(t *testing.T) {
	cl, err := New(WithSeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	a := cl.Admin()
	var nilAdmin *Admin
	var nilCtx context.Context
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"CreateTopics(nil ctx)", func() error { _, err := a.CreateTopics(nilCtx, NewTopic{Name: "x"}); return err }, errNilContext},
		{"DeleteTopics(nil ctx)", func() error { _, err := a.DeleteTopics(nilCtx, "x"); return err }, errNilContext},
		{"DescribeCluster(nil ctx)", func() error { _, err := a.DescribeCluster(nilCtx); return err }, errNilContext},
		{"DescribeGroups(nil ctx)", func() error { _, err := a.DescribeGroups(nilCtx, "g"); return err }, errNilContext},
		{"DescribeTransactions(nil ctx)", func() error { _, err := a.DescribeTransactions(nilCtx, "t"); return err }, errNilContext},
		{"Lag(nil ctx)", func() error { _, err := a.Lag(nilCtx, "g"); return err }, errNilContext},
		{"WaitForLeaders(nil ctx)", func() error { return a.WaitForLeaders(nilCtx, "x") }, errNilContext},
		{"ShareGroupOffsets(nil ctx)", func() error { _, err := a.ShareGroupOffsets(nilCtx, "g"); return err }, errNilContext},
		{"DeleteShareGroupOffsets(nil ctx)", func() error { _, err := a.DeleteShareGroupOffsets(nilCtx, "g", "t"); return err }, errNilContext},
		{"nil Admin DeleteShareGroupOffsets", func() error { _, err := nilAdmin.DeleteShareGroupOffsets(ctx, "g", "t"); return err }, ErrInvalidArgument},
		{"nil Admin ListTopics", func() error { _, err := nilAdmin.ListTopics(ctx); return err }, ErrInvalidArgument},
		{"nil Client's Admin", func() error { _, err := (*Client)(nil).Admin().ListGroups(ctx); return err }, ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
