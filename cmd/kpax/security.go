package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"

	"h12.me/kpax"
)

// This file turns client properties into TLS and SASL options. Properties
// use kcat's (librdkafka's) names, so a kcat command line or properties file
// works here: -X key=value, -F FILE, or an environment variable KPAX_ + the
// name in capitals with dots as underscores (KPAX_SASL_PASSWORD). A later
// source wins: environment, then -F, then -X and the long flags.

// propertyDoc lists the properties kpax reads, for -h and for errors.
var propertyDoc = map[string]string{
	"bootstrap.servers":                     "seed brokers (like -b)",
	"metadata.broker.list":                  "seed brokers (like -b)",
	"security.protocol":                     "plaintext, ssl, sasl_plaintext or sasl_ssl",
	"sasl.mechanisms":                       "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
	"sasl.mechanism":                        "the same as sasl.mechanisms",
	"sasl.username":                         "SASL user",
	"sasl.password":                         "SASL password (never printed)",
	"ssl.ca.location":                       "PEM file of the CA certificates that sign the brokers' certificates",
	"ssl.certificate.location":              "PEM file of the client certificate",
	"ssl.key.location":                      "PEM file of the client key",
	"ssl.key.password":                      "password of an encrypted ssl.key.location (PKCS#8 or legacy PEM; never printed)",
	"ssl.endpoint.identification.algorithm": "https (check the broker's host name, the default) or none",
	"enable.ssl.certificate.verification":   "false: accept any broker certificate (tests only)",
	"ssl.server.name":                       "kpax: the host name to check the broker's certificate against (default: the address's host)",
	"client.id":                             "client ID sent to the brokers",
}

// secret reports whether a property's value must never be printed.
func secret(key string) bool {
	return strings.Contains(key, "password") || strings.Contains(key, "secret")
}

// props are client properties by name.
type props map[string]string

// propFlag is -X key=value (repeatable).
type propFlag struct{ p props }

func (f propFlag) String() string {
	if f.p == nil {
		return ""
	}
	var keys []string
	for k, v := range f.p {
		if secret(k) {
			v = "***"
		}
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (f propFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	if _, known := propertyDoc[k]; !known {
		return fmt.Errorf("unknown property %q (known: %s)", k, strings.Join(knownProps(), ", "))
	}
	f.p[k] = strings.TrimSpace(v)
	return nil
}

func knownProps() []string {
	var ks []string
	for k := range propertyDoc {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// fileFlag is -F FILE: properties read from a file of key=value lines
// (# starts a comment), applied under -X.
type fileFlag struct{ e *env }

func (f fileFlag) String() string { return "" }

func (f fileFlag) Set(path string) error {
	fp, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fp.Close()
	sc := bufio.NewScanner(fp)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("%s:%d: want key=value", path, n)
		}
		if _, known := propertyDoc[k]; !known {
			continue // librdkafka has many more; kcat files may carry them
		}
		if _, set := f.e.xprops[k]; !set {
			f.e.fprops[k] = strings.TrimSpace(v)
		}
	}
	return sc.Err()
}

// properties returns the effective properties: environment, then -F, then
// -X.
func (e *env) properties() props {
	out := props{}
	defer func() {
		if out["security.protocol"] != "" {
			return
		}
		sasl := out["sasl.username"] != "" || out["sasl.mechanisms"] != ""
		tlsOn := e.useTLS || out["ssl.ca.location"] != "" || out["ssl.certificate.location"] != ""
		switch {
		case sasl && tlsOn:
			out["security.protocol"] = "sasl_ssl"
		case sasl:
			out["security.protocol"] = "sasl_plaintext"
		case tlsOn:
			out["security.protocol"] = "ssl"
		}
	}()
	for k := range propertyDoc {
		env := "KPAX_" + strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
		if v, ok := os.LookupEnv(env); ok {
			out[k] = v
		}
	}
	for k, v := range e.fprops {
		out[k] = v
	}
	for k, v := range e.xprops {
		out[k] = v
	}
	return out
}

// securityOptions returns the TLS and SASL options the properties ask for.
func securityOptions(p props) ([]kpax.Option, error) {
	proto := strings.ToLower(p["security.protocol"])
	var opts []kpax.Option
	switch proto {
	case "", "plaintext":
		if p["sasl.username"] != "" || p["sasl.mechanisms"] != "" || p["sasl.mechanism"] != "" {
			return nil, usagef("sasl.* given with security.protocol %q: want sasl_plaintext or sasl_ssl", cmp(proto, "plaintext"))
		}
		if p["ssl.ca.location"] != "" || p["ssl.certificate.location"] != "" {
			return nil, usagef("ssl.* given with security.protocol %q: want ssl or sasl_ssl", cmp(proto, "plaintext"))
		}
	case "ssl", "sasl_plaintext", "sasl_ssl":
	default:
		return nil, usagef("security.protocol %q: want plaintext, ssl, sasl_plaintext or sasl_ssl", proto)
	}
	if proto == "ssl" || proto == "sasl_ssl" {
		cfg, err := tlsConfig(p)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kpax.WithTLS(cfg))
	}
	if proto == "sasl_plaintext" || proto == "sasl_ssl" {
		m, err := saslMechanism(p)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kpax.WithSASL(m))
	}
	return opts, nil
}

func cmp(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

func tlsConfig(p props) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: p["ssl.server.name"]}
	if ca := p["ssl.ca.location"]; ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("ssl.ca.location: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ssl.ca.location %s: no PEM certificates", ca)
		}
		cfg.RootCAs = pool
	}
	cert, key := p["ssl.certificate.location"], p["ssl.key.location"]
	if (cert == "") != (key == "") {
		return nil, usagef("ssl.certificate.location and ssl.key.location go together")
	}
	if p["ssl.key.password"] != "" && key == "" {
		return nil, usagef("ssl.key.password without ssl.key.location")
	}
	if cert != "" {
		c, err := loadKeyPair(cert, key, p["ssl.key.password"])
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	if strings.EqualFold(p["enable.ssl.certificate.verification"], "false") {
		cfg.InsecureSkipVerify = true
	} else if alg := p["ssl.endpoint.identification.algorithm"]; strings.EqualFold(alg, "none") {
		// Check the chain, not the host name, as librdkafka does with "none".
		cfg.InsecureSkipVerify = true
		roots := cfg.RootCAs
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error { return verifyChain(raw, roots) }
	}
	return cfg, nil
}

// verifyChain checks a certificate chain against roots (nil: the system's),
// without the host name.
func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("tls: the broker sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return err
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}

func saslMechanism(p props) (kpax.SASLMechanism, error) {
	mech := cmp(p["sasl.mechanisms"], p["sasl.mechanism"])
	user, pass := p["sasl.username"], p["sasl.password"]
	if user == "" {
		return nil, usagef("SASL needs sasl.username (and sasl.password)")
	}
	switch strings.ToUpper(cmp(mech, "PLAIN")) {
	case "PLAIN":
		return kpax.SASLPlain(user, pass), nil
	case "SCRAM-SHA-256":
		return kpax.SASLScramSHA256(user, pass), nil
	case "SCRAM-SHA-512":
		return kpax.SASLScramSHA512(user, pass), nil
	}
	return nil, usagef("sasl.mechanisms %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mech)
}

// brokersFlag is -b and -brokers.
type brokersFlag struct{ e *env }

func (f brokersFlag) String() string {
	if f.e == nil {
		return ""
	}
	return f.e.brokers
}

func (f brokersFlag) Set(s string) error {
	f.e.brokers, f.e.brokersSet = s, true
	return nil
}

// keyFlag is a long flag that sets one property, e.g. -tls-ca for
// ssl.ca.location.
type keyFlag struct {
	e   *env
	key string
}

func (f keyFlag) String() string {
	if f.e == nil || secret(f.key) {
		return ""
	}
	return f.e.xprops[f.key]
}

func (f keyFlag) Set(s string) error {
	f.e.xprops[f.key] = s
	return nil
}

// tlsFlag is -tls: TLS on, whatever security.protocol says about SASL.
type tlsFlag struct{ e *env }

func (f tlsFlag) String() string   { return "" }
func (f tlsFlag) IsBoolFlag() bool { return true }
func (f tlsFlag) Set(s string) error {
	on, err := strconv.ParseBool(s)
	f.e.useTLS = on
	return err
}

// securityFlags registers -X, -F and the long security flags.
func (e *env) securityFlags(fs *flag.FlagSet) {
	fs.Var(propFlag{e.xprops}, "X", "client property `key=value` with kcat's names, e.g. security.protocol=sasl_ssl (repeatable; kpax -h lists them)")
	fs.Var(fileFlag{e}, "F", "read client properties (key=value lines) from `FILE`, under -X")
	fs.Var(tlsFlag{e}, "tls", "connect with TLS (security.protocol ssl, or sasl_ssl with -sasl-user)")
	for _, f := range []struct{ name, key, usage string }{
		{"tls-ca", "ssl.ca.location", "PEM `file` of the CA certificates of the brokers"},
		{"tls-cert", "ssl.certificate.location", "PEM `file` of the client certificate"},
		{"tls-key", "ssl.key.location", "PEM `file` of the client key"},
		{"tls-key-password", "ssl.key.password", "`password` of an encrypted client key (better: -F FILE or $KPAX_SSL_KEY_PASSWORD)"},
		{"tls-server-name", "ssl.server.name", "host `name` the broker certificate must have"},
		{"sasl-mechanism", "sasl.mechanisms", "SASL `mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"sasl-user", "sasl.username", "SASL `user`"},
		{"sasl-password", "sasl.password", "SASL `password` (better: -F FILE or $KPAX_SASL_PASSWORD)"},
	} {
		fs.Var(keyFlag{e, f.key}, f.name, f.usage)
	}
	fs.Var(insecureFlag{e}, "tls-insecure", "accept any broker certificate (tests only)")
}

// insecureFlag is -tls-insecure.
type insecureFlag struct{ e *env }

func (f insecureFlag) String() string   { return "" }
func (f insecureFlag) IsBoolFlag() bool { return true }
func (f insecureFlag) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if on {
		f.e.xprops["enable.ssl.certificate.verification"] = "false"
	}
	return err
}

// versionLine is what kpax -V prints: the module version and VCS revision
// the binary was built from.
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "kpax (no build information)"
	}
	v := bi.Main.Version
	var rev, modified, when string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		case "vcs.time":
			when = " " + s.Value
		}
	}
	if rev != "" {
		v += " (" + rev[:min(12, len(rev))] + modified + when + ")"
	}
	return fmt.Sprintf("kpax %s %s %s/%s", v, bi.GoVersion, runtime.GOOS, runtime.GOARCH)
}
