package kpax

import (
	"context"
	"fmt"
	"strings"
)

// ACLResource is the type of resource an ACL protects.
type ACLResource int8

// ACL resource types. ACLResourceAny matches every type in a filter.
const (
	ACLResourceAny             ACLResource = 1
	ACLResourceTopic           ACLResource = 2
	ACLResourceGroup           ACLResource = 3
	ACLResourceCluster         ACLResource = 4 // the name is "kafka-cluster"
	ACLResourceTransactionalID ACLResource = 5
	ACLResourceDelegationToken ACLResource = 6
	ACLResourceUser            ACLResource = 7
)

// ACLPattern says how an ACL's resource name matches.
type ACLPattern int8

// ACL pattern types. In a filter, ACLPatternAny matches every pattern type
// and ACLPatternMatch every ACL that applies to the name (literal,
// prefixed or wildcard).
const (
	ACLPatternAny      ACLPattern = 1
	ACLPatternMatch    ACLPattern = 2
	ACLPatternLiteral  ACLPattern = 3
	ACLPatternPrefixed ACLPattern = 4
)

// ACLOperation is what an ACL allows or denies.
type ACLOperation int8

// ACL operations. ACLOperationAny matches every operation in a filter;
// ACLOperationAll in an ACL means every operation.
const (
	ACLOperationAny             ACLOperation = 1
	ACLOperationAll             ACLOperation = 2
	ACLOperationRead            ACLOperation = 3
	ACLOperationWrite           ACLOperation = 4
	ACLOperationCreate          ACLOperation = 5
	ACLOperationDelete          ACLOperation = 6
	ACLOperationAlter           ACLOperation = 7
	ACLOperationDescribe        ACLOperation = 8
	ACLOperationClusterAction   ACLOperation = 9
	ACLOperationDescribeConfigs ACLOperation = 10
	ACLOperationAlterConfigs    ACLOperation = 11
	ACLOperationIdempotentWrite ACLOperation = 12
	ACLOperationCreateTokens    ACLOperation = 13
	ACLOperationDescribeTokens  ACLOperation = 14
)

// ACLPermission is whether an ACL allows or denies.
type ACLPermission int8

// ACL permission types; ACLPermissionAny matches both in a filter.
const (
	ACLPermissionAny   ACLPermission = 1
	ACLPermissionDeny  ACLPermission = 2
	ACLPermissionAllow ACLPermission = 3
)

var (
	aclResourceNames   = []string{"unknown", "any", "topic", "group", "cluster", "transactional-id", "delegation-token", "user"}
	aclPatternNames    = []string{"unknown", "any", "match", "literal", "prefixed"}
	aclOperationNames  = []string{"unknown", "any", "all", "read", "write", "create", "delete", "alter", "describe", "cluster-action", "describe-configs", "alter-configs", "idempotent-write", "create-tokens", "describe-tokens"}
	aclPermissionNames = []string{"unknown", "any", "deny", "allow"}
)

func enumName(names []string, v int8) string {
	if v >= 0 && int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("unknown(%d)", v)
}

func parseEnum(kind string, names []string, s string) (int8, error) {
	norm := strings.ReplaceAll(strings.ToLower(s), "_", "-")
	for i, n := range names {
		if i > 0 && (n == norm || strings.ReplaceAll(n, "-", "") == norm) {
			return int8(i), nil
		}
	}
	return 0, invalidf("unknown ACL %s %q: want one of %s", kind, s, strings.Join(names[1:], ", "))
}

// String returns the name, e.g. "topic".
func (r ACLResource) String() string { return enumName(aclResourceNames, int8(r)) }

// String returns the name, e.g. "literal".
func (p ACLPattern) String() string { return enumName(aclPatternNames, int8(p)) }

// String returns the name, e.g. "read".
func (o ACLOperation) String() string { return enumName(aclOperationNames, int8(o)) }

// String returns the name, e.g. "allow".
func (p ACLPermission) String() string { return enumName(aclPermissionNames, int8(p)) }

// ParseACLResource parses a resource type name, e.g. "topic" or "TRANSACTIONAL_ID".
func ParseACLResource(s string) (ACLResource, error) {
	v, err := parseEnum("resource type", aclResourceNames, s)
	return ACLResource(v), err
}

// ParseACLPattern parses a pattern type name, e.g. "literal" or "PREFIXED".
func ParseACLPattern(s string) (ACLPattern, error) {
	v, err := parseEnum("pattern type", aclPatternNames, s)
	return ACLPattern(v), err
}

// ParseACLOperation parses an operation name, e.g. "read" or "DESCRIBE_CONFIGS".
func ParseACLOperation(s string) (ACLOperation, error) {
	v, err := parseEnum("operation", aclOperationNames, s)
	return ACLOperation(v), err
}

// ParseACLPermission parses "allow" or "deny" (or "any").
func ParseACLPermission(s string) (ACLPermission, error) {
	v, err := parseEnum("permission", aclPermissionNames, s)
	return ACLPermission(v), err
}

// ACL is an access control entry: Principal (e.g. "User:alice") from Host
// ("*" for any) may (Permission) do Operation on the resources of Type whose
// names match Name by Pattern. As a filter (DescribeACLs, DeleteACLs), an
// empty Name, Principal or Host matches any, and the Any values match any.
type ACL struct {
	Type       ACLResource
	Name       string
	Pattern    ACLPattern
	Principal  string
	Host       string
	Operation  ACLOperation
	Permission ACLPermission
}

// String describes the ACL as kafka-acls does, roughly.
func (a ACL) String() string {
	return fmt.Sprintf("ACL %s from %s: %s %s on %s %s %q", a.Principal, a.Host, a.Permission, a.Operation, a.Pattern, a.Type, a.Name)
}

func (a ACL) check(filter bool) error {
	ok := func(v, anyV int8, n int) bool { return v > 0 && int(v) < n && (filter || v != anyV) }
	switch {
	case !ok(int8(a.Type), 1, len(aclResourceNames)):
		return invalidf("ACL resource type %d", a.Type)
	case !ok(int8(a.Pattern), 1, len(aclPatternNames)) || !filter && a.Pattern == ACLPatternMatch:
		return invalidf("ACL pattern type %d", a.Pattern)
	case !ok(int8(a.Operation), 1, len(aclOperationNames)):
		return invalidf("ACL operation %d", a.Operation)
	case !ok(int8(a.Permission), 1, len(aclPermissionNames)):
		return invalidf("ACL permission %d", a.Permission)
	case !filter && (a.Name == "" || a.Principal == "" || a.Host == ""):
		return invalidf("ACL %v: name, principal and host must be set (host \"*\" for any)", a)
	}
	return nil
}

// CreateACLResult is the outcome of creating one ACL.
type CreateACLResult struct {
	ACL ACL
	Err error // e.g. ErrSecurityDisabled when the broker has no authorizer
}

// CreateACLs creates ACLs, one result per ACL in the order given.
func (a *Admin) CreateACLs(ctx context.Context, acls ...ACL) ([]CreateACLResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if len(acls) == 0 {
		return nil, invalidf("no ACLs")
	}
	req := &CreateAclsRequest{}
	for _, acl := range acls {
		if err := acl.check(false); err != nil {
			return nil, err
		}
		req.Creations = append(req.Creations, CreateAclsRequestCreation{ResourceType: int8(acl.Type), ResourceName: acl.Name,
			ResourcePatternType: int8(acl.Pattern), Principal: acl.Principal, Host: acl.Host, Operation: int8(acl.Operation), PermissionType: int8(acl.Permission)})
	}
	r, _, err := a.request(ctx, req)
	if err != nil {
		return nil, err
	}
	res := r.(*CreateAclsResponse).Results
	out := make([]CreateACLResult, len(acls))
	s := summary{op: "CreateACLs"}
	for i, acl := range acls {
		out[i].ACL = acl
		if i < len(res) {
			out[i].Err = itemErr(acl.String(), res[i].ErrorCode, res[i].ErrorMessage)
		} else {
			out[i].Err = &ItemError{Item: acl.String(), Err: ErrMissingResult}
		}
		s.add(out[i].Err)
	}
	return out, s.err()
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// DescribeACLs returns the ACLs that match the filter.
func (a *Admin) DescribeACLs(ctx context.Context, filter ACL) ([]ACL, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if err := filter.check(true); err != nil {
		return nil, err
	}
	r, _, err := a.request(ctx, &DescribeAclsRequest{ResourceTypeFilter: int8(filter.Type), ResourceNameFilter: nonEmpty(filter.Name),
		PatternTypeFilter: int8(filter.Pattern), PrincipalFilter: nonEmpty(filter.Principal), HostFilter: nonEmpty(filter.Host),
		Operation: int8(filter.Operation), PermissionType: int8(filter.Permission)})
	if err != nil {
		return nil, err
	}
	resp := r.(*DescribeAclsResponse)
	if err := itemErr("DescribeACLs", resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, err
	}
	var out []ACL
	for _, res := range resp.Resources {
		for _, e := range res.Acls {
			out = append(out, ACL{Type: ACLResource(res.ResourceType), Name: res.ResourceName, Pattern: ACLPattern(res.PatternType),
				Principal: e.Principal, Host: e.Host, Operation: ACLOperation(e.Operation), Permission: ACLPermission(e.PermissionType)})
		}
	}
	return out, nil
}

// DeleteACLResult is the outcome of one filter of DeleteACLs.
type DeleteACLResult struct {
	Filter  ACL
	Deleted []ACL
	Err     error
}

// DeleteACLs deletes the ACLs that match each filter, one result per filter
// in the order given.
func (a *Admin) DeleteACLs(ctx context.Context, filters ...ACL) ([]DeleteACLResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if len(filters) == 0 {
		return nil, invalidf("no ACL filters")
	}
	req := &DeleteAclsRequest{}
	for _, f := range filters {
		if err := f.check(true); err != nil {
			return nil, err
		}
		req.Filters = append(req.Filters, DeleteAclsRequestFilter{ResourceTypeFilter: int8(f.Type), ResourceNameFilter: nonEmpty(f.Name),
			PatternTypeFilter: int8(f.Pattern), PrincipalFilter: nonEmpty(f.Principal), HostFilter: nonEmpty(f.Host),
			Operation: int8(f.Operation), PermissionType: int8(f.Permission)})
	}
	r, _, err := a.request(ctx, req)
	if err != nil {
		return nil, err
	}
	res := r.(*DeleteAclsResponse).FilterResults
	out := make([]DeleteACLResult, len(filters))
	s := summary{op: "DeleteACLs"}
	for i, f := range filters {
		out[i].Filter = f
		if i >= len(res) {
			out[i].Err = &ItemError{Item: "filter " + f.String(), Err: ErrMissingResult}
			s.add(out[i].Err)
			continue
		}
		out[i].Err = itemErr("filter "+f.String(), res[i].ErrorCode, res[i].ErrorMessage)
		for _, m := range res[i].MatchingAcls {
			acl := ACL{Type: ACLResource(m.ResourceType), Name: m.ResourceName, Pattern: ACLPattern(m.PatternType), Principal: m.Principal,
				Host: m.Host, Operation: ACLOperation(m.Operation), Permission: ACLPermission(m.PermissionType)}
			if err := itemErr(acl.String(), m.ErrorCode, m.ErrorMessage); err != nil && out[i].Err == nil {
				out[i].Err = err
			} else if err == nil {
				out[i].Deleted = append(out[i].Deleted, acl)
			}
		}
		s.add(out[i].Err)
	}
	return out, s.err()
}
