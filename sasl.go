package kpax

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// SASLMechanism is a SASL authentication mechanism (RFC 4422) for
// WithSASL: SASLPlain, SASLScramSHA256 and SASLScramSHA512 are provided.
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

// ErrSASL wraps every authentication failure. A broker's refusal also wraps
// the Kafka error it sent, e.g. ErrSaslAuthenticationFailed for a wrong
// password or ErrUnsupportedSaslMechanism, so both errors.Is(err, ErrSASL)
// and errors.Is(err, ErrSaslAuthenticationFailed) hold.
var ErrSASL = errors.New("kpax: SASL authentication failed")

// maxSASLRounds bounds the messages of one exchange, against a server that
// never ends it. The mechanisms here need at most two.
const maxSASLRounds = 16

// SASLPlain returns the PLAIN mechanism (RFC 4616) with the user and
// password. Use it only over TLS: PLAIN sends the password as it is. New
// refuses an empty user or password, and one holding a NUL byte.
func SASLPlain(user, password string) SASLMechanism {
	return plainMechanism{user: user, pass: password}
}

type plainMechanism struct{ user, pass string }

func (plainMechanism) Name() string { return "PLAIN" }

func (m plainMechanism) validate() error {
	if m.user == "" || m.pass == "" {
		return errors.New("SASL PLAIN: empty user or password")
	}
	if strings.IndexByte(m.user, 0) >= 0 || strings.IndexByte(m.pass, 0) >= 0 {
		return errors.New("SASL PLAIN: NUL byte in the user or password")
	}
	return nil
}

func (m plainMechanism) Start(context.Context) (SASLSession, []byte, error) {
	if err := m.validate(); err != nil {
		return nil, nil, err
	}
	return plainSession{}, []byte("\x00" + m.user + "\x00" + m.pass), nil
}

type plainSession struct{}

// Challenge ends the exchange: the broker answers PLAIN with nothing, or
// with an error that the caller sees first.
func (plainSession) Challenge([]byte) (bool, []byte, error) { return true, nil, nil }

// authenticate runs SaslHandshake and the mechanism's exchange on a new
// connection. The connection is already under TLS when TLS is configured
// (dialConn), so no credential goes out in clear text over a TLS setup.
//
// With SaslHandshake v1 and SaslAuthenticate (Kafka 1.0+) every token
// travels in a SaslAuthenticate request, and a refusal comes back as an
// error code. With SaslHandshake v0 (Kafka 0.10, or a WithMaxVersion cap)
// tokens travel as bare frames: a size and the bytes; a refusal is the
// broker closing the connection.
func (c *conn) authenticate(ctx context.Context) error {
	mech := c.cfg.sasl
	hs := &SaslHandshakeRequest{Mechanism: mech.Name()}
	hv, err := c.versions.pick(hs, c.cfg.maxVersions)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSASL, err)
	}
	framed := hv >= 1
	if _, err := c.versions.pick(&SaslAuthenticateRequest{}, c.cfg.maxVersions); err != nil {
		hv, framed = 0, false // no SaslAuthenticate: tokens go bare after handshake v0
	}
	resp, _, err := c.roundTrip(ctx, hs, hv, c.cfg.requestTimeout)
	if err != nil {
		return fmt.Errorf("%w: SaslHandshake v%d: %w", ErrSASL, hv, unwrapBroker(err))
	}
	hr := resp.(*SaslHandshakeResponse)
	if err := ErrorForCode(hr.ErrorCode); err != nil {
		return fmt.Errorf("%w: mechanism %s (the broker has %v): %w", ErrSASL, mech.Name(), hr.Mechanisms, err)
	}
	session, msg, err := mech.Start(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSASL, mech.Name(), err)
	}
	if !framed {
		c.rawTokens.Store(true)
		defer c.rawTokens.Store(false)
	}
	start := time.Now()
	for round := 0; ; round++ {
		if round == maxSASLRounds {
			return fmt.Errorf("%w: %s: no end after %d messages", ErrSASL, mech.Name(), round)
		}
		var server []byte
		var lifetime time.Duration
		if framed {
			server, lifetime, err = c.saslAuthenticate(ctx, msg)
		} else {
			server, err = c.rawToken(ctx, msg)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrSASL, mech.Name(), err)
		}
		done, next, err := session.Challenge(server)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrSASL, mech.Name(), err)
		}
		if done {
			if lifetime > 0 {
				// KIP-368: the broker closes the connection on the first
				// request after the session's end. The pool replaces it
				// before (a new connection is a new session): at 85% of its
				// life, as Java's client re-authenticates at 85-95%, but at
				// least a second early (half the life, if shorter) so a
				// request queued just before has time to reach the broker.
				margin := lifetime * 15 / 100
				if margin < time.Second {
					margin = min(time.Second, lifetime/2)
				}
				c.renewAt = start.Add(lifetime - margin)
			}
			c.cfg.logger.Debug("kpax: authenticated", "broker", c.addr, "mechanism", mech.Name(), "handshake", hv, "session", lifetime)
			return nil
		}
		msg = next
	}
}

// saslAuthenticate sends one token in a SaslAuthenticate request and
// returns the server's, with the session's lifetime when the broker limits
// it (v1+); a Kafka error code becomes the error.
func (c *conn) saslAuthenticate(ctx context.Context, token []byte) ([]byte, time.Duration, error) {
	req := &SaslAuthenticateRequest{AuthBytes: token}
	v, err := c.versions.pick(req, c.cfg.maxVersions)
	if err != nil {
		return nil, 0, err
	}
	r, _, err := c.roundTrip(ctx, req, v, c.cfg.requestTimeout)
	if err != nil {
		return nil, 0, fmt.Errorf("SaslAuthenticate v%d: %w", v, unwrapBroker(err))
	}
	ar := r.(*SaslAuthenticateResponse)
	if kerr := ErrorForCode(ar.ErrorCode); kerr != nil {
		if msg := deref(ar.ErrorMessage); msg != "" {
			return nil, 0, fmt.Errorf("%s: %w", msg, kerr)
		}
		return nil, 0, kerr
	}
	return ar.AuthBytes, time.Duration(max(ar.SessionLifetimeMs, 0)) * time.Millisecond, nil
}

// errRetired closes a connection replaced before its SASL session's end;
// only a request sent on it after its last answer can see it.
var errRetired = errors.New("kpax: connection replaced before its SASL session ended")

// retireGrace is how long a replaced connection stays open when idle, for
// callers that took it from the pool just before it was replaced.
const retireGrace = 200 * time.Millisecond

// retire marks the connection replaced: it closes once idle (its reader
// closes it after the last answer, or the grace timer if idle already).
func (c *conn) retire() {
	if c.retired.Swap(true) {
		return
	}
	time.AfterFunc(retireGrace, func() {
		if c.idle() {
			c.close(errRetired)
		}
	})
}

// idle reports whether no request is in flight or queued.
func (c *conn) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight) == 0 && len(c.queue) == 0
}

// rawToken sends one token framed by its size alone (after SaslHandshake
// v0) and returns the server's answer, framed the same way.
func (c *conn) rawToken(ctx context.Context, token []byte) ([]byte, error) {
	cl := &call{req: &SaslAuthenticateRequest{}, raw: true, token: token, done: make(chan struct{})}
	select {
	case c.queue <- cl:
	case <-c.done:
		return nil, unwrapBroker(c.closedErr())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := c.wait1(ctx, cl, c.cfg.requestTimeout); err != nil {
		err = unwrapBroker(err)
		if errors.Is(err, io.EOF) {
			// How a broker refuses credentials after SaslHandshake v0.
			return nil, fmt.Errorf("the broker closed the connection during authentication (after SaslHandshake v0 this is how it refuses credentials): %w", err)
		}
		return nil, fmt.Errorf("bare SASL token after SaslHandshake v0: %w", err)
	}
	return cl.frame, nil
}

// unwrapBroker strips the *BrokerError of a connection's own error: the
// failed dial wraps its own.
func unwrapBroker(err error) error {
	if be, ok := err.(*BrokerError); ok && be.Err != nil {
		return be.Err
	}
	return err
}
