package dockerfile

import (
	"strings"
	"testing"

	"github.com/devbox/devbox/rootfs"
)

// evalTarget parses body and evaluates its stages in order, returning
// the target's steps.
func evalTarget(t *testing.T, body string) ([]Step, *File, error) {
	t.Helper()
	f, err := Parse(write(t, body), map[string]string{"CACHE": "/root/.cache"}, "")
	if err != nil {
		return nil, nil, err
	}
	done := map[*Stage]*Evaluated{}
	var ev *Evaluated
	for _, s := range f.Stages {
		if ev, err = s.Evaluate(rootfs.Config{}, done[s.Parent]); err != nil {
			return nil, f, err
		}
		done[s] = ev
	}
	return ev.Steps, f, nil
}

// TestRunMounts: every mount type with BuildKit's defaults, relative
// targets in the workdir, variables expanded, the stages a mount names
// built.
func TestRunMounts(t *testing.T) {
	steps, f, err := evalTarget(t, `FROM a AS src
FROM b
ARG CACHE
WORKDIR /w
RUN --mount=type=cache,target=${CACHE} \
    --mount=type=cache,target=pkg,id=npm,sharing=locked,uid=1000,gid=1000,mode=0700 \
    --mount=type=tmpfs,target=/tmp,size=1m \
    --mount=from=src,source=/etc,target=/mnt/etc \
    --mount=target=ctx,rw \
    --mount=type=secret,id=tok \
    --mount=type=secret,id=env,env=TOKEN \
    --mount=type=ssh --mount=type=ssh,id=other,required \
    --network=none true
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Stages) != 2 {
		t.Fatalf("stages %d: the stage mounted from is not built", len(f.Stages))
	}
	run := steps[1]
	if run.Network != NetworkNone || len(run.Mounts) != 9 {
		t.Fatalf("network %q mounts %+v", run.Network, run.Mounts)
	}
	want := []Mount{
		{Type: MountCache, Target: "/root/.cache", ID: "/root/.cache", Sharing: "shared", Mode: 0o755, Source: "/"},
		{Type: MountCache, Target: "/w/pkg", ID: "npm", Sharing: "locked", Mode: 0o700, UID: 1000, GID: 1000, Source: "/"},
		{Type: MountTmpfs, Target: "/tmp", Size: 1 << 20},
		{Type: MountBind, Target: "/mnt/etc", Source: "/etc", From: "src", FromStage: f.Stages[0], ReadOnly: true},
		{Type: MountBind, Target: "/w/ctx", Source: "/"},
		{Type: MountSecret, Target: "/run/secrets/tok", ID: "tok", Mode: 0o400, ReadOnly: true},
		{Type: MountSecret, ID: "env", Env: "TOKEN", Mode: 0o400, ReadOnly: true},
		{Type: MountSSH, Target: "/run/buildkit/ssh_agent.0", ID: "default", Mode: 0o600, ReadOnly: true},
		{Type: MountSSH, Target: "/run/buildkit/ssh_agent.1", ID: "other", Mode: 0o600, ReadOnly: true, Required: true},
	}
	for i, m := range run.Mounts {
		if m != want[i] {
			t.Errorf("mount %d: %+v\n want %+v", i, m, want[i])
		}
	}
}

// TestRunMountErrors: an invalid mount is an error with the line.
func TestRunMountErrors(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"FROM a\nRUN --mount=type=nope,target=/x true\n", ":2: "},
		{"FROM a\nRUN --mount=type=cache,target=/x,mode=9 true\n", ":2: "},
		{"FROM a\nRUN --mount=type=tmpfs,target=/ true\n", ":2: RUN: --mount=type=tmpfs: invalid mount target"},
		{"FROM a\nRUN --mount=type=cache,target=/x,source=/y true\n", ":2: RUN: --mount=type=cache: source= needs from="},
		{"FROM a AS first\nRUN --mount=from=later,target=/x true\nFROM b AS later\nCOPY --from=first / /\n", ":2: RUN: --mount=type=bind: from=later names this stage or a later one"},
		{"FROM a\nRUN --mount=from=debian:12,target=/x true\n", ":2: RUN: --mount=type=bind: from=debian:12: mounting an image is not supported"},
		{"FROM a\nRUN --mount=type=tmpfs,target=/x,source=y true\n", "a tmpfs has no from="},
		{"FROM a\nRUN --mount=type=ssh,source=/x true\n", "an ssh mount has no source="},
		{"FROM a\nRUN --mount=type=secret,required true\n", "one of"},
		{"FROM a\nRUN --mount=type=tmpfs,target=/x --mount=type=cache,target=/x true\n", "mounted twice"},
		{"FROM a\nRUN --network=bridge true\n", "line 2: invalid network mode"},
		{"FROM a\nRUN --device=x true\n", ":2: RUN: --device is not supported"},
	} {
		_, _, err := evalTarget(t, c.body)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.body, err, c.want)
		}
	}
	// The later stage is not the target here: mounting it is an error.
	if _, _, err := evalTarget(t, "FROM b AS later\nFROM a\nRUN --mount=from=later,target=/x true\n"); err != nil {
		t.Errorf("from an earlier stage: %v", err)
	}
}
