package kpax

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file tests TLS: against fake brokers, that no credential leaves the
// client before the TLS handshake has verified the broker; against the real
// secure node, its SSL and SASL_SSL listeners with the right CA, and a
// refusal with a wrong one.

// testCA is a CA made for one test, with what it signs.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// serverCert returns a certificate for 127.0.0.1 signed by the CA.
func (ca *testCA) serverCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tapListener records every byte its connections read from the network,
// before any TLS: what a wiretap on the broker's side would see.
type tapListener struct {
	net.Listener
	mu  sync.Mutex
	buf bytes.Buffer
}

func newTapListener(t testing.TB) *tapListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &tapListener{Listener: ln}
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, l: l}, nil
}

func (l *tapListener) wire() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.buf.Bytes())
}

type tapConn struct {
	net.Conn
	l *tapListener
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.mu.Lock()
	c.l.buf.Write(p[:n])
	c.l.mu.Unlock()
	return n, err
}

// TestTLSCredentialsAfterHandshake: with TLS configured, the SASL
// credentials go out only inside a TLS session with a verified broker. A
// broker that does not speak TLS, or whose certificate does not verify, never
// sees them; the control (right CA) shows the check would see them.
func TestTLSCredentialsAfterHandshake(t *testing.T) {
	const secret = "alice-secret"
	ca, other := newTestCA(t, "kpax test CA"), newTestCA(t, "someone else's CA")
	tests := []struct {
		name     string
		tls      bool    // the broker speaks TLS with a cert from ca
		roots    *testCA // what the client trusts
		server   string  // ServerName the client asks for ("" = the host)
		wantErr  any     // an errors.As target, nil for success
		wantText string  // in the error
	}{
		{name: "control: right CA", tls: true, roots: ca},
		{name: "broker without TLS", tls: false, roots: ca, wantText: "TLS handshake"},
		{name: "wrong CA", tls: true, roots: other, wantErr: new(x509.UnknownAuthorityError), wantText: "TLS handshake"},
		{name: "no CA (system roots)", tls: true, roots: nil, wantErr: new(x509.UnknownAuthorityError), wantText: "TLS handshake"},
		{name: "wrong host name", tls: true, roots: ca, server: "kafka.example.com", wantErr: new(x509.HostnameError), wantText: "TLS handshake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tap := newTapListener(t)
			var ln net.Listener = tap
			if tt.tls {
				ln = tls.NewListener(tap, &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}})
			}
			f := newSASLFake(t, ln, nil)
			cfg := &tls.Config{ServerName: tt.server}
			if tt.roots != nil {
				cfg.RootCAs = tt.roots.pool
			}
			for _, mech := range []SASLMechanism{SASLPlain("alice", secret), SASLScramSHA256("alice", secret)} {
				cl := newTestClient(t, f.addr, WithTLS(cfg), WithSASL(mech), WithRequestTimeout(2*time.Second))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := cl.RequestBroker(ctx, -1, metadataFor())
				cancel()
				cl.Close()
				if tt.wantErr == nil && tt.wantText == "" {
					if err != nil {
						t.Fatalf("%s: %v", mech.Name(), err)
					}
					continue
				}
				wantBrokerError(t, err, f.addr)
				if tt.wantErr != nil && !errors.As(err, tt.wantErr) {
					t.Errorf("%s: error %q is not a %T", mech.Name(), err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("%s: error %q does not say %q", mech.Name(), err, tt.wantText)
				}
				t.Logf("%s: %v", mech.Name(), err)
			}
			wire, app := tap.wire(), f.received()
			if bytes.Contains(wire, []byte(secret)) {
				t.Errorf("the password crossed the network in clear text")
			}
			if tt.tls && tt.wantErr == nil {
				// Control: the broker got the PLAIN password, inside TLS.
				if !bytes.Contains(app, []byte(secret)) || !strings.Contains(strings.Join(f.events(), " "), "SaslAuthenticate") {
					t.Fatalf("the control broker did not get the credentials: %q", f.events())
				}
				return
			}
			if bytes.Contains(app, []byte("alice")) || strings.Contains(strings.Join(f.events(), " "), "Sasl") {
				t.Errorf("the broker got SASL messages: %q", f.events())
			}
			if len(wire) == 0 || wire[0] != 0x16 {
				t.Errorf("the client's first byte is not a TLS handshake record: % x", wire[:min(len(wire), 8)])
			}
		})
	}
}

// secureTLS returns a TLS config that trusts the secure node's CA.
func secureTLS(t *testing.T, n *secureTestNode) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(n.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", n.CAFile)
	}
	return &tls.Config{RootCAs: pool}
}

// TestIntegrationTLS talks to the real broker's SSL and SASL_SSL listeners.
func TestIntegrationTLS(t *testing.T) {
	n := startSecureTestNode(t)
	good := secureTLS(t, n)
	wrong := &tls.Config{RootCAs: newTestCA(t, "not the broker's CA").pool}
	tests := []struct {
		name    string
		addr    string
		opts    []Option
		wantErr []error
		wantAs  any
		says    string
	}{
		{name: "SSL", addr: n.SSL, opts: []Option{WithTLS(good)}},
		{name: "SASL_SSL PLAIN", addr: n.SASLSSL, opts: []Option{WithTLS(good), WithSASL(SASLPlain("bob", "bob-secret"))}},
		{name: "SASL_SSL SCRAM-SHA-256", addr: n.SASLSSL, opts: []Option{WithTLS(good), WithSASL(SASLScramSHA256("alice", "alice-secret"))}},
		{name: "SASL_SSL SCRAM-SHA-512 handshake v0", addr: n.SASLSSL,
			opts: []Option{WithTLS(good), WithSASL(SASLScramSHA512("alice", "alice-secret")), WithMaxVersion(17, 0)}},
		{name: "SSL wrong CA", addr: n.SSL, opts: []Option{WithTLS(wrong)}, wantAs: new(x509.UnknownAuthorityError), says: "TLS handshake"},
		{name: "SSL system roots", addr: n.SSL, opts: []Option{WithTLS(&tls.Config{})}, wantAs: new(x509.UnknownAuthorityError)},
		{name: "SASL_SSL wrong CA", addr: n.SASLSSL, opts: []Option{WithTLS(wrong), WithSASL(SASLPlain("alice", "alice-secret"))},
			wantAs: new(x509.UnknownAuthorityError)},
		{name: "SASL_SSL wrong password", addr: n.SASLSSL, opts: []Option{WithTLS(good), WithSASL(SASLScramSHA512("alice", "bob-secret"))},
			wantErr: []error{ErrSASL, ErrSaslAuthenticationFailed}},
		{name: "TLS to the PLAINTEXT listener", addr: n.Addr, opts: []Option{WithTLS(good)}, says: "is the listener plain TCP?"},
		{name: "plain TCP to the SSL listener", addr: n.SSL, wantErr: []error{ErrMalformed}, says: "use WithTLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]Option{WithRequestTimeout(5 * time.Second), WithDialTimeout(5 * time.Second)}, tt.opts...)
			cl := newTestClient(t, tt.addr, opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			md, err := cl.Metadata(ctx)
			fails := tt.wantErr != nil || tt.wantAs != nil || tt.says != ""
			if !fails {
				if err != nil {
					t.Fatal(err)
				}
				if len(md.Brokers) != 1 || md.Brokers[0].Addr() != tt.addr {
					t.Fatalf("brokers %+v, want the listener %s", md.Brokers, tt.addr)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			wantBrokerError(t, err, tt.addr, tt.wantErr...)
			if tt.wantAs != nil && !errors.As(err, tt.wantAs) {
				t.Errorf("error %q is not a %T", err, tt.wantAs)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
			if d := time.Since(start); d > 6*time.Second {
				t.Errorf("failed after %v", d)
			}
			t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
		})
	}
}

// TestIntegrationTLSRecords produces and consumes through the SASL_SSL
// listener (SCRAM-SHA-256 over TLS, 300 records of 1 KiB, so fetch
// responses span many TLS records), and kcat (librdkafka) reads the same
// records back through the SSL listener.
func TestIntegrationTLSRecords(t *testing.T) {
	n := startSecureTestNode(t)
	cl := newTestClient(t, n.SASLSSL, WithTLS(secureTLS(t, n)), WithSASL(SASLScramSHA256("alice", "alice-secret")))
	topic := createTestTopic(t, cl, 1)
	const count = 300
	pad := strings.Repeat("x", 1024)
	var recs []*Record
	var want []string
	for i := range count {
		v := fmt.Sprintf("tls-%03d-%s", i, pad)
		recs = append(recs, &Record{Topic: topic, Partition: 0, Value: []byte(v)})
		want = append(want, v)
	}
	produceKpax(t, cl, recs, WithLinger(time.Millisecond))
	c := newTestConsumer(t, cl)
	c.Assign(map[string]map[int32]Offset{topic: {0: Earliest()}})
	got, _ := pollN(t, c, count, 30*time.Second)
	checkExactly(t, got, map[int32][]string{0: want})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kcat", "-C", "-b", n.SSL, "-X", "security.protocol=SSL",
		"-X", "ssl.ca.location="+n.CAFile, "-t", topic, "-o", "beginning", "-c", fmt.Sprint(count), "-e", "-q",
		"-f", "%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat over SSL: %v\n%s", err, out)
	}
	if lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(lines, want) {
		t.Fatalf("kcat read %d records, want %d equal ones", len(lines), count)
	}
}

// A client for a SASL_SSL listener: TLS with the cluster's CA, then
// SCRAM-SHA-512. The credentials go out only after the TLS handshake has
// verified the broker; a wrong password is ErrSaslAuthenticationFailed.
func ExampleWithTLS() {
	pem, err := os.ReadFile("ca.pem") // the CA that signed the brokers' certificates
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		log.Fatal("no certificate in ca.pem")
	}
	cl, err := New(
		WithSeedBrokers("kafka-1.example.com:9094"),
		WithTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}),
		WithSASL(SASLScramSHA512("alice", os.Getenv("KAFKA_PASSWORD"))),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	md, err := cl.Metadata(context.Background())
	switch {
	case errors.Is(err, ErrSaslAuthenticationFailed):
		log.Fatal("wrong user or password: ", err)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(len(md.Brokers), "brokers")
}
