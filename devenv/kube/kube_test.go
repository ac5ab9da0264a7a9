package kube

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// TestManifests: the stream holds a Secret, a Deployment and a Service
// that decode strictly into the API types and refer to one another.
func TestManifests(t *testing.T) {
	hostKey := "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
	out, err := Manifests(Env{Name: "web", Namespace: "dev", Image: "r.example/web@sha256:00", HostKey: []byte(hostKey),
		AuthorizedKeys: []string{"ssh-ed25519 AAAA a", "ssh-ed25519 BBBB b"}, Ports: []int{80, 3000}})
	if err != nil {
		t.Fatal(err)
	}
	var objs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			objs = append(objs, doc)
		}
	}
	if len(objs) != 3 {
		t.Fatalf("%d objects:\n%s", len(objs), out)
	}
	var sec corev1.Secret
	var dep appsv1.Deployment
	var svc corev1.Service
	for i, target := range []any{&sec, &dep, &svc} {
		if err := yaml.UnmarshalStrict(objs[i], target); err != nil {
			t.Fatalf("object %d: %v", i, err)
		}
	}
	if sec.Kind != "Secret" || sec.StringData["host_key"] != hostKey || sec.StringData["authorized_keys"] != "ssh-ed25519 AAAA a\nssh-ed25519 BBBB b\n" {
		t.Errorf("secret: %+v", sec)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if dep.Namespace != "dev" || c.Image != "r.example/web@sha256:00" || *dep.Spec.Replicas != 1 || dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("deployment: %+v", dep)
	}
	if v := dep.Spec.Template.Spec.Volumes[0]; v.Secret == nil || v.Secret.SecretName != sec.Name || c.VolumeMounts[0].MountPath != "/etc/devbox" {
		t.Errorf("secret volume: %+v %+v", v, c.VolumeMounts)
	}
	if len(svc.Spec.Ports) != 3 || svc.Spec.Ports[0].Port != 22 || svc.Spec.Ports[2].Port != 3000 || svc.Spec.Selector["app.kubernetes.io/name"] != "web" {
		t.Errorf("service: %+v", svc.Spec)
	}
	if svc.Spec.Selector["app.kubernetes.io/name"] != dep.Spec.Template.Labels["app.kubernetes.io/name"] {
		t.Error("the Service does not select the Deployment's pods")
	}
	for i, p := range svc.Spec.Ports {
		if p.TargetPort.StrVal != c.Ports[i].Name {
			t.Errorf("service port %s targets %q, the container's is %q", p.Name, p.TargetPort.StrVal, c.Ports[i].Name)
		}
	}
	pod := dep.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken || pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("the pod mounts the service account token or gets service links")
	}
	if _, err := Manifests(Env{Name: "1web", Image: "x"}); err == nil {
		t.Error("a name that cannot name a Service was accepted")
	}
}

// TestSecretPasswordHash: the login's hash, which the pushed image does
// not carry, is in the Secret only when there is one.
func TestSecretPasswordHash(t *testing.T) {
	for _, hash := range []string{"$6$salt$hash", ""} {
		sec := secret(Env{Name: "web", HostKey: []byte("k"), PasswordHash: hash})
		got, ok := sec.StringData["password_hash"]
		if hash == "" && ok {
			t.Errorf("no password, yet the Secret has password_hash %q", got)
		}
		if hash != "" && got != hash+"\n" {
			t.Errorf("password_hash = %q, want %q", got, hash+"\n")
		}
	}
}
