package runtime

import (
	"encoding/json"
	"os"

	"github.com/devbox/devbox/runtime/userns"
)

// Config is everything the container's init needs. The parent sends it as
// JSON over the control socket, private to the two of them.
type Config struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	// Lower are the image layers, top first; Upper and Work the writable
	// layer; Rootfs the empty directory the overlay is mounted on (inside
	// the container's mount namespace only). The parent mounts them (see
	// hostMounts); the init gets the mounts, not the paths.
	Lower  []string `json:"lower"`
	Upper  string   `json:"upper"`
	Work   string   `json:"work"`
	Rootfs string   `json:"rootfs"`
	// Files are host files bind-mounted over paths in the container:
	// /etc/hostname, /etc/hosts, /etc/resolv.conf.
	Files  []Mount `json:"files"`
	Mounts []Mount `json:"mounts"`
	// Project is the project tree, for the bind rule (see bindMapping); nil
	// lends no host owner to anyone.
	Project *Project `json:"project,omitempty"`
	// Watch, if set, is a host file whose removal stops the container
	// (one in an environment's state directory: no process outlives its
	// state). The parent passes it open (O_PATH) after the mounts. A
	// file, not the directory: a process that reached the init's open
	// descriptor could walk from a directory, never from a file.
	Watch string `json:"watch,omitempty"`

	// UserNS, if set, gives the container a user namespace: its ids
	// [0, Size) are the host's UserNS.UID and UserNS.GID onwards, the
	// image layers and binds are idmapped into it, and Upper is stored in
	// the range's ids.
	UserNS *userns.IDMap `json:"userns,omitempty"`

	Network NetworkMode `json:"network"`
	// Cgroup2 is set on a cgroup v2 host: the init mounts its own cgroup
	// (the root of its cgroup namespace) read-only at /sys/fs/cgroup.
	Cgroup2 bool `json:"cgroup2,omitempty"`
	// NoSeccomp runs the container's processes without Docker's default
	// seccomp profile (spec: [security] seccomp = "unconfined").
	NoSeccomp bool `json:"no_seccomp,omitempty"`
	// Devices are host device nodes the container gets in its /dev, and
	// may use, besides the standard ones.
	Devices []string `json:"devices,omitempty"`
	// Ports are published ports: the listening socket of Ports[i] is
	// file descriptor firstPortFD+i in the init.
	Ports []int `json:"ports"`

	// Process is the main job: a command (run), or nothing when the init's
	// own service (the SSH server) is the main job (up).
	Process *Process `json:"process,omitempty"`
	// Service configures the init's service; it is opaque to the runtime.
	Service json.RawMessage `json:"service,omitempty"`
	// ServiceListeners is how many listening sockets the service gets;
	// they follow the published ports' descriptors.
	ServiceListeners int `json:"service_listeners,omitempty"`
	// ServiceFiles are host files the service gets (a host key), by
	// name; the parent reads them into ServiceData.
	ServiceFiles map[string]string `json:"service_files,omitempty"`
	ServiceData  map[string][]byte `json:"service_data,omitempty"`
}

// Process is a command to run in the container.
type Process struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Cwd  string   `json:"cwd"`
	UID  int      `json:"uid"`
	GID  int      `json:"gid"`
	// Groups are the supplementary groups (ids inside the container), as
	// runc sets them from the image's /etc/group; none, a non-root
	// process has none and root keeps init's.
	Groups []int `json:"groups,omitempty"`
	// TTY gives the process a pseudo-terminal from the container's own
	// devpts; its master goes back to the parent over the console socket.
	TTY bool `json:"tty"`
	// Rows and Cols are the terminal's initial size.
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
}

// Mount is a bind mount into the container. It is also what a spec's
// [[mounts]] decode to, hence the TOML names.
type Mount struct {
	Source   string `json:"source" toml:"source"`
	Target   string `json:"target" toml:"target"`
	Readonly bool   `json:"readonly" toml:"readonly"`
	// Type is a spec's: "" (a bind of a host path), "volume" (Source
	// names a volume devbox keeps) or "tmpfs". devenv makes the last two
	// a Canonical bind and a Tmpfs before a container sees them.
	Type string `json:"type,omitempty" toml:"type"`
	// Tmpfs makes the mount a fresh tmpfs (nosuid, nodev) of at most
	// Size bytes (0: the kernel's default, half the memory) instead of a
	// bind of Source; a build's RUN --mount=type=tmpfs. Never a spec's.
	Tmpfs bool  `json:"tmpfs,omitempty" toml:"-"`
	Size  int64 `json:"size,omitempty" toml:"-"`
	// Canonical says Source is stored in canonical ids, as a layer is
	// (a build's cache, secret or copied bind source, made by devbox):
	// with a user namespace it is idmapped as the layers are, so that its
	// root is the container's. Never a spec's: a host path is bound by
	// the bind rule.
	Canonical bool `json:"canonical,omitempty" toml:"-"`
}

// Project is the project tree of a container with a user namespace: the
// host directory Dir, whose host owner HostUID:HostGID (whoever it is,
// the host's root included) appears inside the tree as the container's
// login user UID:GID, and owns on the host what that user writes there.
type Project struct {
	// Dir is clean and absolute; Dev and Ino name it, so that its sweep
	// (clearSetID) is of the tree the container had, not of whatever the
	// path names later.
	Dir     string `json:"dir"`
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	HostUID uint32 `json:"host_uid"`
	HostGID uint32 `json:"host_gid"`
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
}

// NetworkMode is how a container reaches the network.
type NetworkMode string

const (
	NetworkBridge NetworkMode = "bridge"
	NetworkHost   NetworkMode = "host"
	NetworkNone   NetworkMode = "none"
	// NetworkShared is another container's network namespace (see
	// Options.JoinNet): it is that one's to set up.
	NetworkShared NetworkMode = "shared"
)

// File descriptors of the init, in the order the parent passes them.
const (
	configFD    = 3 // the control socket: config, ready, go, a TTY's master
	firstPortFD = 4 // published ports' listening sockets
)

// initArg is argv[1] of the devbox binary when it runs as an init.
const initArg = "__devbox_init"

// IsInit reports whether this process was started as a container's init.
func IsInit() bool { return len(os.Args) > 1 && os.Args[1] == initArg }

// binds are the bind mounts in the order the parent passes them to the
// init: the spec's mounts, then the host files.
func (c *Config) binds() []Mount { return append(append([]Mount{}, c.Mounts...), c.Files...) }

// nodesByBind reports whether the container's device nodes are binds of
// the host's rather than made: in a user namespace, its own or the
// caller's (rootless), where mknod is refused.
func (c *Config) nodesByBind() bool { return c.UserNS != nil || !userns.Initial() }
