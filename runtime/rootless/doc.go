// Package rootless lets an ordinary user run devbox without root, as
// podman does: the devbox command re-executes itself in a user namespace
// of its own where the user is root, and everything devbox does as root
// (unpacking layers with their owners, overlay and bind mounts, containers'
// namespaces) it does there, with no more power over the host than the
// user has.
//
// The namespace maps id 0 to the user and ids 1 to 65536 to the user's
// subordinate ids (/etc/subuid, /etc/subgid), written by the setuid
// newuidmap and newgidmap of shadow-utils (Debian's uidmap). Every
// invocation gets the same mapping, so what one stored on disk the next
// reads with the same owners; no process is kept to hold the namespace.
// A user with no subordinate ids gets one id (root is the user and nobody
// else exists), and what needs another owner fails with the line to add.
//
// Lifecycle: Reexec runs in the parent, before any work; it starts the
// child, writes its maps, passes signals on and exits with its status.
// Enter runs first thing in the child: it waits for the maps and
// re-executes once more, because a process exec'd before its namespace
// was mapped has no capabilities there. Active then reports, in the child
// and everything it starts, the host user on whose behalf it runs.
package rootless
