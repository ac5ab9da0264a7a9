package dockerfile

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// InlineFile is a heredoc's document: a COPY source (mode 0644 unless
// --chmod) or, for RUN, a script with a shebang that the build mounts
// read-only at /dev/pipes/NAME (mode 0755) and runs.
type InlineFile struct {
	Name, Data string
}

// PipesDir is where a RUN heredoc with a shebang is mounted, as BuildKit
// mounts it (dockerfile2llb/convert.go, dispatchRun).
const PipesDir = "/dev/pipes"

// IsProxyArg says k is one of BuildKit's predefined proxy args, which
// reach RUN without an ARG line and are not reported as unused.
func IsProxyArg(k string) bool {
	switch strings.ToLower(k) {
	case "http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy":
		return true
	}
	return false
}

// proxyEnv is what BuildKit gives every RUN of the proxy build args
// (dockerfile2llb/convert.go proxyEnvFromBuildArgs, then
// solver/llbsolver/ops/exec.go proxyEnvList): each, matched without
// case, in its upper and lower case spelling; the last of several
// spellings in sorted order wins. They are not in the image's config,
// and BuildKit leaves them out of the step's cache key (exec.go CacheMap
// clears Meta.ProxyEnv).
func proxyEnv(buildArgs map[string]string) []string {
	vals := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(buildArgs)) {
		if IsProxyArg(k) {
			vals[strings.ToUpper(k)] = buildArgs[k]
		}
	}
	var out []string
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"} {
		if v := vals[k]; v != "" {
			out = append(out, k+"="+v, strings.ToLower(k)+"="+v)
		}
	}
	return out
}

// runArgs is a RUN's argv, heredocs as BuildKit's dispatchRun makes
// them: a single heredoc is run by the shell as the command, or, when it
// starts with "#!", as a script file (pipe); a RUN with more heredocs, or
// more than the heredoc on its line, is given whole to the shell.
func (e *evaluation) runArgs(c *instructions.RunCommand) (args []string, pipe *InlineFile, err error) {
	args = slices.Clone(c.CmdLine)
	if len(c.Files) > 0 {
		if len(args) != 1 || !c.PrependShell {
			return nil, nil, fmt.Errorf("parsing produced an invalid run command: %v", args)
		}
		if h := parser.MustParseHeredoc(args[0]); h != nil {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				pipe = &InlineFile{Name: c.Files[0].Name, Data: data}
				args = []string{PipesDir + "/" + pipe.Name}
			} else {
				args = []string{data}
			}
		} else {
			var b strings.Builder
			b.WriteString(args[0])
			for _, f := range c.Files {
				b.WriteString("\n" + f.Data + f.Name)
			}
			args = []string{b.String()}
		}
	}
	if c.PrependShell {
		args = append(e.shell(), strings.Join(args, " "))
	}
	return args, pipe, nil
}

// inlineFiles are a COPY's heredoc sources, expanded as BuildKit's
// dispatch does (ExpandRaw: a lexer with \ as escape that keeps quotes)
// when the delimiter was not quoted.
func (e *evaluation) inlineFiles(contents []instructions.SourceContent) ([]InlineFile, error) {
	lex := shell.NewLex('\\')
	lex.SkipProcessQuotes = true
	var out []InlineFile
	for _, c := range contents {
		data := c.Data
		if c.Expand {
			v, _, err := lex.ProcessWord(data, shell.EnvsFromSlice(e.vars()))
			if err != nil {
				return nil, err
			}
			data = v
		}
		if c.Path == "" || strings.Contains(c.Path, "/") {
			return nil, fmt.Errorf("heredoc name %q: not a file name", c.Path)
		}
		out = append(out, InlineFile{Name: c.Path, Data: data})
	}
	return out, nil
}

// expose adds EXPOSE's ports to the config as BuildKit's dispatchExpose
// (dockerfile2llb/convert_expose.go) does: each word expanded and split
// (ProcessWords), then [ip:][host:]port[-end][/proto] to port/proto, a
// range one entry a port.
func (e *evaluation) expose(words []string) error {
	for _, w := range words {
		ps, err := e.lex.ProcessWords(w, shell.EnvsFromSlice(e.vars()))
		if err != nil {
			return err
		}
		for _, p := range ps {
			keys, err := parsePort(p)
			if err != nil {
				return fmt.Errorf("invalid port %q: %w", p, err)
			}
			for _, k := range keys {
				if !slices.Contains(e.cfg.ExposedPorts, k) {
					e.cfg.ExposedPorts = append(e.cfg.ExposedPorts, k)
				}
			}
		}
	}
	return nil
}

// parsePort is BuildKit's portSpecs.parsePort.
func parsePort(raw string) ([]string, error) {
	parts := strings.Split(raw, ":")
	n := len(parts)
	ip, host, ctr := strings.Join(parts[:max(n-2, 0)], ":"), "", parts[n-1]
	if n >= 2 {
		host = parts[n-2]
	}
	ctr, proto, _ := strings.Cut(ctr, "/")
	switch strings.ToLower(proto) {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return nil, errors.New("invalid proto: " + proto)
	}
	if ip != "" {
		if ip[0] == '[' {
			ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		}
		if net.ParseIP(ip) == nil {
			return nil, errors.New("invalid IP address: " + ip)
		}
	}
	start, end, err := portRange(ctr)
	if err != nil {
		return nil, err
	}
	if host != "" {
		hs, he, err := portRange(host)
		if err != nil {
			return nil, err
		}
		if end-start != he-hs && end != start {
			return nil, fmt.Errorf("invalid ranges for container and host ports: %s and %s", ctr, host)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, strconv.Itoa(p)+"/"+strings.ToLower(proto))
	}
	return out, nil
}

func portRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	start, err := portNumber(a)
	if err != nil {
		return 0, 0, err
	}
	if !ok || a == b {
		return start, start, nil
	}
	end, err := portNumber(b)
	if err != nil {
		return 0, 0, err
	}
	if end < start {
		return 0, 0, errors.New("invalid port range: " + s)
	}
	return start, end, nil
}

func portNumber(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("%q is not a port (0-65535)", s)
	}
	return p, nil
}
