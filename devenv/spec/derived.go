package spec

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/GehirnInc/crypt"
	_ "github.com/GehirnInc/crypt/sha512_crypt" // $6$ for password hashes

	"github.com/devbox/devbox/rootfs"
	container "github.com/devbox/devbox/runtime"
)

// What the rest of devbox derives from a spec, in one place, so that a
// build step, a one-shot run and an environment's sessions agree.

// Environ is the environment of processes over an image with config img:
// the default PATH, the image's Env, the spec's [env], then extra; a later
// value replaces an earlier one in its place.
func (s *Spec) Environ(img rootfs.Config, extra ...string) []string {
	env := map[string]string{}
	var order []string
	set := func(kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	set("PATH=" + container.DefaultPath)
	for _, kv := range img.Env {
		set(kv)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		set(k + "=" + containerEnvRE().ReplaceAllStringFunc(s.Env[k], func(m string) string {
			// A devcontainer.json's ${containerEnv:X}: X as the image
			// (and the spec's keys before it) set it, or the default.
			g := containerEnvRE().FindStringSubmatch(m)
			if v, ok := env[g[1]]; ok {
				return v
			}
			return g[2]
		}))
	}
	for _, kv := range extra {
		set(kv)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

// StartDir is where processes start: the spec's workdir, else the
// image's, else /.
func (s *Spec) StartDir(img rootfs.Config) string {
	switch {
	case s.Workdir != "":
		return s.Workdir
	case img.WorkingDir != "":
		return path.Clean("/" + img.WorkingDir)
	}
	return "/"
}

// Limits are the container limits of [resources].
func (s *Spec) Limits() container.Limits {
	return container.Limits{CPUs: s.Resources.CPUs, MemoryBytes: s.Resources.MemoryBytes, Pids: s.Resources.Pids}
}

// NPMRegistry is the registry npm uses in the environment, and where
// mirror = "npm" fetches Node from.
func (s *Spec) NPMRegistry() string {
	if s.NPM.Registry != "" {
		return s.NPM.Registry
	}
	return DefaultRegistry
}

// Password is the clear-text password the spec configures (from password
// or password_env), or "".
func (s *Spec) Password() string {
	if s.SSH.PasswordEnv != "" {
		return os.Getenv(s.SSH.PasswordEnv)
	}
	return s.SSH.Password
}

// PasswordHash is the crypt(3) hash of the SSH user's password (as
// /etc/shadow keeps it), or "" when password login is off.
func (s *Spec) PasswordHash() (string, error) {
	if s.SSH.PasswordHash != "" {
		return s.SSH.PasswordHash, nil
	}
	if pw := s.Password(); pw != "" {
		return HashPassword(pw)
	}
	return "", nil
}

// HashPassword makes a sha512-crypt hash with a random salt.
func HashPassword(pw string) (string, error) {
	seed := make([]byte, 12)
	if _, err := rand.Read(seed); err != nil {
		return "", err
	}
	return HashPasswordSalted(pw, seed)
}

// HashPasswordSalted makes a sha512-crypt hash whose salt is made of the
// first 12 bytes of seed: the same hash each time for a reproducible
// layer, with a salt of its own still when seed is.
func HashPasswordSalted(pw string, seed []byte) (string, error) {
	const alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	salt := []byte("$6$")
	for _, c := range seed[:min(12, len(seed))] {
		salt = append(salt, alphabet[int(c)%len(alphabet)])
	}
	return crypt.SHA512.New().Generate([]byte(pw), salt)
}

// PasswordFingerprint stands for the password in cache keys without
// putting it there.
func (s *Spec) PasswordFingerprint() string {
	switch {
	case s.SSH.PasswordHash != "":
		return "hash:" + s.SSH.PasswordHash
	case s.Password() != "":
		sum := sha256.Sum256([]byte("devbox password\x00" + s.SSH.User + "\x00" + s.Password()))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return "none"
}

// NPMRC is the global npmrc of the installed Node. A token is never in
// it: with token_env, npm reads the token from that variable, which
// sessions get at up time.
func (s *Spec) NPMRC() string {
	rc := "registry=" + s.NPM.Registry + "\n"
	if s.NPM.TokenEnv != "" {
		if u, err := url.Parse(s.NPM.Registry); err == nil {
			p := strings.TrimSuffix(u.Path, "/") + "/"
			rc += "//" + u.Host + p + ":_authToken=${" + s.NPM.TokenEnv + "}\n"
		}
	}
	return rc
}

// UpEnv is the environment processes get at up or run time only, never
// in a layer: the npm token.
func (s *Spec) UpEnv() []string {
	if s.NPM.TokenEnv == "" {
		return nil
	}
	if v := os.Getenv(s.NPM.TokenEnv); v != "" {
		return []string{s.NPM.TokenEnv + "=" + v}
	}
	return nil
}

// IsExactVersion says v is an exact Node.js version (12.9.1 or v12.9.1),
// not a major ("20") or "lts" still to be resolved.
func IsExactVersion(v string) bool { return versionRE().MatchString(v) }
