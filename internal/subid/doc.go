// Package subid hands out ranges of host ids for containers' user
// namespaces, from the subordinate ids that /etc/subuid and /etc/subgid
// give the user "devbox" (as podman's --userns=auto takes them from the
// user "containers"). When devbox has no entries yet, they are added
// above every other user's.
//
// Lifecycle: Acquire gives an owner a slot of userns.Size ids, recorded
// host-wide (HostDir, whatever the state root) as a file named for the
// slot; an environment's slot is kept until Release (devbox rm), so its
// writable layer keeps its owners; a build's or a one-shot run's is
// released at its end. A slot whose owner is gone (its process died, its
// environment's directory was removed) is taken back by the next Acquire
// once no process runs in its ids. Slots never overlap, across every
// state root of the host.
package subid
