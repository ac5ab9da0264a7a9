package build

import (
	"fmt"
	"io"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/runtime/userns"
)

// useUserNS reports whether containers over lower get a user namespace:
// when the spec does not opt out and the host can. Why the host cannot is
// printed with the spec's own security warnings.
func useUserNS(s *spec.Spec, lower []string, out io.Writer) bool {
	if !s.UserNS() {
		return false
	}
	if err := userns.Check(lower[len(lower)-1]); err != nil {
		fmt.Fprintf(out, "security: user namespaces are off, container root is the host's root: %v\n", err)
		return false
	}
	return true
}
