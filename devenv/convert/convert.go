package convert

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	"github.com/devbox/devbox/devenv/spec/dockerfile"
	"github.com/devbox/devbox/rootfs"
)

// Result is a converted spec and what did not map.
type Result struct {
	// Spec is the devbox.toml's content.
	Spec []byte
	// Unmapped are "FILE:LINE: what: why" lines.
	Unmapped []string
}

// tomlSpec is the devbox.toml being written, in the order it is printed.
type tomlSpec struct {
	Base     string            `toml:"base"`
	Workdir  string            `toml:"workdir,omitempty"`
	Ports    []string          `toml:"ports,omitempty"`
	Env      map[string]string `toml:"env,omitempty"`
	Packages *struct {
		Install []string `toml:"install"`
	} `toml:"packages,omitempty"`
	Node *struct {
		Version string `toml:"version"`
	} `toml:"node,omitempty"`
	NPM *struct {
		Registry string `toml:"registry"`
	} `toml:"npm,omitempty"`
	SSH *sshTable `toml:"ssh,omitempty"`
	Run []runStep `toml:"run,omitempty"`
}

type sshTable struct {
	User           string   `toml:"user,omitempty"`
	Password       string   `toml:"password,omitempty"`
	AuthorizedKeys []string `toml:"authorized_keys,omitempty"`
}

type runStep struct {
	Command string `toml:"command"`
}

func (s *tomlSpec) encode(header string) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	err := toml.NewEncoder(&buf).Encode(s)
	return withNewline(buf.Bytes()), err
}

func withNewline(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}

// Dockerfile converts the Dockerfile at path (its target stage) with its
// ARG defaults.
func Dockerfile(path string) (*Result, error) {
	f, err := dockerfile.Parse(path, nil, "")
	if err != nil {
		return nil, err
	}
	c := &dfConverter{path: path, out: &tomlSpec{}}
	tgt := f.Target()
	if len(f.Stages) > 1 || tgt.Parent != nil {
		c.unmapped(tgt.Line, "FROM "+tgt.Label(), "a multi-stage build: use base = \"dockerfile:"+path+"\" to build it as it is")
	}
	c.out.Base = tgt.Base
	if _, err := rootfs.ParseRef(tgt.Base, ""); err != nil || tgt.Base == "scratch" {
		c.unmapped(tgt.Line, "FROM "+tgt.Base, "not an image devbox can start from")
	}
	ev, err := tgt.Evaluate(rootfs.Config{}, nil)
	if err != nil {
		return nil, err
	}
	for i := range ev.Steps {
		c.step(&ev.Steps[i])
	}
	c.config(tgt, ev.Config)
	data, err := c.out.encode(fmt.Sprintf("# devbox.toml written by devbox init --from %s\n", path))
	if err != nil {
		return nil, err
	}
	return &Result{Spec: data, Unmapped: c.notes}, nil
}

// dfConverter maps a Dockerfile's steps.
type dfConverter struct {
	path  string
	out   *tomlSpec
	notes []string
}

// unmapped reports what at line (0: the stage's config, which has none
// of its own).
func (c *dfConverter) unmapped(line int, what, why string) {
	at := c.path
	if line > 0 {
		at = fmt.Sprintf("%s:%d", c.path, line)
	}
	c.notes = append(c.notes, fmt.Sprintf("%s: %s: %s", at, summarize(what), why))
}

func summarize(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 60 {
		return string(r[:59]) + "…"
	}
	return s
}

// step maps one instruction that changes files.
func (c *dfConverter) step(st *dockerfile.Step) {
	switch st.Kind {
	case dockerfile.Run:
		if len(st.Mounts) > 0 || st.Network != "" {
			c.unmapped(st.Line, st.Text, "a [[run]] command has no --mount or --network: keep the Dockerfile as the base")
			return
		}
		if len(st.Args) != 3 || st.Args[1] != "-c" {
			c.unmapped(st.Line, st.Text, "an exec-form RUN: add it as a [[run]] command")
			return
		}
		c.run(st, expand(st.Args[2], st.Env))
	case dockerfile.Copy, dockerfile.Add:
		c.unmapped(st.Line, st.Text, "devbox mounts the project instead of copying it: add a [[mounts]] entry, or keep the Dockerfile as the base")
	}
}

// runPatterns are the commands a RUN is made of that map to keys.
type runPatterns struct {
	install, implicit, npmRegistry, nodeVersion, chpasswd, sshdConfig, keyEcho, variable *regexp.Regexp
}

// patterns are compiled on first use: the devbox binary is also every
// container's init, whose start-up should not pay for them.
var patterns = sync.OnceValue(func() *runPatterns {
	return &runPatterns{
		install:     regexp.MustCompile(`^(?:sudo\s+)?(?:(?:yum|dnf|microdnf)\s+(?:-\S+\s+)*install|apt-get\s+(?:-\S+\s+)*install|apt\s+(?:-\S+\s+)*install|apk\s+(?:-\S+\s+)*add)\s+(.*)$`),
		implicit:    regexp.MustCompile(`^(?:(?:yum|dnf)\s+(?:-\S+\s+)*(?:clean|makecache|update)|apt-get\s+(?:-\S+\s+)*(?:update|clean)|apt\s+update|rm\s+-rf\s+/var/(?:lib/apt/lists|cache/(?:yum|dnf|apk))\S*|ssh-keygen\s+-A)\b`),
		npmRegistry: regexp.MustCompile(`^npm\s+config\s+set\s+registry\s+["']?([^"'\s]+)["']?$`),
		nodeVersion: regexp.MustCompile(`node-v(\d+\.\d+\.\d+)-linux`),
		chpasswd:    regexp.MustCompile(`^echo\s+["']?root:([^"'\s]+)["']?\s*\|\s*chpasswd$`),
		sshdConfig:  regexp.MustCompile(`sshd_config|/root/\.bashrc`),
		keyEcho:     regexp.MustCompile(`echo\s+["']((?:ssh|ecdsa)-\S+\s+\S+[^"']*)["']\s*>\s*/root/\.ssh/authorized_keys`),
		variable:    regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*`),
	}
})

// run maps a shell-form RUN: package installs, Node from nodejs.org,
// npm's registry, root's password and key; the rest stays a [[run]] step.
func (c *dfConverter) run(st *dockerfile.Step, line string) {
	p := patterns()
	var rest []string
	nodeStep := false
	if m := p.nodeVersion.FindStringSubmatch(line); m != nil {
		c.out.Node = &struct {
			Version string `toml:"version"`
		}{m[1]}
		nodeStep = true
	}
	if m := p.keyEcho.FindStringSubmatch(line); m != nil {
		c.ssh().AuthorizedKeys = append(c.ssh().AuthorizedKeys, m[1])
		return
	}
	cmds := splitCommands(line)
	if compound(line) {
		// Cutting an if, for, while or case would break it: it stays whole.
		cmds = []string{strings.TrimSpace(line)}
	}
	for _, cmd := range cmds {
		switch m := p.install.FindStringSubmatch(cmd); {
		case m != nil:
			c.packages(strings.Fields(m[1]))
		case p.implicit.MatchString(cmd), p.sshdConfig.MatchString(cmd):
			// What devbox's package step or SSH server does itself.
		case p.npmRegistry.MatchString(cmd):
			c.out.NPM = &struct {
				Registry string `toml:"registry"`
			}{p.npmRegistry.FindStringSubmatch(cmd)[1]}
		case p.chpasswd.MatchString(cmd):
			c.ssh().Password = p.chpasswd.FindStringSubmatch(cmd)[1]
			c.unmapped(st.Line, cmd, "mapped to [ssh] password; prefer password_env or keys in a shared spec")
		case nodeStep && strings.Contains(cmd, "node"):
			// Part of installing Node, which [node] does.
		default:
			rest = append(rest, cmd)
		}
	}
	if len(rest) > 0 {
		c.out.Run = append(c.out.Run, runStep{Command: strings.Join(rest, " && ")})
	}
}

func (c *dfConverter) ssh() *sshTable {
	if c.out.SSH == nil {
		c.out.SSH = &sshTable{}
	}
	return c.out.SSH
}

// packages adds package names, less flags and devbox's own SSH server.
func (c *dfConverter) packages(names []string) {
	if c.out.Packages == nil {
		c.out.Packages = &struct {
			Install []string `toml:"install"`
		}{}
	}
	for _, n := range names {
		if strings.HasPrefix(n, "-") || n == "openssh-server" || slices.Contains(c.out.Packages.Install, n) {
			continue
		}
		c.out.Packages.Install = append(c.out.Packages.Install, n)
	}
}

// config maps the stage's final config: ENV, WORKDIR, EXPOSE, USER, and
// says what CMD and ENTRYPOINT become.
func (c *dfConverter) config(tgt *dockerfile.Stage, cfg rootfs.Config) {
	if cfg.WorkingDir != "" && cfg.WorkingDir != "/" {
		c.out.Workdir = cfg.WorkingDir
	}
	if len(cfg.Env) > 0 {
		c.out.Env = map[string]string{}
		for _, kv := range cfg.Env {
			k, v, _ := strings.Cut(kv, "=")
			c.out.Env[k] = v
		}
	}
	for _, p := range cfg.ExposedPorts {
		num, proto, _ := strings.Cut(p, "/")
		switch {
		case proto != "tcp":
			c.unmapped(0, "EXPOSE "+p, "devbox publishes TCP ports only")
		case num == "22":
			// devbox's own SSH server.
		default:
			c.out.Ports = append(c.out.Ports, num+":"+num)
		}
	}
	if cfg.User != "" && cfg.User != "root" && cfg.User != "0" {
		c.ssh().User = cfg.User
	}
	if cmd := append(slices.Clone(cfg.Entrypoint), cfg.Cmd...); len(cmd) > 0 {
		why := "devbox's init serves SSH and runs no main command"
		if strings.Contains(strings.Join(cmd, " "), "sshd") {
			why = "not needed: devbox serves SSH itself"
		}
		c.unmapped(0, "CMD "+strings.Join(cmd, " "), why)
	}
	if len(cfg.Labels) > 0 {
		c.unmapped(0, "LABEL "+strings.Join(slices.Sorted(maps.Keys(cfg.Labels)), " "), "labels have no meaning in a devbox.toml")
	}
}

// compound says line has a shell compound command.
func compound(line string) bool {
	for _, w := range strings.Fields(line) {
		switch strings.TrimSuffix(w, ";") {
		case "if", "then", "for", "while", "until", "case", "do", "{", "(":
			return true
		}
	}
	return false
}

// splitCommands cuts a shell line at && and ; outside quotes.
func splitCommands(line string) []string {
	var out []string
	var cur strings.Builder
	var quote byte
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			quote = ch
		case ch == ';':
			flush()
			continue
		case ch == '&' && i+1 < len(line) && line[i+1] == '&':
			flush()
			i++
			continue
		}
		cur.WriteByte(ch)
	}
	flush()
	return out
}

// expand replaces $NAME and ${NAME} of the variables env sets (a RUN's
// ARGs and ENV), and leaves the rest to the shell.
func expand(line string, env []string) string {
	vals := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	return patterns().variable.ReplaceAllStringFunc(line, func(m string) string {
		name := strings.Trim(m, "${}")
		if v, ok := vals[name]; ok {
			return v
		}
		return m
	})
}
