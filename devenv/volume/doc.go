// Package volume holds named volumes: directories in devbox's state root,
// stored in canonical ids as a layer is, that environments mount by name
// ([[mounts]] type = "volume", a devcontainer.json's type=volume).
//
// A volume is made on its first mount and filled then with what the image
// has at the mount's target (Docker's copy-up). Unlike Docker, a volume
// found empty later is not filled again: another container may have it
// mounted, and the fill would write where its processes can swap paths
// for links. It lives until `devbox volume rm`: the down, up and rm of an
// environment keep it. Who uses it is the caller's to say (devenv knows
// the running environments and one-shot containers); a removal waits for
// every start that holds the volume's lock and asks then.
package volume
