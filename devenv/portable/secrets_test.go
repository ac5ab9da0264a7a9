package portable

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// TestRedact: each rule rewrites exactly what it must and gives back the
// same bytes for a file it has nothing to take from.
func TestRedact(t *testing.T) {
	for _, c := range []struct {
		rel, in, want string
	}{
		{"etc/shadow", "root:*:19000:0:99999:7:::\ndev:$6$salt$hash:20000:0:99999:7:::\nold:!$y$j9T$x:1::::::\nnone::1::::::\n",
			"root:*:19000:0:99999:7:::\ndev:!:20000:0:99999:7:::\nold:!:1::::::\nnone::1::::::\n"},
		{"etc/shadow-", "dev:$6$a$b:1::::::", "dev:!:1::::::"},
		{"etc/gshadow", "dev:$6$a$b::\nusers:!::\n", "dev:!::\nusers:!::\n"},
		{"etc/passwd", "root:x:0:0::/root:/bin/sh\nbb:$1$a$b:1:1::/:/bin/sh\n", "root:x:0:0::/root:/bin/sh\nbb:!:1:1::/:/bin/sh\n"},
		{"usr/local/etc/npmrc", "registry=http://r.example/\n//r.example/:_authToken=${NPM_TOKEN}\n",
			"registry=http://r.example/\n//r.example/:_authToken=${NPM_TOKEN}\n"},
		{"root/.npmrc", "registry=http://r.example/\n//r.example/:_authToken=npm_abc\n_auth = dXNlcjpwdw==\n//r.example/:_password=cHc=\nemail=a@b\n",
			"registry=http://r.example/\nemail=a@b\n"},
		{"home/dev/.yarnrc.yml", "npmRegistryServer: \"http://r.example\"\nnpmAuthToken: \"npm_abc\"\nnpmScopes:\n  team:\n    npmAuthToken: ${NPM_TOKEN}\n",
			"npmRegistryServer: \"http://r.example\"\nnpmScopes:\n  team:\n    npmAuthToken: ${NPM_TOKEN}\n"},
		// Names alone do not make a file one of these.
		{"etc/motd", "dev:$6$a$b:1::::::\n_authToken=x\n", "dev:$6$a$b:1::::::\n_authToken=x\n"},
		// A program that names the markers is not a key.
		{"usr/lib/x.py", "BEGIN = \"-----BEGIN OPENSSH PRIVATE KEY-----\"\nEND = \"-----END OPENSSH PRIVATE KEY-----\"\n",
			"BEGIN = \"-----BEGIN OPENSSH PRIVATE KEY-----\"\nEND = \"-----END OPENSSH PRIVATE KEY-----\"\n"},
	} {
		in := []byte(c.in)
		out, drop := Redact(c.rel, in)
		if drop || string(out) != c.want {
			t.Errorf("%s: drop %v, %q; want %q", c.rel, drop, out, c.want)
		}
		// A file with nothing to take comes back as it is, not a copy.
		if c.in == c.want && len(out) > 0 && &out[0] != &in[0] {
			t.Errorf("%s: unchanged but copied", c.rel)
		}
	}
}

// TestRedactPrivateKeys: OpenSSH, PKCS#8 and PKCS#1 keys, alone or after
// a certificate in one PEM file, are dropped wherever they are.
func TestRedactPrivateKeys(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	openssh, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not really DER")})
	rsa := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("x")})
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("c")})
	for rel, data := range map[string][]byte{
		"etc/ssh/ssh_host_ed25519_key": pem.EncodeToMemory(openssh),
		"root/.ssh/id_ed25519":         pem.EncodeToMemory(openssh),
		"etc/ssl/private/site.key":     pkcs8,
		"srv/bundle.pem":               append(cert, rsa...),
	} {
		if out, drop := Redact(rel, data); !drop || out != nil {
			t.Errorf("%s: not dropped", rel)
		}
	}
	if _, drop := Redact("etc/ssl/certs/ca.pem", cert); drop {
		t.Error("a certificate alone was dropped")
	}
}
