// Package state owns the layout of a state root: the one place that knows
// which file or directory under it holds what. Every other package asks a
// Root (or an Env of it) for a path instead of joining names itself.
//
// A state root lives as long as the user keeps it (/var/lib/devbox for
// root, $XDG_DATA_HOME/devbox rootless); nothing here creates or removes
// files, it only names them:
//
//	layers/<chainID>/      an image layer unpacked in overlay form (rootfs)
//	layers/<chainID>.json  its record, written last
//	images/<id>.json       a stored image: reference → digest, config, layers
//	builds/<key>/          a build step's layer, keyed sha256(parent + step)
//	builds/<key>.json      its record, written last
//	downloads/             Node tarballs and other downloads, by checksum
//	build-caches/<id>/     a Dockerfile's RUN --mount=type=cache directory
//	                       (data/, in canonical ids) and its lock file
//	envs/NAME/             one environment (see Env)
//	volumes/NAME/          a named volume: data/ (in canonical ids, what
//	                       is mounted) and unfinished fills
//	volumes/NAME.lock      held shared by who is starting with it, alone
//	                       by its removal; NAME.fill, by its filling
//	run/<id>/              a one-shot container's writable layer
//	network/               bridge address allocations and their lock
//	tmp/                   unfinished work; swept when no one is at work
//	locks/                 flock files
//	client_key             devbox's own SSH key, accepted by every environment
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"

	"github.com/devbox/devbox/runtime/rootless"
)

// Root is a state root directory.
type Root string

// DefaultRoot is where devbox keeps its state: /var/lib/devbox for root,
// the user's data directory otherwise (rootless: root of its own user
// namespace, on the user's behalf).
func DefaultRoot() Root {
	if _, ok := rootless.Active(); !ok && os.Geteuid() == 0 {
		return "/var/lib/devbox"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return Root(filepath.Join(d, "devbox"))
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return Root(filepath.Join(os.TempDir(), "devbox"))
	}
	return Root(filepath.Join(home, ".local", "share", "devbox"))
}

func (r Root) join(elem ...string) string {
	return filepath.Join(append([]string{string(r)}, elem...)...)
}

// Dir is the root itself.
func (r Root) Dir() string { return string(r) }

// Layers holds unpacked image layers; Layer is one of them.
func (r Root) Layers() string { return r.join("layers") }

// Layer is the directory of the layer with chainID ("sha256:…" or bare hex).
func (r Root) Layer(chainID string) string {
	return r.join("layers", strings.TrimPrefix(chainID, "sha256:"))
}

// Images holds the records of stored images.
func (r Root) Images() string { return r.join("images") }

// Builds holds build-step layers; Build is one of them.
func (r Root) Builds() string { return r.join("builds") }

// Build is the directory of the build step with key.
func (r Root) Build(key string) string { return r.join("builds", key) }

// Downloads is the download cache.
func (r Root) Downloads() string { return r.join("downloads") }

// BuildCaches holds the directories of RUN --mount=type=cache; BuildCache
// is one of them, by a digest of its id (any string the Dockerfile gives).
func (r Root) BuildCaches() string { return r.join("build-caches") }

// BuildCache is the directory of the cache mount with id: its data/ is
// what the RUN sees, its lock the flock of sharing=locked and private.
func (r Root) BuildCache(id string) BuildCache {
	sum := sha256.Sum256([]byte(id))
	return BuildCache(r.join("build-caches", hex.EncodeToString(sum[:16])))
}

// BuildCache is one cache mount's directory.
type BuildCache string

// Dir is the directory itself.
func (c BuildCache) Dir() string { return string(c) }

// Data is what is mounted.
func (c BuildCache) Data() string { return filepath.Join(string(c), "data") }

// Lock is the flock file of its users.
func (c BuildCache) Lock() string { return filepath.Join(string(c), "lock") }

// Volumes holds the named volumes.
func (r Root) Volumes() string { return r.join("volumes") }

// Volume is the directory of the volume called name (a name
// volume.CheckName accepts: no separators).
func (r Root) Volume(name string) Volume { return Volume(r.join("volumes", name)) }

// Volume is one named volume's directory.
type Volume string

// Dir is the directory itself.
func (v Volume) Dir() string { return string(v) }

// Data is what is mounted.
func (v Volume) Data() string { return filepath.Join(string(v), "data") }

// Lock is held shared while a container is started with the volume,
// alone while it is removed. It is beside the directory, not in it, so
// that the removal does not unlink a lock that others wait on.
func (v Volume) Lock() string { return string(v) + ".lock" }

// FillLock is held while the volume is made and filled.
func (v Volume) FillLock() string { return string(v) + ".fill" }

// Tmp is for unfinished work.
func (r Root) Tmp() string { return r.join("tmp") }

// Lock is the flock file called name.
func (r Root) Lock(name string) string { return r.join("locks", name+".lock") }

// Locks is the directory of flock files.
func (r Root) Locks() string { return r.join("locks") }

// Network holds bridge address allocations.
func (r Root) Network() string { return r.join("network") }

// IDs holds what devbox learnt of this root's user-namespace support
// (the ranges themselves are recorded host-wide, see internal/subid).
func (r Root) IDs() string { return r.join("userns") }

// Runs holds one-shot containers; Run is one of them.
func (r Root) Runs() string { return r.join("run") }

// Run is the directory of the one-shot container id.
func (r Root) Run(id string) string { return r.join("run", id) }

// ClientKey is devbox's own SSH private key.
func (r Root) ClientKey() string { return r.join("client_key") }

// Envs holds environments.
func (r Root) Envs() string { return r.join("envs") }

// Socket is environment name's SSH socket, for devbox exec. Rootless
// with a runtime directory (XDG_RUNTIME_DIR, the user's tmpfs) it is
// $XDG_RUNTIME_DIR/devbox/ROOT/NAME.sock, ROOT a digest of the state root
// (several may share the directory), as podman and rootless Docker keep
// their sockets; otherwise ssh.sock in the environment's directory.
func (r Root) Socket(name string) string {
	if _, ok := rootless.Active(); ok {
		if run := os.Getenv("XDG_RUNTIME_DIR"); run != "" {
			abs, _ := filepath.Abs(string(r))
			sum := sha256.Sum256([]byte(abs))
			return filepath.Join(run, "devbox", hex.EncodeToString(sum[:6]), name+".sock")
		}
	}
	return r.Env(name).join("ssh.sock")
}

// Env is the directory of the environment called name.
func (r Root) Env(name string) Env { return Env(r.join("envs", name)) }

// Env is an environment's directory:
//
//	upper/ work/ rootfs/   its writable layer, overlay work dir, mount point
//	upper-ids.json         the id range upper/'s owners are stored in
//	state.json             its record while it runs
//	host_key, host_key.pub its SSH host key, kept across down/up and rebuilds
//	known_hosts            that key pinned for OpenSSH clients
//	ssh.sock               the SSH server's socket for devbox exec (see Root.Socket)
//	image.json             what its last build was, for push
//	pushed.json            where push last published it, for kube
//	kube_host_key          the host key kube puts in its Secret
//	created                its devcontainer.json's create commands ran
//	log                    the init's output
//	volumes.json           the named volumes its last up mounted
//	lock                   serialises lifecycle commands on it
//	hostname hosts resolv.conf  files bound into the container
//	services/NAME/         each service's container: the same layout
type Env string

// Dir is the environment's directory itself.
func (e Env) Dir() string { return string(e) }

func (e Env) join(name string) string { return filepath.Join(string(e), name) }

func (e Env) Upper() string       { return e.join("upper") }
func (e Env) Work() string        { return e.join("work") }
func (e Env) Rootfs() string      { return e.join("rootfs") }
func (e Env) State() string       { return e.join("state.json") }
func (e Env) HostKey() string     { return e.join("host_key") }
func (e Env) KnownHosts() string  { return e.join("known_hosts") }
func (e Env) Image() string       { return e.join("image.json") }
func (e Env) Pushed() string      { return e.join("pushed.json") }
func (e Env) KubeHostKey() string { return e.join("kube_host_key") }
func (e Env) Created() string     { return e.join("created") }
func (e Env) Log() string         { return e.join("log") }

// VolumeList names the volumes the environment's last up mounted, its
// services' included (for rm --volumes).
func (e Env) VolumeList() string { return e.join("volumes.json") }

// ExecSocket is a service's exec socket, in its directory (an
// environment's is Root.Socket's).
func (e Env) ExecSocket() string { return e.join("ssh.sock") }
func (e Env) Lock() string       { return e.join("lock") }

// Alive is an empty file whose removal (with the environment's
// directory, however its state root went) stops the environment's init.
func (e Env) Alive() string { return e.join("alive") }

// UpperIDs records the id range the writable layer's owners are stored in.
func (e Env) UpperIDs() string { return e.join("upper-ids.json") }

// File is one of the files bound into the container (hostname, hosts,
// resolv.conf), or the owner file of a one-shot container.
func (e Env) File(name string) string { return e.join(name) }

// Service is the directory of the environment's service name, laid out
// as an environment's.
func (e Env) Service(name string) Env { return Env(filepath.Join(string(e), "services", name)) }
