// Package userns holds what a container's user namespace needs on the
// host: the range of host ids its ids map to (IDMap), user namespaces made
// only to carry a mapping for idmapped mounts (New), and the shift of a
// tree's owners from one range to another (Shift).
//
// Lifecycle: devenv allocates an IDMap per environment (and one per build
// or one-shot run, given back at its end); the runtime forks the
// container's init into a user namespace with that mapping and mounts the
// shared, canonically owned image layers idmapped into it, so container
// root is an unprivileged host uid while the layers on disk stay owned by
// 0. The writable layer is stored in the range's ids; a build's layer is
// shifted back to canonical ids before it is committed, and an
// environment's writable layer is shifted when its range changes.
package userns
