package kpax

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SCRAM (RFC 5802, with SHA-256 per RFC 7677 and SHA-512 as Kafka has it):
//
//	client-first  n,,n=USER,r=CNONCE
//	server-first  r=CNONCE+SNONCE,s=SALT,i=ITERATIONS
//	client-final  c=biws,r=CNONCE+SNONCE,p=PROOF
//	server-final  v=SERVER-SIGNATURE   (or e=ERROR)
//
// The client proves it knows the password without sending it, and checks
// that the server knows it too (the server signature): a server that does
// not verify fails the exchange, as does a nonce that does not extend ours
// or an iteration count outside [scramMinIterations, scramMaxIterations].
// No channel binding ("n,,"); the user is escaped ('=' as =3D, ',' as =2C);
// names and passwords are used as UTF-8 bytes without SASLprep, as Kafka's
// own client and broker do.

const (
	// scramMinIterations is the floor of RFC 7677 and of Kafka: fewer make
	// the proof cheap to attack offline, so a server asking fewer is refused.
	scramMinIterations = 4096
	// scramMaxIterations bounds the work a server can demand of the client
	// (Kafka allows at most 16384).
	scramMaxIterations = 1 << 17
)

// SASLScramSHA256 returns the SCRAM-SHA-256 mechanism (RFC 5802, RFC 7677)
// with the user and password. The password never crosses the network, and
// the broker must prove it knows the password too, but without TLS the
// exchange is open to offline guessing: prefer it with WithTLS. New refuses
// an empty user or password.
func SASLScramSHA256(user, password string) SASLMechanism {
	return &scramMechanism{name: "SCRAM-SHA-256", hash: sha256.New, user: user, pass: password}
}

// SASLScramSHA512 returns the SCRAM-SHA-512 mechanism (RFC 5802 with
// SHA-512) with the user and password; see SASLScramSHA256.
func SASLScramSHA512(user, password string) SASLMechanism {
	return &scramMechanism{name: "SCRAM-SHA-512", hash: sha512.New, user: user, pass: password}
}

type scramMechanism struct {
	name       string
	hash       func() hash.Hash
	user, pass string
	nonce      func() (string, error) // tests fix it; nil: 24 random bytes
}

func (m *scramMechanism) Name() string { return m.name }

func (m *scramMechanism) validate() error {
	if m.user == "" || m.pass == "" {
		return fmt.Errorf("SASL %s: empty user or password", m.name)
	}
	return nil
}

func (m *scramMechanism) Start(context.Context) (SASLSession, []byte, error) {
	if err := m.validate(); err != nil {
		return nil, nil, err
	}
	newNonce := m.nonce
	if newNonce == nil {
		newNonce = randomNonce
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, nil, fmt.Errorf("nonce: %w", err)
	}
	if nonce == "" || strings.ContainsAny(nonce, ",=") {
		return nil, nil, fmt.Errorf("bad nonce %q", nonce)
	}
	s := &scramSession{m: m, nonce: nonce}
	s.clientFirstBare = "n=" + scramEscape(m.user) + ",r=" + nonce
	return s, []byte(scramGS2Header + s.clientFirstBare), nil
}

// scramGS2Header says: no channel binding, no authorization identity.
const scramGS2Header = "n,,"

func randomNonce() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(b[:]), nil
}

// scramEscape escapes a user name for SCRAM: '=' as "=3D", ',' as "=2C".
func scramEscape(s string) string {
	if !strings.ContainsAny(s, "=,") {
		return s
	}
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// scramSession is one SCRAM exchange: it expects the server-first message,
// then the server-final one.
type scramSession struct {
	m               *scramMechanism
	nonce           string
	clientFirstBare string
	step            int
	serverSignature []byte
}

// errSCRAM marks a SCRAM message that does not follow the protocol or does
// not verify.
var errSCRAM = errors.New("SCRAM")

func (s *scramSession) Challenge(server []byte) (bool, []byte, error) {
	s.step++
	switch s.step {
	case 1:
		final, err := s.clientFinal(server)
		if err != nil {
			return false, nil, err
		}
		return false, final, nil
	case 2:
		return true, nil, s.verify(server)
	default:
		return false, nil, fmt.Errorf("%w: message after the server-final one", errSCRAM)
	}
}

// clientFinal checks the server-first message and computes the proof.
func (s *scramSession) clientFinal(serverFirst []byte) ([]byte, error) {
	msg := string(serverFirst)
	attrs, err := scramAttrs(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: server-first message: %w", errSCRAM, err)
	}
	if e, ok := attrs["e"]; ok {
		return nil, fmt.Errorf("%w: the server says %q", errSCRAM, scramTrunc(e))
	}
	if strings.HasPrefix(msg, "m=") {
		return nil, fmt.Errorf("%w: the server requires an extension this client does not know", errSCRAM)
	}
	if !strings.HasPrefix(msg, "r=") {
		return nil, fmt.Errorf("%w: server-first message does not start with a nonce", errSCRAM)
	}
	nonce := attrs["r"]
	if len(nonce) <= len(s.nonce) || !strings.HasPrefix(nonce, s.nonce) {
		return nil, fmt.Errorf("%w: the server's nonce does not extend the client's", errSCRAM)
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil || len(salt) == 0 {
		return nil, fmt.Errorf("%w: bad salt %q", errSCRAM, scramTrunc(attrs["s"]))
	}
	iters, err := strconv.Atoi(attrs["i"])
	if err != nil {
		return nil, fmt.Errorf("%w: bad iteration count %q", errSCRAM, attrs["i"])
	}
	if iters < scramMinIterations || iters > scramMaxIterations {
		return nil, fmt.Errorf("%w: iteration count %d outside [%d, %d]", errSCRAM, iters, scramMinIterations, scramMaxIterations)
	}

	h := s.m.hash
	salted, err := pbkdf2.Key(h, s.m.pass, salt, iters, h().Size())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSCRAM, err)
	}
	clientKey := scramHMAC(h, salted, "Client Key")
	storedKey := h()
	storedKey.Write(clientKey)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(scramGS2Header)) + ",r=" + nonce
	authMessage := s.clientFirstBare + "," + msg + "," + withoutProof
	proof := scramHMAC(h, storedKey.Sum(nil), authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	s.serverSignature = scramHMAC(h, scramHMAC(h, salted, "Server Key"), authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// verify checks the server-final message's signature.
func (s *scramSession) verify(serverFinal []byte) error {
	attrs, err := scramAttrs(string(serverFinal))
	if err != nil {
		return fmt.Errorf("%w: server-final message: %w", errSCRAM, err)
	}
	if e, ok := attrs["e"]; ok {
		return fmt.Errorf("%w: the server says %q", errSCRAM, scramTrunc(e))
	}
	v, ok := attrs["v"]
	if !ok {
		return fmt.Errorf("%w: server-final message without a signature", errSCRAM)
	}
	sig, err := base64.StdEncoding.DecodeString(v)
	if err != nil || !hmac.Equal(sig, s.serverSignature) {
		return fmt.Errorf("%w: the server's signature does not verify: it does not know the password", errSCRAM)
	}
	return nil
}

func scramHMAC(h func() hash.Hash, key []byte, msg string) []byte {
	mac := hmac.New(h, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

// scramAttrs parses "a=value,b=value": single-letter names, each at most
// once. Values may hold '=' (base64), not ','.
func scramAttrs(msg string) (map[string]string, error) {
	if msg == "" {
		return nil, errors.New("empty message")
	}
	attrs := make(map[string]string, 4)
	for part := range strings.SplitSeq(msg, ",") {
		if len(part) < 2 || part[1] != '=' || !isASCIILetter(part[0]) {
			return nil, fmt.Errorf("bad attribute %q", scramTrunc(part))
		}
		name := part[:1]
		if _, dup := attrs[name]; dup {
			return nil, fmt.Errorf("attribute %q twice", name)
		}
		attrs[name] = part[2:]
	}
	return attrs, nil
}

func isASCIILetter(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }

// scramTrunc keeps what a hostile server sends from flooding error text.
func scramTrunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
