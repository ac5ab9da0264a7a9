package dockerfile

import (
	"slices"
	"strings"
	"testing"

	"github.com/devbox/devbox/rootfs"
)

func evaluate(t *testing.T, body string, args map[string]string) *Evaluated {
	t.Helper()
	f, err := Parse(write(t, body), args, "")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := f.Target().Evaluate(rootfs.Config{Env: []string{"PATH=/bin"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestProxyArgs: the predefined proxy args reach RUN without an ARG, in
// both spellings, as BuildKit gives them (dockerfile2llb/convert.go
// proxyEnvFromBuildArgs; solver/llbsolver/ops/exec.go proxyEnvList), and
// are neither in the config, nor in the step's Env (its key), nor
// reported unused.
func TestProxyArgs(t *testing.T) {
	args := map[string]string{"http_proxy": "http://proxy:3128", "NO_PROXY": "localhost"}
	f, err := Parse(write(t, "FROM a\nRUN env\n"), args, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.UnusedArgs) != 0 {
		t.Errorf("unused %v", f.UnusedArgs)
	}
	ev, err := f.Target().Evaluate(rootfs.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	run := ev.Steps[0]
	want := []string{"HTTP_PROXY=http://proxy:3128", "http_proxy=http://proxy:3128", "NO_PROXY=localhost", "no_proxy=localhost"}
	if !slices.Equal(run.ProxyEnv, want) {
		t.Errorf("proxy env %q, want %q", run.ProxyEnv, want)
	}
	for _, kv := range append(slices.Clone(run.Env), ev.Config.Env...) {
		if strings.Contains(strings.ToLower(kv), "proxy") {
			t.Errorf("%q in the step's env or the config", kv)
		}
	}
}

// TestExposeExpanded: EXPOSE expands its words (BuildKit's
// dispatchExpose, dockerfile2llb/convert_expose.go: ProcessWords, then
// parsePort: a range is a port each, the protocol lower case).
func TestExposeExpanded(t *testing.T) {
	ev := evaluate(t, "FROM a\nARG PORT=8080\nARG U=app\nENV PORTS=\"9000-9001/UDP 53/udp\"\nEXPOSE $PORT ${PORTS} 127.0.0.1:80:81\n"+
		"LABEL port=${PORT:-none} set=${U:+yes}\nUSER ${U}:$U\nWORKDIR /srv/$U\n", nil)
	want := []string{"8080/tcp", "9000/udp", "9001/udp", "53/udp", "81/tcp"}
	if !slices.Equal(ev.Config.ExposedPorts, want) {
		t.Errorf("exposed %q, want %q", ev.Config.ExposedPorts, want)
	}
	// The other instructions BuildKit expands (its dispatch calls Expand).
	if ev.Config.Labels["port"] != "8080" || ev.Config.Labels["set"] != "yes" || ev.Config.User != "app:app" || ev.Config.WorkingDir != "/srv/app" {
		t.Errorf("config %+v", ev.Config)
	}
	f, err := Parse(write(t, "FROM a\nEXPOSE $NOPE/tcp\n"), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Target().Evaluate(rootfs.Config{}, nil); err == nil || !strings.Contains(err.Error(), ":2: EXPOSE") {
		t.Errorf("an empty port: %v", err)
	}
}

// TestHeredocs: RUN and COPY heredocs as BuildKit's dispatchRun
// (dockerfile2llb/convert.go) and dispatchCopy (convert_copy.go) build
// them: one heredoc is the shell's command; one with a shebang is a
// script run from /dev/pipes; more are given to the shell whole; a COPY
// heredoc is a file, expanded unless its delimiter is quoted.
func TestHeredocs(t *testing.T) {
	ev := evaluate(t, `FROM a
ARG WHO=world
RUN <<EOF
echo hello $WHO
EOF
RUN <<-EOT
	#!/usr/bin/env python3
	print("hi")
EOT
RUN cat <<A > /a && cat <<B > /b
a
A
b
B
COPY <<EOF /etc/greeting
hello ${WHO}
EOF
COPY --chmod=600 <<'EOF' <<X /d/
keep $WHO
EOF
x
X
`, nil)
	s := ev.Steps
	if !slices.Equal(s[0].Args, []string{"/bin/sh", "-c", "echo hello $WHO\n"}) || s[0].Pipe != nil {
		t.Errorf("plain heredoc %q", s[0].Args)
	}
	if !slices.Equal(s[1].Args, []string{"/bin/sh", "-c", "/dev/pipes/EOT"}) || s[1].Pipe == nil || s[1].Pipe.Data != "#!/usr/bin/env python3\nprint(\"hi\")\n" {
		t.Errorf("shebang heredoc %q %+v", s[1].Args, s[1].Pipe)
	}
	if !slices.Equal(s[2].Args, []string{"/bin/sh", "-c", "cat <<A > /a && cat <<B > /b\na\nA\nb\nB"}) {
		t.Errorf("two heredocs %q", s[2].Args)
	}
	if s[3].Dest != "/etc/greeting" || !slices.Equal(s[3].Inline, []InlineFile{{"EOF", "hello world\n"}}) {
		t.Errorf("COPY heredoc %+v", s[3])
	}
	if s[4].Dest != "/d/" || s[4].Chmod != "600" || !slices.Equal(s[4].Inline, []InlineFile{{"EOF", "keep $WHO\n"}, {"X", "x\n"}}) {
		t.Errorf("COPY heredocs %+v", s[4])
	}
}
