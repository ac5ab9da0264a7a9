package rootfs

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/devbox/devbox/internal/safetext"
)

// digestRE is a sha256 digest as the store writes one: a diffID, a chain
// ID, a step key's digest form. Nothing else is a name in the store.
var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// stepKeyRE is a build step's cache key (a hex sha256, no prefix), which
// names its directory under builds/.
var stepKeyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidDigest reports whether d is "sha256:" and 64 lowercase hex digits.
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// ValidStepKey reports whether key is a step's cache key.
func ValidStepKey(key string) bool { return stepKeyRE.MatchString(key) }

// checkRecord refuses a build record from a cache that is not well-formed
// data: a key, diffID or base layer that is not a digest (base layers are
// store names, so `../` must never be one), or a string that would print
// as anything but itself. What the fields must be for devbox.lock is the
// caller's check (CachePull.Check).
func checkRecord(rec BuildRecord) error {
	if !ValidStepKey(rec.Key) {
		return fmt.Errorf("key %q is not a step key", rec.Key)
	}
	if rec.DiffID != "" && !ValidDigest(rec.DiffID) {
		return fmt.Errorf("diff_id %q is not a sha256 digest", rec.DiffID)
	}
	for _, l := range rec.BaseLayers {
		if !ValidDigest(l) {
			return fmt.Errorf("base layer %q is not a sha256 digest", l)
		}
	}
	for field, v := range map[string]string{"kind": rec.Kind, "summary": rec.Summary, "node": rec.Node} {
		if !safetext.Clean(v) {
			return fmt.Errorf("%s %q has control characters", field, v)
		}
	}
	for k, v := range rec.Resolved {
		// A list (packages.installed) is one item a line.
		if !safetext.Clean(k) || !safetext.Clean(strings.ReplaceAll(v, "\n", "")) {
			return fmt.Errorf("resolved %q = %q has control characters", k, v)
		}
	}
	return nil
}
