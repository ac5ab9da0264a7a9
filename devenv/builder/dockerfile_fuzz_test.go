package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/dockerfilecases"
	"github.com/devbox/devbox/rootfs"
)

// dockerfileSeeds are the Dockerfiles of the tests (unit and e2e), with
// dockerfilecases.Cases the fuzzer's starting corpus.
var dockerfileSeeds = []string{
	"ARG BASE\nFROM ${BASE} AS build\nRUN echo built > /msg\nFROM scratch\nCOPY --from=build / /\nCOPY --from=build /msg /copied\n",
	"ARG BASE\nFROM ${BASE} AS base\nRUN echo one > /one\nFROM base AS two\nRUN echo two > /two\n",
	"ARG V=1\nFROM alpine:3.${V} AS build\nENV DIR=/src PATH=/opt/bin:$PATH\nWORKDIR $DIR\nCOPY --chown=1000:1000 a b ./\nRUN [\"make\", \"all\"]\n" +
		"FROM scratch AS unused\nCOPY --from=build /x /x\nFROM debian:12\nARG V\nSHELL [\"/bin/bash\", \"-euo\", \"pipefail\", \"-c\"]\n" +
		"COPY --from=build /src/out /usr/local/bin/\nCOPY --from=nginx:1 /etc/nginx /etc/nginx\nRUN echo $V\nUSER dev:dev\nENTRYPOINT [\"/x\"]\n",
	"FROM a AS base\nARG NODE_ENV=production\nARG EMPTY\nSHELL [\"/bin/bash\", \"-c\"]\nFROM base\nCMD [\"serve\"]\nENTRYPOINT [\"/x\"]\nRUN echo $NODE_ENV\nCOPY --from=5 /a /b\n",
	"FROM --platform=$BUILDPLATFORM golang AS b\nARG TARGETARCH\nRUN echo $TARGETARCH\n",
	"FROM a\nARG PORT=8080\nEXPOSE $PORT ${PORT:-1}/udp\nLABEL a=${PORT:+set}\nSTOPSIGNAL SIGTERM\nVOLUME /data\nUSER 1000\nCOPY --chown=1000 . /x\n",
	"FROM a\nRUN <<EOF\necho hi\nEOF\nRUN <<-EOT bash\n\tset -e\n\techo $HOME\nEOT\nCOPY <<EOF /etc/x\nbody\nEOF\nCOPY <<A <<B /d/\na\nA\nb\nB\n",
	"FROM a\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n",
	"# escape=`\nFROM a\nRUN echo `\n  hi\nONBUILD RUN x\nHEALTHCHECK CMD true\n",
	"FROM a\nADD --chown=dev arch.tgz /opt/\nADD https://example.com/x /x\nCOPY --parents a /b/\nRUN --mount=type=cache,target=/x true\n",
	"FROM a AS s\nFROM a\nRUN --mount=type=cache,target=/c,id=x,sharing=locked,uid=1,mode=0700 --mount=type=tmpfs,target=/t,size=1m " +
		"--mount=from=s,source=/etc,target=/e --mount=source=b,target=/b,rw --mount=type=secret,id=t,env=T --mount=type=ssh --network=none true\n",
}

// FuzzDockerfilePlan: no Dockerfile, with any build args, makes the
// planner panic; a bad one is an error.
func FuzzDockerfilePlan(f *testing.F) {
	for _, d := range dockerfileSeeds {
		f.Add(d, "BASE=debian:12")
	}
	// The differential suite's Dockerfiles (what BuildKit builds alike).
	for _, c := range dockerfilecases.Cases {
		f.Add("ARG BASE\n"+c.Dockerfile, "BASE=debian:12")
	}
	dir := f.TempDir()
	ctx := filepath.Join(dir, "ctx")
	os.MkdirAll(filepath.Join(ctx, "b"), 0o755)
	for _, name := range []string{"a", "b/c", "arch.tgz", "Dockerfile"} {
		os.WriteFile(filepath.Join(ctx, name), []byte(name), 0o644)
	}
	store, err := rootfs.Open(filepath.Join(dir, "state"))
	if err != nil {
		f.Fatal(err)
	}
	s, err := spec.Parse(filepath.Join(dir, spec.FileName), []byte("base = \"dockerfile:ctx/Dockerfile\"\n"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, dockerfile, args string) {
		if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		s.Dockerfile.Args = map[string]string{}
		for _, kv := range strings.Split(args, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				s.Dockerfile.Args[k] = v
			}
		}
		p, err := NewPlan(s, func(ref rootfs.Ref) (*rootfs.Image, error) {
			return &rootfs.Image{Digest: "sha256:" + ref.String(), Config: rootfs.Config{Env: []string{"PATH=/bin"}, User: "root"}}, nil
		}, nil)
		if err != nil {
			return
		}
		// What the build does with a plan before its first step.
		// (a target FROM scratch or FROM a stage has no image layers).
		img := baseImage(s, p)
		if d := probeDir(store.Root(), store.LowerDirs(img)); d == "" {
			t.Fatal("no directory to probe")
		}
	})
}
