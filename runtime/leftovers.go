package runtime

import (
	"net"
	"time"
)

// Leftovers are what a container holds on the host that its end does not
// remove by itself: what `devbox down` must clean after a detached one.
type Leftovers struct {
	Cgroups []string `json:"cgroups,omitempty"`
	IP      string   `json:"ip,omitempty"`
	// AllocDir is where IP is allocated (see AllocDir), and AddrOwner
	// the allocation's content, naming this container.
	AllocDir  string `json:"alloc_dir,omitempty"`
	AddrOwner string `json:"addr_owner,omitempty"`
	// Project is the project tree the container could write as its
	// owner, and Since when it started (Unix ns): what it made set-id
	// there since is cleared at its end (see clearSetID).
	Project *Project `json:"project,omitempty"`
	Since   int64    `json:"since,omitempty"`
}

// Reclaim removes a container's leftovers once it has ended, and what
// other containers that died unrecorded left in the caller's network
// namespace (an address whose devbox was killed before it could record it).
func Reclaim(l Leftovers) {
	(&cgroup{dirs: l.Cgroups}).remove()
	clearSetID(l.Project, l.Since)
	dir := l.AllocDir
	if dir == "" {
		dir, _ = AllocDir()
	}
	releaseAddr(lease{dir: dir, ip: net.ParseIP(l.IP), owner: l.AddrOwner})
}

// sweepProject has the set-id bits the container leaves in its project
// tree cleared at its end, by Cleanup or, once detached, by Reclaim.
func (c *Container) sweepProject(cfg Config) {
	if cfg.Project == nil || cfg.UserNS == nil {
		return
	}
	// A second early: ctime is kept at the kernel's tick.
	c.leftovers.Project, c.leftovers.Since = cfg.Project, time.Now().Add(-time.Second).UnixNano()
	c.cleanup = append(c.cleanup, func() { clearSetID(c.leftovers.Project, c.leftovers.Since) })
}
