package kpax

import (
	"errors"
	"testing"
)

// TestAdminACLs creates, lists and deletes ACLs on a private node with
// KRaft's StandardAuthorizer (the shared brokers have none: see
// TestAdminSecurityAPIs for SECURITY_DISABLED).
func TestAdminACLs(t *testing.T) {
	n := startTestNode(t,
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:ANONYMOUS",
		"allow.everyone.if.no.acl.found=true")
	ctx, _, a := adminFor(t, n.Addr)
	read := ACL{Type: ACLResourceTopic, Name: "orders", Pattern: ACLPatternLiteral, Principal: "User:alice", Host: "*", Operation: ACLOperationRead, Permission: ACLPermissionAllow}
	write := read
	write.Type, write.Name, write.Pattern, write.Operation = ACLResourceGroup, "billing-", ACLPatternPrefixed, ACLOperationRead
	bad := read
	bad.Principal = "alice" // not TYPE:NAME
	res, err := a.CreateACLs(ctx, read, write, bad)
	var ae *AdminError
	if !errors.As(err, &ae) || len(ae.Errors) != 1 || res[0].Err != nil || res[1].Err != nil || res[2].Err == nil {
		t.Fatalf("create: %v %+v", err, res)
	}
	any := ACL{Type: ACLResourceAny, Pattern: ACLPatternAny, Operation: ACLOperationAny, Permission: ACLPermissionAny}
	waitFor(t, func() bool {
		got, err := a.DescribeACLs(ctx, any)
		return err == nil && len(got) == 2
	})
	onlyTopics := any
	onlyTopics.Type = ACLResourceTopic
	got, err := a.DescribeACLs(ctx, onlyTopics)
	if err != nil || len(got) != 1 || got[0] != read {
		t.Fatalf("describe topics: %v %+v", err, got)
	}
	dr, err := a.DeleteACLs(ctx, onlyTopics)
	if err != nil || len(dr[0].Deleted) != 1 || dr[0].Deleted[0] != read {
		t.Fatalf("delete: %v %+v", err, dr)
	}
	waitFor(t, func() bool {
		got, err := a.DescribeACLs(ctx, any)
		return err == nil && len(got) == 1 && got[0] == write
	})
	if op, err := ParseACLOperation("DESCRIBE_CONFIGS"); err != nil || op != ACLOperationDescribeConfigs {
		t.Errorf("parse: %v %v", op, err)
	}
	if _, err := ParseACLResource("table"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("parse table: %v", err)
	}
}
