package manifest

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/devbox/devbox/devenv/kube"
)

// serviceObjects are s's claims, Deployment and Service.
func serviceObjects(e kube.Env, s kube.Service) ([]any, error) {
	if errs := validation.IsDNS1035Label(s.Name); len(errs) > 0 {
		return nil, fmt.Errorf("kube: service %q cannot name a Service: %s", s.Name, strings.Join(errs, "; "))
	}
	if s.Image == "" {
		return nil, fmt.Errorf("kube: service %s is built here, and a cluster cannot pull it: give it an image from a registry", s.Name)
	}
	sel := map[string]string{"app.kubernetes.io/name": s.Name, "app.kubernetes.io/part-of": e.Name, "app.kubernetes.io/managed-by": "devbox"}
	m := metav1.ObjectMeta{Name: s.Name, Namespace: e.Namespace, Labels: sel}
	var objs []any
	c := corev1.Container{Name: s.Name, Image: s.Image, Command: s.Command, Args: s.Args, WorkingDir: s.WorkingDir}
	for _, k := range sortedKeys(s.Env) {
		c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: s.Env[k]})
	}
	if s.RunAsUser != nil {
		c.SecurityContext = &corev1.SecurityContext{RunAsUser: s.RunAsUser, RunAsGroup: s.RunAsGroup}
	}
	if p := s.Probe; p != nil {
		c.ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: p.Args}},
			PeriodSeconds: p.PeriodSeconds, TimeoutSeconds: p.TimeoutSeconds,
			FailureThreshold: p.FailureThreshold, InitialDelaySeconds: p.InitialDelay,
		}
	}
	var vols []corev1.Volume
	for i, v := range s.Volumes {
		if v.HostPath != "" {
			return nil, fmt.Errorf("kube: service %s binds %s from this host at %s: a cluster's node has no such path", s.Name, v.HostPath, v.Target)
		}
		name := fmt.Sprintf("v%d", i)
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: v.Target, ReadOnly: v.ReadOnly})
		if v.Tmpfs {
			vols = append(vols, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}})
			continue
		}
		claim := kube.ClaimName(v.Claim)
		vols = append(vols, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
		objs = append(objs, &corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: metav1.ObjectMeta{Name: claim, Namespace: e.Namespace, Labels: sel},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("100Mi")}},
			},
		})
	}
	one := int32(1)
	off := false
	objs = append(objs, &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: m,
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			// A claim is ReadWriteOnce: never two pods at once.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: corev1.PodSpec{
				AutomountServiceAccountToken: &off, EnableServiceLinks: &off,
				Containers: []corev1.Container{c}, Volumes: vols,
			}},
		},
	}, &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: m,
		// Headless: the name resolves to the pod, every port open, as
		// on devbox's network (and compose's).
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: sel},
	})
	return objs, nil
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
