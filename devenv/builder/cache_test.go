package builder

import (
	"testing"

	"github.com/devbox/devbox/rootfs"
)

// TestRecordCheck: what a cached record says goes into devbox.lock only in
// the lock's strict formats; TOML, escapes and other steps' facts are
// refused.
func TestRecordCheck(t *testing.T) {
	node := Step{Kind: StepNode}
	pkgs := Step{Kind: StepPackages}
	run := Step{Kind: StepRun}
	good := map[string]string{
		resNodeURL: "https://registry.npmjs.org/node/-/node-20.18.0.tgz",
		resNodeDig: "sha512-GDjjPPdoyvYprfEf/0UGB28Qnt95i2sUqeTFirVatiCY0dgsPQg9dp1f/LluvwaIVydtS0kPw2AFs43WFC6+Pg==",
		resNPM:     "10.8.2",
		resNPMURL:  "https://registry.npmjs.org/npm/-/npm-10.8.2.tgz",
		resNPMDig:  "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	}
	for _, c := range []struct {
		name string
		st   Step
		rec  rootfs.BuildRecord
		ok   bool
	}{
		{"node", node, rootfs.BuildRecord{Kind: "node", Node: "20.18.0", Resolved: good}, true},
		{"packages", pkgs, rootfs.BuildRecord{Kind: "packages", Resolved: map[string]string{resManager: "apt", resInstalled: "libc6:amd64=2.36-9+deb12u9\ngcc=4:12.2.0-3"}}, true},
		{"run", run, rootfs.BuildRecord{Kind: "run"}, true},
		{"another kind", run, rootfs.BuildRecord{Kind: "node"}, false},
		{"node on a run step", run, rootfs.BuildRecord{Kind: "run", Node: "20.18.0"}, false},
		{"node not a version", node, rootfs.BuildRecord{Kind: "node", Node: "20\"\n[base]"}, false},
		{"TOML in npm", node, rootfs.BuildRecord{Kind: "node", Node: "1.2.3", Resolved: map[string]string{resNPM: "10.0.0\n[evil]"}}, false},
		{"quote in url", node, rootfs.BuildRecord{Kind: "node", Node: "1.2.3", Resolved: map[string]string{resNodeURL: "http://x/\"\nref = 1"}}, false},
		{"file url", node, rootfs.BuildRecord{Kind: "node", Node: "1.2.3", Resolved: map[string]string{resNodeURL: "file:///etc/shadow"}}, false},
		{"escape in digest", node, rootfs.BuildRecord{Kind: "node", Node: "1.2.3", Resolved: map[string]string{resNodeDig: "sha256:\x1b[2J"}}, false},
		{"unknown fact", run, rootfs.BuildRecord{Kind: "run", Resolved: map[string]string{"x": "y"}}, false},
		{"package with TOML", pkgs, rootfs.BuildRecord{Kind: "packages", Resolved: map[string]string{resManager: "apt", resInstalled: "a=1\n[base]"}}, false},
		{"package with a space", pkgs, rootfs.BuildRecord{Kind: "packages", Resolved: map[string]string{resManager: "apt", resInstalled: "a=1 b"}}, false},
		{"manager", pkgs, rootfs.BuildRecord{Kind: "packages", Resolved: map[string]string{resManager: "apt\"x"}}, false},
	} {
		err := recordCheck(c.st)(c.rec)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
