package rootfs

import (
	"fmt"
	"io"
)

// ExtractTar unpacks a plain tar stream into dir (which must exist) with
// the same safety as a layer: nothing can be written outside dir. Build
// steps use it for what devbox downloads itself (Node.js).
func ExtractTar(r io.Reader, dir string, warn func(string)) error {
	if warn == nil {
		warn = func(string) {}
	}
	x, err := extractTar(r, dir, warn)
	if err != nil {
		return err
	}
	if len(x.links) > 0 {
		return fmt.Errorf("hard link to a file the archive does not contain: %s", x.links[0].target)
	}
	return nil
}
