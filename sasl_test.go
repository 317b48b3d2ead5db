package kpax

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file tests SASL: SCRAM against the RFC 7677 test vector and hostile
// server messages, every mechanism against a fake broker (framed with
// SaslAuthenticate, and bare after SaslHandshake v0), and against a real
// broker with SASL listeners (startSecureTestNode).

// --- SCRAM, message by message ---

// TestSCRAMRFC7677 runs the SCRAM-SHA-256 exchange of RFC 7677, section 3.
func TestSCRAMRFC7677(t *testing.T) {
	const (
		clientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
		serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
		clientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
		serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
	)
	start := func() SASLSession {
		m := SASLScramSHA256("user", "pencil").(*scramMechanism)
		m.nonce = func() (string, error) { return "rOprNGfwEbeRWgbNEkqO", nil }
		s, first, err := m.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if string(first) != clientFirst {
			t.Fatalf("client-first %q, want %q", first, clientFirst)
		}
		done, final, err := s.Challenge([]byte(serverFirst))
		if err != nil || done {
			t.Fatalf("server-first: done %v, err %v", done, err)
		}
		if string(final) != clientFinal {
			t.Fatalf("client-final %q, want %q", final, clientFinal)
		}
		return s
	}
	s := start()
	if done, next, err := s.Challenge([]byte(serverFinal)); err != nil || !done || next != nil {
		t.Fatalf("server-final: done %v, next %q, err %v", done, next, err)
	}
	if _, _, err := s.Challenge([]byte(serverFinal)); !errors.Is(err, errSCRAM) {
		t.Fatalf("a message after the end: err %v", err)
	}
	// Control: one bit off in the server's signature fails the exchange.
	bad := []byte(serverFinal)
	bad[3] ^= 1
	if done, _, err := start().Challenge(bad); !errors.Is(err, errSCRAM) || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("bad server signature: done %v, err %v", done, err)
	}
}

func TestSCRAMEscape(t *testing.T) {
	for in, want := range map[string]string{"alice": "alice", "a=b": "a=3Db", "a,b": "a=2Cb", "=,=": "=3D=2C=3D", "": ""} {
		if got := scramEscape(in); got != want {
			t.Errorf("scramEscape(%q) = %q, want %q", in, got, want)
		}
	}
	m := SASLScramSHA512("us=er,1", "pw").(*scramMechanism)
	m.nonce = func() (string, error) { return "abc", nil }
	_, first, err := m.Start(context.Background())
	if err != nil || string(first) != "n,,n=us=3Der=2C1,r=abc" {
		t.Fatalf("client-first %q, err %v", first, err)
	}
}

// TestSCRAMHostileServer: server messages that break the protocol or its
// floors end the exchange with an error, before any proof is sent.
func TestSCRAMHostileServer(t *testing.T) {
	const cnonce = "clientnonce"
	salt := base64.StdEncoding.EncodeToString([]byte("salty"))
	first := func(nonce, salt, iters string) string { return "r=" + nonce + ",s=" + salt + ",i=" + iters }
	tests := []struct{ name, serverFirst, want string }{
		{"nonce of another client", first("othernonce+srv", salt, "4096"), "nonce"},
		{"nonce not extended", first(cnonce, salt, "4096"), "nonce"},
		{"nonce as a suffix", first("srv"+cnonce, salt, "4096"), "nonce"},
		{"iterations below 4096", first(cnonce+"srv", salt, "4095"), "iteration"},
		{"iterations 1", first(cnonce+"srv", salt, "1"), "iteration"},
		{"iterations 0", first(cnonce+"srv", salt, "0"), "iteration"},
		{"iterations negative", first(cnonce+"srv", salt, "-4096"), "iteration"},
		{"iterations huge", first(cnonce+"srv", salt, "2147483647"), "iteration"},
		{"iterations overflow", first(cnonce+"srv", salt, "99999999999999999999"), "iteration"},
		{"iterations not a number", first(cnonce+"srv", salt, "4k"), "iteration"},
		{"no iterations", "r=" + cnonce + "srv,s=" + salt, "iteration"},
		{"empty salt", first(cnonce+"srv", "", "4096"), "salt"},
		{"salt not base64", first(cnonce+"srv", "!!", "4096"), "salt"},
		{"mandatory extension", "m=ext," + first(cnonce+"srv", salt, "4096"), "extension"},
		{"server error", "e=other-error", "other-error"},
		{"attribute twice", first(cnonce+"srv", salt, "4096") + ",i=4096", "twice"},
		{"garbage", "\x00\xff garbage", "attribute"},
		{"empty", "", "empty"},
		{"nonce not first", "s=" + salt + ",r=" + cnonce + "srv,i=4096", "nonce"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := SASLScramSHA256("alice", "secret").(*scramMechanism)
			m.nonce = func() (string, error) { return cnonce, nil }
			s, _, err := m.Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			done, final, err := s.Challenge([]byte(tt.serverFirst))
			if !errors.Is(err, errSCRAM) || done || final != nil {
				t.Fatalf("done %v, final %q, err %v", done, final, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	finals := []struct{ name, serverFinal, want string }{
		{"server error", "e=invalid-proof", "invalid-proof"},
		{"no signature", "x=1", "signature"},
		{"signature not base64", "v=!!", "signature"},
		{"empty signature", "v=", "signature"},
		{"empty", "", "empty"},
	}
	for _, tt := range finals {
		t.Run("final "+tt.name, func(t *testing.T) {
			m := SASLScramSHA512("alice", "secret").(*scramMechanism)
			m.nonce = func() (string, error) { return cnonce, nil }
			s, _, _ := m.Start(context.Background())
			if _, _, err := s.Challenge([]byte(first(cnonce+"srv", salt, "4096"))); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Challenge([]byte(tt.serverFinal)); !errors.Is(err, errSCRAM) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// TestSASLBadOptions: credentials a mechanism cannot send fail New.
func TestSASLBadOptions(t *testing.T) {
	for _, m := range []SASLMechanism{SASLPlain("", "p"), SASLPlain("u", ""), SASLPlain("u\x00x", "p"),
		SASLScramSHA256("", "p"), SASLScramSHA512("u", "")} {
		if _, err := New(WithSeedBrokers("127.0.0.1:9092"), WithSASL(m)); err == nil || !strings.Contains(err.Error(), "SASL") {
			t.Errorf("%s: err %v", m.Name(), err)
		}
	}
}

// --- a fake broker that authenticates ---

// scramServer is the server side of SCRAM, written from RFC 5802 apart
// from the client's code, for the fake broker.
type scramServer struct {
	hash  func() hash.Hash
	users map[string]string
	salt  []byte
	iters int
	// tamper, when set, changes the server's messages (step 1: server-first, 2: server-final).
	tamper func(step int, msg string) string

	step                         int
	clientFirstBare, serverFirst string
	pass                         string
}

var errFakeAuth = errors.New("fake broker: authentication failed")

func (s *scramServer) next(token []byte) ([]byte, error) {
	s.step++
	msg := string(token)
	switch s.step {
	case 1:
		bare, ok := strings.CutPrefix(msg, "n,,")
		if !ok {
			return nil, fmt.Errorf("client-first %q", msg)
		}
		name, nonce, ok := strings.Cut(strings.TrimPrefix(bare, "n="), ",r=")
		if !ok {
			return nil, fmt.Errorf("client-first %q", msg)
		}
		name = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(name)
		pass, ok := s.users[name]
		if !ok {
			return nil, errFakeAuth
		}
		s.clientFirstBare, s.pass = bare, pass
		s.serverFirst = "r=" + nonce + "fakeserver,s=" + base64.StdEncoding.EncodeToString(s.salt) + fmt.Sprintf(",i=%d", s.iters)
		if s.tamper != nil {
			s.serverFirst = s.tamper(1, s.serverFirst)
		}
		return []byte(s.serverFirst), nil
	case 2:
		withoutProof, proof64, ok := strings.Cut(msg, ",p=")
		proof, err := base64.StdEncoding.DecodeString(proof64)
		if !ok || err != nil {
			return nil, fmt.Errorf("client-final %q", msg)
		}
		mac := func(key []byte, m string) []byte {
			h := hmac.New(s.hash, key)
			h.Write([]byte(m))
			return h.Sum(nil)
		}
		salted, _ := pbkdf2.Key(s.hash, s.pass, s.salt, s.iters, s.hash().Size())
		storedKey := s.hash()
		storedKey.Write(mac(salted, "Client Key"))
		auth := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
		sig := mac(storedKey.Sum(nil), auth)
		if len(proof) != len(sig) {
			return nil, errFakeAuth
		}
		for i := range sig {
			sig[i] ^= proof[i] // the client key, if the proof is right
		}
		check := s.hash()
		check.Write(sig)
		if !hmac.Equal(check.Sum(nil), storedKey.Sum(nil)) {
			return nil, errFakeAuth
		}
		final := "v=" + base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), auth))
		if s.tamper != nil {
			final = s.tamper(2, final)
		}
		return []byte(final), nil
	}
	return nil, errors.New("fake broker: SCRAM message after the end")
}

// saslFake is a broker that requires SASL: ApiVersions, SaslHandshake,
// then the tokens (in SaslAuthenticate, or bare after handshake v0), then
// Metadata. It records what it received, to check what reached it.
type saslFake struct {
	t      testing.TB
	ln     net.Listener
	addr   string
	users  map[string]string
	hsMax  int16 // SaslHandshake versions 0..hsMax
	noAuth bool  // no SaslAuthenticate: a Kafka 0.10 broker
	iters  int
	tamper func(step int, msg string) string
	// lifetime limits sessions (KIP-368): a request after the end closes the
	// connection. It is told to the client unless hideLifetime.
	lifetime     time.Duration
	hideLifetime bool

	srv *fakeServer
	mu  sync.Mutex
	log []string // "ApiVersions", "SaslHandshake v1", "token", "Metadata", ...
	app bytes.Buffer
}

func newSASLFake(t testing.TB, ln net.Listener, configure func(f *saslFake)) *saslFake {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	f := &saslFake{t: t, ln: ln, addr: ln.Addr().String(), hsMax: 1, iters: 4096,
		users: map[string]string{"alice": "alice-secret", "us=er,1": "odd-secret"}}
	if configure != nil {
		configure(f)
	}
	f.srv = serveFake(t, ln, f.serve)
	return f
}

func (f *saslFake) record(event string, frame []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, event)
	f.app.Write(frame)
}

// events returns what the broker received, in order.
func (f *saslFake) events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

// received returns every request byte the broker read (after TLS).
func (f *saslFake) received() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.app.Bytes())
}

func (f *saslFake) serve(c net.Conn) {
	var (
		mech   string
		bare   bool // tokens without Kafka framing (after handshake v0)
		scram  *scramServer
		authed bool
		ends   time.Time // the session's end, when limited
	)
	// token runs one step of the mechanism; an error fails authentication.
	token := func(tok []byte) ([]byte, bool, error) {
		switch mech {
		case "PLAIN":
			parts := strings.Split(string(tok), "\x00")
			if len(parts) != 3 || f.users[parts[1]] != parts[2] || f.users[parts[1]] == "" {
				return nil, false, errFakeAuth
			}
			return []byte{}, true, nil
		default:
			out, err := scram.next(tok)
			return out, err == nil && scram.step == 2, err
		}
	}
	for {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > 1<<20 {
			f.record(fmt.Sprintf("frame of %d bytes", n), size[:])
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(c, frame); err != nil {
			return
		}
		if bare && !authed {
			f.record("token", frame)
			out, done, err := token(frame)
			if err != nil {
				return // how a broker refuses after handshake v0
			}
			authed = done
			c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(out))))
			c.Write(out)
			continue
		}
		r, err := parseFakeRequest(frame)
		if err != nil {
			f.record("garbage", frame)
			return
		}
		f.record(fmt.Sprintf("%s v%d", APIName(r.key), r.version), frame)
		var resp Response
		switch req := r.req.(type) {
		case *ApiVersionsRequest:
			keys := []ApiVersionsResponseApiKey{{ApiKey: apiKeyApiVersions, MaxVersion: 3}, {ApiKey: 3, MaxVersion: 12},
				{ApiKey: 17, MaxVersion: f.hsMax}}
			if !f.noAuth {
				keys = append(keys, ApiVersionsResponseApiKey{ApiKey: 36, MaxVersion: 2})
			}
			resp = &ApiVersionsResponse{ApiKeys: keys}
		case *SaslHandshakeRequest:
			hr := &SaslHandshakeResponse{Mechanisms: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}}
			mech = req.Mechanism
			switch mech {
			case "PLAIN":
			case "SCRAM-SHA-256":
				scram = &scramServer{hash: sha256.New}
			case "SCRAM-SHA-512":
				scram = &scramServer{hash: sha512.New}
			default:
				hr.ErrorCode = ErrUnsupportedSaslMechanism.Code()
			}
			if scram != nil {
				scram.users, scram.salt, scram.iters, scram.tamper = f.users, []byte("fake salt"), f.iters, f.tamper
			}
			bare = r.version == 0
			resp = hr
		case *SaslAuthenticateRequest:
			out, done, err := token(req.AuthBytes)
			if err != nil {
				resp = &SaslAuthenticateResponse{ErrorCode: ErrSaslAuthenticationFailed.Code(), ErrorMessage: ptr("fake: " + err.Error())}
			} else {
				authed = done
				ar := &SaslAuthenticateResponse{AuthBytes: out}
				if done && f.lifetime > 0 {
					ends = time.Now().Add(f.lifetime)
					if !f.hideLifetime {
						ar.SessionLifetimeMs = f.lifetime.Milliseconds()
					}
				}
				resp = ar
			}
		case *MetadataRequest:
			if !authed {
				return
			}
			if !ends.IsZero() && time.Now().After(ends) {
				f.record("expired", nil)
				return // what Kafka does on a request after the session's end
			}
			port := int32(c.LocalAddr().(*net.TCPAddr).Port)
			resp = &MetadataResponse{Brokers: []MetadataResponseBroker{{NodeID: 1, Host: "127.0.0.1", Port: port}}, ControllerID: 1}
		default:
			return
		}
		if _, err := c.Write(appendResponse(nil, r.req, r.version, r.corr, resp)); err != nil {
			return
		}
	}
}

// TestSASLFake authenticates with each mechanism against the fake broker,
// framed and bare, and checks that failures fail closed: the dial fails with
// an errors.Is-able error and no request goes out unauthenticated.
func TestSASLFake(t *testing.T) {
	type cfg = func(f *saslFake)
	tamper := func(step int, f func(string) string) cfg {
		return func(fk *saslFake) {
			fk.tamper = func(s int, msg string) string {
				if s == step {
					return f(msg)
				}
				return msg
			}
		}
	}
	tests := []struct {
		name   string
		mech   SASLMechanism
		fake   cfg
		hsCap  int16   // WithMaxVersion for SaslHandshake; -1 none
		want   []error // nil: success
		says   string  // in the error
		events string  // what the broker received, joined by " | "
	}{
		{name: "PLAIN", mech: SASLPlain("alice", "alice-secret"), hsCap: -1,
			events: "ApiVersions v5 | SaslHandshake v1 | SaslAuthenticate v2 | Metadata v12"},
		{name: "PLAIN bare", mech: SASLPlain("alice", "alice-secret"), hsCap: 0,
			events: "ApiVersions v5 | SaslHandshake v0 | token | Metadata v12"},
		{name: "SCRAM-SHA-256", mech: SASLScramSHA256("alice", "alice-secret"), hsCap: -1,
			events: "ApiVersions v5 | SaslHandshake v1 | SaslAuthenticate v2 | SaslAuthenticate v2 | Metadata v12"},
		{name: "SCRAM-SHA-512", mech: SASLScramSHA512("alice", "alice-secret"), hsCap: -1},
		{name: "SCRAM-SHA-256 bare", mech: SASLScramSHA256("alice", "alice-secret"), hsCap: 0,
			events: "ApiVersions v5 | SaslHandshake v0 | token | token | Metadata v12"},
		{name: "SCRAM-SHA-512 bare", mech: SASLScramSHA512("alice", "alice-secret"), hsCap: 0},
		{name: "SCRAM user with = and ,", mech: SASLScramSHA512("us=er,1", "odd-secret"), hsCap: -1},
		{name: "broker without SaslAuthenticate", mech: SASLScramSHA256("alice", "alice-secret"), hsCap: -1,
			fake:   func(f *saslFake) { f.noAuth, f.hsMax = true, 0 },
			events: "ApiVersions v5 | SaslHandshake v0 | token | token | Metadata v12"},
		{name: "SCRAM 4096 iterations is the floor", mech: SASLScramSHA256("alice", "alice-secret"), hsCap: -1,
			fake: func(f *saslFake) { f.iters = 4096 }},

		{name: "PLAIN wrong password", mech: SASLPlain("alice", "wrong"), hsCap: -1,
			want: []error{ErrSASL, ErrSaslAuthenticationFailed}, says: "fake broker: authentication failed",
			events: "ApiVersions v5 | SaslHandshake v1 | SaslAuthenticate v2"},
		{name: "SCRAM wrong password", mech: SASLScramSHA256("alice", "wrong"), hsCap: -1,
			want:   []error{ErrSASL, ErrSaslAuthenticationFailed},
			events: "ApiVersions v5 | SaslHandshake v1 | SaslAuthenticate v2 | SaslAuthenticate v2"},
		{name: "SCRAM unknown user", mech: SASLScramSHA512("mallory", "x"), hsCap: -1,
			want: []error{ErrSASL, ErrSaslAuthenticationFailed}},
		{name: "SCRAM wrong password bare", mech: SASLScramSHA512("alice", "wrong"), hsCap: 0,
			want: []error{ErrSASL, io.EOF}, says: "closed the connection during authentication",
			events: "ApiVersions v5 | SaslHandshake v0 | token | token"},
		{name: "unknown mechanism", mech: namedMechanism{"GSSAPI"}, hsCap: -1,
			want: []error{ErrSASL, ErrUnsupportedSaslMechanism}, says: "SCRAM-SHA-512",
			events: "ApiVersions v5 | SaslHandshake v1"},
		{name: "bad server signature", mech: SASLScramSHA256("alice", "alice-secret"), hsCap: -1,
			fake: tamper(2, func(m string) string {
				sig, _ := base64.StdEncoding.DecodeString(m[len("v="):])
				sig[len(sig)-1] ^= 1
				return "v=" + base64.StdEncoding.EncodeToString(sig)
			}),
			want: []error{ErrSASL, errSCRAM}, says: "signature",
			events: "ApiVersions v5 | SaslHandshake v1 | SaslAuthenticate v2 | SaslAuthenticate v2"},
		{name: "server signature of another password", mech: SASLScramSHA256("alice", "alice-secret"), hsCap: -1,
			fake: func(f *saslFake) {
				// A server that takes any proof and signs with a password it guessed.
				f.tamper = func(step int, msg string) string {
					if step == 2 {
						return "v=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
					}
					return msg
				}
			},
			want: []error{ErrSASL, errSCRAM}, says: "signature"},
		{name: "bad server signature bare", mech: SASLScramSHA512("alice", "alice-secret"), hsCap: 0,
			fake: tamper(2, func(string) string { return "v=" + base64.StdEncoding.EncodeToString([]byte("forged")) }),
			want: []error{ErrSASL, errSCRAM}, says: "signature",
			events: "ApiVersions v5 | SaslHandshake v0 | token | token"},
		{name: "bad nonce", mech: SASLScramSHA256("alice", "alice-secret"), hsCap: -1,
			fake: tamper(1, func(m string) string { return "r=someoneelse" + m[len("r="):] }),
			want: []error{ErrSASL, errSCRAM}, says: "nonce",
			events: "ApiVersions v5 | SaslHandshake v1 | SaslAuthenticate v2"},
		{name: "low iterations", mech: SASLScramSHA256("alice", "alice-secret"), hsCap: -1,
			fake: func(f *saslFake) { f.iters = 4095 }, want: []error{ErrSASL, errSCRAM}, says: "iteration count 4095",
			events: "ApiVersions v5 | SaslHandshake v1 | SaslAuthenticate v2"},
		{name: "low iterations bare", mech: SASLScramSHA512("alice", "alice-secret"), hsCap: 0,
			fake: func(f *saslFake) { f.iters = 1 }, want: []error{ErrSASL, errSCRAM}, says: "iteration",
			events: "ApiVersions v5 | SaslHandshake v0 | token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSASLFake(t, nil, tt.fake)
			opts := []Option{WithSASL(tt.mech), WithRequestTimeout(5 * time.Second), WithRetryBackoff(time.Millisecond, 10*time.Millisecond)}
			if tt.hsCap >= 0 {
				opts = append(opts, WithMaxVersion(17, tt.hsCap))
			}
			cl := newTestClient(t, f.addr, opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := cl.RequestBroker(ctx, -1, metadataFor())
			events := strings.Join(f.events(), " | ")
			if tt.want == nil {
				if err != nil {
					t.Fatalf("%v (the broker got %s)", err, events)
				}
			} else {
				wantBrokerError(t, err, f.addr, tt.want...)
				if !strings.Contains(err.Error(), tt.says) {
					t.Errorf("error %q does not say %q", err, tt.says)
				}
				if strings.Contains(events, "Metadata") {
					t.Errorf("a request reached the broker without authentication: %s", events)
				}
				t.Logf("%v", err)
			}
			if tt.events != "" && events != tt.events {
				t.Errorf("the broker got %s, want %s", events, tt.events)
			}
		})
	}
}

// accepted returns how many connections the broker accepted.
func (f *saslFake) accepted() int { return f.srv.accepted() }

// namedMechanism is a mechanism the fake does not have.
type namedMechanism struct{ name string }

func (m namedMechanism) Name() string { return m.name }
func (m namedMechanism) Start(context.Context) (SASLSession, []byte, error) {
	return plainSession{}, []byte("x"), nil
}

// TestSASLFakeHostile: a broker that never ends the exchange, or stops
// answering in the middle of it, fails the dial in time.
func TestSASLFakeHostile(t *testing.T) {
	t.Run("endless", func(t *testing.T) {
		f := newSASLFake(t, nil, nil)
		cl := newTestClient(t, f.addr, WithSASL(endlessMechanism{}))
		_, err := cl.RequestBroker(context.Background(), -1, metadataFor())
		wantBrokerError(t, err, f.addr, ErrSASL)
		if !strings.Contains(err.Error(), "no end") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("silent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		f := newSASLFake(t, &silentAfter{Listener: ln, n: 4}, func(f *saslFake) { f.hsMax = 0 })
		const timeout = 300 * time.Millisecond
		cl := newTestClient(t, f.addr, WithSASL(SASLScramSHA256("alice", "alice-secret")), WithRequestTimeout(timeout), WithMaxVersion(17, 0))
		start := time.Now()
		_, err = cl.RequestBroker(context.Background(), -1, metadataFor())
		wantBrokerError(t, err, f.addr, ErrSASL, ErrResponseTimeout)
		if d := time.Since(start); d > timeout+300*time.Millisecond {
			t.Fatalf("failed after %v", d)
		}
	})
}

type endlessMechanism struct{}

func (endlessMechanism) Name() string { return "PLAIN" }
func (endlessMechanism) Start(context.Context) (SASLSession, []byte, error) {
	return endlessSession{}, []byte("\x00alice\x00alice-secret"), nil
}

type endlessSession struct{}

func (endlessSession) Challenge([]byte) (bool, []byte, error) {
	return false, []byte("\x00alice\x00alice-secret"), nil
}

// silentAfter hands out connections that stop delivering the client's
// bytes after n reads, so the server never answers.
type silentAfter struct {
	net.Listener
	n int
}

func (l *silentAfter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &silentConn{Conn: c, left: l.n}, nil
}

type silentConn struct {
	net.Conn
	left int
}

func (c *silentConn) Read(p []byte) (int, error) {
	if c.left == 0 {
		// Swallow everything: block until the client hangs up.
		buf := make([]byte, 1024)
		for {
			if _, err := c.Conn.Read(buf); err != nil {
				return 0, err
			}
		}
	}
	c.left--
	return c.Conn.Read(p)
}

// --- a real broker ---

// TestIntegrationSASL authenticates against a real broker with each
// mechanism, framed (SaslHandshake v1 + SaslAuthenticate) and bare
// (SaslHandshake v0); wrong credentials fail closed with
// ErrSaslAuthenticationFailed.
func TestIntegrationSASL(t *testing.T) {
	n := startSecureTestNode(t)
	tests := []struct {
		name string
		mech SASLMechanism
		ok   bool
	}{
		{"PLAIN", SASLPlain("alice", "alice-secret"), true},
		{"SCRAM-SHA-256", SASLScramSHA256("alice", "alice-secret"), true},
		{"SCRAM-SHA-512", SASLScramSHA512("bob", "bob-secret"), true},
		{"PLAIN wrong password", SASLPlain("alice", "bob-secret"), false},
		{"SCRAM-SHA-256 wrong password", SASLScramSHA256("alice", "alice-secret!"), false},
		{"SCRAM-SHA-512 wrong password", SASLScramSHA512("bob", "alice-secret"), false},
		{"SCRAM-SHA-512 unknown user", SASLScramSHA512("mallory", "alice-secret"), false},
	}
	for _, tt := range tests {
		for _, hs := range []int16{1, 0} {
			t.Run(fmt.Sprintf("%s handshake v%d", tt.name, hs), func(t *testing.T) {
				cl := newTestClient(t, n.SASLPlaintext, WithSASL(tt.mech), WithMaxVersion(17, hs),
					WithRetryBackoff(time.Millisecond, 10*time.Millisecond))
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				md, err := cl.Metadata(ctx)
				if tt.ok {
					if err != nil {
						t.Fatal(err)
					}
					if len(md.Brokers) != 1 || md.Brokers[0].Addr() != n.SASLPlaintext {
						t.Fatalf("brokers %+v, want the SASL_PLAINTEXT listener %s", md.Brokers, n.SASLPlaintext)
					}
					return
				}
				want := []error{ErrSASL, ErrSaslAuthenticationFailed}
				if hs == 0 {
					want = []error{ErrSASL, io.EOF} // the broker just hangs up
				}
				wantBrokerError(t, err, n.SASLPlaintext, want...)
				if !errors.Is(err, ErrSaslAuthenticationFailed) && hs == 1 {
					t.Fatalf("err %v", err)
				}
				t.Logf("%v", err)
			})
		}
	}
	// Control: without SASL the listener does not serve requests.
	t.Run("no SASL", func(t *testing.T) {
		cl := newTestClient(t, n.SASLPlaintext, WithRequestTimeout(3*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cl.RequestBroker(ctx, -1, metadataFor()); err == nil {
			t.Fatal("a SASL listener answered Metadata without authentication")
		} else {
			t.Logf("%v", err)
		}
	})
}

// FuzzSCRAMServer feeds the client arbitrary server-first and server-final
// messages: no panic, every failure wraps errSCRAM, and the exchange never
// ends well without the right server signature.
func FuzzSCRAMServer(f *testing.F) {
	f.Add([]byte("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
		[]byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
	f.Add([]byte("r=rOprNGfwEbeRWgbNEkqOx,s=,i=4096"), []byte("e=other-error"))
	f.Add([]byte("m=x,r=rOprNGfwEbeRWgbNEkqOx,s=AA==,i=4096"), []byte("v="))
	f.Add([]byte("r=rOprNGfwEbeRWgbNEkqOx,s=AA==,i=4096,i=1"), []byte(",,,="))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		m := SASLScramSHA256("user", "pencil").(*scramMechanism)
		m.nonce = func() (string, error) { return "rOprNGfwEbeRWgbNEkqO", nil }
		s, _, err := m.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		done, _, err := s.Challenge(first)
		if err != nil {
			if !errors.Is(err, errSCRAM) {
				t.Fatalf("server-first: error %v does not wrap errSCRAM", err)
			}
			return
		}
		if done {
			t.Fatal("done after the server-first message")
		}
		done, _, err = s.Challenge(final)
		if err != nil {
			if !errors.Is(err, errSCRAM) {
				t.Fatalf("server-final: error %v does not wrap errSCRAM", err)
			}
			return
		}
		want := "v=" + base64.StdEncoding.EncodeToString(s.(*scramSession).serverSignature)
		if !done || !strings.HasPrefix(string(final), want) {
			t.Fatalf("exchange ended (done %v) with server-final %q, signature %q", done, final, want)
		}
	})
}
