package graph

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newTestFederatedTokens(t *testing.T, e *tokenEndpoint, file string) *FederatedTokens {
	t.Helper()
	p, err := NewFederatedTokens(FederatedConfig{ClientID: testClientID, TokenURL: e.url(), Scope: "https://graph.microsoft.com/.default", TokenFile: file})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFederatedTokensRereadTheFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte("  eyJfirst.token.sig\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newTokenEndpoint(t)
	p := newTestFederatedTokens(t, e, file)
	ctx := context.Background()
	first, err := p.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := p.Token(ctx); again != first || len(e.sent()) != 1 {
		t.Fatalf("cached token not reused: %q, %d requests", again, len(e.sent()))
	}
	// The kubelet replaces the file (atomically, through a symlink swap).
	next := file + ".new"
	if err := os.WriteFile(next, []byte("eyJsecond.token.sig"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, file); err != nil {
		t.Fatal(err)
	}
	p.Invalidate(first)
	if _, err := p.Token(ctx); err != nil {
		t.Fatal(err)
	}
	sent := e.sent()
	if len(sent) != 2 {
		t.Fatalf("%d requests", len(sent))
	}
	for i, want := range []string{"eyJfirst.token.sig", "eyJsecond.token.sig"} {
		f := sent[i]
		if f.Get("client_assertion") != want || f.Get("client_assertion_type") != JWTBearerAssertionType ||
			f.Get("client_id") != testClientID || f.Get("grant_type") != "client_credentials" ||
			f.Get("scope") != "https://graph.microsoft.com/.default" || f.Has("client_secret") {
			t.Errorf("request %d: %v", i+1, f)
		}
	}
}

func TestFederatedTokenFileErrors(t *testing.T) {
	dir := t.TempDir()
	const content = "eyJ-a-federated-token-that-must-not-leak"
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	large := write("large", content+strings.Repeat("x", maxFederatedTokenBytes))
	for name, tc := range map[string]struct {
		path, want string
	}{
		"missing":   {filepath.Join(dir, "absent"), `federated token file "` + filepath.Join(dir, "absent") + `": no such file or directory`},
		"directory": {dir, `federated token file "` + dir + `": `},
		"empty":     {write("empty", " \n\t"), "is empty"},
		"too large": {large, "is larger than 64 KiB: not a token"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newTokenEndpoint(t)
			p := newTestFederatedTokens(t, e, tc.path)
			_, err := p.Token(context.Background())
			var terr *TransportError
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &terr) {
				t.Fatalf("error %v, want %q and not retried", err, tc.want)
			}
			if strings.Contains(err.Error(), content) {
				t.Errorf("error quotes the file: %v", err)
			}
			if len(e.sent()) != 0 {
				t.Error("a token request was sent")
			}
		})
	}
	_, err := readFederatedToken(filepath.Join(dir, "absent"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file is not fs.ErrNotExist: %v", err)
	}
}

func TestFederatedTokensErrorTyping(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("eyJx"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newTokenEndpoint(t)
	checkTokenErrorTyping(t, e, newTestFederatedTokens(t, e, file))
}

func TestNewFederatedTokensRefuses(t *testing.T) {
	for want, c := range map[string]FederatedConfig{
		"no client id":  {TokenURL: "u", TokenFile: "f"},
		"no token url":  {ClientID: "c", TokenFile: "f"},
		"no token file": {ClientID: "c", TokenURL: "u"},
	} {
		if _, err := NewFederatedTokens(c); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v", c, err)
		}
	}
}
