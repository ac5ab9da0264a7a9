package devenv

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"

	gossh "golang.org/x/crypto/ssh"

	container "github.com/devbox/devbox/runtime"
	"github.com/devbox/devbox/sshd"
)

// hostKeyFile is the ServiceFiles name of the environment's host key.
const hostKeyFile = "host_key"

// ServeSSH is the main job of an environment's init: the SSH server,
// configured by what Up put in the container's config, serving the
// sockets Up passed in, its sessions started and reaped by the init.
func ServeSSH(ctx context.Context, env container.ServiceEnv) error {
	var cfg sshd.Config
	if err := json.Unmarshal(env.Config, &cfg); err != nil {
		return fmt.Errorf("sshd: config: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(env.Files[hostKeyFile])
	if err != nil {
		return fmt.Errorf("sshd: host key: %w", err)
	}
	srv := &sshd.Server{Config: cfg, HostKey: signer, Start: sshd.StartFunc(env.Start)}
	return srv.ServeAll(ctx, env.Listeners, func() {
		env.Ready()
		// The init idles for hours: what starting it took (every
		// package's init, the config) goes back to the kernel now.
		debug.FreeOSMemory()
	})
}
