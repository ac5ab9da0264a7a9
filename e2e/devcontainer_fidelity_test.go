package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/internal/testenv"
)

// The Dev Container CLI is the oracle of devcontainer.json: each case of
// testdata/dcfidelity is a workspace (ws/) and what the CLI gave on it
// (cli.json), recorded by scripts/record-devcontainer-cli with the CLI
// from npm against Debian's docker.io. The test brings the same workspace
// up with devbox and compares the same facts, read by the same probe as
// the remote user in the workspace folder: user, HOME, working directory,
// the FID_* variables, what the lifecycle commands wrote (and in which
// order), what the features installed, and what a Dockerfile stage made.
// A case with a file "owned" has its workspace in an ordinary user's home,
// the user's, and the CLI runs as that user (as a developer runs it on
// a checkout of theirs, updateRemoteUserUID at work); for it the facts
// also say who owns the workspace inside and who owns, on the host, a
// file the remote user makes there.

// fidelityProbe prints the facts, NUL-separated, in sections split by \1.
const fidelityProbe = `printf '%s\0' "$(id -un)" "$HOME" "$PWD"; printf '\1'
env -0 | grep -z '^FID_' | sort -z; printf '\1'
cat /tmp/fid-order 2>/dev/null; printf '\1'
for f in /usr/local/share/fid/*; do [ -f "$f" ] && printf '%s: %s\0' "${f##*/}" "$(cat "$f")"; done; printf '\1'
cat /fid-marker 2>/dev/null; printf '\1'
stat -c %U "$PWD"; touch "$PWD/.fid-made" 2>/dev/null && echo made || echo refused`

// fidelityLabel is the devcontainer.metadata label of the labelled base
// (FIDELITY_LABELLED): fragments as a feature and an image write them.
const fidelityLabel = `[
	{"id": "ghcr.io/example/features/base:1", "containerEnv": {"FID_IMG": "image", "FID_SHARED": "image"},
	 "remoteEnv": {"FID_R": "image", "FID_ONLY": "image"},
	 "onCreateCommand": "echo label-onCreate-$(id -un) >> /tmp/fid-order",
	 "postCreateCommand": ["sh", "-c", "echo label-postCreate >> /tmp/fid-order"]},
	{"remoteUser": "dev", "postStartCommand": "echo label-postStart >> /tmp/fid-order"}
]`

// fidelityFacts are what the probe read.
type fidelityFacts struct {
	User     string   `json:"user"`
	Home     string   `json:"home"`
	Cwd      string   `json:"cwd"`
	Env      []string `json:"env"`
	Order    []string `json:"order"`
	Features []string `json:"features"`
	Marker   string   `json:"marker"`
	// Owner and Made are an owned case's: the workspace's owner inside,
	// and the host owner of a file the remote user made there ("owner":
	// the workspace's; "root"; "other"), or "refused".
	Owner string `json:"owner,omitempty"`
	Made  string `json:"made,omitempty"`
}

// parseFacts reads the probe's output; ws (the workspace's host path)
// is written $WS, so that a recording holds for any checkout.
func parseFacts(out, ws string) (fidelityFacts, error) {
	out = strings.ReplaceAll(out, ws, "$WS")
	sec := strings.Split(out, "\x01")
	if len(sec) != 6 {
		return fidelityFacts{}, errors.New("probe: want 6 sections, got " + strings.ReplaceAll(out, "\x00", "|"))
	}
	who, owner := fields(sec[0], "\x00"), fields(sec[5], "\n")
	if len(who) != 3 || len(owner) != 2 {
		return fidelityFacts{}, errors.New("probe: user, home and directory, workspace owner and file made: " + sec[0] + sec[5])
	}
	return fidelityFacts{User: who[0], Home: who[1], Cwd: who[2], Env: fields(sec[1], "\x00"),
		Order: fields(sec[2], "\n"), Features: fields(sec[3], "\x00"), Marker: strings.TrimSpace(sec[4]),
		Owner: owner[0], Made: owner[1]}, nil
}

// fields splits s at sep, without empty fields.
func fields(s, sep string) []string {
	out := []string{}
	for _, f := range strings.Split(s, sep) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// fidelityCase is one workspace of testdata/dcfidelity.
type fidelityCase struct {
	name, src string
	// config is the devcontainer.json, relative to the workspace.
	config string
	// owned is a case whose workspace is an ordinary user's.
	owned bool
}

func fidelityCases(t *testing.T) []fidelityCase {
	dirs, err := filepath.Glob("testdata/dcfidelity/*/ws")
	if err != nil || len(dirs) < 20 {
		t.Fatalf("want at least 20 cases, have %d (%v)", len(dirs), err)
	}
	var cases []fidelityCase
	for _, d := range dirs {
		c := fidelityCase{name: filepath.Base(filepath.Dir(d)), src: d}
		_, err := os.Stat(filepath.Join(filepath.Dir(d), "owned"))
		c.owned = err == nil
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && (e.Name() == "devcontainer.json" || e.Name() == ".devcontainer.json") && c.config == "" {
				c.config, _ = filepath.Rel(d, p)
			}
			return err
		})
		cases = append(cases, c)
	}
	return cases
}

// copyWorkspace copies c's workspace to a new directory named for the
// case (its basename is the workspace's name for both tools): in the
// home of u, and u's, for an owned case.
func (c fidelityCase) copyWorkspace(t *testing.T, u *user.User) string {
	ws := filepath.Join(t.TempDir(), c.name)
	if c.owned {
		ws = filepath.Join(u.HomeDir, "fidelity", c.name)
		os.RemoveAll(ws)
		t.Cleanup(func() { os.RemoveAll(filepath.Dir(ws)) })
	}
	if err := os.CopyFS(ws, os.DirFS(c.src)); err != nil {
		t.Fatal(err)
	}
	if c.owned {
		if out, err := exec.Command("chown", "-R", u.Uid+":"+u.Gid, filepath.Dir(ws)).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	return ws
}

// facts reads the probe's output on c's workspace ws; for an owned case,
// with who owns on the host what the remote user made.
func (c fidelityCase) facts(t *testing.T, out, ws string) fidelityFacts {
	t.Helper()
	f, err := parseFacts(out, ws)
	if err != nil {
		t.Fatal(err)
	}
	if !c.owned {
		f.Owner, f.Made = "", ""
		return f
	}
	if f.Made == "made" {
		var made, owner unix.Stat_t
		unix.Stat(filepath.Join(ws, ".fid-made"), &made)
		unix.Stat(ws, &owner)
		switch made.Uid {
		case owner.Uid:
			f.Made = "owner"
		case 0:
			f.Made = "root"
		default:
			f.Made = "other"
		}
	}
	return f
}

// TestDevcontainerFidelity: devbox gives, on each case, the facts the
// Dev Container CLI gave. DEVBOX_RECORD_CLI=path/to/devcontainer records
// them instead (scripts/record-devcontainer-cli).
func TestDevcontainerFidelity(t *testing.T) {
	testenv.NeedRoot(t)
	t.Setenv("FIDELITY_BASE", debianRegistry(t))
	t.Setenv("FIDELITY_LOCAL", "hello")
	t.Setenv("FIDELITY_LABELLED", labelledDebian(t, "fidelity/labelled", fidelityLabel))
	if cli := os.Getenv("DEVBOX_RECORD_CLI"); cli != "" {
		recordCLI(t, cli)
		return
	}
	root := baseRoot(t)
	u := testenv.RootlessUser(t, "devbox-e2e", true)
	for _, c := range fidelityCases(t) {
		t.Run(c.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(filepath.Dir(c.src), "cli.json"))
			if err != nil {
				t.Fatalf("no recording of the CLI's result: %v (scripts/record-devcontainer-cli)", err)
			}
			var want fidelityFacts
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			// A deviation says where devbox gives otherwise on purpose,
			// and why (README, "Already have a devcontainer.json").
			if dev, err := os.ReadFile(filepath.Join(filepath.Dir(c.src), "deviation.json")); err == nil {
				if err := json.Unmarshal(dev, &want); err != nil {
					t.Fatal(err)
				}
				data = dev
			}
			got := devboxFacts(t, root, c, u)
			if !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				t.Errorf("devbox gives\n%s\nthe Dev Container CLI gave\n%s", g, data)
			}
		})
	}
}

// devboxFacts brings c up with devbox (SSH on a free port, no network),
// probes it and removes it.
func devboxFacts(t *testing.T, root string, c fidelityCase, u *user.User) fidelityFacts {
	t.Helper()
	ws := c.copyWorkspace(t, u)
	file := filepath.Join(ws, c.config)
	var cfg map[string]any
	data, _ := os.ReadFile(file)
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["customizations"] = map[string]any{"devbox": map[string]any{"ssh": map[string]any{"port": freePort(t)}, "network": map[string]any{"mode": "none"}}}
	data, _ = json.MarshalIndent(cfg, "", "\t")
	os.WriteFile(file, data, 0o644)
	if r := devbox(t, ws, "--root", root, "up", "-f", file); r.code != 0 {
		t.Fatalf("up: %d %s", r.code, tail(r.stderr))
	}
	defer devbox(t, ws, "--root", root, "rm", c.name)
	r := devbox(t, ws, "--root", root, "exec", c.name, "--", "sh", "-c", fidelityProbe)
	if r.code != 0 {
		t.Fatalf("probe: %d %s", r.code, r.stderr)
	}
	return c.facts(t, r.stdout, ws)
}

// recordCLI runs each case with the Dev Container CLI at cli against a
// dockerd of the test's own and writes its facts to the case's cli.json.
func recordCLI(t *testing.T, cli string) {
	dk := testenv.StartDockerBridged(t)
	if err := dk.Share(); err != nil {
		t.Fatal(err)
	}
	u := testenv.RootlessUser(t, "devbox-e2e", true)
	for _, c := range fidelityCases(t) {
		t.Run(c.name, func(t *testing.T) {
			ws := c.copyWorkspace(t, u)
			run := func(args ...string) []byte {
				t.Helper()
				args = append([]string{args[0], "--workspace-folder", ws, "--config", filepath.Join(ws, c.config),
					"--docker-path", testenv.CLI}, args[1:]...)
				cmd := exec.Command(cli, args...)
				cmd.Env = dk.Env()
				if c.owned {
					cmd.Env = append(cmd.Env, "HOME="+u.HomeDir, "USER="+u.Username, "LOGNAME="+u.Username)
					uid, _ := strconv.Atoi(u.Uid)
					gid, _ := strconv.Atoi(u.Gid)
					cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
				}
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				if err := cmd.Run(); err != nil {
					t.Fatalf("devcontainer %v: %v\n%s\n%s", args, err, out.Bytes(), errb.Bytes())
				}
				return out.Bytes()
			}
			run("up")
			defer func() {
				ids, _ := dk.Run("ps", "-aq", "--filter", "label=devcontainer.local_folder="+ws)
				for _, id := range strings.Fields(string(ids)) {
					dk.Run("rm", "-f", id)
				}
			}()
			facts := c.facts(t, string(run("exec", "sh", "-c", fidelityProbe)), ws)
			data, _ := json.MarshalIndent(facts, "", "  ")
			if err := os.WriteFile(filepath.Join(filepath.Dir(c.src), "cli.json"), append(data, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", c.name, data)
		})
	}
}
