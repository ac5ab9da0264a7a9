package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/devbox/devbox/internal/testenv"
)

// TestParallelBuildsOnTheBridge: three builds at once, each of many short
// RUN steps in stages, each step a build container on the bridge. They
// failed with "network: veth: file exists" (every run of this test,
// before the fix): an address released by a container that just ended
// was given to the next one while the kernel had not yet torn the dead
// namespace's veth down.
func TestParallelBuildsOnTheBridge(t *testing.T) {
	testenv.NeedRoot(t)
	var body strings.Builder
	body.WriteString("ARG BASE\nFROM ${BASE} AS s0\nRUN true\n")
	for i := 1; i < 4; i++ {
		fmt.Fprintf(&body, "FROM ${BASE} AS s%d\n", i)
		for j := 0; j < 8; j++ {
			fmt.Fprintf(&body, "RUN echo %d-%d > /f\n", i, j)
		}
	}
	body.WriteString("FROM s0\nCOPY --from=s1 /f /1\nCOPY --from=s2 /f /2\nCOPY --from=s3 /f /3\n")
	var wg sync.WaitGroup
	for k := 0; k < 3; k++ {
		root := baseRoot(t)
		dir := dockerfileProject(t, strings.ReplaceAll(body.String(), "RUN echo", fmt.Sprintf("RUN echo %d", k)), "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := devbox(t, dir, "--root", root, "build"); r.code != 0 {
				t.Errorf("build %d: %d %s", k, r.code, tail(r.stderr))
			}
		}()
	}
	wg.Wait()
}
