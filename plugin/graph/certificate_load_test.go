package graph

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/youmark/pkcs8"
)

func pemOf(blockType string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
}

func certPEM(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pemOf("CERTIFICATE", c.Raw)...)
	}
	return b
}

func pkcs8PEM(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("PRIVATE KEY", der)
}

func encryptedPKCS8PEM(t *testing.T, key crypto.Signer, password string) []byte {
	t.Helper()
	der, err := pkcs8.MarshalPrivateKey(key, []byte(password), nil)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("ENCRYPTED PRIVATE KEY", der)
}

func TestLoadCertificateAndKeyFormats(t *testing.T) {
	rsaKey, ecKey := testRSAKey(), testECKeys[elliptic.P384()]()
	rsaCert, ecCert := testCert(t, "rsa", rsaKey, nil, nil), testCert(t, "ec", ecKey, nil, nil)
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	caKey := testOtherRSAKey()
	ca := testCert(t, "ca", caKey, nil, nil)
	leaf := testCert(t, "leaf", rsaKey, ca, caKey)
	combined := append(certPEM(rsaCert), pkcs8PEM(t, rsaKey)...)

	for name, tc := range map[string]struct {
		cert, key []byte
		password  string
		want      []*x509.Certificate
		key2      crypto.Signer
	}{
		"PKCS#1 RSA":          {certPEM(rsaCert), pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "", []*x509.Certificate{rsaCert}, rsaKey},
		"PKCS#8 RSA":          {certPEM(rsaCert), pkcs8PEM(t, rsaKey), "", []*x509.Certificate{rsaCert}, rsaKey},
		"PKCS#8 EC":           {certPEM(ecCert), pkcs8PEM(t, ecKey), "", []*x509.Certificate{ecCert}, ecKey},
		"SEC1 EC with params": {certPEM(ecCert), append(pemOf("EC PARAMETERS", []byte{6, 5, 43, 129, 4, 0, 34}), pemOf("EC PRIVATE KEY", ecDER)...), "", []*x509.Certificate{ecCert}, ecKey},
		"combined, key empty": {combined, nil, "", []*x509.Certificate{rsaCert}, rsaKey},
		"combined, as both":   {combined, combined, "", []*x509.Certificate{rsaCert}, rsaKey},
		"key first":           {append(pkcs8PEM(t, rsaKey), certPEM(rsaCert)...), nil, "", []*x509.Certificate{rsaCert}, rsaKey},
		"encrypted PKCS#8":    {certPEM(rsaCert), encryptedPKCS8PEM(t, rsaKey, "correct horse"), "correct horse", []*x509.Certificate{rsaCert}, rsaKey},
		"password not needed": {certPEM(rsaCert), pkcs8PEM(t, rsaKey), "unused", []*x509.Certificate{rsaCert}, rsaKey},
		"chain, CA first":     {certPEM(ca, leaf), pkcs8PEM(t, rsaKey), "", []*x509.Certificate{leaf, ca}, rsaKey},
		"chain, leaf first":   {certPEM(leaf, ca), pkcs8PEM(t, rsaKey), "", []*x509.Certificate{leaf, ca}, rsaKey},
	} {
		t.Run(name, func(t *testing.T) {
			certs, key, err := LoadCertificateAndKey(tc.cert, tc.key, tc.password)
			if err != nil {
				t.Fatal(err)
			}
			if len(certs) != len(tc.want) {
				t.Fatalf("%d certificates, want %d", len(certs), len(tc.want))
			}
			for i := range certs {
				if !certs[i].Equal(tc.want[i]) {
					t.Errorf("certificate %d is %s, want %s", i, certs[i].Subject, tc.want[i].Subject)
				}
			}
			if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.key2.Public()) {
				t.Error("wrong key")
			}
			// What was loaded signs assertions.
			if _, err := NewCertificateTokens(CertificateConfig{ClientID: "a", TokenURL: "https://l/t", Certificates: certs, Key: key}); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLoadCertificateAndKeyErrors(t *testing.T) {
	const password = "correct horse"
	rsaKey := testRSAKey()
	rsaCert := testCert(t, "rsa", rsaKey, nil, nil)
	otherCert := testCert(t, "other", testOtherRSAKey(), nil, nil)
	keyPEM := pkcs8PEM(t, rsaKey)
	encrypted := encryptedPKCS8PEM(t, rsaKey, password)
	// A ciphertext that is not a whole number of AES blocks makes the
	// pkcs8 library panic; it must be an error instead.
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		Data      []byte
	}
	block, _ := pem.Decode(encrypted)
	if _, err := asn1.Unmarshal(block.Bytes, &info); err != nil {
		t.Fatal(err)
	}
	info.Data = info.Data[:len(info.Data)-1]
	cut, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	legacy := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: []byte("opaque")})
	for name, tc := range map[string]struct {
		cert, key []byte
		password  string
		want      string
	}{
		"empty":               {nil, nil, "", "no certificate found: the certificate input is not PEM"},
		"DER certificate":     {rsaCert.Raw, keyPEM, "", "the certificate input is not PEM (a .pfx or .p12 file"},
		"key only":            {keyPEM, nil, "", `no certificate found: want a PEM "CERTIFICATE" block`},
		"no key":              {certPEM(rsaCert), nil, "", "no private key found"},
		"two keys":            {certPEM(rsaCert), append(pkcs8PEM(t, rsaKey), pkcs8PEM(t, testOtherRSAKey())...), "", "2 different private keys found"},
		"key of another cert": {certPEM(otherCert), keyPEM, "", `the private key does not match the certificate "CN=other" (thumbprint `},
		"matches none":        {certPEM(otherCert, otherCert, testCert(t, "third", testOtherRSAKey(), nil, nil)), keyPEM, "", "matches none of the 2 certificates"},
		"no password":         {certPEM(rsaCert), encrypted, "", `the private key is encrypted ("ENCRYPTED PRIVATE KEY") and no password was given`},
		"wrong password":      {certPEM(rsaCert), encrypted, "Tr0ub4dor", "wrong password for the encrypted private key"},
		"legacy encryption":   {certPEM(rsaCert), legacy, password, "OpenSSL's legacy PEM format"},
		"broken key":          {certPEM(rsaCert), pemOf("PRIVATE KEY", []byte("not DER at all")), "", `cannot parse the "PRIVATE KEY"`},
		"broken encrypted":    {certPEM(rsaCert), pemOf("ENCRYPTED PRIVATE KEY", []byte("not DER at all")), password, "cannot decrypt the private key"},
		"cut ciphertext":      {certPEM(rsaCert), pemOf("ENCRYPTED PRIVATE KEY", cut), password, "malformed encrypted private key"},
		"broken certificate":  {pemOf("CERTIFICATE", []byte("nope")), keyPEM, "", "certificate 1 of the PEM input"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := LoadCertificateAndKey(tc.cert, tc.key, tc.password)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			// Never key material or the password in a message.
			msg := err.Error()
			for _, secret := range [][]byte{keyPEM[28:60], encrypted[38:70], []byte(password), []byte("Tr0ub4dor")} {
				if bytes.Contains([]byte(msg), secret) {
					t.Errorf("error quotes a secret: %s", msg)
				}
			}
		})
	}
}

// TestLoadCertificateAndKeyFromOpenSSL reads what OpenSSL itself writes: an
// encrypted PKCS #8 key (PBES2, AES-256-CBC, HMAC-SHA256) and a SEC 1 EC
// key with its parameters, as the documentation tells users to make them.
func TestLoadCertificateAndKeyFromOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl on this machine")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(openssl, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key", "-out", "rsa.crt", "-days", "1", "-subj", "/CN=openssl-rsa")
	run("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "rsa.key", "-out", "rsa-enc.key", "-passout", "pass:s3cret")
	if _, _, err := LoadCertificateAndKey(read("rsa.crt"), read("rsa-enc.key"), "s3cret"); err != nil {
		t.Errorf("encrypted PKCS#8: %v", err)
	}
	if _, _, err := LoadCertificateAndKey(read("rsa.crt"), read("rsa-enc.key"), "wrong"); err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Errorf("wrong password: %v", err)
	}
	run("ecparam", "-name", "prime256v1", "-genkey", "-out", "ec.key")
	run("req", "-x509", "-key", "ec.key", "-out", "ec.crt", "-days", "1", "-subj", "/CN=openssl-ec")
	if _, key, err := LoadCertificateAndKey(read("ec.crt"), read("ec.key"), ""); err != nil {
		t.Errorf("SEC1 EC: %v", err)
	} else if alg, err := jwsAlgorithmFor(key.Public(), ""); err != nil || alg.name != "ES256" {
		t.Errorf("EC algorithm %v, %v", alg, err)
	}
}
