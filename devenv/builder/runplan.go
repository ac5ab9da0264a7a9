package builder

import (
	"fmt"
	"strings"

	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/devenv/spec/dockerfile"
)

// runInput is what a RUN's --mount and --network add to its key, as
// BuildKit keys them: every mount's options, and what a bind reads (the
// context's content, a stage's key) or a cache starts from; never what a
// cache holds, nor a secret's value or an agent (their ids only). A RUN
// with neither adds nothing, so that its key is what it was before
// devbox knew them. It also gives the steps the mounts' stages are, and
// refuses --network=host unless the spec's network is the host's.
func (p *Plan) runInput(s *spec.Spec, df *dockerfile.File, ds *dockerfile.Step, bc *buildContext, last map[*dockerfile.Stage]int) ([]string, []int, error) {
	where := func(err error) error { return fmt.Errorf("%s:%d: RUN: %w", df.Path, ds.Line, err) }
	var c []string
	switch ds.Network {
	case dockerfile.NetworkHost:
		if s.Network.Mode != "host" {
			return nil, nil, where(fmt.Errorf("--network=host is refused: devbox is secure by default, and a build step on the host's network reaches the host's loopback services; "+
				"to allow it, set [network] mode = \"host\" in %s", s.File))
		}
		c = append(c, "network="+ds.Network)
	case dockerfile.NetworkNone:
		c = append(c, "network="+ds.Network)
	}
	var froms []int
	for _, m := range ds.Mounts {
		c = append(c, "mount="+strings.Join([]string{m.Type, m.Target, m.Source, m.From, m.ID, m.Sharing,
			fmt.Sprintf("ro=%t size=%d mode=%o uid=%d gid=%d required=%t", m.ReadOnly, m.Size, m.Mode, m.UID, m.GID, m.Required), m.Env}, "\x00"))
		from := -1
		switch {
		case m.FromStage != nil:
			i, ok := last[m.FromStage]
			if !ok {
				return nil, nil, where(fmt.Errorf("--mount from=%s: that stage is not built (a variable in the mount's options hid it); write the options without variables", m.From))
			}
			from = i
			c = append(c, "mount-stage="+p.Steps[i].Key)
		case m.Type == dockerfile.MountBind:
			d, err := bc.digest([]string{m.Source})
			if err != nil {
				return nil, nil, where(fmt.Errorf("--mount source=%s: %w", m.Source, err))
			}
			c = append(c, "mount-context="+d)
		}
		froms = append(froms, from)
	}
	return c, froms, nil
}
