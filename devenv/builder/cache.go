package builder

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/devbox/devbox/devenv/lock"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/safetext"
	"github.com/devbox/devbox/rootfs"
)

// pullStep fetches st from the spec's cache repository, if it has one and
// the step is there and is what the lock pins. The cache only saves work:
// when it cannot be reached, or what it holds is refused (a layer that is
// not the lock's, a record that is not data devbox.lock may hold), the
// step is built here, and the build says which step and why.
func pullStep(ctx context.Context, store *rootfs.Store, s *spec.Spec, b *Result, st Step, header string, pins *lock.File, o Options) (rootfs.BuildRecord, bool) {
	if s.Cache.Image == "" || o.NoCache || o.Check || (o.Lock == LockUpdate && (st.Kind == StepNode || st.Kind == StepPackages)) {
		return rootfs.BuildRecord{}, false
	}
	p := rootfs.CachePull{Key: st.Key, Lower: b.Lower, Check: recordCheck(st)}
	if pinned, ok := pins.StepByKey(st.Key); ok && o.Lock != LockUpdate {
		p.DiffID = pinned.DiffID
	}
	rec, ok, err := store.PullBuild(ctx, s.Cache.Image, p, o.Pull)
	if err != nil {
		// The message may quote the registry: printed escaped.
		fmt.Fprintf(o.Out, "warning: step %s: %s; building the step here\n", header, safetext.Escape(err.Error()))
		return rec, false
	}
	return rec, ok && !conflicts(pins, st, rec)
}

// What a record from the team's cache may say, field by field, before any
// of it is taken into devbox.lock: strict formats, so that a hostile record
// can put neither TOML, a terminal escape nor an odd name into the lock.
//
// Compiled on first use: the bounded repetitions make large programs, and
// every devbox process (the container's init too) would build them at
// start otherwise.
var (
	versionRE = lazyRE(`^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]{1,64})?$`)
	// A sha256 digest, or an npm integrity string (sha1 is what old npm
	// packages still carry).
	digestRE  = lazyRE(`^(sha256:[0-9a-f]{64}|sha(1|256|384|512)-[A-Za-z0-9+/]{20,90}={0,2})$`)
	managerRE = lazyRE(`^(apt|apk|dnf|yum|zypper)$`)
)

func lazyRE(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// recordCheck is CachePull.Check for step st: the record is the step's
// (same kind), and what it resolved is of the formats the lock holds.
func recordCheck(st Step) func(rootfs.BuildRecord) error {
	return func(rec rootfs.BuildRecord) error {
		if rec.Kind != string(st.Kind) {
			return fmt.Errorf("kind %q, the step is %s", rec.Kind, st.Kind)
		}
		if rec.Node != "" && (st.Kind != StepNode || !versionRE().MatchString(rec.Node)) {
			return fmt.Errorf("node %q is not a version", rec.Node)
		}
		for k, v := range rec.Resolved {
			if err := checkResolved(st.Kind, k, v); err != nil {
				return fmt.Errorf("resolved %s: %w", k, err)
			}
		}
		return nil
	}
}

// checkResolved checks one resolved fact of a step of kind.
func checkResolved(kind StepKind, k, v string) error {
	var ok bool
	switch {
	case kind == StepNode && (k == resNodeURL || k == resNPMURL):
		ok = v == "" || validURL(v)
	case kind == StepNode && (k == resNodeDig || k == resNPMDig):
		ok = v == "" || digestRE().MatchString(v)
	case kind == StepNode && k == resNPM:
		ok = v == "" || versionRE().MatchString(v)
	case kind == StepPackages && k == resManager:
		ok = managerRE().MatchString(v)
	case kind == StepPackages && k == resInstalled:
		ok = true
		for _, p := range strings.Split(v, "\n") {
			ok = ok && (v == "" || lock.ValidPackage(p))
		}
	default:
		return fmt.Errorf("not a fact a %s step resolves", kind)
	}
	if !ok {
		return fmt.Errorf("%q is not of its format", v)
	}
	return nil
}

// validURL: an http(s) URL with no space, quote or control character.
func validURL(s string) bool {
	if len(s) > 2048 || strings.ContainsAny(s, " \"'\\<>") || !safetext.Clean(s) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
