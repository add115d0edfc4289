package graphsim

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"
)

// NewCertificate makes a certificate for key with the common name cn, valid
// from an hour ago for a day: what tests and demos register as
// Config.ClientCertificate. It is signed by issuerKey as issuer, or
// self-signed when issuer is nil; an issuer-less certificate is also a CA,
// so that it can issue a chain. Not for anything but tests.
func NewCertificate(cn string, key crypto.Signer, issuer *x509.Certificate, issuerKey crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if issuer == nil {
		issuer, issuerKey = tmpl, key
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// CertificatePEM is cert as a PEM "CERTIFICATE" block, as certificates are
// uploaded to an app registration and given to clients.
func CertificatePEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// PrivateKeyPEM is key as a PEM "PRIVATE KEY" (PKCS #8) block, the form
// openssl writes by default.
func PrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
