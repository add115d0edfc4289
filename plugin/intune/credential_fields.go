package intune

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// The credential fields: exactly one of them authenticates the app.
const (
	fieldClientSecret      = "client_secret"
	fieldClientCertificate = "client_certificate"
	fieldCertificate       = "certificate"
	fieldPrivateKey        = "private_key"
	fieldKeyPassword       = "password"
	fieldAlgorithm         = "algorithm"
	fieldSendChain         = "send_certificate_chain"

	fieldFederatedTokenFile = "federated_token_file"

	fieldManagedIdentity = "managed_identity"
	fieldMIEnabled       = "enabled"
	fieldMIEndpoint      = "endpoint"
)

// Azure Workload Identity's mutating webhook sets these in the pods it
// federates (azure.github.io/azure-workload-identity, "Quick start"); the
// Azure SDKs' WorkloadIdentityCredential reads the same names.
const (
	envFederatedTokenFile = "AZURE_FEDERATED_TOKEN_FILE"
	envTenantID           = "AZURE_TENANT_ID"
	envClientID           = "AZURE_CLIENT_ID"
)

// credentialKind names the one credential a config uses.
type credentialKind string

const (
	credentialSecret          credentialKind = fieldClientSecret
	credentialCertificate     credentialKind = fieldClientCertificate
	credentialFederated       credentialKind = fieldFederatedTokenFile
	credentialManagedIdentity credentialKind = fieldManagedIdentity
)

// credentialConfig is the parsed credential: its kind and what it needs.
type credentialConfig struct {
	kind credentialKind

	clientSecret string

	// certificate is the loaded certificate chain, key and signing
	// options; tokenProvider adds the client id, token URL, scope and
	// HTTP client.
	certificate graph.CertificateConfig

	federatedTokenFile string

	managedIdentityEndpoint string

	// keyTexts are the key's PEM (or the certificate's, when it holds the
	// key) and its password, as configured.
	keyTexts []string
}

// secrets lists what must never reach a log line or an error.
func (c credentialConfig) secrets() []string {
	return append([]string{c.clientSecret}, c.keyTexts...)
}

func credentialFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringField(fieldClientSecret).
			Description("A client secret of the app registration (its value, not its id). One of `client_secret`, `client_certificate`, `federated_token_file` and `managed_identity` must be set, and only one.").
			Example("${INTUNE_CLIENT_SECRET}").
			Secret().
			Optional(),
		service.NewObjectField(fieldClientCertificate,
			// Secret: it may hold the private key as well.
			service.NewStringField(fieldCertificate).
				Description("The certificate uploaded to the app registration, PEM encoded: a file path, or the PEM text itself. The file may also hold the private key and the certificate's chain.").
				Example("/etc/intune/app.pem").
				Default("").
				Secret(),
			service.NewStringField(fieldPrivateKey).
				Description("The certificate's private key, PEM encoded (PKCS#1, PKCS#8, SEC 1 or encrypted PKCS#8): a file path or the PEM text. Empty when `certificate` holds the key.").
				Example("/etc/intune/app.key").
				Default("").
				Secret(),
			service.NewStringField(fieldKeyPassword).
				Description("The password of an encrypted PKCS#8 key (`-----BEGIN ENCRYPTED PRIVATE KEY-----`).").
				Default("").
				Secret(),
			service.NewStringField(fieldAlgorithm).
				Description("How the client assertion is signed. Empty: `PS256` with the `x5t#S256` thumbprint for an RSA key, as Microsoft documents it, and `ES256`, `ES384` or `ES512` by curve for an ECDSA key. `RS256` sends the SHA-1 `x5t` thumbprint instead, for older set-ups.").
				Default("").
				LintRule(algorithmRule.mapping).
				Advanced(),
			service.NewBoolField(fieldSendChain).
				Description("Sends the certificate chain (`x5c`) with every assertion, which Entra ID needs when the app trusts certificates by subject name and issuer instead of by thumbprint.").
				Default(false).
				Advanced(),
		).
			Description("Authenticates the app registration with a certificate instead of a secret: every token request carries a freshly signed JWT client assertion.").
			LintRule(certificatePartsRule.mapping).
			Optional(),
		service.NewStringField(fieldFederatedTokenFile).
			Description("Workload identity federation: a file holding an OIDC token of another identity provider that the app registration trusts through a federated credential, such as the service account token Kubernetes projects. It is read again for every token request, so a rotated token is picked up without a restart. When no credential is set and `" + envFederatedTokenFile + "` is, that file is used (with `" + envTenantID + "` and `" + envClientID + "` for an empty `tenant_id` and `client_id`), as Azure Workload Identity sets them.").
			Example("/var/run/secrets/azure/tokens/azure-identity-token").
			Default(""),
		service.NewObjectField(fieldManagedIdentity,
			service.NewBoolField(fieldMIEnabled).
				Description("Gets tokens from the Azure Instance Metadata Service as the managed identity of the Azure VM or scale set the process runs on. `tenant_id` is then optional and `client_id` selects a user-assigned identity (empty: the system-assigned one).").
				Default(false),
			service.NewStringField(fieldMIEndpoint).
				Description("The metadata service's token endpoint. Change it only to test against a stand-in.").
				Default(graph.DefaultManagedIdentityEndpoint).
				Advanced(),
		).
			Description("Authenticates as an Azure managed identity, with no secret at all. Give the identity's service principal the Graph application permission `DeviceManagementManagedDevices.Read.All`.").
			Optional(),
	}
}

// credentialsLet sets $credentials to the credentials a config sets, and
// credentialConflict refuses more than one, naming them: which one would
// win is not something to guess. Both go into the input's rule, which sees
// every field.
const (
	credentialsLet = `let credentials = [
  if this.client_secret.or("").trim() != "" { "client_secret" },
  if this.client_certificate.certificate.or("").trim() != "" { "client_certificate" },
  if this.federated_token_file.or("").trim() != "" { "federated_token_file" },
  if this.managed_identity.enabled.or(false) == true { "managed_identity" },
].filter(v -> v != null)`
	credentialConflict = `if $credentials.length() > 1 { "set one credential, not %s".format($credentials.join(" and ")) }`
)

// The rules of the credential fields (see rule).
var (
	algorithmRule = oneOfRule([]string{"", "PS256", "RS256", "ES256", "ES384", "ES512"}, fieldClientCertificate, fieldAlgorithm)
	// A key or password without its certificate is a half-made edit, not
	// a credential: say so rather than "no credential".
	certificatePartsRule = newRule(`root = if this.certificate.or("").trim() == "" { [
  if this.private_key.or("") != "" { "client_certificate.private_key: set without client_certificate.certificate, the certificate it belongs to" },
  if this.password.or("") != "" { "client_certificate.password: set without client_certificate.certificate, the certificate it belongs to" },
].filter(v -> v != null) }`, fieldClientCertificate)
)

// credentialRules are the credential fields' rules, in the order checked.
func credentialRules() []*rule { return []*rule{certificatePartsRule, algorithmRule} }

// parseCredential reads the credential fields, and fills tenant_id and
// client_id from Azure Workload Identity's environment where it applies.
func (c *graphAccess) parseCredential(conf *service.ParsedConfig) error {
	var set []string // the credential fields set; each names its kind
	secret, err := optionalString(conf, fieldClientSecret)
	if err != nil {
		return err
	}
	if strings.TrimSpace(secret) != "" {
		set = append(set, fieldClientSecret)
		c.cred.clientSecret = secret
	}
	certificate, err := conf.FieldString(fieldClientCertificate, fieldCertificate)
	if err != nil {
		return err
	}
	if strings.TrimSpace(certificate) != "" {
		set = append(set, fieldClientCertificate)
	}
	fedFile, err := conf.FieldString(fieldFederatedTokenFile)
	if err != nil {
		return err
	}
	if strings.TrimSpace(fedFile) != "" {
		set = append(set, fieldFederatedTokenFile)
	}
	mi, err := conf.FieldBool(fieldManagedIdentity, fieldMIEnabled)
	if err != nil {
		return err
	}
	if mi {
		set = append(set, fieldManagedIdentity)
	}

	switch {
	case len(set) > 0: // one: inputRule refuses more
		c.cred.kind = credentialKind(set[0])
	case os.Getenv(envFederatedTokenFile) != "":
		c.cred.kind = credentialFederated
		fedFile = os.Getenv(envFederatedTokenFile)
		if c.tenantID == "" && !c.tenants.enabled() {
			c.tenantID = os.Getenv(envTenantID)
		}
		if c.clientID == "" {
			c.clientID = os.Getenv(envClientID)
		}
	default:
		return fmt.Errorf("no credential: set %s, %s.%s, %s (or the environment variable %s) or %s.%s",
			fieldClientSecret, fieldClientCertificate, fieldCertificate, fieldFederatedTokenFile, envFederatedTokenFile, fieldManagedIdentity, fieldMIEnabled)
	}

	if c.cred.kind == credentialManagedIdentity {
		// The metadata service knows the tenant; client_id, when set,
		// picks a user-assigned identity.
		endpoint, err := conf.FieldString(fieldManagedIdentity, fieldMIEndpoint)
		if err != nil {
			return err
		}
		if err := checkMetadataEndpoint(endpoint); err != nil {
			return fmt.Errorf("%s.%s: %w", fieldManagedIdentity, fieldMIEndpoint, err)
		}
		c.cred.managedIdentityEndpoint = endpoint
		return nil
	}
	if strings.TrimSpace(c.tenantID) == "" && !c.tenants.enabled() {
		return fmt.Errorf("%s: must not be empty (or list tenants)", fieldTenantID)
	}
	if strings.TrimSpace(c.clientID) == "" {
		return fmt.Errorf("%s: must not be empty", fieldClientID)
	}
	switch c.cred.kind {
	case credentialFederated:
		if looksLikeJWT(fedFile) {
			// Not quoted: it would be the token itself.
			return fmt.Errorf("%s: holds a token, not the path of a file holding one", fieldFederatedTokenFile)
		}
		c.cred.federatedTokenFile = strings.TrimSpace(fedFile)
	case credentialCertificate:
		return c.cred.parseCertificate(conf, certificate)
	}
	return nil
}

// parseCertificate reads the certificate and key, from files or inline, and
// loads them now: a wrong path or password is a config error at start-up,
// not a failed sync an hour later.
func (cc *credentialConfig) parseCertificate(conf *service.ParsedConfig, certificate string) error {
	certPEM, certOrigin, err := pemOrFile(fieldClientCertificate+"."+fieldCertificate, certificate)
	if err != nil {
		return err
	}
	keyPEM := certPEM
	key, err := conf.FieldString(fieldClientCertificate, fieldPrivateKey)
	if err != nil {
		return err
	}
	if strings.TrimSpace(key) != "" {
		if keyPEM, _, err = pemOrFile(fieldClientCertificate+"."+fieldPrivateKey, key); err != nil {
			return err
		}
	}
	password, err := conf.FieldString(fieldClientCertificate, fieldKeyPassword)
	if err != nil {
		return err
	}
	if strings.Contains(string(keyPEM), "PRIVATE KEY") {
		cc.keyTexts = append(cc.keyTexts, string(keyPEM))
	}
	cc.keyTexts = append(cc.keyTexts, password)
	if cc.certificate.Algorithm, err = conf.FieldString(fieldClientCertificate, fieldAlgorithm); err != nil {
		return err
	}
	if cc.certificate.SendCertificateChain, err = conf.FieldBool(fieldClientCertificate, fieldSendChain); err != nil {
		return err
	}
	if cc.certificate.Certificates, cc.certificate.Key, err = graph.LoadCertificateAndKey(certPEM, keyPEM, password); err != nil {
		return fmt.Errorf("%s: %w", fieldClientCertificate, err)
	}
	// graph.NewCertificateTokens refuses these too, but only once the
	// input starts, and without naming the field.
	_, isEC := cc.certificate.Key.Public().(*ecdsa.PublicKey)
	switch alg := cc.certificate.Algorithm; {
	case alg == "":
	case isEC && !strings.HasPrefix(alg, "ES"):
		return fmt.Errorf("%s.%s: %s needs an RSA key, and %s holds an ECDSA key; leave it empty", fieldClientCertificate, fieldAlgorithm, alg, certOrigin)
	case !isEC && strings.HasPrefix(alg, "ES"):
		return fmt.Errorf("%s.%s: %s needs an ECDSA key, and %s holds an RSA key; use PS256 or RS256", fieldClientCertificate, fieldAlgorithm, alg, certOrigin)
	}
	return nil
}

// pemOrFile returns value itself when it is PEM text, else the content of
// the file it names. Errors name the field, and the path only when it looks
// like one (its directory exists): the value might be a key in another
// encoding, such as base64 DER, and must not be repeated.
func pemOrFile(field, value string) (content []byte, origin string, err error) {
	if strings.Contains(value, "-----BEGIN ") {
		if !strings.Contains(value, "\n") {
			// From an environment variable: Benthos writes its newlines
			// into the config as the two characters \n.
			value = strings.ReplaceAll(value, `\n`, "\n")
		}
		return []byte(value), field, nil
	}
	path := strings.TrimSpace(value)
	content, err = os.ReadFile(path)
	if err != nil {
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		if dir := filepath.Dir(path); dir == "." || !isDir(dir) {
			return nil, "", fmt.Errorf("%s: neither PEM text nor the path of a readable file (%w)", field, err)
		}
		return nil, "", fmt.Errorf("%s: reading %s: %w", field, path, err)
	}
	return content, path, nil
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// looksLikeJWT tells a token pasted where its file's path belongs: three
// base64url parts, no slash.
func looksLikeJWT(s string) bool {
	s = strings.TrimSpace(s)
	return len(s) > 32 && strings.Count(s, ".") == 2 && !strings.ContainsAny(s, "/ \\")
}

// checkMetadataEndpoint accepts the metadata service's link-local address
// and loopback stand-ins over http, anything over https.
func checkMetadataEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		ip := net.ParseIP(u.Hostname())
		if isThisMachine(u.Hostname()) || ip != nil && ip.IsLinkLocalUnicast() {
			return nil
		}
		return fmt.Errorf("%q: http:// is only accepted for the link-local metadata address (169.254.169.254) and loopback hosts", raw)
	default:
		return fmt.Errorf("%q: scheme must be http or https", raw)
	}
}
