// Package sshd is the SSH server of a devbox environment, on gliderlabs/ssh
// and x/crypto/ssh: key and password login, shells and commands with or
// without a terminal (exit status and signals), SFTP, TCP and Unix-socket
// forwarding and agent forwarding. It also holds the small client side
// devbox exec uses (DialUnix, Run).
//
// Lifecycle. A Server is configured by its fields (who may log in, the
// environment sessions get, the host key, how processes start) and serves
// each listener given to Serve, until Shutdown hangs up every session and
// closes every connection. In an environment it is the main job of the
// container's init, which hands it the published SSH socket and the
// environment's exec socket and passes a StartFunc that forks sessions
// with the container's capabilities and reaps them; the server knows
// nothing else of containers. Each session runs as the login account of
// the container's /etc/passwd; nothing is kept between connections.
package sshd
