// Package portable holds the image that `devbox push` publishes and that
// runs anywhere: under podman, Docker or a Kubernetes Pod, with no devbox
// on the host. It adds to a build one layer of its own, outside the
// user's tree, under /.devbox: devbox's static binary and the SSH server's
// configuration (the spec's user, public keys, environment, workdir and
// shell; never a password or a token). The image's entrypoint is that
// binary's `serve` command.
//
// Lifecycle. Push calls Layer and ImageConfig. The runtime starts
// /.devbox/bin/devbox serve, which calls Serve: it reads the baked
// configuration, then the runtime's (DEVBOX_AUTHORIZED_KEYS,
// DEVBOX_PASSWORD_HASH and DEVBOX_SSH_PORT in the environment, or the
// files host_key, authorized_keys and password_hash of a Secret mounted
// at /etc/devbox), takes the host key from there or makes one and prints
// its fingerprint, and serves SSH on port 22 until SIGTERM. It reaps every
// process left to it, as PID 1 or as a child subreaper under an init such
// as tini. Isolation is the runtime's: the image asks for no privilege
// beyond a container's defaults (setuid and setgid for logins).
package portable
