package dockerfile

import (
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devbox/devbox/internal/testbase"
	"github.com/devbox/devbox/rootfs"
)

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(p, []byte(content), 0o644)
	return p
}

// TestClassic: the classic Dockerfile with the tests' build args; ARGs
// reach RUN as environment variables, ENV and WORKDIR the config.
func TestClassic(t *testing.T) {
	f, err := Parse(testbase.WriteClassicDockerfile(t, t.TempDir()), map[string]string{"BASE": "localhost:5000/debian:12", "INSTALL": "apt-get install -y", "UNUSED": "x"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Stages) != 1 || f.Target().Base != "localhost:5000/debian:12" {
		t.Fatalf("stages %+v", f.Stages)
	}
	if !slices.Equal(f.UnusedArgs, []string{"UNUSED"}) {
		t.Errorf("unused %v", f.UnusedArgs)
	}
	ev, err := f.Target().Evaluate(rootfs.Config{Env: []string{"PATH=/usr/bin:/bin"}, Cmd: []string{"bash"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps, cfg := ev.Steps, ev.Config
	var kinds []string
	for _, s := range steps {
		kinds = append(kinds, s.Kind)
	}
	if want := []string{Run, Run, Run, Run, Workdir}; !slices.Equal(kinds, want) {
		t.Fatalf("steps %v, want %v", kinds, want)
	}
	if !slices.Contains(steps[0].Env, "INSTALL=apt-get install -y") || !slices.Contains(steps[1].Env, "NODE_URL=https://nodejs.org/dist/v12.9.1/node-v12.9.1-linux-x64.tar.gz") {
		t.Errorf("RUN env %q / %q", steps[0].Env, steps[1].Env)
	}
	if steps[0].Args[0] != "/bin/sh" || steps[0].Args[1] != "-c" || !strings.HasPrefix(steps[0].Args[2], "${INSTALL} ${PACKAGES}") {
		t.Errorf("RUN argv %q", steps[0].Args)
	}
	if cfg.WorkingDir != "/var/www" || !slices.Equal(cfg.Cmd, []string{"/usr/sbin/sshd", "-D"}) || !slices.Equal(cfg.ExposedPorts, []string{"22/tcp", "80/tcp"}) {
		t.Errorf("config %+v", cfg)
	}
	if slices.ContainsFunc(cfg.Env, func(kv string) bool { return strings.HasPrefix(kv, "INSTALL=") }) {
		t.Error("a build arg went into the image's environment")
	}
}

func TestStagesAndExpansion(t *testing.T) {
	p := write(t, `ARG V=1
FROM alpine:3.${V} AS build
ENV DIR=/src PATH=/opt/bin:$PATH
WORKDIR $DIR
COPY --chown=1000:1000 a b ./
RUN ["make", "all"]

FROM scratch AS unused
COPY --from=build /x /x

FROM debian:12
ARG V
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
COPY --from=build /src/out /usr/local/bin/
COPY --from=nginx:1 /etc/nginx /etc/nginx
RUN echo $V
USER dev:dev
ENTRYPOINT ["/x"]
`)
	f, err := Parse(p, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Stages) != 2 || f.Stages[0].Base != "alpine:3.1" || f.Stages[0].Name != "build" {
		t.Fatalf("stages: %d %+v", len(f.Stages), f.Stages[0])
	}
	ev, err := f.Stages[0].Evaluate(rootfs.Config{Env: []string{"PATH=/bin"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps, cfg := ev.Steps, ev.Config
	if steps[1].Kind != Copy || steps[1].Dest != "/src/" || steps[1].Chown != "1000:1000" || steps[1].Workdir != "/src" || !slices.Contains(cfg.Env, "PATH=/opt/bin:/bin") {
		t.Errorf("copy %+v, env %q", steps[1], cfg.Env)
	}
	if !slices.Equal(steps[2].Args, []string{"make", "all"}) {
		t.Errorf("exec form %q", steps[2].Args)
	}
	ev, err = f.Target().Evaluate(rootfs.Config{Cmd: []string{"bash"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps, cfg = ev.Steps, ev.Config
	if steps[0].FromStage != f.Stages[0] || steps[1].FromStage != nil || steps[1].From != "nginx:1" {
		t.Errorf("--from: %+v / %+v", steps[0], steps[1])
	}
	if !slices.Equal(steps[2].Args, []string{"/bin/bash", "-euo", "pipefail", "-c", "echo $V"}) || !slices.Contains(steps[2].Env, "V=1") {
		t.Errorf("RUN %q env %q", steps[2].Args, steps[2].Env)
	}
	if cfg.User != "dev:dev" || cfg.Cmd != nil || !slices.Equal(cfg.Entrypoint, []string{"/x"}) {
		t.Errorf("config %+v", cfg)
	}
	if _, err := Parse(p, nil, "nope"); err == nil {
		t.Error("an unknown target was accepted")
	}
}

// TestRefused: what devbox does not build is refused with the line.
func TestRefused(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"FROM a\nRUN --security=insecure true\n", ":2: RUN: --security=insecure is refused"},
		{"FROM a\n\nSTOPSIGNAL SIGNOPE\n", ":3: STOPSIGNAL: invalid signal"},
		{"FROM a\nARG X=b\nCOPY --from=$X /a /b\n", ":3: COPY: variable expansion is not supported for --from"},
		{"FROM a\nARG E\nVOLUME $E\n", ":3: VOLUME: VOLUME specified can not be an empty string"},
		{"FROM a\nADD https://example.com/x.git /x\n", ":2: ADD: https://example.com/x.git: ADD from git is not supported"},
	} {
		f, err := Parse(write(t, c.body), nil, "")
		if err == nil {
			_, err = f.Target().Evaluate(rootfs.Config{}, nil)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.body, err, c.want)
		}
	}
}

// TestInheritedStage: a stage FROM another inherits its build args and
// SHELL; ENTRYPOINT keeps a CMD set in its own stage; an ARG with no value
// stays unset.
func TestInheritedStage(t *testing.T) {
	p := write(t, "FROM a AS base\nARG NODE_ENV=production\nARG EMPTY\nSHELL [\"/bin/bash\", \"-c\"]\nFROM base\nCMD [\"serve\"]\nENTRYPOINT [\"/x\"]\nRUN echo $NODE_ENV\nCOPY --from=5 /a /b\n")
	f, err := Parse(p, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	base, err := f.Stages[0].Evaluate(rootfs.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Target().Evaluate(rootfs.Config{}, base); err == nil || !strings.Contains(err.Error(), "invalid stage index") {
		t.Errorf("COPY --from=5: %v", err)
	}
	f.Target().commands = f.Target().commands[:len(f.Target().commands)-1]
	ev, err := f.Target().Evaluate(rootfs.Config{}, base)
	if err != nil {
		t.Fatal(err)
	}
	run := ev.Steps[0]
	if run.Args[0] != "/bin/bash" || !slices.Contains(run.Env, "NODE_ENV=production") || slices.ContainsFunc(run.Env, func(kv string) bool { return strings.HasPrefix(kv, "EMPTY=") }) {
		t.Errorf("RUN %q env %q", run.Args, run.Env)
	}
	if !slices.Equal(ev.Config.Cmd, []string{"serve"}) {
		t.Errorf("cmd %q", ev.Config.Cmd)
	}
}

// TestPlatformArgs: the predefined platform args are this host's, and
// FROM --platform is taken for it only.
func TestPlatformArgs(t *testing.T) {
	f, err := Parse(write(t, "FROM --platform=$BUILDPLATFORM golang AS b\nARG TARGETARCH\nRUN echo $TARGETARCH\n"), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := f.Target().Evaluate(rootfs.Config{}, nil)
	if err != nil || !slices.Contains(ev.Steps[0].Env, "TARGETARCH="+goruntime.GOARCH) {
		t.Errorf("%v %q", err, ev.Steps[0].Env)
	}
	if _, err := Parse(write(t, "FROM --platform=linux/s390x golang\n"), nil, ""); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Errorf("another platform: %v", err)
	}
}

// TestConfigInstructions: HEALTHCHECK, STOPSIGNAL, VOLUME, SHELL and
// ONBUILD are recorded in the config; a stage over a config with ONBUILD
// triggers runs them first and passes none on (BuildKit's
// initOnBuildTriggers).
func TestConfigInstructions(t *testing.T) {
	f, err := Parse(write(t, "FROM a\nHEALTHCHECK --interval=5s --retries=2 CMD curl -f http://localhost/\nSTOPSIGNAL SIGQUIT\n"+
		"VOLUME /data /cache\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\nONBUILD RUN echo $PWD > /trigger\n"), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := f.Target().Evaluate(rootfs.Config{Volumes: []string{"/data"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := ev.Config
	if h := c.Healthcheck; h == nil || !slices.Equal(h.Test, []string{"CMD-SHELL", "curl -f http://localhost/"}) || h.Interval != 5*time.Second || h.Retries != 2 {
		t.Errorf("healthcheck %+v", h)
	}
	if c.StopSignal != "SIGQUIT" || !slices.Equal(c.Volumes, []string{"/data", "/cache"}) || !slices.Equal(c.Cmd, []string{"/bin/bash", "-c", "echo hi"}) {
		t.Errorf("config %+v", c)
	}
	if !slices.Equal(c.OnBuild, []string{"RUN echo $PWD > /trigger"}) || len(ev.Steps) != 0 {
		t.Errorf("onbuild %q, steps %+v", c.OnBuild, ev.Steps)
	}
	child, err := Parse(write(t, "FROM b\nRUN true\n"), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	ev, err = child.Target().Evaluate(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Steps) != 2 || !slices.Equal(ev.Steps[0].Args, []string{"/bin/bash", "-c", "echo $PWD > /trigger"}) || ev.Steps[0].Line != 1 || ev.Config.OnBuild != nil {
		t.Errorf("triggers: steps %+v, onbuild %q", ev.Steps, ev.Config.OnBuild)
	}
}

// TestStopSignal: STOPSIGNAL takes what moby's signal.ParseSignal takes.
func TestStopSignal(t *testing.T) {
	for s, ok := range map[string]bool{"SIGTERM": true, "term": true, "15": true, "SIGRTMIN+3": true, "RTMAX-1": true,
		"SIGIOT": true, "SIGNOPE": false, "0": false, "RTMIN+99": false, "": false} {
		if validSignal(s) != ok {
			t.Errorf("%q: valid %v, want %v", s, !ok, ok)
		}
	}
}
