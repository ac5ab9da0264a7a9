// Package devenv runs environments: the lifecycle of named environments
// (Up, Down, Rm, Get, List; a devcontainer.json's lifecycle commands at
// Up), publishing them (Push, Kube), one-shot containers (Run), and the
// SSH service an environment's init serves (ServeSSH). It is the only package
// that knows what an environment is made of on the host: its directory
// under the state root (internal/state), its keys, its record.
//
// Lifecycle. Up builds the spec (devenv/builder), makes the environment's
// host key once (kept across down/up and rebuilds), binds the SSH port and
// the exec socket on the host, starts the container detached with the SSH
// server as its init's main job, records it in state.json and returns once
// the server answers. There is no daemon: every command reads the record
// and reconciles it with the kernel (an init that died, a PID reused)
// before acting, and Down or a later command releases what a dead
// container held (cgroups, its bridge address). Lifecycle commands on one
// environment are serialised by its lock file; the writable layer and host
// key stay until Rm.
package devenv
