package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"os"
)

// This file reads a client key encrypted with ssl.key.password, as
// librdkafka (through OpenSSL) does: PKCS#8 "ENCRYPTED PRIVATE KEY" with
// PBES2 (PBKDF2 and AES-CBC or 3DES-CBC: what openssl genpkey, openssl
// req -keyout and openssl pkcs8 -topk8 write), or the legacy PEM
// encryption of OpenSSL's "traditional" keys (Proc-Type: 4,ENCRYPTED).

// errKeyPassword is the error of a key that does not decrypt with the
// password given.
var errKeyPassword = errors.New("ssl.key.password: wrong password, or the key is corrupt")

// loadKeyPair is tls.LoadX509KeyPair with a key that may be encrypted with
// password ("" for a key in the clear).
func loadKeyPair(certFile, keyFile, password string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	if keyPEM, err = decryptKeyPEM(keyPEM, password); err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", keyFile, err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// decryptKeyPEM returns the first private key of a PEM file in the clear,
// decrypted with password if it is encrypted; other keys pass unchanged.
func decryptKeyPEM(data []byte, password string) ([]byte, error) {
	rest := data
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return data, nil // no key: tls.X509KeyPair says so
		}
		// Deprecated as insecure by design, but it is what such keys use
		// and what kcat reads.
		legacy := x509.IsEncryptedPEMBlock(b)
		if b.Type != "ENCRYPTED PRIVATE KEY" && !legacy {
			continue
		}
		if password == "" {
			return nil, errors.New("the key is encrypted: give ssl.key.password")
		}
		var der []byte
		var err error
		typ := "PRIVATE KEY"
		if legacy {
			typ = b.Type
			der, err = x509.DecryptPEMBlock(b, []byte(password))
			if err != nil {
				return nil, errKeyPassword
			}
		} else if der, err = decryptPKCS8(b.Bytes, password); err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), nil
	}
}

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

type encryptedPrivateKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

type pbes2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

// maxIterations bounds the PBKDF2 work a key file can ask for (OpenSSL
// writes 2048; a hostile file must not hang the command).
const maxIterations = 10_000_000

// decryptPKCS8 decrypts a PKCS#8 EncryptedPrivateKeyInfo (RFC 5958) with
// PBES2 (RFC 8018) and returns the PKCS#8 PrivateKeyInfo.
func decryptPKCS8(der []byte, password string) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return nil, fmt.Errorf("encrypted private key: %w", err)
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("encrypted private key: scheme %v is not PBES2 (re-encrypt it: openssl pkcs8 -topk8 -v2 aes256)", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("encrypted private key: PBES2 parameters: %w", err)
	}
	if !params.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("encrypted private key: key derivation %v is not PBKDF2", params.KDF.Algorithm)
	}
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf); err != nil {
		return nil, fmt.Errorf("encrypted private key: PBKDF2 parameters: %w", err)
	}
	if kdf.Iterations < 1 || kdf.Iterations > maxIterations {
		return nil, fmt.Errorf("encrypted private key: %d PBKDF2 iterations", kdf.Iterations)
	}
	newHash, err := prfHash(kdf.PRF.Algorithm)
	if err != nil {
		return nil, err
	}
	newCipher, keyLen, err := schemeCipher(params.Scheme.Algorithm)
	if err != nil {
		return nil, err
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, fmt.Errorf("encrypted private key: key length %d for a %d-byte cipher key", kdf.KeyLength, keyLen)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.Scheme.Parameters.FullBytes, &iv); err != nil {
		return nil, fmt.Errorf("encrypted private key: IV: %w", err)
	}
	key, err := pbkdf2.Key(newHash, password, kdf.Salt, kdf.Iterations, keyLen)
	if err != nil {
		return nil, fmt.Errorf("encrypted private key: %w", err)
	}
	block, err := newCipher(key)
	if err != nil {
		return nil, err
	}
	n := block.BlockSize()
	if len(iv) != n || len(info.Data) == 0 || len(info.Data)%n != 0 {
		return nil, errors.New("encrypted private key: bad IV or data length")
	}
	out := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, info.Data)
	// PKCS#7 padding: a wrong password leaves garbage here, nearly always.
	pad := int(out[len(out)-1])
	if pad < 1 || pad > n || !bytes.Equal(out[len(out)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, errKeyPassword
	}
	out = out[:len(out)-pad]
	if _, err := x509.ParsePKCS8PrivateKey(out); err != nil {
		return nil, errKeyPassword
	}
	return out, nil
}

// prfHash returns the hash of PBKDF2's pseudo-random function; no OID is
// its default, HMAC-SHA1.
func prfHash(oid asn1.ObjectIdentifier) (func() hash.Hash, error) {
	switch {
	case len(oid) == 0 || oid.Equal(oidHMACSHA1):
		return sha1.New, nil
	case oid.Equal(oidHMACSHA224):
		return sha256.New224, nil
	case oid.Equal(oidHMACSHA256):
		return sha256.New, nil
	case oid.Equal(oidHMACSHA384):
		return sha512.New384, nil
	case oid.Equal(oidHMACSHA512):
		return sha512.New, nil
	}
	return nil, fmt.Errorf("encrypted private key: PBKDF2 function %v not supported", oid)
}

// schemeCipher returns the block cipher of a PBES2 encryption scheme and
// its key length.
func schemeCipher(oid asn1.ObjectIdentifier) (func([]byte) (cipher.Block, error), int, error) {
	switch {
	case oid.Equal(oidAES128CBC):
		return aes.NewCipher, 16, nil
	case oid.Equal(oidAES192CBC):
		return aes.NewCipher, 24, nil
	case oid.Equal(oidAES256CBC):
		return aes.NewCipher, 32, nil
	case oid.Equal(oidDESEDE3CBC):
		return des.NewTripleDESCipher, 24, nil
	}
	return nil, 0, fmt.Errorf("encrypted private key: cipher %v not supported (use AES-CBC: openssl pkcs8 -topk8 -v2 aes256)", oid)
}
