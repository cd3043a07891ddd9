//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The helms the tests install with `go install`, once each: helm 3 into
// $(go env GOPATH)/bin, helm 4 into the user's cache directory (both are
// called `helm`, so they need separate directories).
const (
	helm3Module  = "helm.sh/helm/v3"
	helm3Version = "v3.22.0"
	helm4Module  = "helm.sh/helm/v4"
	helm4Version = "v4.3.2"
)

// ensureHelm returns the path of helm 3, building it into GOPATH/bin
// (outside the repository) when it is not there yet.
func ensureHelm(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env GOPATH: %v", err)
	}
	gopath := strings.Split(strings.TrimSpace(string(out)), string(os.PathListSeparator))[0]
	return ensureGoBinary(t, filepath.Join(gopath, "bin"), helm3Module, helm3Version)
}

// ensureHelm4 returns the path of helm 4, built into
// <user cache>/nanokube-e2e/helm-<version>/ (the temp dir without a user
// cache) when it is not there yet.
func ensureHelm4(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir() // no $HOME (some CI runners)
	}
	return ensureGoBinary(t, filepath.Join(cache, "nanokube-e2e", "helm-"+helm4Version), helm4Module, helm4Version)
}

// ensureGoBinary returns gobin/helm built from module@version (its
// cmd/helm), installing it with `go install` when the binary there is
// missing or was built from another version (as `go version -m` reads
// it: helm's own version string has no patch level).
func ensureGoBinary(t *testing.T, gobin, module, version string) string {
	t.Helper()
	bin := filepath.Join(gobin, "helm")
	if info, err := exec.Command("go", "version", "-m", bin).Output(); err == nil && strings.Contains(string(info), "\tmod\t"+module+"\t"+version+"\t") {
		return bin
	}
	if err := os.MkdirAll(gobin, 0o755); err != nil {
		t.Fatalf("create %s: %v", gobin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", module+"/cmd/helm@"+version)
	cmd.Dir = os.TempDir() // not inside this module
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s@%s: %v\n%s", module, version, err, out)
	}
	return bin
}

// writeChart writes a chart with a Deployment, Service, ConfigMap and
// Secret, a CRD in crds/ and a custom resource of it in templates.
func writeChart(t *testing.T, dir string) string {
	t.Helper()
	chart := filepath.Join(dir, "demo")
	files := map[string]string{
		"Chart.yaml":  "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0\"\n",
		"values.yaml": "greeting: hello\nreplicas: 2\nimage: " + busyboxRef + "\n",
		"crds/widgets.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.demo.example.com
spec:
  group: demo.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`,
		"templates/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
`,
		"templates/secret.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-secret
type: Opaque
stringData:
  password: s3cret
`,
		"templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  labels: {app: {{ .Release.Name }}-web}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}-web}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}-web}
      annotations:
        checksum/config: {{ .Values.greeting | sha256sum }}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {{ .Values.image }}
        imagePullPolicy: Never
        command: ["httpd", "-f", "-p", "8080", "-h", "/"]
        ports: [{containerPort: 8080}]
        env:
        - name: GREETING
          valueFrom: {configMapKeyRef: {name: {{ .Release.Name }}-config, key: greeting}}
`,
		"templates/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector: {app: {{ .Release.Name }}-web}
  ports: [{port: 80, targetPort: 8080}]
`,
		"templates/widget.yaml": `apiVersion: demo.example.com/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
spec:
  size: {{ .Values.replicas }}
`,
	}
	for name, body := range files {
		p := filepath.Join(chart, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return chart
}

// TestIntegrationHelm installs, upgrades, rolls back and uninstalls a chart
// with the real helm 3: release secrets, the objects, a CRD from crds/ and
// a custom resource of it, and `install --wait` with running pods.
func TestIntegrationHelm(t *testing.T) {
	helmChartFlow(t, ensureHelm(t), "helm", "Update")
}

// TestIntegrationHelm4 is the same flow with helm 4, which applies
// server-side (field manager "helm") and waits with kstatus watchers.
func TestIntegrationHelm4(t *testing.T) {
	helm := ensureHelm4(t)
	helmChartFlow(t, helm, "helm4", "Apply")
	if v, err := exec.Command(helm, "version", "--short").Output(); err != nil || !strings.HasPrefix(string(v), "v4.") {
		t.Errorf("helm 4 version = %q, %v", v, err)
	}
}

// helmChartFlow runs the chart's install, upgrade, rollback and uninstall
// with one helm on profile p; op is how that helm writes the objects as
// managedFields record it (helm 3: Update, helm 4: Apply).
func helmChartFlow(t *testing.T, helm, p, op string) {
	l := theLab
	l.startProfile(t, p)
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	h := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		r := l.run(ctx, nil, helm, append([]string{"--kube-context", p}, args...)...)
		if r.code != 0 {
			t.Fatalf("helm %s: %s", strings.Join(args, " "), r)
		}
		return r.stdout
	}
	chart := writeChart(t, t.TempDir())

	out := h("install", "demo", chart, "--wait", "--timeout", "2m")
	if !strings.Contains(out, "STATUS: deployed") || !strings.Contains(out, "REVISION: 1") {
		t.Errorf("helm install:\n%s", out)
	}
	if got := k("get", "deploy", "demo-web", "-o", "jsonpath={.status.readyReplicas}"); got != "2" {
		t.Errorf("after install --wait, readyReplicas = %q, want 2", got)
	}
	if got := k("get", "pods", "-l", "app=demo-web", "-o", "jsonpath={.items[*].status.phase}"); got != "Running Running" {
		t.Errorf("pods after install --wait: %q", got)
	}
	if got := k("get", "secret", "sh.helm.release.v1.demo.v1", "-o", "jsonpath={.type} {.metadata.labels.owner} {.metadata.labels.status}"); got != "helm.sh/release.v1 helm deployed" {
		t.Errorf("release secret = %q", got)
	}
	if got := k("get", "cm/demo-config", "secret/demo-secret", "svc/demo-web", "widget/demo-widget", "crd/widgets.demo.example.com", "-o", "name"); len(strings.Fields(got)) != 5 {
		t.Errorf("chart objects: %q", got)
	}
	if got := k("get", "cm", "demo-config", "-o", "jsonpath={.metadata.managedFields[*].manager} {.metadata.managedFields[*].operation}"); got != "helm "+op {
		t.Errorf("managedFields of the ConfigMap = %q, want manager helm, operation %s", got, op)
	}
	if got := k("get", "secret", "demo-secret", "-o", "jsonpath={.data.password}"); got != "czNjcmV0" {
		t.Errorf("secret data = %q", got)
	}
	if got := k("get", "widget", "demo-widget", "-o", "jsonpath={.spec.size} {.metadata.annotations.meta\\.helm\\.sh/release-name}"); got != "2 demo" {
		t.Errorf("widget = %q", got)
	}
	if out := h("list"); !strings.Contains(out, "demo") || !strings.Contains(out, "deployed") || !strings.Contains(out, "demo-0.1.0") {
		t.Errorf("helm list:\n%s", out)
	}

	// A server-side dry run changes nothing.
	if out := h("upgrade", "demo", chart, "--dry-run=server", "--set", "greeting=dry"); !strings.Contains(out, "dry") {
		t.Errorf("helm upgrade --dry-run=server:\n%s", out)
	}
	if got := k("get", "cm", "demo-config", "-o", "jsonpath={.data.greeting}"); got != "hello" {
		t.Errorf("greeting after a dry-run upgrade = %q", got)
	}

	out = h("upgrade", "demo", chart, "--set", "greeting=bonjour", "--set", "replicas=1", "--wait", "--timeout", "2m")
	if !strings.Contains(out, "REVISION: 2") {
		t.Errorf("helm upgrade:\n%s", out)
	}
	if got := k("get", "cm", "demo-config", "-o", "jsonpath={.data.greeting}"); got != "bonjour" {
		t.Errorf("greeting after upgrade = %q", got)
	}
	if got := k("get", "deploy/demo-web", "widget/demo-widget", "-o", "jsonpath={.items[0].spec.replicas} {.items[1].spec.size}"); got != "1 1" {
		t.Errorf("replicas and size after upgrade = %q", got)
	}
	if got := h("get", "values", "demo", "-o", "json"); !strings.Contains(got, `"greeting":"bonjour"`) {
		t.Errorf("helm get values: %q", got)
	}

	out = h("rollback", "demo", "1", "--wait", "--timeout", "2m")
	if !strings.Contains(out, "Rollback was a success") {
		t.Errorf("helm rollback: %q", out)
	}
	if got := k("get", "cm", "demo-config", "-o", "jsonpath={.data.greeting}"); got != "hello" {
		t.Errorf("greeting after rollback = %q", got)
	}
	if out := h("status", "demo"); !strings.Contains(out, "STATUS: deployed") || !strings.Contains(out, "REVISION: 3") {
		t.Errorf("helm status:\n%s", out)
	}
	if out := h("history", "demo"); !strings.Contains(out, "superseded") || !strings.Contains(out, "Rollback to 1") {
		t.Errorf("helm history:\n%s", out)
	}
	if out := h("get", "manifest", "demo"); !strings.Contains(out, "kind: Widget") || !strings.Contains(out, "name: demo-web") {
		t.Errorf("helm get manifest:\n%s", out)
	}
	if got := k("get", "secrets", "-l", "owner=helm,name=demo", "-o", "name"); len(strings.Fields(got)) != 3 {
		t.Errorf("release secrets after three revisions: %q", got)
	}

	if out := h("uninstall", "demo", "--wait"); !strings.Contains(out, `release "demo" uninstalled`) {
		t.Errorf("helm uninstall: %q", out)
	}
	if got := k("get", "deploy,svc,cm,secret,widgets", "-l", "app=demo-web", "-o", "name"); strings.TrimSpace(got) != "" {
		t.Errorf("objects left after uninstall: %q", got)
	}
	for _, obj := range []string{"cm/demo-config", "secret/demo-secret", "widget/demo-widget", "svc/demo-web", "deploy/demo-web"} {
		if r := l.kubectlResult(t, p, "get", obj); r.code == 0 {
			t.Errorf("%s still exists after uninstall", obj)
		}
	}
	if got := k("get", "secrets", "-l", "owner=helm", "-o", "name"); strings.TrimSpace(got) != "" {
		t.Errorf("release secrets after uninstall: %q", got)
	}
	k("get", "crd", "widgets.demo.example.com") // helm keeps CRDs
	// Every state (helm 4 has no --all).
	if out := h("list", "--deployed", "--failed", "--pending", "--superseded", "--uninstalled", "--uninstalling"); strings.Contains(out, "demo") {
		t.Errorf("helm list after uninstall:\n%s", out)
	}
}
