package graphsim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// JWTBearer is the client_assertion_type of certificate and federated
// credentials (RFC 7523).
const JWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Limits of a certificate assertion's validity, as the simulator checks it.
const (
	// AssertionSkew is the clock skew allowed for nbf.
	AssertionSkew = 5 * time.Minute
	// MaxAssertionLifetime is how far in the future exp may be.
	MaxAssertionLifetime = time.Hour
)

// assertionDocs is where Entra ID's assertion errors send the reader.
const assertionDocs = "Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials."

// checkAssertion authenticates a client by its client_assertion: the
// configured federated token, or a JWT signed by the key of the configured
// certificate (Microsoft's "certificate credentials"). It answers Entra's
// error and returns false when the assertion is refused. The assertion is
// never echoed; the claims named in errors are not secret.
func (s *Server) checkAssertion(w http.ResponseWriter, ids requestIDs, r *http.Request, form url.Values) bool {
	refuse := func(code int, text string) bool {
		s.entraError(w, ids, http.StatusUnauthorized, "invalid_client", code, text)
		return false
	}
	assertion := form.Get("client_assertion")
	if form.Get("client_assertion_type") != JWTBearer || assertion == "" {
		return refuse(7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
	if fed := *s.federated.Load(); fed != "" && subtle.ConstantTimeCompare([]byte(assertion), []byte(fed)) == 1 {
		return true
	}
	jwt, err := parseJWT(assertion)
	if err != nil {
		return refuse(50027, "JWT token is invalid or malformed.")
	}
	if jwt.header.X5t == "" && jwt.header.X5tS256 == "" {
		// No certificate named: a federated token that matches no
		// federated credential of the app.
		s.entraError(w, ids, http.StatusUnauthorized, "unauthorized_client", 70021,
			"No matching federated identity record found for presented assertion. Assertion Issuer: '"+jwt.claims.Iss+
				"'. Assertion Subject: '"+jwt.claims.Sub+"'. Assertion Audience: '"+strings.Join(jwt.claims.Aud, ",")+"'.")
		return false
	}
	thumbprint, registered := s.certificateThumbprint(jwt.header)
	if !registered {
		return refuse(700027, "The certificate with identifier used to sign the client assertion is not registered on application. "+
			"[Reason - The key was not found., Thumbprint of key used by client: '"+thumbprint+"', "+
			"Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '"+s.cfg.ClientID+"'.]")
	}
	if reason := verifyJWS(jwt.header.Alg, s.cfg.ClientCertificate.PublicKey, jwt.signingInput, jwt.signature); reason != "" {
		return refuse(700027, "Client assertion failed signature validation. [Reason - "+reason+
			" Thumbprint of key used by client: '"+thumbprint+"']")
	}
	if want := tokenURL(r); !jwt.claims.hasAudience(want) {
		return refuse(700023, "Client assertion audience claim does not match Realm issuer. "+assertionDocs)
	}
	if !strings.EqualFold(jwt.claims.Iss, s.cfg.ClientID) || !strings.EqualFold(jwt.claims.Sub, s.cfg.ClientID) {
		return refuse(700021, "Client assertion application identifier doesn't match 'client_id' parameter. "+assertionDocs)
	}
	now := s.now()
	exp, nbf := jwt.claims.Exp.time(), jwt.claims.Nbf.time()
	if exp.IsZero() || !exp.After(now) || exp.After(now.Add(MaxAssertionLifetime+AssertionSkew)) || nbf.After(now.Add(AssertionSkew)) {
		return refuse(700024, "Client assertion is not within its valid time range. Current time: "+entraTime(now)+
			", assertion valid from "+entraTime(nbf)+", expiry time of assertion "+entraTime(exp)+". "+assertionDocs)
	}
	return true
}

// certificateThumbprint returns the thumbprint the header names, in upper
// case hex as Entra quotes it, and whether it is the configured
// certificate's. Both x5t#S256 and x5t are accepted, with any algorithm:
// Entra does too.
func (s *Server) certificateThumbprint(h jwtHeader) (string, bool) {
	name, sum := h.X5tS256, []byte(nil)
	if cert := s.cfg.ClientCertificate; cert != nil {
		if name != "" {
			s256 := sha256.Sum256(cert.Raw)
			sum = s256[:]
		} else {
			s1 := sha1.Sum(cert.Raw) //nolint:gosec // see the import
			sum = s1[:]
		}
	}
	if name == "" {
		name = h.X5t
	}
	presented, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(name, "="))
	if err != nil {
		return name, false
	}
	return strings.ToUpper(hex.EncodeToString(presented)), sum != nil && subtle.ConstantTimeCompare(presented, sum) == 1
}

// tokenURL is the address the request was sent to, which a certificate
// assertion must name as its audience.
func tokenURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.Path
}

// entraTime formats a time the way Entra's messages do; "" for none.
func entraTime(t time.Time) string {
	if t.IsZero() {
		return "(none)"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

type jwtHeader struct {
	Alg     string `json:"alg"`
	X5t     string `json:"x5t"`
	X5tS256 string `json:"x5t#S256"`
}

type jwtClaims struct {
	Aud      audience    `json:"aud"`
	Iss      string      `json:"iss"`
	Sub      string      `json:"sub"`
	Exp, Nbf numericDate `json:"-"`
}

// hasAudience reports whether want is among the audiences.
func (c jwtClaims) hasAudience(want string) bool {
	for _, a := range c.Aud {
		if strings.EqualFold(a, want) {
			return true
		}
	}
	return false
}

// audience is "aud": one string or an array of them (RFC 7519 4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// numericDate is a JWT time in seconds since the epoch, possibly
// fractional; 0 when absent.
type numericDate float64

func (d numericDate) time() time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(float64(d)*1e9))
}

type jwt struct {
	header       jwtHeader
	claims       jwtClaims
	signingInput []byte
	signature    []byte
}

// parseJWT decodes a compact JWS without checking it.
func parseJWT(s string) (jwt, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return jwt{}, errors.New("not three parts")
	}
	var t jwt
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return jwt{}, err
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return jwt{}, err
	}
	if t.signature, err = base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return jwt{}, err
	}
	if err := json.Unmarshal(header, &t.header); err != nil {
		return jwt{}, err
	}
	var times struct {
		Exp *numericDate `json:"exp"`
		Nbf *numericDate `json:"nbf"`
	}
	if err := json.Unmarshal(payload, &t.claims); err != nil {
		return jwt{}, err
	}
	if err := json.Unmarshal(payload, &times); err != nil {
		return jwt{}, err
	}
	if times.Exp != nil {
		t.claims.Exp = *times.Exp
	}
	if times.Nbf != nil {
		t.claims.Nbf = *times.Nbf
	}
	t.signingInput = []byte(parts[0] + "." + parts[1])
	return t, nil
}

// ecAlgorithms are the ECDSA JWS algorithms: curve, hash and the byte
// length of r and of s.
var ecAlgorithms = map[string]struct {
	curve elliptic.Curve
	hash  crypto.Hash
	size  int
}{
	"ES256": {elliptic.P256(), crypto.SHA256, 32},
	"ES384": {elliptic.P384(), crypto.SHA384, 48},
	"ES512": {elliptic.P521(), crypto.SHA512, 66},
}

// verifyJWS checks a JWS signature (RFC 7518 section 3) by one of the
// algorithms a certificate assertion may use. It returns why the signature
// is refused, in Entra's words, or "" when it is good.
func verifyJWS(alg string, pub crypto.PublicKey, input, sig []byte) string {
	const mismatch = "The provided signature value did not match the expected signature value."
	unfit := "The algorithm '" + alg + "' does not fit the key of the certificate."
	if alg == "PS256" || alg == "RS256" {
		key, ok := pub.(*rsa.PublicKey)
		if !ok {
			return unfit
		}
		sum := sha256.Sum256(input)
		var err error
		if alg == "PS256" {
			err = rsa.VerifyPSS(key, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			err = rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig)
		}
		if err != nil {
			return mismatch
		}
		return ""
	}
	ec, known := ecAlgorithms[alg]
	if !known {
		return "The algorithm '" + alg + "' is not supported."
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok || key.Curve != ec.curve {
		return unfit
	}
	if len(sig) != 2*ec.size {
		return mismatch
	}
	h := ec.hash.New()
	h.Write(input)
	r, s := new(big.Int).SetBytes(sig[:ec.size]), new(big.Int).SetBytes(sig[ec.size:])
	if !ecdsa.Verify(key, h.Sum(nil), r, s) {
		return mismatch
	}
	return ""
}

// ParseCertificatePEM returns the first certificate of a PEM input, for
// Config.ClientCertificate (cmd/graphsim's -client-cert).
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New(`no PEM "CERTIFICATE" block found`)
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}
