package graph

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/youmark/pkcs8"
)

// LoadCertificateAndKey reads a certificate credential from PEM: the
// certificate (optionally followed by its chain) and its private key, in two
// inputs or both in certPEM (keyPEM then empty). The key may be PKCS #1
// ("RSA PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY"), PKCS #8 ("PRIVATE KEY") or
// encrypted PKCS #8 ("ENCRYPTED PRIVATE KEY", PBES2 as OpenSSL writes it),
// which needs password; a password given for a key that is not encrypted is
// not used. Other PEM blocks (the "EC PARAMETERS" OpenSSL writes before an
// EC key) are skipped.
//
// The certificate whose public key is the key's comes first in the result,
// the others keep their order. Errors say what is wrong (no certificate, no
// key, a key that matches no certificate, a wrong password) and never quote
// key material.
func LoadCertificateAndKey(certPEM, keyPEM []byte, password string) ([]*x509.Certificate, crypto.Signer, error) {
	var certs []*x509.Certificate
	var keys []*pem.Block
	for _, input := range [][]byte{certPEM, keyPEM} {
		rest := input
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			switch block.Type {
			case "CERTIFICATE":
				cert, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					return nil, nil, fmt.Errorf("certificate %d of the PEM input: %w", len(certs)+1, err)
				}
				if !containsCertificate(certs, cert) { // a combined file given as both inputs
					certs = append(certs, cert)
				}
			case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
				if !containsBlock(keys, block) {
					keys = append(keys, block)
				}
			}
		}
	}
	switch {
	case len(certs) == 0 && !bytes.Contains(certPEM, []byte("-----BEGIN")):
		return nil, nil, errors.New(`no certificate found: the certificate input is not PEM (a .pfx or .p12 file must first be converted, e.g. "openssl pkcs12 -in app.pfx -out app.pem")`)
	case len(certs) == 0:
		return nil, nil, errors.New(`no certificate found: want a PEM "CERTIFICATE" block`)
	case len(keys) == 0:
		return nil, nil, errors.New(`no private key found: want a PEM "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY" or "ENCRYPTED PRIVATE KEY" block`)
	case len(keys) > 1:
		return nil, nil, fmt.Errorf("%d different private keys found: want one", len(keys))
	}
	key, err := parsePrivateKeyBlock(keys[0], password)
	if err != nil {
		return nil, nil, err
	}
	for i, cert := range certs {
		if keyMatches(key, cert) {
			// The leaf first, the others in their order.
			ordered := append([]*x509.Certificate{cert}, certs[:i]...)
			return append(ordered, certs[i+1:]...), key, nil
		}
	}
	if len(certs) == 1 {
		return nil, nil, fmt.Errorf("the private key does not match the certificate %s", describeCertificate(certs[0]))
	}
	return nil, nil, fmt.Errorf("the private key matches none of the %d certificates (the first is %s)", len(certs), describeCertificate(certs[0]))
}

// parsePrivateKeyBlock decodes one private key block. Its errors name the
// block and the reason, never the bytes.
func parsePrivateKeyBlock(block *pem.Block, password string) (crypto.Signer, error) {
	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, fmt.Errorf(`the %q is encrypted in OpenSSL's legacy PEM format, which is not supported: convert it to encrypted PKCS #8 ("openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.key -out new.key")`, block.Type)
	}
	var parsed any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		if password == "" {
			return nil, errors.New(`the private key is encrypted ("ENCRYPTED PRIVATE KEY") and no password was given`)
		}
		parsed, err = decryptPKCS8(block.Bytes, password)
		switch {
		case err != nil && strings.Contains(err.Error(), "incorrect password"):
			return nil, errors.New("wrong password for the encrypted private key")
		case err != nil:
			// pkcs8's messages name the scheme it cannot read
			// ("only PBES2 supported", "unsupported cipher (OID: ...)").
			return nil, fmt.Errorf("cannot decrypt the private key (want PBES2 with PBKDF2 or scrypt and AES or 3DES, as \"openssl pkcs8 -topk8 -v2 aes-256-cbc\" writes): %w", err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot parse the %q: %w", block.Type, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the %q holds a %T, which cannot sign", block.Type, parsed)
	}
	return signer, nil
}

// decryptPKCS8 decrypts and parses an encrypted PKCS #8 key. The library
// panics on some malformed inputs (an IV or a ciphertext that is not a whole
// number of blocks): that is an error here.
func decryptPKCS8(der []byte, password string) (key any, err error) {
	defer func() {
		if recover() != nil {
			key, err = nil, errors.New("malformed encrypted private key")
		}
	}()
	return pkcs8.ParsePKCS8PrivateKey(der, []byte(password))
}

func containsCertificate(certs []*x509.Certificate, cert *x509.Certificate) bool {
	for _, c := range certs {
		if c.Equal(cert) {
			return true
		}
	}
	return false
}

func containsBlock(blocks []*pem.Block, block *pem.Block) bool {
	for _, b := range blocks {
		if b.Type == block.Type && bytes.Equal(b.Bytes, block.Bytes) {
			return true
		}
	}
	return false
}
