package intune

import (
	"errors"
	"strings"
)

// redactor removes the client secret from text that leaves the input (log
// lines, errors). Errors are built from Microsoft's answers, which never echo
// a secret, but a proxy or a stand-in might; this is the last line of defence.
type redactor struct{ secrets []string }

func newRedactor(secrets ...string) redactor {
	var r redactor
	for _, s := range secrets {
		if len(s) >= 4 { // redacting "a" would garble every message
			r.secrets = append(r.secrets, s)
		}
	}
	return r
}

func (r redactor) string(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

// error returns err, or a copy with its text redacted when it held a secret.
func (r redactor) error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := r.string(msg); clean != msg {
		return errors.New(clean)
	}
	return err
}
