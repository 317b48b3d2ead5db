package kpax

import (
	"context"
	"errors"
	"fmt"
)

// SASLMechanism is a SASL authentication mechanism (RFC 4422) for
// WithSASL: SASLPlain, SASLScram256 and SASLScram512 are provided.
type SASLMechanism interface {
	// Name returns the mechanism's name as Kafka knows it, e.g. "PLAIN".
	Name() string
	// Start begins the authentication of one connection and returns the
	// session and the client's first message.
	Start(ctx context.Context) (SASLSession, []byte, error)
}

// SASLSession is one authentication exchange of a SASLMechanism.
type SASLSession interface {
	// Challenge takes the server's message and returns whether the exchange
	// is over and, if not, the client's next message. An error ends the
	// exchange (e.g. a server signature that does not verify).
	Challenge(server []byte) (done bool, response []byte, err error)
}

// ErrSASL wraps every authentication failure.
var ErrSASL = errors.New("kpax: SASL authentication failed")

// SASLPlain returns the PLAIN mechanism (RFC 4616) with the user and
// password. Use it only over TLS: PLAIN sends the password as it is.
func SASLPlain(user, password string) SASLMechanism {
	return plainMechanism{user: user, pass: password}
}

type plainMechanism struct{ user, pass string }

func (plainMechanism) Name() string { return "PLAIN" }

func (m plainMechanism) Start(context.Context) (SASLSession, []byte, error) {
	return plainSession{}, []byte("\x00" + m.user + "\x00" + m.pass), nil
}

type plainSession struct{}

func (plainSession) Challenge([]byte) (bool, []byte, error) { return true, nil, nil }

// authenticate runs SaslHandshake (v1, where the broker has it) and the
// SaslAuthenticate exchange on a new connection.
func (c *conn) authenticate(ctx context.Context) error {
	mech := c.cfg.sasl
	hs := &SaslHandshakeRequest{Mechanism: mech.Name()}
	v, err := c.versions.pick(hs, c.cfg.maxVersions)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSASL, err)
	}
	resp, _, err := c.roundTrip(ctx, hs, v, c.cfg.requestTimeout)
	if err != nil {
		return fmt.Errorf("%w: SaslHandshake: %v", ErrSASL, err)
	}
	if err := ErrorForCode(resp.(*SaslHandshakeResponse).ErrorCode); err != nil {
		return fmt.Errorf("%w: mechanism %s (the broker has %v): %w", ErrSASL, mech.Name(), resp.(*SaslHandshakeResponse).Mechanisms, err)
	}
	if v == 0 {
		return fmt.Errorf("%w: the broker only has SaslHandshake v0 (Kafka 0.10.0-0.10.1), which is not supported", ErrSASL)
	}
	session, msg, err := mech.Start(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSASL, err)
	}
	for {
		auth := &SaslAuthenticateRequest{AuthBytes: msg}
		av, err := c.versions.pick(auth, c.cfg.maxVersions)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSASL, err)
		}
		r, _, err := c.roundTrip(ctx, auth, av, c.cfg.requestTimeout)
		if err != nil {
			return fmt.Errorf("%w: SaslAuthenticate: %v", ErrSASL, err)
		}
		ar := r.(*SaslAuthenticateResponse)
		if kerr := ErrorForCode(ar.ErrorCode); kerr != nil {
			return fmt.Errorf("%w: %s: %w", ErrSASL, deref(ar.ErrorMessage), kerr)
		}
		done, next, err := session.Challenge(ar.AuthBytes)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSASL, err)
		}
		if done {
			return nil
		}
		msg = next
	}
}
