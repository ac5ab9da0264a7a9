package spec

import (
	container "github.com/devbox/devbox/runtime"

	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/devbox/devbox/rootfs"
	"github.com/devbox/devbox/templates"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb2CxGDH2hVCzD6qLpEGJlIQ6N0d3rcJWcWy7u3xkXH test@devbox"

func mustParse(t *testing.T, dir, content string) *Spec {
	t.Helper()
	s, err := Parse(filepath.Join(dir, FileName), []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeSpec writes content as dir/devbox.toml and returns its path.
func writeSpec(t *testing.T, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, FileName)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSpecDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My_Project")
	os.Mkdir(dir, 0o755)
	s, err := Load(writeSpec(t, dir, `base = "centos:7"`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "my-project" || s.Hostname != "my-project" {
		t.Errorf("name/hostname = %q/%q, want my-project", s.Name, s.Hostname)
	}
	if s.SSH.Port != 2222 || s.SSH.Address != "127.0.0.1" || s.SSH.User != "root" {
		t.Errorf("ssh defaults = %+v", s.SSH)
	}
	if s.Packages.Manager != "auto" || s.Network.Mode != "bridge" || s.Node.Mirror != DefaultNodeMirror {
		t.Errorf("defaults: manager %q network %q mirror %q", s.Packages.Manager, s.Network.Mode, s.Node.Mirror)
	}
	if s.BaseRef.Kind != rootfs.KindRegistry || s.BaseRef.Name != "index.docker.io/library/centos:7" {
		t.Errorf("base ref = %+v", s.BaseRef)
	}
}

func TestLoadSpecFull(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "id.pub")
	os.WriteFile(keyFile, []byte(testKey+"\n"), 0o644)
	s, err := Load(writeSpec(t, dir, `
name = "fullstack"
base = "oci:./image:v1"
hostname = "box"
workdir = "/var/www"
shell = "/bin/bash"
ports = ["8080:80", "0.0.0.0:9000:9000/tcp", "[::1]:9001:90"]

[env]
TZ = "UTC"

[packages]
manager = "yum"
install = ["gcc", "gcc-c++", "openssl-devel"]

[node]
version = "v12.9.1"
mirror = "npm"

[npm]
registry = "http://registry.example.com/"
token_env = "NPM_TOKEN"

[ssh]
port = 2022
authorized_keys = ["id.pub", "`+testKey+`", "nomatch/*.pub"]
password = "secret"

[[mounts]]
source = "."
target = "/var/www/"
readonly = true

[[run]]
command = "npm install -g yarn"

[resources]
cpus = 2
memory = "4GiB"
pids = 4096

[network]
mode = "none"
subnet = "10.99.0.0/24"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []container.PortMap{{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80}, {HostIP: "0.0.0.0", HostPort: 9000, ContainerPort: 9000}, {HostIP: "::1", HostPort: 9001, ContainerPort: 90}}
	for i, w := range want {
		if s.PortMaps[i] != w {
			t.Errorf("port %d = %+v, want %+v", i, s.PortMaps[i], w)
		}
	}
	if s.Node.Version != "12.9.1" {
		t.Errorf("node version = %q", s.Node.Version)
	}
	if len(s.SSH.Keys) != 2 || !strings.HasPrefix(s.SSH.Keys[0], "ssh-ed25519 ") {
		t.Errorf("keys = %q", s.SSH.Keys)
	}
	if s.Mounts[0].Source != dir || s.Mounts[0].Target != "/var/www" || !s.Mounts[0].Readonly {
		t.Errorf("mount = %+v", s.Mounts[0])
	}
	if s.Resources.MemoryBytes != 4<<30 || s.Resources.CPUs != 2 || s.Resources.Pids != 4096 {
		t.Errorf("resources = %+v", s.Resources)
	}
	if s.BaseRef.Kind != rootfs.KindOCI || s.BaseRef.Name != filepath.Join(dir, "image") || s.BaseRef.Tag != "v1" {
		t.Errorf("base = %+v", s.BaseRef)
	}
}

// TestSpecErrors checks that every malformed spec is refused with one line
// naming the file, the line and the key.
func TestSpecErrors(t *testing.T) {
	cases := []struct {
		name, spec string
		line       int
		key, msg   string
	}{
		{"unknown key", "bse = \"centos:7\"\n", 1, "bse", "unknown key"},
		{"NUL byte", "base = \"x\"\n# a \x00 in a comment\n", 2, "", "control characters"},
		{"raw NUL", "base = \"x\x00\"\n", 1, "", "NUL"},
		{"escaped NUL in env", "base = \"x\"\n[env]\nA = \"a\\u0000b\"\n", 3, "env.A", "control characters"},
		{"newline in workdir", "base = \"x\"\nworkdir = \"/a\\nb\"\n", 2, "workdir", "control characters"},
		{"escape in mount", "base = \"x\"\n[[mounts]]\nsource = \".\"\ntarget = \"/a\\u001b[2J\"\n", 2, "mounts.0", "control characters"},
		{"NUL in run", "base = \"x\"\n[[run]]\ncommand = \"echo \\u0000\"\n", 3, "run.0.command", "NUL"},
		{"deep nesting", "base = \"x\"\n[env]\nA = " + strings.Repeat("[", 17) + "\n", 3, "", "nested more than 16"},
		{"unknown nested key", "base = \"x\"\n\n[ssh]\nprot = 22\n", 4, "ssh.prot", "unknown key"},
		{"unknown key in array table", "base = \"x\"\n[[mounts]]\nsource = \".\"\ntarget = \"/a\"\n[[mounts]]\nsourc = \".\"\n", 6, "mounts.sourc", "unknown key"},
		{"wrong type", "base = \"x\"\nports = 2222\n", 2, "ports", "incompatible types"},
		{"wrong type nested", "base = \"x\"\n[ssh]\nport = \"22\"\n", 3, "ssh.port", "incompatible types"},
		{"syntax error", "base = \"x\"\nports = [\"8080:80\"\n", 2, "", "expected a comma"},
		{"missing base", "name = \"a\"\n", 1, "base", "is required"},
		{"bad base", "base = \"UPPER/Case::\"\n", 1, "base", "not an image reference"},
		{"bad debootstrap", "base = \"debootstrap:\"\n", 1, "base", "suite"},
		{"bad name", "base = \"x\"\nname = \"Not_Valid\"\n", 2, "name", "not a valid name"},
		{"bad hostname", "base = \"x\"\nhostname = \"-x\"\n", 2, "hostname", "not a valid host name"},
		{"bad port", "base = \"x\"\nports = [\"8080:99999\"]\n", 2, "ports", "not a port"},
		{"bad port syntax", "base = \"x\"\nports = [\"8080\"]\n", 2, "ports", "HOSTPORT:CONTAINERPORT"},
		{"udp port", "base = \"x\"\nports = [\"53:53/udp\"]\n", 2, "ports", "only tcp"},
		{"duplicate port", "base = \"x\"\nports = [\"8080:80\", \"8080:81\"]\n", 2, "ports", "used twice"},
		{"port equals ssh", "base = \"x\"\nports = [\"2222:22\"]\n", 2, "ports", "ssh.port"},
		{"bad ssh port", "base = \"x\"\n[ssh]\nport = 0\n", 3, "ssh.port", "not a port"},
		{"bad node version", "base = \"x\"\n[node]\nversion = \"12.9\"\n", 3, "node.version", "not an exact version"},
		{"bad node mirror", "base = \"x\"\n[node]\nmirror = \"ftp://x\"\n", 3, "node.mirror", "URL"},
		{"bad memory", "base = \"x\"\n[resources]\nmemory = \"4 parsecs\"\n", 3, "resources.memory", "unknown unit"},
		{"tiny memory", "base = \"x\"\n[resources]\nmemory = \"1KiB\"\n", 3, "resources.memory", "minimum"},
		{"zero cpus", "base = \"x\"\n[resources]\ncpus = 0\n", 3, "resources.cpus", "more than 0"},
		{"missing mount source", "base = \"x\"\n[[mounts]]\nsource = \"./nope\"\ntarget = \"/a\"\n", 3, "mounts.0.source", "does not exist"},
		{"relative mount target", "base = \"x\"\n[[mounts]]\nsource = \".\"\ntarget = \"var/www\"\n", 4, "mounts.0.target", "absolute"},
		{"bad volume name", "base = \"x\"\n[[mounts]]\ntype = \"volume\"\nsource = \"a/b\"\ntarget = \"/a\"\n", 4, "mounts.0.source", "not a volume name"},
		{"tmpfs with a source", "base = \"x\"\n[[mounts]]\ntype = \"tmpfs\"\nsource = \"a\"\ntarget = \"/a\"\n", 4, "mounts.0.source", "no source"},
		{"unknown mount type", "base = \"x\"\n[[mounts]]\ntype = \"nfs\"\nsource = \"a\"\ntarget = \"/a\"\n", 3, "mounts.0.type", "want \"bind\""},
		{"mount over proc", "base = \"x\"\n[[mounts]]\nsource = \".\"\ntarget = \"/proc/x\"\n", 4, "mounts.0.target", "reserved"},
		{"second mount bad", "base = \"x\"\n[[mounts]]\nsource = \".\"\ntarget = \"/a\"\n\n[[mounts]]\nsource = \".\"\ntarget = \"/\"\n", 8, "mounts.1.target", "reserved"},
		{"bad network", "base = \"x\"\n[network]\nmode = \"nat\"\n", 3, "network.mode", "not one of"},
		{"bad manager", "base = \"x\"\n[packages]\nmanager = \"pacman\"\n", 3, "packages.manager", "not one of"},
		{"package flag injection", "base = \"x\"\n[packages]\ninstall = [\"--allow-unauthenticated\"]\n", 3, "packages.install", "not a package name"},
		{"password and env", "base = \"x\"\n[ssh]\npassword = \"a\"\npassword_env = \"B\"\n", 3, "ssh.password", "exclusive"},
		{"empty password", "base = \"x\"\n[ssh]\npassword = \"\"\n", 3, "ssh.password", "empty password"},
		{"bad password hash", "base = \"x\"\n[ssh]\npassword_hash = \"plain\"\n", 3, "ssh.password_hash", "crypt"},
		{"unreadable key", "base = \"x\"\n[ssh]\nauthorized_keys = [\"missing.pub\"]\n", 3, "ssh.authorized_keys.0", "cannot read"},
		{"bad literal key", "base = \"x\"\n[ssh]\nauthorized_keys = [\"ssh-ed25519 AAAAnotbase64\"]\n", 3, "ssh.authorized_keys.0", "no valid public key"},
		{"key with options", "base = \"x\"\n[ssh]\nauthorized_keys = ['command=\"ls\" " + testKey + "']\n", 3, "ssh.authorized_keys.0", "options"},
		{"dotted key", "base = \"x\"\nssh.port = 70000\n", 2, "ssh.port", "not a port"},
		{"empty run", "base = \"x\"\n[[run]]\ncommand = \" \"\n", 3, "run.0.command", "must not be empty"},
		{"bad env name", "base = \"x\"\n[env]\n\"A-B\" = \"1\"\n", 3, "env.A-B", "not a valid environment"},
		{"bad subnet", "base = \"x\"\n[network]\nsubnet = \"10.0.0.0/30\"\n", 3, "network.subnet", "too small"},
		{"duplicate key", "base = \"x\"\nbase = \"y\"\n", 2, "", "already been defined"},
	}
	lineRE := regexp.MustCompile(`^devbox\.toml:(\d+): `)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			_, err := Load(writeSpec(t, dir, c.spec))
			if err == nil {
				t.Fatalf("no error for:\n%s", c.spec)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not an *Error", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is more than one line: %q", msg)
			}
			if !lineRE.MatchString(msg) {
				t.Errorf("error %q does not start with devbox.toml:LINE:", msg)
			}
			if se.Line != c.line {
				t.Errorf("line = %d, want %d (%s)", se.Line, c.line, msg)
			}
			if c.key != "" && se.Key != c.key {
				t.Errorf("key = %q, want %q (%s)", se.Key, c.key, msg)
			}
			if c.key != "" && !strings.Contains(msg, ": "+c.key+": ") {
				t.Errorf("error %q does not name key %s", msg, c.key)
			}
			if !strings.Contains(msg, c.msg) {
				t.Errorf("error %q does not say %q", msg, c.msg)
			}
		})
	}
}

func TestParsePort(t *testing.T) {
	good := map[string]container.PortMap{
		"80:8080":             {HostIP: "127.0.0.1", HostPort: 80, ContainerPort: 8080},
		"1.2.3.4:1:2":         {HostIP: "1.2.3.4", HostPort: 1, ContainerPort: 2},
		"[::]:65535:1/tcp":    {HostIP: "::", HostPort: 65535, ContainerPort: 1},
		"127.0.0.2:3000:3000": {HostIP: "127.0.0.2", HostPort: 3000, ContainerPort: 3000},
	}
	for in, want := range good {
		got, err := ParsePort(in)
		if err != nil || got != want {
			t.Errorf("ParsePort(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "80", ":80", "80:", "a:80", "0:80", "80:0", "x.y:1:2", "1:2/sctp", "-1:2"} {
		if _, err := ParsePort(bad); err == nil {
			t.Errorf("ParsePort(%q) succeeded", bad)
		}
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{"512MiB": 512 << 20, "4GiB": 4 << 30, "1g": 1 << 30, "100": 100, "1.5GiB": 3 << 29, "2GB": 2e9, "64m": 64 << 20}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GiB", "-1", "1 XB", "1e99GiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		}
	}
}

// TestTemplatesValidate decodes and validates every embedded template, as
// `devbox init` would write it.
func TestTemplatesValidate(t *testing.T) {
	list := templates.List()
	if len(list) < 5 {
		t.Fatalf("%d templates, want at least 5", len(list))
	}
	for _, tmpl := range list {
		t.Run(tmpl.Name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Load(writeSpec(t, dir, string(tmpl.Content)))
			if err != nil {
				t.Fatal(err)
			}
			if tmpl.Description == "" || strings.HasPrefix(tmpl.Description, "#") {
				t.Errorf("description = %q", tmpl.Description)
			}
			if s.Name == "" || s.SSH.Port == 0 {
				t.Errorf("defaults not filled in: %+v", s)
			}
		})
	}
}

// TestHugeSpecs: a spec over the size limit, or nested deep enough to make
// the decoder slow, is refused at once.
func TestHugeSpecs(t *testing.T) {
	dir := t.TempDir()
	nested := "base = \"x\"\n[env]\nA = " + strings.Repeat("{a=", 40000) + "1" + strings.Repeat("}", 40000) + "\n"
	big := "base = \"x\"\n" + strings.Repeat("# padding\n", MaxSize/10+1)
	for name, spec := range map[string]string{"200 KB of nested inline tables": nested, "over 1 MiB": big} {
		start := time.Now()
		_, err := Load(writeSpec(t, dir, spec))
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("%s: %v, want a spec error", name, err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("%s: refused after %s (want < 100 ms)", name, d)
		}
	}
}

// FuzzParseSpec: no input makes the decoder panic, and every error is a
// one-line SpecError.
func FuzzParseSpec(f *testing.F) {
	for _, tmpl := range templates.List() {
		f.Add(tmpl.Content)
	}
	f.Add([]byte("base = \"x\"\nports = [\"1:2\", \"[::1]:3:4/tcp\"]\n[[mounts]]\nsource=\".\"\ntarget=\"/a\"\n"))
	f.Add([]byte("[ssh]\npassword_hash = \"$6$a$b\"\n[resources]\nmemory = \"1.5GiB\"\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse(filepath.Join(dir, FileName), data)
		if err == nil {
			return
		}
		var se *Error
		if !errors.As(err, &se) {
			t.Fatalf("not an *Error: %v", err)
		}
		if se.Line < 1 {
			t.Fatalf("line %d < 1: %v", se.Line, err)
		}
	})
}

func TestNPMTokenNeverInALayer(t *testing.T) {
	dir := t.TempDir()
	s := mustParse(t, dir, "base = \"x\"\n[npm]\nregistry = \"https://npm.corp.example/team/\"\ntoken_env = \"TEAM_NPM_TOKEN\"\n")
	t.Setenv("TEAM_NPM_TOKEN", "tok-123")
	rc := s.NPMRC()
	if !strings.Contains(rc, "registry=https://npm.corp.example/team/\n") || !strings.Contains(rc, "//npm.corp.example/team/:_authToken=${TEAM_NPM_TOKEN}") || strings.Contains(rc, "tok-123") {
		t.Errorf("npmrc:\n%s", rc)
	}
	if env := s.UpEnv(); len(env) != 1 || env[0] != "TEAM_NPM_TOKEN=tok-123" {
		t.Errorf("up env: %v", env)
	}
}

// FuzzParseAuthorizedKeys: no input makes the parser panic; what it
// accepts is one normalised line per key, each parsing again to itself,
// and never a key with options.
func FuzzParseAuthorizedKeys(f *testing.F) {
	f.Add([]byte(testKey + "\n"))
	f.Add([]byte("# comment\n\n" + testKey + "\n" + testKey + " other\n"))
	f.Add([]byte(`from="10.0.0.1" ` + testKey))
	f.Add([]byte("ssh-rsa AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseAuthorizedKeys(data)
		if err != nil {
			return
		}
		for _, k := range keys {
			if strings.ContainsAny(k, "\n\r") {
				t.Fatalf("key line %q spans lines", k)
			}
			again, err := ParseAuthorizedKeys([]byte(k))
			if err != nil || len(again) != 1 || again[0] != k {
				t.Fatalf("%q does not parse back to itself: %v %v", k, again, err)
			}
		}
	})
}
