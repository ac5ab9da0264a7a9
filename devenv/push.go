package devenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/rootfs"
)

// Push publishes an environment's build as an OCI image at ref. Its
// writable layer is not included: the image is what the spec builds.
func (e *Envs) Push(ctx context.Context, name, ref string, insecure bool) (string, error) {
	if err := spec.CheckName(name); err != nil {
		return "", err
	}
	data, err := os.ReadFile(e.dir(name).Image())
	if err != nil {
		return "", fmt.Errorf("push %s: not built here yet (devbox up): %w", name, err)
	}
	var bi builtImage
	if err := json.Unmarshal(data, &bi); err != nil {
		return "", err
	}
	bottomFirst := slices.Clone(bi.Lower)
	slices.Reverse(bottomFirst)
	d, err := rootfs.Push(ctx, bottomFirst, bi.Config, ref, insecure)
	return d.String(), err
}
