package kpax

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"
)

// QuotaEntity names who a client quota applies to: components by type
// ("user", "client-id", "ip"), each with a name, or nil Name for the
// default of that type.
type QuotaEntity []QuotaComponent

// QuotaComponent is one part of a QuotaEntity.
type QuotaComponent struct {
	Type string  // "user", "client-id" or "ip"
	Name *string // nil: the default entity of the type
}

// String returns "quota entity " and the TYPE=NAME components, joined by
// commas; the default entity of a type is TYPE=<default>.
func (e QuotaEntity) String() string {
	parts := make([]string, len(e))
	for i, c := range e {
		if c.Name == nil {
			parts[i] = c.Type + "=<default>"
		} else {
			parts[i] = c.Type + "=" + *c.Name
		}
	}
	return "quota entity " + strings.Join(parts, ",")
}

// QuotaEntry is a quota entity with its values, e.g. "producer_byte_rate".
type QuotaEntry struct {
	Entity QuotaEntity
	Values map[string]float64
}

// QuotaFilter matches quota entities by one component: Type with Name (an
// exact match), Default (the type's default entity), or neither (any entity
// that has the type).
type QuotaFilter struct {
	Type    string
	Name    string
	Default bool
}

// DescribeClientQuotas returns the quotas of the entities that match every
// filter; strict leaves out entities with components the filters do not
// name. No filter matches every entity.
func (a *Admin) DescribeClientQuotas(ctx context.Context, strict bool, filters ...QuotaFilter) ([]QuotaEntry, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	req := &DescribeClientQuotasRequest{Strict: strict, Components: []DescribeClientQuotasRequestComponent{}}
	for _, f := range filters {
		if f.Type == "" || f.Default && f.Name != "" {
			return nil, invalidf("quota filter %+v: want a type, and a name or the default or neither", f)
		}
		c := DescribeClientQuotasRequestComponent{EntityType: f.Type, MatchType: 2} // any
		switch {
		case f.Name != "":
			c.MatchType, c.Match = 0, ptr(f.Name)
		case f.Default:
			c.MatchType = 1
		}
		req.Components = append(req.Components, c)
	}
	r, _, err := a.request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := r.(*DescribeClientQuotasResponse)
	if err := itemErr("DescribeClientQuotas", resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, err
	}
	var out []QuotaEntry
	for _, e := range resp.Entries {
		qe := QuotaEntry{Values: map[string]float64{}}
		for _, c := range e.Entity {
			qe.Entity = append(qe.Entity, QuotaComponent{Type: c.EntityType, Name: c.EntityName})
		}
		for _, v := range e.Values {
			qe.Values[v.Key] = v.Value
		}
		out = append(out, qe)
	}
	return out, nil
}

// QuotaAlteration sets or removes quota values of one entity.
type QuotaAlteration struct {
	Entity QuotaEntity
	Set    map[string]float64 // e.g. "consumer_byte_rate": 1048576
	Remove []string
}

// QuotaResult is the outcome of altering one entity's quotas.
type QuotaResult struct {
	Entity QuotaEntity
	Err    error
}

// AlterClientQuotas sets and removes quota values, one result per entity in
// the order given.
func (a *Admin) AlterClientQuotas(ctx context.Context, alters ...QuotaAlteration) ([]QuotaResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if len(alters) == 0 {
		return nil, invalidf("no quota alterations")
	}
	req := &AlterClientQuotasRequest{}
	for _, al := range alters {
		if len(al.Entity) == 0 || len(al.Set)+len(al.Remove) == 0 {
			return nil, invalidf("%v: want an entity and a change", al.Entity)
		}
		e := AlterClientQuotasRequestEntry{}
		for _, c := range al.Entity {
			if c.Type == "" {
				return nil, invalidf("%v: component without a type", al.Entity)
			}
			e.Entity = append(e.Entity, AlterClientQuotasRequestEntryEntity{EntityType: c.Type, EntityName: c.Name})
		}
		for k, v := range al.Set {
			e.Ops = append(e.Ops, AlterClientQuotasRequestEntryOp{Key: k, Value: v})
		}
		for _, k := range al.Remove {
			e.Ops = append(e.Ops, AlterClientQuotasRequestEntryOp{Key: k, Remove: true})
		}
		req.Entries = append(req.Entries, e)
	}
	r, _, err := a.request(ctx, req)
	if err != nil {
		return nil, err
	}
	res := r.(*AlterClientQuotasResponse).Entries
	out := make([]QuotaResult, len(alters))
	s := summary{op: "AlterClientQuotas"}
	for i, al := range alters {
		out[i].Entity = al.Entity
		if i < len(res) {
			out[i].Err = itemErr(al.Entity.String(), res[i].ErrorCode, res[i].ErrorMessage)
		} else {
			out[i].Err = &ItemError{Item: al.Entity.String(), Err: ErrMissingResult}
		}
		s.add(out[i].Err)
	}
	return out, s.err()
}

// ScramMechanism is a SCRAM mechanism of KIP-554.
type ScramMechanism int8

// The SCRAM mechanisms.
const (
	ScramSHA256 ScramMechanism = 1
	ScramSHA512 ScramMechanism = 2
)

// String returns "SCRAM-SHA-256" or "SCRAM-SHA-512".
func (m ScramMechanism) String() string {
	switch m {
	case ScramSHA256:
		return "SCRAM-SHA-256"
	case ScramSHA512:
		return "SCRAM-SHA-512"
	}
	return fmt.Sprintf("ScramMechanism(%d)", int8(m))
}

func (m ScramMechanism) hash() func() hash.Hash {
	if m == ScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

// ScramUser is a user's SCRAM credentials (never the passwords).
type ScramUser struct {
	User        string
	Credentials []ScramCredential
	Err         error // e.g. ErrResourceNotFound for a user with none
}

// ScramCredential is one mechanism's credential of a user.
type ScramCredential struct {
	Mechanism  ScramMechanism
	Iterations int32
}

// DescribeScramUsers returns the SCRAM credentials of the users (every user
// that has some when none is given), one result per user.
func (a *Admin) DescribeScramUsers(ctx context.Context, users ...string) ([]ScramUser, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	req := &DescribeUserScramCredentialsRequest{}
	for _, u := range users {
		if u == "" {
			return nil, invalidf("empty user name")
		}
		req.Users = append(req.Users, DescribeUserScramCredentialsRequestUser{Name: u})
	}
	r, _, err := a.request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := r.(*DescribeUserScramCredentialsResponse)
	if err := itemErr("DescribeUserScramCredentials", resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, err
	}
	var out []ScramUser
	s := summary{op: "DescribeScramUsers"}
	for _, res := range resp.Results {
		u := ScramUser{User: res.User, Err: itemErr(fmt.Sprintf("user %q", res.User), res.ErrorCode, res.ErrorMessage)}
		for _, c := range res.CredentialInfos {
			u.Credentials = append(u.Credentials, ScramCredential{Mechanism: ScramMechanism(c.Mechanism), Iterations: c.Iterations})
		}
		out = append(out, u)
		s.add(u.Err)
	}
	return out, s.err()
}

// ScramUpsert sets a user's password for one mechanism. The password is
// salted and hashed here; only the salted hash is sent.
type ScramUpsert struct {
	User       string
	Mechanism  ScramMechanism
	Iterations int32 // 4096 if 0; Kafka allows 4096 to 16384
	Password   string
}

// ScramDeletion deletes a user's credential of one mechanism.
type ScramDeletion struct {
	User      string
	Mechanism ScramMechanism
}

// ScramResult is the outcome of a change to one user's credentials.
type ScramResult struct {
	User string
	Err  error
}

// AlterScramUsers upserts and deletes SCRAM credentials (Kafka 2.7+), one
// result per user the broker answers for.
func (a *Admin) AlterScramUsers(ctx context.Context, upserts []ScramUpsert, deletions []ScramDeletion) ([]ScramResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if len(upserts)+len(deletions) == 0 {
		return nil, invalidf("no SCRAM changes")
	}
	req := &AlterUserScramCredentialsRequest{}
	for _, u := range upserts {
		if u.User == "" || u.Password == "" || (u.Mechanism != ScramSHA256 && u.Mechanism != ScramSHA512) {
			return nil, invalidf("SCRAM upsert of user %q: want a user, a password and a mechanism", u.User)
		}
		iters := u.Iterations
		if iters == 0 {
			iters = 4096
		}
		salt := make([]byte, 32)
		rand.Read(salt)
		salted, err := pbkdf2.Key(u.Mechanism.hash(), u.Password, salt, int(iters), u.Mechanism.hash()().Size())
		if err != nil {
			return nil, fmt.Errorf("%w: SCRAM user %q: %v", ErrInvalidArgument, u.User, err)
		}
		req.Upsertions = append(req.Upsertions, AlterUserScramCredentialsRequestUpsertion{Name: u.User, Mechanism: int8(u.Mechanism),
			Iterations: iters, Salt: salt, SaltedPassword: salted})
	}
	for _, d := range deletions {
		if d.User == "" || (d.Mechanism != ScramSHA256 && d.Mechanism != ScramSHA512) {
			return nil, invalidf("SCRAM deletion of user %q: want a user and a mechanism", d.User)
		}
		req.Deletions = append(req.Deletions, AlterUserScramCredentialsRequestDeletion{Name: d.User, Mechanism: int8(d.Mechanism)})
	}
	r, _, err := a.request(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []ScramResult
	s := summary{op: "AlterScramUsers"}
	for _, res := range r.(*AlterUserScramCredentialsResponse).Results {
		sr := ScramResult{User: res.User, Err: itemErr(fmt.Sprintf("user %q", res.User), res.ErrorCode, res.ErrorMessage)}
		out = append(out, sr)
		s.add(sr.Err)
	}
	return out, s.err()
}
