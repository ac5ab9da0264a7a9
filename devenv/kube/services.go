package kube

import (
	"regexp"
	"strings"
	"sync"
)

// Service is an environment's service as a cluster runs it: a Deployment
// of its image and a headless Service of its name, so that the
// environment's pod reaches it by that name, on any port, as on devbox's
// network. Named volumes become PersistentVolumeClaims (100Mi, as kompose
// makes them), tmpfs an in-memory emptyDir.
type Service struct {
	Name  string
	Image string
	// Command and Args are compose's entrypoint and command.
	Command, Args []string
	Env           map[string]string
	WorkingDir    string
	// RunAsUser and RunAsGroup are its user's ids, resolved in the image
	// (a cluster takes no names); nil leaves the image's.
	RunAsUser, RunAsGroup *int64
	Volumes               []Volume
	Probe                 *Probe
}

// Volume is a service's volume: a named one (Claim), a tmpfs, or a bind
// of a host path, which a cluster does not have.
type Volume struct {
	Claim    string
	Target   string
	ReadOnly bool
	Tmpfs    bool
	HostPath string
}

// Probe is a healthcheck, as a readiness probe.
type Probe struct {
	Args                           []string
	PeriodSeconds, TimeoutSeconds  int32
	FailureThreshold, InitialDelay int32
}

// notDNS is compiled on first use: devbox's binary is also every
// container's init, whose start-up should not pay for it.
var notDNS = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^a-z0-9-]+`) })

// ClaimName is a volume's name as a claim's: a DNS-1123 label.
func ClaimName(volume string) string {
	return strings.Trim(notDNS().ReplaceAllString(strings.ToLower(volume), "-"), "-")
}
