package manifest

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/devbox/devbox/devenv/kube"
	"github.com/devbox/devbox/devenv/portable"
)

// YAML is e's objects as a YAML stream: the Secret, the Deployment and
// the Service, then each service's claims, Deployment and Service.
func YAML(e kube.Env) ([]byte, error) {
	// The Service's name is the strictest: a DNS-1035 label.
	if errs := validation.IsDNS1035Label(e.Name); len(errs) > 0 {
		return nil, fmt.Errorf("kube: %q cannot name a Service: %s", e.Name, strings.Join(errs, "; "))
	}
	objs := []any{secret(e), deployment(e), service(e)}
	for _, s := range e.Services {
		more, err := serviceObjects(e, s)
		if err != nil {
			return nil, err
		}
		objs = append(objs, more...)
	}
	var out bytes.Buffer
	for _, obj := range objs {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("kube %s: %w", e.Name, err)
		}
		out.WriteString("---\n")
		out.Write(data)
	}
	return out.Bytes(), nil
}

func meta(e kube.Env, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: e.Namespace, Labels: labels(e)}
}

func labels(e kube.Env) map[string]string {
	return map[string]string{"app.kubernetes.io/name": e.Name, "app.kubernetes.io/managed-by": "devbox"}
}

func secret(e kube.Env) *corev1.Secret {
	keys := strings.Join(e.AuthorizedKeys, "\n")
	if keys != "" {
		keys += "\n"
	}
	data := map[string]string{"host_key": string(e.HostKey), "authorized_keys": keys}
	if e.PasswordHash != "" {
		data["password_hash"] = e.PasswordHash + "\n"
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(e, kube.SecretName(e.Name)),
		Type:       corev1.SecretTypeOpaque,
		StringData: data,
	}
}

// containerPorts are SSH's and the spec's.
func containerPorts(e kube.Env) []corev1.ContainerPort {
	ports := []corev1.ContainerPort{{Name: "ssh", ContainerPort: portable.SSHPort, Protocol: corev1.ProtocolTCP}}
	for _, p := range e.Ports {
		ports = append(ports, corev1.ContainerPort{Name: "port-" + strconv.Itoa(p), ContainerPort: int32(p), Protocol: corev1.ProtocolTCP})
	}
	return ports
}

func deployment(e kube.Env) *appsv1.Deployment {
	one := int32(1)
	secretMode := int32(0o400)
	off := false
	pod := corev1.PodSpec{
		// Every SSH user could read the token; the environment needs no
		// access to the cluster's API.
		AutomountServiceAccountToken: &off,
		// Service links would put FOO_PORT=tcp://… variables in every
		// session, and a Service named devbox-ssh would set DEVBOX_SSH_PORT.
		EnableServiceLinks: &off,
		Containers: []corev1.Container{{
			Name:  "devbox",
			Image: e.Image,
			Ports: containerPorts(e),
			VolumeMounts: []corev1.VolumeMount{{
				Name: "ssh", MountPath: portable.SecretDir, ReadOnly: true,
			}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("ssh")},
			}},
		}},
		Volumes: []corev1.Volume{{
			Name: "ssh",
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: kube.SecretName(e.Name), DefaultMode: &secretMode,
			}},
		}},
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(e, e.Name),
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			// One environment, one writable tree: never two pods at once.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Selector: &metav1.LabelSelector{MatchLabels: labels(e)},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels(e)}, Spec: pod},
		},
	}
}

func service(e kube.Env) *corev1.Service {
	var ports []corev1.ServicePort
	for _, p := range containerPorts(e) {
		ports = append(ports, corev1.ServicePort{Name: p.Name, Port: p.ContainerPort,
			TargetPort: intstr.FromString(p.Name), Protocol: corev1.ProtocolTCP})
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(e, e.Name),
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: labels(e), Ports: ports},
	}
}
