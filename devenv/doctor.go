package devenv

import (
	"fmt"

	container "github.com/devbox/devbox/runtime"
)

// Doctor checks what the running environments need of the host and
// returns one line per problem found: today, that the host routes each
// bridged environment's address back to devbox's bridge (another
// interface that took its subnet since, a VPN's more specific route,
// would swallow its traffic without a word).
func (e *Envs) Doctor() (problems []string, checked int, err error) {
	envs, err := e.List()
	if err != nil {
		return nil, 0, err
	}
	for _, env := range envs {
		if env.Status != "running" || env.IP == "" {
			continue
		}
		checked++
		if err := container.CheckRoute(env.IP); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", env.Name, err))
		}
	}
	return problems, checked, nil
}
