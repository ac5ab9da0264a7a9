package devenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devbox/devbox/devenv/builder"
	"github.com/devbox/devbox/devenv/spec"
	container "github.com/devbox/devbox/runtime"
	"github.com/devbox/devbox/sshd"
)

// hostKeyFile is the ServiceFiles name of the environment's host key.
const hostKeyFile = "host_key"

// initConfig is what an init's service is configured with: the SSH
// server's configuration, and for a service's container the main process
// it supervises.
type initConfig struct {
	sshd.Config
	Supervise *supervised `json:"supervise,omitempty"`
}

// ServeSSH is the main job of an environment's init: the SSH server,
// configured by what Up put in the container's config, serving the
// sockets Up passed in, its sessions started and reaped by the init. In a
// service's container, it also supervises the service's main process,
// and ends with it.
func ServeSSH(ctx context.Context, env container.ServiceEnv) error {
	var cfg initConfig
	if err := json.Unmarshal(env.Config, &cfg); err != nil {
		return fmt.Errorf("sshd: config: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(env.Files[hostKeyFile])
	if err != nil {
		return fmt.Errorf("sshd: host key: %w", err)
	}
	srv := &sshd.Server{Config: cfg.Config, HostKey: signer, Start: sshd.StartFunc(env.Start)}
	idle := func() {
		env.Ready()
		// The init idles for hours: what starting it took (every
		// package's init, the config) goes back to the kernel now.
		debug.FreeOSMemory()
	}
	if cfg.Supervise == nil {
		return srv.ServeAll(ctx, env.Listeners, idle)
	}
	serveCtx, stop := context.WithCancel(ctx)
	code := make(chan int, 1)
	go func() {
		code <- supervise(serveCtx, env.Start, cfg.Supervise, newCappedLog(os.Stderr))
		if !cfg.Supervise.Beside {
			stop() // the service ends with its main process
		}
	}()
	err = srv.ServeAll(serveCtx, env.Listeners, idle)
	stop() // a server that could not start stops the process too
	if c := <-code; c != 0 && err == nil && !cfg.Supervise.Beside {
		err = fmt.Errorf("the main process exited with code %d", c)
	}
	return err
}

// besideProcess is the process an environment runs beside its SSH server
// (a compose app service's command), as its login user, or nil.
func besideProcess(s *spec.Spec, built *builder.Result) (*supervised, error) {
	if len(s.Entrypoint)+len(s.Command) == 0 {
		return nil, nil
	}
	img := built.Image.Config
	uid, gid, err := lookupUser(built.Lower, s.SSH.User)
	if err != nil {
		return nil, err
	}
	return &supervised{
		Process: container.Process{
			Args: composeArgs(s.Entrypoint, s.Command, img),
			Env:  s.Environ(img, append([]string{"HOME=" + runHome(img, built.Lower, uid)}, s.UpEnv()...)...),
			Cwd:  s.StartDir(img), UID: uid, GID: gid,
			Groups: builder.SupplementaryGroups(built.Lower, s.SSH.User),
		},
		Restart: s.Restart, MaxRestarts: s.MaxRestarts, Grace: 10 * time.Second, Beside: true,
	}, nil
}
