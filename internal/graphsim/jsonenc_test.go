package graphsim

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func marshalString(t *testing.T, s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		"", "plain", `quote " and backslash \`, "tab\tnl\ncr\rbs\bff\f", "\x00\x01\x1f\x7f",
		"line\u2028para\u2029", "Zoë’s 📱 ノートPC", "bad \xff utf8 \xc3", "<&>",
	}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 2000; n++ {
		b := make([]byte, r.IntN(12))
		for k := range b {
			b[k] = byte(r.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		got := string(appendString(nil, s))
		if want := marshalString(t, s); got != want {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestAppendDateTime(t *testing.T) {
	for unix, want := range map[int64]string{
		neverTime:   `"0001-01-01T00:00:00Z"`,
		foreverTime: `"9999-12-31T23:59:59Z"`,
		time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC).Unix(): `"2025-03-14T09:26:53Z"`,
	} {
		if got := string(appendDateTime(nil, unix)); got != want {
			t.Errorf("%d: %s, want %s", unix, got, want)
		}
	}
}
