package sshd

import (
	"crypto/subtle"
	"regexp"
	"strings"
	"sync"

	"github.com/GehirnInc/crypt"
	"github.com/openwall/yescrypt-go"
)

// yescryptRE is a yescrypt hash in the subset libxcrypt makes ("$y$j",
// the N and r characters, a salt, 43 characters of hash): what Debian
// 11+ and Ubuntu 22.04+ write to /etc/shadow by default, and what
// yescrypt-go's Hash verifies (N up to 2^18, r up to 32).
var yescryptRE = regexp.MustCompile(`^\$y\$j[./0-9A-Za-z]{2}\$[./0-9A-Za-z]+\$[./0-9A-Za-z]{43}$`)

// yescryptMu lets one yescrypt check run at a time: each takes 128·N·r
// bytes (16 MiB at Debian's default, up to 1 GiB), in devbox's PID 1.
var yescryptMu sync.Mutex

// hashSupported says hash is a crypt(3) hash the server checks.
func hashSupported(hash string) bool {
	if strings.HasPrefix(hash, "$y$") {
		return yescryptRE.MatchString(hash)
	}
	return crypt.IsHashSupported(hash)
}

// verifyHash says password hashes to hash, compared in constant time.
func verifyHash(hash, password string) bool {
	var got []byte
	switch {
	case !hashSupported(hash):
		return false
	case strings.HasPrefix(hash, "$y$"):
		yescryptMu.Lock()
		h, err := yescrypt.Hash([]byte(password), []byte(hash))
		yescryptMu.Unlock()
		if err != nil {
			return false
		}
		got = h
	default:
		h, err := crypt.NewFromHash(hash).Generate([]byte(password), []byte(hash))
		if err != nil {
			return false
		}
		got = []byte(h)
	}
	return subtle.ConstantTimeCompare(got, []byte(hash)) == 1
}
