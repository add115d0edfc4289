package graph

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition (RFC 7515 4.1.7), not a security hash
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// CertificateConfig is what the client-credentials flow with a certificate
// credential needs: the app's certificate as registered in Entra ID, and its
// private key.
type CertificateConfig struct {
	ClientID string
	// TokenURL is {login}/{tenant}/oauth2/v2.0/token (see TokenURL).
	TokenURL string
	// Scope is the cloud's real Graph host + "/.default" (see Cloud.Scope).
	Scope string
	// HTTPClient sends the token requests; nil means http.DefaultClient.
	HTTPClient *http.Client

	// Certificates is the certificate registered on the app first (the
	// leaf), then optionally its chain, which is only sent with
	// SendCertificateChain. LoadCertificateAndKey returns them in this order.
	Certificates []*x509.Certificate
	// Key is the leaf certificate's private key: an RSA key (Entra ID's
	// documented case) or an ECDSA key. Any crypto.Signer works, so a key
	// held in an HSM or a key vault can sign without being exported.
	Key crypto.Signer
	// Algorithm signs the assertion. With an RSA key: "PS256" (the default,
	// RSASSA-PSS, as Microsoft's current documentation shows, sent with the
	// certificate's SHA-256 thumbprint "x5t#S256") or "RS256" (PKCS #1 v1.5,
	// the older documentation, sent with the SHA-1 thumbprint "x5t"). With
	// an ECDSA key the curve decides (P-256: ES256, P-384: ES384, P-521:
	// ES512, sent with "x5t#S256"); "" or that name are accepted.
	//
	// Microsoft documents RSA certificates only, and public reports (MSAL
	// .NET #2573, azure-rest-api-specs #6637, both about ECDSA certificates)
	// say Entra ID refuses ECDSA ones. The ES* signatures follow RFC 7518 and
	// graphsim accepts them, but against Entra ID use an RSA key.
	Algorithm string
	// Audience is the assertion's "aud"; "" means TokenURL, which is what
	// Entra ID expects. Set it only when TokenURL is not Entra ID's own
	// address (a reverse proxy in front of it).
	Audience string
	// SendCertificateChain adds the "x5c" header with Certificates, which
	// Entra ID needs for subject name and issuer authentication (an app that
	// trusts a certificate by its subject and issuer rather than by its
	// thumbprint).
	SendCertificateChain bool
}

// assertionLifetime is how long a signed assertion is valid. It is used once
// at once, so it can be short: Microsoft's libraries use ten minutes too.
const assertionLifetime = 10 * time.Minute

// CertificateTokens fetches tokens with the client-credentials grant,
// authenticating with a JWT signed by the app's certificate key
// ("Microsoft identity platform application authentication certificate
// credentials"). A new assertion, with its own jti, is signed for every token
// request; tokens are cached and renewed like ClientSecretTokens'.
type CertificateTokens struct {
	signer *assertionSigner
	tokens *assertionTokens
}

// NewCertificateTokens builds a token provider for c. It checks that the key
// belongs to the first certificate and can sign with c.Algorithm.
func NewCertificateTokens(c CertificateConfig) (*CertificateTokens, error) {
	switch {
	case c.ClientID == "":
		return nil, errors.New("certificate credential: no client id")
	case c.TokenURL == "":
		return nil, errors.New("certificate credential: no token url")
	case len(c.Certificates) == 0 || c.Certificates[0] == nil:
		return nil, errors.New("certificate credential: no certificate")
	case c.Key == nil:
		return nil, errors.New("certificate credential: no private key")
	}
	leaf := c.Certificates[0]
	if !keyMatches(c.Key, leaf) {
		return nil, fmt.Errorf("certificate credential: the private key does not match the certificate %s", describeCertificate(leaf))
	}
	alg, err := jwsAlgorithmFor(c.Key.Public(), c.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("certificate credential: %w", err)
	}
	h := jwtHeader{Alg: alg.name, Typ: "JWT"}
	if alg.name == "RS256" {
		sum := sha1.Sum(leaf.Raw) //nolint:gosec // see the import
		h.X5t = base64.RawURLEncoding.EncodeToString(sum[:])
	} else {
		sum := sha256.Sum256(leaf.Raw)
		h.X5tS256 = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if c.SendCertificateChain {
		for _, cert := range c.Certificates {
			h.X5c = append(h.X5c, base64.StdEncoding.EncodeToString(cert.Raw))
		}
	}
	header, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("certificate credential: %w", err)
	}
	audience := c.Audience
	if audience == "" {
		audience = c.TokenURL
	}
	s := &assertionSigner{
		key:        c.Key,
		alg:        alg,
		header:     base64.RawURLEncoding.EncodeToString(header),
		clientID:   c.ClientID,
		audience:   audience,
		now:        time.Now,
		thumbprint: thumbprintSHA1(leaf),
	}
	return &CertificateTokens{
		signer: s,
		tokens: newAssertionTokens(c.ClientID, c.TokenURL, c.Scope, c.HTTPClient, s.assertion),
	}, nil
}

// Token implements TokenProvider.
func (t *CertificateTokens) Token(ctx context.Context) (string, error) {
	return t.tokens.cache.token(ctx)
}

// Invalidate implements TokenProvider.
func (t *CertificateTokens) Invalidate(token string) { t.tokens.cache.invalidate(token) }

// Algorithm is the JWS algorithm the assertions are signed with.
func (t *CertificateTokens) Algorithm() string { return t.signer.alg.name }

// Thumbprint is the certificate's SHA-1 thumbprint in upper-case hex, as the
// Azure portal lists it and as Entra ID quotes it in AADSTS700027.
func (t *CertificateTokens) Thumbprint() string { return t.signer.thumbprint }

// jwtHeader is the JOSE header of an assertion, in the order Microsoft's
// documentation lists the fields.
type jwtHeader struct {
	Alg     string   `json:"alg"`
	Typ     string   `json:"typ"`
	X5tS256 string   `json:"x5t#S256,omitempty"`
	X5t     string   `json:"x5t,omitempty"`
	X5c     []string `json:"x5c,omitempty"`
}

// assertionClaims are the claims Microsoft documents for a certificate
// assertion, in its order.
type assertionClaims struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Iss string `json:"iss"`
	Jti string `json:"jti"`
	Nbf int64  `json:"nbf"`
	Sub string `json:"sub"`
	Iat int64  `json:"iat"`
}

// jwsAlgorithm is one JWS signature algorithm (RFC 7518 section 3).
type jwsAlgorithm struct {
	name string
	hash crypto.Hash
	// pss selects RSASSA-PSS with a salt as long as the hash; otherwise an
	// RSA key signs PKCS #1 v1.5.
	pss bool
	// ecSize is the byte length of r and of s for an ECDSA algorithm, which
	// JWS concatenates (RFC 7518 3.4) instead of using ASN.1; 0 for RSA.
	ecSize int
}

// jwsAlgorithmFor picks the algorithm for a key of type pub, given the one
// asked for ("" for the default).
func jwsAlgorithmFor(pub crypto.PublicKey, want string) (jwsAlgorithm, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		switch strings.ToUpper(want) {
		case "", "PS256":
			return jwsAlgorithm{name: "PS256", hash: crypto.SHA256, pss: true}, nil
		case "RS256":
			return jwsAlgorithm{name: "RS256", hash: crypto.SHA256}, nil
		}
		return jwsAlgorithm{}, fmt.Errorf("algorithm %q does not fit an RSA key: want PS256 or RS256", want)
	case *ecdsa.PublicKey:
		var alg jwsAlgorithm
		switch pub.Curve {
		case elliptic.P256():
			alg = jwsAlgorithm{name: "ES256", hash: crypto.SHA256, ecSize: 32}
		case elliptic.P384():
			alg = jwsAlgorithm{name: "ES384", hash: crypto.SHA384, ecSize: 48}
		case elliptic.P521():
			alg = jwsAlgorithm{name: "ES512", hash: crypto.SHA512, ecSize: 66}
		default:
			return jwsAlgorithm{}, fmt.Errorf("unsupported ECDSA curve %s: want P-256, P-384 or P-521", pub.Curve.Params().Name)
		}
		if want != "" && !strings.EqualFold(want, alg.name) {
			return jwsAlgorithm{}, fmt.Errorf("algorithm %q does not fit an ECDSA %s key: want %s", want, pub.Curve.Params().Name, alg.name)
		}
		return alg, nil
	}
	return jwsAlgorithm{}, fmt.Errorf("unsupported key type %T: want an RSA or ECDSA key", pub)
}

// assertionSigner makes the client assertions of one certificate.
type assertionSigner struct {
	key        crypto.Signer
	alg        jwsAlgorithm
	header     string // base64url of the JSON header, the same for every assertion
	clientID   string
	audience   string
	now        func() time.Time
	thumbprint string
}

// assertion signs a new assertion, valid from now for assertionLifetime.
func (s *assertionSigner) assertion() (string, error) {
	now := s.now()
	claims, err := json.Marshal(assertionClaims{
		Aud: s.audience,
		Exp: now.Add(assertionLifetime).Unix(),
		Iss: s.clientID,
		Jti: uuid.NewString(),
		Nbf: now.Unix(),
		Sub: s.clientID,
		Iat: now.Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("certificate credential: %w", err)
	}
	signingInput := s.header + "." + base64.RawURLEncoding.EncodeToString(claims)
	sig, err := s.sign([]byte(signingInput))
	if err != nil {
		// A key in an HSM or a vault can fail here; its error is the
		// signer's own and holds no key material.
		return "", fmt.Errorf("certificate credential: signing the client assertion (%s): %w", s.alg.name, err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// sign returns the JWS signature of input.
func (s *assertionSigner) sign(input []byte) ([]byte, error) {
	h := s.alg.hash.New()
	h.Write(input)
	digest := h.Sum(nil)
	var opts crypto.SignerOpts = s.alg.hash
	if s.alg.pss {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: s.alg.hash}
	}
	sig, err := s.key.Sign(rand.Reader, digest, opts)
	if err != nil || s.alg.ecSize == 0 {
		return sig, err
	}
	// A crypto.Signer returns an ECDSA signature ASN.1-encoded; JWS wants
	// r and s as fixed-length big-endian numbers, one after the other.
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 || rs.R == nil || rs.S == nil {
		return nil, errors.New("the key returned an ECDSA signature that is not ASN.1 (r, s)")
	}
	size := s.alg.ecSize
	if rs.R.Sign() < 0 || rs.S.Sign() < 0 || rs.R.BitLen() > 8*size || rs.S.BitLen() > 8*size {
		return nil, errors.New("the key returned an ECDSA signature too large for its curve")
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

// keyMatches reports whether key is the private key of cert.
func keyMatches(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// thumbprintSHA1 is cert's SHA-1 thumbprint in upper-case hex.
func thumbprintSHA1(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw) //nolint:gosec // see the import
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// describeCertificate names cert for an error message: its subject and
// thumbprint, both public.
func describeCertificate(cert *x509.Certificate) string {
	return fmt.Sprintf("%q (thumbprint %s)", cert.Subject.String(), thumbprintSHA1(cert))
}
