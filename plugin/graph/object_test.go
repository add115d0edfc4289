package graph

import (
	"fmt"
	"strings"
	"testing"
)

func TestEachMemberReturnsRawMembers(t *testing.T) {
	obj := []byte(` {"id":"a\"b","n":9007199254740993,"o":{"x":[1,{"y":null}]},"k\u00e9y":true} `)
	var got []string
	err := EachMember(obj, func(key []byte, escaped bool, value []byte) {
		k, err := DecodeKey(key, escaped)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%s", k, value))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `id="a\"b" n=9007199254740993 o={"x":[1,{"y":null}]} kéy=true`
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	if id, err := DecodeString([]byte(`"a\"b"`)); err != nil || id != `a"b` {
		t.Errorf("DecodeString = %q, %v", id, err)
	}
	for _, bad := range []string{`[]`, `{"a":1`, `{"a" 1}`, `{"a":1} x`, `{"a":tru}`} {
		if err := EachMember([]byte(bad), func([]byte, bool, []byte) {}); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
