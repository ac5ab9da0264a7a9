package devenv

import (
	"fmt"
	"time"

	"github.com/devbox/devbox/devenv/builder"
	"github.com/devbox/devbox/devenv/kube"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/rootfs"
)

// kubeService is svc as devbox kube writes it: its registry image (none
// for one built here or from a local base), compose's entrypoint and
// command, its own environment, its user's ids when it names one, its
// volumes and its healthcheck.
func kubeService(svc *spec.Service, built *builder.Result) (kube.Service, error) {
	k := kube.Service{Name: svc.Name, Command: svc.Entrypoint, Args: svc.Command, Env: svc.Env, WorkingDir: svc.WorkingDir}
	if ref := svc.Spec.BaseRef; ref.Kind == rootfs.KindRegistry {
		k.Image = svc.Image
	}
	if svc.User != "" {
		uid, gid, err := builder.LookupUser(built.Lower, svc.User)
		if err != nil {
			return k, fmt.Errorf("user: %w", err)
		}
		u, g := int64(uid), int64(gid)
		k.RunAsUser, k.RunAsGroup = &u, &g
	}
	for _, m := range svc.Spec.Mounts {
		k.Volumes = append(k.Volumes, kube.Volume{Claim: m.Source, Target: m.Target, ReadOnly: m.Readonly, Tmpfs: m.Type == "tmpfs", HostPath: hostPath(m.Type, m.Source)})
	}
	p, err := svc.Healthcheck.Probe()
	if err != nil || p == nil {
		return k, err
	}
	secs := func(d time.Duration) int32 { return int32(max(1, (d+time.Second-1)/time.Second)) }
	k.Probe = &kube.Probe{Args: p.Args, PeriodSeconds: secs(p.Interval), TimeoutSeconds: secs(p.Timeout),
		FailureThreshold: int32(p.Retries), InitialDelay: int32(p.StartPeriod / time.Second)}
	return k, nil
}

// hostPath is a bind's source, which a cluster does not have.
func hostPath(typ, source string) string {
	if typ == "" {
		return source
	}
	return ""
}
