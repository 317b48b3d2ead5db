package main

import (
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIEncryptedKey: client keys encrypted by openssl (PKCS#8 with
// 3DES, AES-128 and HMAC-SHA1, AES-256 and HMAC-SHA512; the legacy PEM
// encryption) load with ssl.key.password; the controls, a wrong or a
// missing password, fail with a clear error, and a key in the clear needs
// none. Hostile key files are errors, not panics or hangs.
func TestCLIEncryptedKey(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl not found: install it with scripts/deps.sh")
	}
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	ossl := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %q: %v\n%s", args, err, out)
		}
	}
	ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", file("3des.pem"), "-passout", "pass:pw",
		"-subj", "/CN=client", "-days", "1", "-out", file("cert.pem"))
	ossl("pkcs8", "-topk8", "-in", file("3des.pem"), "-passin", "pass:pw", "-v2", "aes128", "-v2prf", "hmacWithSHA1", "-passout", "pass:pw", "-out", file("aes128.pem"))
	ossl("pkcs8", "-topk8", "-in", file("3des.pem"), "-passin", "pass:pw", "-v2", "aes256", "-v2prf", "hmacWithSHA512", "-passout", "pass:pw", "-out", file("aes256.pem"))
	ossl("pkey", "-in", file("3des.pem"), "-passin", "pass:pw", "-traditional", "-aes256", "-passout", "pass:pw", "-out", file("legacy.pem"))
	ossl("pkey", "-in", file("3des.pem"), "-passin", "pass:pw", "-out", file("clear.pem"))
	for _, tc := range []struct {
		key, password string
		want          string // "" for success
	}{
		{"3des.pem", "pw", ""},
		{"aes128.pem", "pw", ""},
		{"aes256.pem", "pw", ""},
		{"legacy.pem", "pw", ""},
		{"clear.pem", "", ""},
		{"clear.pem", "pw", ""}, // as librdkafka: a password of a key in the clear is unused
		{"aes256.pem", "bad-pw-xyz", "wrong password"},
		{"3des.pem", "bad-pw-xyz", "wrong password"},
		{"legacy.pem", "bad-pw-xyz", "wrong password"},
		{"aes256.pem", "", "give ssl.key.password"},
		{"legacy.pem", "", "give ssl.key.password"},
	} {
		t.Run(tc.key+"/"+tc.password, func(t *testing.T) {
			p := props{"ssl.certificate.location": file("cert.pem"), "ssl.key.location": file(tc.key), "ssl.key.password": tc.password}
			cfg, err := tlsConfig(p)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want == "" && len(cfg.Certificates) != 1:
				t.Fatalf("%d certificates", len(cfg.Certificates))
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want %q", err, tc.want)
			case tc.want != "" && strings.Contains(err.Error(), tc.password) && tc.password != "":
				t.Fatalf("the error prints the password: %v", err)
			}
		})
	}
	if _, err := tlsConfig(props{"ssl.key.password": "pw"}); exitCode(err) != 2 {
		t.Errorf("ssl.key.password without a key: %v", err)
	}

	// Hostile files: garbage, a huge PBKDF2 count, a short IV.
	block, _ := pem.Decode(must(os.ReadFile(file("aes256.pem"))))
	var info encryptedPrivateKeyInfo
	var params pbes2Params
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(block.Bytes, &info); err != nil {
		t.Fatal(err)
	}
	asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params)
	asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf)
	rebuild := func(change func()) []byte {
		i, p, k := info, params, kdf
		defer func() { info, params, kdf = i, p, k }()
		change()
		params.KDF.Parameters = asn1.RawValue{FullBytes: must(asn1.Marshal(kdf))}
		info.Algorithm.Parameters = asn1.RawValue{FullBytes: must(asn1.Marshal(params))}
		return must(asn1.Marshal(info))
	}
	for name, der := range map[string][]byte{
		"control":        rebuild(func() {}),
		"garbage":        []byte("\x30\x82\xff\xff junk"),
		"empty":          nil,
		"iterations":     rebuild(func() { kdf.Iterations = 1 << 40 }),
		"short IV":       rebuild(func() { params.Scheme.Parameters = asn1.RawValue{FullBytes: must(asn1.Marshal([]byte{1, 2, 3}))} }),
		"no data":        rebuild(func() { info.Data = nil }),
		"unknown cipher": rebuild(func() { params.Scheme.Algorithm = asn1.ObjectIdentifier{1, 2, 3} }),
	} {
		_, err := decryptPKCS8(der, "pw")
		if name == "control" {
			if err != nil {
				t.Errorf("control: %v", err)
			}
			continue
		}
		if err == nil || errors.Is(err, errKeyPassword) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
