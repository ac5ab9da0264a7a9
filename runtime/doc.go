// Package runtime starts environments as Linux-namespaced containers whose
// PID 1 is the devbox binary itself (callers that also need the standard
// library's runtime import it as container).
//
// Lifecycle. Start binds the published ports on the host, forks a sealed
// copy of the devbox binary (a read-only detached mount of it, or a sealed
// memfd, so that the container can never write it) into new mount, PID,
// UTS, IPC and (unless host) network namespaces, and hands the caller the
// init's pid (Options.Record) before anything runs in it. While the init
// builds the root file system inside its own mount namespace (overlay of
// the layers, /proc, /sys, /dev, bind mounts, masks, pivot_root: see
// mounts.go), the parent puts it in its cgroup (under the caller's own, on
// v2) and on the bridge; then the init starts the main process (run) or
// its service, the SSH server (up), from a thread reduced to Docker's
// capability set, reaps every process of the container, relays published
// ports and passes signals on. When the init ends, the kernel tears down
// its mounts with its namespace; what stays on the host (a cgroup, a
// bridge address: Leftovers) is released by Container.Wait, or by Reclaim
// after a detached container ended. Nothing here keeps state of its own
// but the address allocations of each network namespace (AllocDir).
//
// Rootless. In a user namespace (see package rootless; or a caller inside
// another container) the same code runs as that namespace's root, and
// what only the host's root may do is done otherwise: device nodes are
// the host's, bound; the overlay takes userxattr; a cgroup is made only
// where one is delegated (on v2), without a device policy; a container's
// own network is connected by pasta rather than the bridge, pasta living
// in the container's PID namespace so that it ends with it (pasta.go).
//
// Portability. Kernels from 5.15 are supported: each newer feature (the
// lowerdir+ overlay option, open_tree) has a fallback, and what has none
// (mount_setattr, 5.12) fails with the version it needs. cgroup v1 and v2
// both work, from any calling mount or network namespace.
package runtime
