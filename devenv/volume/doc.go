// Package volume holds named volumes: directories in devbox's state root,
// stored in canonical ids as a layer is, that environments mount by name
// ([[mounts]] type = "volume", a devcontainer.json's type=volume).
//
// A volume is made on its first mount and filled then with what the image
// has at the mount's target (Docker's copy-up); a volume found empty is
// filled again, as Docker does. It lives until `devbox volume rm`: the
// down, up and rm of an environment keep it. Whether an environment still
// uses it is the caller's to decide (devenv knows the running ones).
package volume
