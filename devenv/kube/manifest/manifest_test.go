package manifest

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/devbox/devbox/devenv/kube"
)

// TestManifests: the stream holds a Secret, a Deployment and a Service
// that decode strictly into the API types and refer to one another.
func TestManifests(t *testing.T) {
	hostKey := "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
	out, err := YAML(kube.Env{Name: "web", Namespace: "dev", Image: "r.example/web@sha256:00", HostKey: []byte(hostKey),
		AuthorizedKeys: []string{"ssh-ed25519 AAAA a", "ssh-ed25519 BBBB b"}, Ports: []int{80, 3000}})
	if err != nil {
		t.Fatal(err)
	}
	objs := documents(t, out)
	if len(objs) != 3 {
		t.Fatalf("%d objects:\n%s", len(objs), out)
	}
	var sec corev1.Secret
	var dep appsv1.Deployment
	var svc corev1.Service
	decodeStrict(t, objs, 0, &sec, &dep, &svc)
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
	if _, err := YAML(kube.Env{Name: "1web", Image: "x"}); err == nil {
		t.Error("a name that cannot name a Service was accepted")
	}
}

// TestSecretPasswordHash: the login's hash, which the pushed image does
// not carry, is in the Secret only when there is one.
func TestSecretPasswordHash(t *testing.T) {
	for _, hash := range []string{"$6$salt$hash", ""} {
		sec := secret(kube.Env{Name: "web", HostKey: []byte("k"), PasswordHash: hash})
		got, ok := sec.StringData["password_hash"]
		if hash == "" && ok {
			t.Errorf("no password, yet the Secret has password_hash %q", got)
		}
		if hash != "" && got != hash+"\n" {
			t.Errorf("password_hash = %q, want %q", got, hash+"\n")
		}
	}
}

// documents are the YAML stream's documents.
func documents(t *testing.T, out []byte) [][]byte {
	t.Helper()
	var objs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			objs = append(objs, doc)
		}
	}
}

// decodeStrict decodes objs[from:] into targets, one each, refusing any
// field the API types do not have.
func decodeStrict(t *testing.T, objs [][]byte, from int, targets ...any) {
	t.Helper()
	for i, target := range targets {
		if err := yaml.UnmarshalStrict(objs[from+i], target); err != nil {
			t.Fatalf("object %d: %v", from+i, err)
		}
	}
}

// TestServiceManifests: a service is a claim per named volume, a
// Deployment and a headless Service of its name, decoding strictly; one
// built here or binding a host path is an error that names it.
func TestServiceManifests(t *testing.T) {
	uid := int64(999)
	db := kube.Service{Name: "db", Image: "postgres:16", Args: []string{"postgres", "-c", "fsync=off"}, Env: map[string]string{"POSTGRES_PASSWORD": "pw"},
		RunAsUser: &uid, RunAsGroup: &uid,
		Volumes: []kube.Volume{{Claim: "proj_devcontainer_pgdata", Target: "/var/lib/postgresql/data"}, {Target: "/run", Tmpfs: true}},
		Probe:   &kube.Probe{Args: []string{"/bin/sh", "-c", "pg_isready"}, PeriodSeconds: 2, TimeoutSeconds: 5, FailureThreshold: 10}}
	out, err := YAML(kube.Env{Name: "web", Image: "r/web@sha256:00", HostKey: []byte("k"), Services: []kube.Service{db}})
	if err != nil {
		t.Fatal(err)
	}
	objs := documents(t, out)
	if len(objs) != 6 {
		t.Fatalf("%d objects, want the environment's 3 and db's claim, Deployment and Service:\n%s", len(objs), out)
	}
	var pvc corev1.PersistentVolumeClaim
	var dep appsv1.Deployment
	var svc corev1.Service
	decodeStrict(t, objs, 3, &pvc, &dep, &svc)
	if pvc.Name != "proj-devcontainer-pgdata" || pvc.Spec.Resources.Requests.Storage().String() != "100Mi" {
		t.Errorf("claim: %+v", pvc)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if dep.Name != "db" || c.Image != "postgres:16" || len(c.Args) != 3 || c.Env[0].Name != "POSTGRES_PASSWORD" || *c.SecurityContext.RunAsUser != 999 {
		t.Errorf("deployment: %+v", c)
	}
	if p := c.ReadinessProbe; p == nil || p.Exec.Command[2] != "pg_isready" || p.PeriodSeconds != 2 || p.FailureThreshold != 10 {
		t.Errorf("probe: %+v", c.ReadinessProbe)
	}
	vols := dep.Spec.Template.Spec.Volumes
	if vols[0].PersistentVolumeClaim.ClaimName != pvc.Name || vols[1].EmptyDir == nil || vols[1].EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("volumes: %+v", vols)
	}
	if svc.Name != "db" || svc.Spec.ClusterIP != corev1.ClusterIPNone || svc.Spec.Selector["app.kubernetes.io/name"] != dep.Spec.Template.Labels["app.kubernetes.io/name"] {
		t.Errorf("service: %+v", svc.Spec)
	}
	for _, c := range []struct {
		svc  kube.Service
		want string
	}{
		{kube.Service{Name: "built"}, "built here"},
		{kube.Service{Name: "b", Image: "x", Volumes: []kube.Volume{{HostPath: "/srv", Target: "/srv"}}}, "binds /srv"},
		{kube.Service{Name: "Bad", Image: "x"}, "cannot name a Service"},
	} {
		if _, err := YAML(kube.Env{Name: "web", Image: "x", Services: []kube.Service{c.svc}}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.svc.Name, err, c.want)
		}
	}
}
