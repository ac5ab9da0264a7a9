package devenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/devbox/devbox/devenv/builder"
	"github.com/devbox/devbox/internal/state"
	"github.com/devbox/devbox/internal/subid"
	"github.com/devbox/devbox/runtime/userns"
)

// envUserNS returns the id range of environment name's containers, or nil
// without a user namespace, and moves its writable layer's owners into it
// when they are stored in another: the spec's opt-out or the host's
// support changed, or the layer dates from before user namespaces. Ranges
// never overlap, nor the canonical ids below them, so a shift that was
// cut short is finished by the next one.
func (e *Envs) envUserNS(name string, on bool) (*userns.IDMap, error) {
	return e.upperUserNS(e.dir(name), name, on)
}

// upperUserNS is envUserNS for the container whose directory is dir, one
// of environment name's (the environment's own, or a service's).
func (e *Envs) upperUserNS(dir state.Env, name string, on bool) (*userns.IDMap, error) {
	var m *userns.IDMap
	if on {
		got, err := subid.New(e.root).Env(name)
		if err != nil {
			return nil, err
		}
		m = &got
	}
	var stored *userns.IDMap
	if data, err := os.ReadFile(dir.UpperIDs()); err == nil {
		if err := json.Unmarshal(data, &stored); err != nil {
			return nil, fmt.Errorf("%s: %w", dir.UpperIDs(), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := userns.Shift(dir.Upper(), stored, m); err != nil {
		return nil, err
	}
	return m, writeJSON(dir.UpperIDs(), m)
}

// lookupUser finds name's uid and gid in the image's /etc/passwd; root
// needs no entry there, as for the SSH server (sshd.lookupAccount).
func lookupUser(lower []string, name string) (uid, gid int, err error) {
	uid, gid, err = builder.LookupUser(lower, name)
	if err != nil && name == "root" {
		return 0, 0, nil
	}
	return uid, gid, err
}

// printWarnings prints what a container could not get as asked.
func printWarnings(out io.Writer, warnings []string) {
	if out == nil {
		return
	}
	for _, w := range warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
}
