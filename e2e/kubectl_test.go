//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: IMAGE
        ports: [{containerPort: 80}]
      - name: side
        image: busybox:1.36
`

// TestIntegrationKubectlVerbs drives the API server with the real kubectl
// the way the seeds do: apply, get in every output format, patch, label,
// scale, explain, server-side apply, dry runs, validation and deletes.
func TestIntegrationKubectlVerbs(t *testing.T) {
	l := theLab
	const p = "e2e-kubectl"
	l.startProfile(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	dir := t.TempDir()
	manifest := filepath.Join(dir, "deploy.yaml")
	write := func(image string) {
		t.Helper()
		if err := os.WriteFile(manifest, []byte(strings.Replace(deploymentYAML, "IMAGE", image, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write("nginx:1.7.9")
	if out := k("apply", "-f", manifest); !strings.Contains(out, "deployment.apps/web created") {
		t.Errorf("apply: %q", out)
	}
	if out := k("apply", "-f", manifest); !strings.Contains(out, "deployment.apps/web unchanged") {
		t.Errorf("second apply: %q", out)
	}
	write("nginx:1.12")
	if out := k("apply", "-f", manifest); !strings.Contains(out, "deployment.apps/web configured") {
		t.Errorf("apply of a change: %q", out)
	}
	if got := k("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.metadata.generation} {.spec.strategy.rollingUpdate.maxSurge} {.spec.template.spec.containers[1].imagePullPolicy}"); got != "nginx:1.12 2 25% IfNotPresent" {
		t.Errorf("applied deployment = %q, want image, generation 2 and kube-apiserver's defaults", got)
	}
	table := k("get", "deploy", "-o", "wide")
	for _, want := range []string{"READY", "UP-TO-DATE", "AVAILABLE", "CONTAINERS", "IMAGES", "SELECTOR", "nginx:1.12,busybox:1.36", "app=web"} {
		if !strings.Contains(table, want) {
			t.Errorf("get deploy -o wide lacks %q:\n%s", want, table)
		}
	}
	if got := k("get", "deployments.apps", "-l", "tier=front", "-o", "name"); strings.TrimSpace(got) != "deployment.apps/web" {
		t.Errorf("label selector: %q", got)
	}
	if got := k("get", "deploy", "-o", "custom-columns=N:.metadata.name,R:.spec.replicas", "--no-headers"); strings.Join(strings.Fields(got), " ") != "web 2" {
		t.Errorf("custom-columns: %q", got)
	}

	// Chunked lists: a continue token and remainingItemCount, the next
	// page at the first page's resourceVersion.
	var page1, page2 struct {
		Metadata struct {
			ResourceVersion    string `json:"resourceVersion"`
			Continue           string `json:"continue"`
			RemainingItemCount *int64 `json:"remainingItemCount"`
		} `json:"metadata"`
		Items []struct{ Metadata struct{ Name string } } `json:"items"`
	}
	if err := json.Unmarshal([]byte(k("get", "--raw", "/api/v1/namespaces?limit=1")), &page1); err != nil || len(page1.Items) != 1 || page1.Metadata.Continue == "" ||
		page1.Metadata.RemainingItemCount == nil || *page1.Metadata.RemainingItemCount < 3 {
		t.Errorf("first page of namespaces: %+v, %v", page1, err)
	}
	if err := json.Unmarshal([]byte(k("get", "--raw", "/api/v1/namespaces?limit=500&continue="+page1.Metadata.Continue)), &page2); err != nil ||
		page1.Metadata.RemainingItemCount == nil || int64(len(page2.Items)) != *page1.Metadata.RemainingItemCount || page2.Metadata.ResourceVersion != page1.Metadata.ResourceVersion || page2.Metadata.Continue != "" {
		t.Errorf("rest of the namespaces after %+v: %+v, %v", page1.Metadata, page2, err)
	}
	if r := l.kubectlResult(t, p, "get", "--raw", "/api/v1/namespaces?resourceVersionMatch=NotOlderThan"); r.code == 0 || !strings.Contains(r.stderr, "resourceVersionMatch is forbidden unless resourceVersion is provided") {
		t.Errorf("resourceVersionMatch without resourceVersion: %s", r)
	}

	// Validation: unknown fields rejected like kube-apiserver (Strict), bad
	// objects get 422 with the field path.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndatta:\n  a: b\n"), 0o644)
	if r := l.kubectlResult(t, p, "apply", "-f", bad); r.code == 0 || !strings.Contains(r.stderr, `unknown field "datta"`) {
		t.Errorf("unknown field: %s", r)
	}
	if r := l.kubectlResult(t, p, "create", "deployment", "Bad_Name", "--image=x"); r.code == 0 || !strings.Contains(r.stderr, "metadata.name: Invalid value") {
		t.Errorf("invalid name: %s", r)
	}

	// Patches of all three kinds, label, annotate, scale.
	k("patch", "deploy", "web", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.13"}]}}}}`)
	k("patch", "deploy", "web", "--type=merge", "-p", `{"metadata":{"labels":{"patched":"merge"}}}`)
	k("patch", "deploy", "web", "--type=json", "-p", `[{"op":"replace","path":"/spec/revisionHistoryLimit","value":3}]`)
	k("label", "deploy", "web", "team=blue")
	k("annotate", "deploy", "web", "note=hello")
	k("scale", "deploy", "web", "--replicas=4")
	got := k("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].image}|{.metadata.labels.patched}|{.spec.revisionHistoryLimit}|{.metadata.labels.team}|{.metadata.annotations.note}|{.spec.replicas}")
	if got != "nginx:1.13 busybox:1.36|merge|3|blue|hello|4" {
		t.Errorf("after patches, label, annotate, scale: %q", got)
	}

	// Server-side apply with field ownership.
	ssa := filepath.Join(dir, "ssa.yaml")
	os.WriteFile(ssa, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\ndata:\n  a: \"1\"\n"), 0o644)
	k("apply", "--server-side", "--field-manager=alice", "-f", ssa)
	if got := k("get", "cm", "owned", "-o", "jsonpath={.metadata.managedFields[0].manager}"); got != "alice" {
		t.Errorf("managedFields manager = %q", got)
	}
	os.WriteFile(ssa, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\ndata:\n  a: \"2\"\n"), 0o644)
	if r := l.kubectlResult(t, p, "apply", "--server-side", "--field-manager=bob", "-f", ssa); r.code == 0 || !strings.Contains(r.stderr, "conflict") {
		t.Errorf("conflicting server-side apply: %s", r)
	}
	k("apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", ssa)

	// Dry runs store nothing.
	if out := k("create", "configmap", "dry", "--from-literal=a=b", "--dry-run=server", "-o", "yaml"); !strings.Contains(out, "name: dry") {
		t.Errorf("server dry-run output: %q", out)
	}
	if r := l.kubectlResult(t, p, "get", "cm", "dry"); r.code == 0 {
		t.Errorf("a server dry-run stored the object")
	}
	if out := k("delete", "cm", "owned", "--dry-run=server"); !strings.Contains(out, `configmap "owned" deleted (server dry run)`) {
		t.Errorf("server dry-run delete: %q", out)
	}
	if r := l.kubectlResult(t, p, "get", "cm", "owned"); r.code != 0 {
		t.Errorf("a server dry-run delete removed the object: %s", r)
	}

	// Discovery and OpenAPI.
	res := k("api-resources")
	for _, want := range []string{"deployments", "deploy", "apps/v1", "configmaps", "cm", "namespaces", "customresourcedefinitions"} {
		if !strings.Contains(res, want) {
			t.Errorf("api-resources lacks %q", want)
		}
	}
	if ex := k("explain", "pod.spec.containers.image"); !strings.Contains(ex, "Container image name") {
		t.Errorf("explain: %q", ex)
	}
	k("create", "secret", "generic", "creds", "--from-literal=user=admin")
	if got := k("get", "secret", "creds", "-o", "jsonpath={.type} {.data.user}"); got != "Opaque YWRtaW4=" {
		t.Errorf("secret = %q", got)
	}

	// Namespaces: content goes with them; creating in a missing one fails.
	k("create", "namespace", "scratch")
	k("create", "configmap", "inside", "-n", "scratch", "--from-literal=a=b")
	k("delete", "namespace", "scratch")
	if r := l.kubectlResult(t, p, "get", "namespace", "scratch"); r.code == 0 {
		t.Errorf("namespace scratch still exists after delete")
	}
	if r := l.kubectlResult(t, p, "create", "configmap", "x", "-n", "nowhere"); r.code == 0 || !strings.Contains(r.stderr, `namespaces "nowhere" not found`) {
		t.Errorf("create in a missing namespace: %s", r)
	}
	if got := k("get", "sa,cm", "-n", "default", "-o", "name"); !strings.Contains(got, "serviceaccount/default") || !strings.Contains(got, "configmap/kube-root-ca.crt") {
		t.Errorf("default namespace lacks the default ServiceAccount or kube-root-ca.crt: %q", got)
	}

	// Services get addresses from the service range.
	k("expose", "deploy", "web", "--port=80", "--type=NodePort")
	svc := k("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}")
	if f := strings.Fields(svc); len(f) != 2 || !strings.HasPrefix(f[0], "10.") || len(f[1]) != 5 {
		t.Errorf("service addresses = %q", svc)
	}

	if out := k("delete", "-f", manifest); !strings.Contains(out, `deployment.apps "web" deleted`) {
		t.Errorf("delete -f: %q", out)
	}
}
