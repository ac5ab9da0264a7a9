package portable

import (
	"bytes"
	"path"
	"regexp"
	"strings"
)

// What a build keeps locally but a published image must not carry: the
// build's layers go through Redact on their way to the registry (push),
// and the logins come at run time instead (Load; devbox kube's Secret).
// Each rule rewrites or drops a file by its own content and path only,
// so the same layer always exports to the same bytes and digest.
//
//   - Password hashes: in /etc/shadow, /etc/gshadow, /etc/passwd and the
//     backups shadow-utils leaves (shadow-, gshadow-, passwd-), every
//     password field that holds a hash becomes "!", as useradd leaves an
//     account with no password; empty and locked fields are kept.
//   - Registry tokens: in npmrc files (.npmrc, npmrc) the _authToken,
//     _auth and _password settings, and in .yarnrc.yml npmAuthToken and
//     npmAuthIdent, are left out, unless the value only names a variable
//     (${NPM_TOKEN}, what devbox's [npm] token_env writes): npm then reads
//     the token from the runtime's environment.
//   - Private keys: a file holding a PEM or OpenSSH private key block
//     (host keys that a package's install made, a key a step generated)
//     is left out.

// Redact is the rootfs.Filter of push. It reports drop for a file left
// out; out is data itself when nothing changes.
func Redact(rel string, data []byte) (out []byte, drop bool) {
	if HasPrivateKey(data) {
		return nil, true
	}
	switch base := path.Base(rel); {
	case isAccountFile(rel):
		return redactLines(data, redactAccount), false
	case base == ".npmrc" || base == "npmrc":
		return redactLines(data, redactNpmrc), false
	case base == ".yarnrc.yml":
		return redactLines(data, redactYarnrc), false
	}
	return data, false
}

// isAccountFile says rel is a file of /etc whose second field is a
// password.
func isAccountFile(rel string) bool {
	switch strings.TrimSuffix(rel, "-") {
	case "etc/shadow", "etc/gshadow", "etc/passwd":
		return true
	}
	return false
}

// redactLines applies f to each line (without its newline); f says
// whether to keep the line and what it becomes. data comes back as it is
// when no line changes.
func redactLines(data []byte, f func(line string) (string, bool)) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	var b strings.Builder
	changed := false
	for _, l := range lines {
		body := strings.TrimSuffix(l, "\n")
		nl := l[len(body):]
		out, keep := f(body)
		if !keep {
			changed = true
			continue
		}
		if out != body {
			changed = true
		}
		b.WriteString(out + nl)
	}
	if !changed {
		return data
	}
	return []byte(b.String())
}

// redactAccount locks the password field of an account line if it holds
// anything but a lock ("!", "*", "!!", "x" in passwd) or nothing.
func redactAccount(line string) (string, bool) {
	f := strings.Split(line, ":")
	if len(f) < 2 || strings.Trim(f[1], "!*") == "" || f[1] == "x" {
		return line, true
	}
	f[1] = "!"
	return strings.Join(f, ":"), true
}

// npmSecretKey matches the npmrc settings that hold credentials, scoped
// to a registry (//host/path/:_authToken) or not.
var npmSecretKey = regexp.MustCompile(`(^|:)_(authToken|auth|password)$`)

// redactNpmrc leaves out a credential line of an npmrc whose value is
// not a variable reference.
func redactNpmrc(line string) (string, bool) {
	key, value, ok := strings.Cut(line, "=")
	if !ok || !npmSecretKey.MatchString(strings.TrimSpace(key)) {
		return line, true
	}
	return line, onlyVariable(value)
}

// redactYarnrc does the same for Yarn Berry's .yarnrc.yml, top level or
// under a scope or registry.
func redactYarnrc(line string) (string, bool) {
	key, value, ok := strings.Cut(strings.TrimSpace(line), ":")
	if !ok || (key != "npmAuthToken" && key != "npmAuthIdent") {
		return line, true
	}
	return line, onlyVariable(strings.Trim(strings.TrimSpace(value), `"'`))
}

var variableRef = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*\}$`)

// onlyVariable says a setting's value names an environment variable and
// holds nothing else.
func onlyVariable(value string) bool {
	return variableRef.MatchString(strings.TrimSpace(value))
}

// pemBegin is the first line of a private key block: PKCS#1 and SEC 1
// ("RSA", "EC", "DSA"), PKCS#8 (plain or "ENCRYPTED") and OpenSSH's.
var pemBegin = regexp.MustCompile(`(?m)^-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----\r?$`)

// HasPrivateKey says data holds a private key block: a BEGIN line of
// its own and, further on, the END line of the same kind. A program that
// only names the markers (in quotes, in a comment) has neither on a line
// of its own.
func HasPrivateKey(data []byte) bool {
	if !bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		return false
	}
	for _, m := range pemBegin.FindAllSubmatchIndex(data, -1) {
		end := "\n-----END " + string(data[m[2]:m[3]]) + "-----"
		if bytes.Contains(data[m[1]:], []byte(end)) {
			return true
		}
	}
	return false
}
