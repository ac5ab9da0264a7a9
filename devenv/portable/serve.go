package portable

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/devbox/devbox/devenv/spec"
	container "github.com/devbox/devbox/runtime"
	"github.com/devbox/devbox/sshd"
)

// The variables a runtime configures the server with. They are kept from
// the sessions' environment.
const (
	EnvAuthorizedKeys = "DEVBOX_AUTHORIZED_KEYS"
	EnvPasswordHash   = "DEVBOX_PASSWORD_HASH"
	EnvPort           = "DEVBOX_SSH_PORT"
)

// isSetting says k is one of the variables kept from sessions.
func isSetting(k string) bool {
	return k == EnvAuthorizedKeys || k == EnvPasswordHash || k == EnvPort
}

// The files of SecretDir.
const (
	hostKeyFile        = "host_key"
	authorizedKeysFile = "authorized_keys"
	passwordHashFile   = "password_hash"
)

// Source is where Serve is configured from: the baked configuration, the
// mounted secret and the process environment.
type Source struct {
	ConfigPath string
	SecretDir  string
	Environ    []string
}

// ProcessSource is the image's own: its paths and this process's
// environment.
func ProcessSource() Source {
	return Source{ConfigPath: ConfigPath, SecretDir: SecretDir, Environ: os.Environ()}
}

// Setup is what Load makes of a Source.
type Setup struct {
	Config  sshd.Config
	HostKey gossh.Signer
	Port    int
	// Generated says the host key was made at this start (no secret has
	// one): clients see a new key at every start.
	Generated bool
}

// Load reads src into the server's configuration. A mounted
// authorized_keys replaces the image's keys (a Secret decides who logs
// in, and can revoke a key the image carries); DEVBOX_AUTHORIZED_KEYS
// adds to them. The runtime's password hash is the only one there is.
func Load(src Source) (*Setup, error) {
	data, err := os.ReadFile(src.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("serve: not an image made by devbox push: %w", err)
	}
	var st Setup
	if err := json.Unmarshal(data, &st.Config); err != nil {
		return nil, fmt.Errorf("serve: %s: %w", src.ConfigPath, err)
	}
	env := envMap(src.Environ)
	st.Config.Env = sessionEnv(st.Config.Env, src.Environ)
	if err := loadKeys(&st.Config, src.SecretDir, env); err != nil {
		return nil, err
	}
	if st.Config.PasswordHash, err = setting(src.SecretDir, passwordHashFile, env, EnvPasswordHash); err != nil {
		return nil, err
	}
	if len(st.Config.AuthorizedKeys) == 0 && st.Config.PasswordHash == "" {
		return nil, fmt.Errorf("serve: nobody could log in: give keys (%s, or %s) or a password hash (%s, or %s)",
			EnvAuthorizedKeys, filepath.Join(src.SecretDir, authorizedKeysFile), EnvPasswordHash, filepath.Join(src.SecretDir, passwordHashFile))
	}
	if st.Port, err = port(env[EnvPort]); err != nil {
		return nil, err
	}
	st.HostKey, st.Generated, err = hostKey(filepath.Join(src.SecretDir, hostKeyFile))
	return &st, err
}

// loadKeys takes the mounted keys instead of the image's, then adds the
// variable's. Every line must be a key: a mistyped one is an error, not
// a key silently left out.
func loadKeys(cfg *sshd.Config, secretDir string, env map[string]string) error {
	file := filepath.Join(secretDir, authorizedKeysFile)
	data, err := readOptional(file)
	if err != nil {
		return err
	}
	if data != nil {
		if cfg.AuthorizedKeys, err = parseKeys(file, string(data)); err != nil {
			return err
		}
	}
	more, err := parseKeys(EnvAuthorizedKeys, env[EnvAuthorizedKeys])
	cfg.AuthorizedKeys = append(cfg.AuthorizedKeys, more...)
	return err
}

// parseKeys parses authorized_keys content line by line.
func parseKeys(from, data string) ([]string, error) {
	var keys []string
	for i, line := range strings.Split(data, "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := spec.ParseAuthorizedKeys([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("serve: %s line %d: %w", from, i+1, err)
		}
		keys = append(keys, k...)
	}
	return keys, nil
}

// setting is the secret file's content or else the variable's, trimmed;
// an empty file counts as none.
func setting(secretDir, file string, env map[string]string, name string) (string, error) {
	data, err := readOptional(filepath.Join(secretDir, file))
	if v := strings.TrimSpace(string(data)); err != nil || v != "" {
		return v, err
	}
	return strings.TrimSpace(env[name]), nil
}

// readOptional reads p; a file that is not there is nil, nil.
func readOptional(p string) ([]byte, error) {
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return data, nil
}

func port(s string) (int, error) {
	if s == "" {
		return SSHPort, nil
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("serve: %s=%q: not a port", EnvPort, s)
	}
	return p, nil
}

// hostKey is the mounted key, or a new ed25519 key when none is mounted.
func hostKey(p string) (gossh.Signer, bool, error) {
	data, err := os.ReadFile(p)
	if err == nil {
		k, err := gossh.ParsePrivateKey(data)
		if err != nil {
			return nil, false, fmt.Errorf("serve: host key %s: %w", p, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("serve: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	k, err := gossh.NewSignerFromKey(priv)
	return k, true, err
}

// sessionEnv is the image's environment overlaid by the runtime's (a Pod's
// env, Kubernetes' service variables), without devbox's own settings.
func sessionEnv(image, runtimeEnv []string) []string {
	out := append([]string(nil), image...)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range runtimeEnv {
		k, _, _ := strings.Cut(kv, "=")
		if isSetting(k) {
			continue
		}
		if i, ok := index[k]; ok {
			out[i] = kv
		} else {
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

func envMap(environ []string) map[string]string {
	m := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// Serve is the image's entrypoint: it loads src, serves SSH on all of the
// container's addresses until SIGTERM or SIGINT, and reaps every process
// left to it meanwhile. As PID 1 it then stops every process of the
// container, as an init does, before its own exit kills them.
func Serve(src Source, logw io.Writer) error {
	st, err := Load(src)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(st.Port)))
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// Orphans of sessions (daemons, double forks) are ours to reap even
	// when an init such as tini is PID 1.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("serve: become a subreaper: %w", err)
	}
	reaper := container.NewReaper()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go watch(sigs, reaper, cancel)
	srv := &sshd.Server{
		Config: st.Config, HostKey: st.HostKey, Log: log.New(logw, "sshd: ", log.LstdFlags),
		Start: func(path string, args []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
			return reaper.Start(func() (int, error) { return syscall.ForkExec(path, args, attr) })
		},
	}
	err = srv.ServeAll(ctx, []net.Listener{ln}, func() { announce(logw, st, ln.Addr()) })
	if os.Getpid() == 1 {
		stopAll(reaper, stopGrace)
	}
	return err
}

// stopGrace is how long processes get between SIGTERM and SIGKILL, well
// inside Docker's 10 s and Kubernetes' 30 s.
const stopGrace = 5 * time.Second

// stopAll ends every other process of the container (PID 1's kill(-1)
// reaches exactly those): SIGTERM, then SIGKILL after grace.
func stopAll(reaper *container.Reaper, grace time.Duration) {
	unix.Kill(-1, unix.SIGTERM)
	deadline := time.Now().Add(grace)
	for {
		reaper.Reap()
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err == unix.ECHILD {
			return
		}
		if time.Now().After(deadline) {
			unix.Kill(-1, unix.SIGKILL)
			deadline = time.Now().Add(grace)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watch reaps on SIGCHLD and ends the server on a stop signal.
func watch(sigs <-chan os.Signal, reaper *container.Reaper, stop func()) {
	for sig := range sigs {
		if sig == unix.SIGCHLD {
			reaper.Reap()
		} else {
			stop()
		}
	}
}

// announce says what a client needs to trust the server and log in.
func announce(w io.Writer, st *Setup, addr net.Addr) {
	fp := gossh.FingerprintSHA256(st.HostKey.PublicKey())
	how := "mounted at " + filepath.Join(SecretDir, hostKeyFile)
	if st.Generated {
		how = "generated at this start; mount one at " + filepath.Join(SecretDir, hostKeyFile) + " to keep it"
	}
	fmt.Fprintf(w, "devbox: serving SSH for %s on %s\n", st.Config.User, addr)
	fmt.Fprintf(w, "devbox: host key %s %s (%s)\n", st.HostKey.PublicKey().Type(), fp, how)
	login := fmt.Sprintf("%d authorized keys", len(st.Config.AuthorizedKeys))
	if st.Config.PasswordHash != "" {
		login += " and a password"
	}
	fmt.Fprintf(w, "devbox: login with %s\n", login)
}
