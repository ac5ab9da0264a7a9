package main

import (
	"path/filepath"
	"testing"

	"github.com/devbox/devbox/devenv/builder"
)

// TestParseSecret: docker buildx's --secret forms.
func TestParseSecret(t *testing.T) {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	for _, c := range []struct {
		flag, id string
		want     builder.Secret
		bad      bool
	}{
		{flag: "id=tok,src=tok.txt", id: "tok", want: builder.Secret{Src: abs("tok.txt")}},
		{flag: "id=tok,source=/run/tok", id: "tok", want: builder.Secret{Src: "/run/tok"}},
		{flag: "id=tok,env=TOKEN", id: "tok", want: builder.Secret{Env: "TOKEN"}},
		{flag: "id=TOKEN,type=env", id: "TOKEN", want: builder.Secret{Env: "TOKEN"}},
		{flag: "id=tok", id: "tok", want: builder.Secret{Src: abs("tok")}},
		{flag: "src=x", bad: true},
		{flag: "id=a,src=x,env=Y", bad: true},
		{flag: "id=a,nope=1", bad: true},
		{flag: "id=a,type=ssh", bad: true},
	} {
		id, sec, err := parseSecret(c.flag)
		if (err != nil) != c.bad || (!c.bad && (id != c.id || sec != c.want)) {
			t.Errorf("%q: %q %+v %v", c.flag, id, sec, err)
		}
	}
}
