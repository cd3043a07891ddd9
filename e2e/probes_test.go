//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIntegrationProbes: a failing readiness probe keeps a pod NotReady and
// out of its Service's endpoints until it passes; a failing liveness probe
// restarts the container.
func TestIntegrationProbes(t *testing.T) {
	l := theLab
	const p = "e2e-probes"
	l.startProfile(t, p)
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	manifest := filepath.Join(t.TempDir(), "probes.yaml")
	os.WriteFile(manifest, []byte(`apiVersion: v1
kind: Pod
metadata:
  name: gated
  labels: {app: gated}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: `+busyboxRef+`
    command: ["sh", "-c", "sleep 3; echo ok > /www/ready.html; exec httpd -f -p 8080 -h /www"]
    readinessProbe:
      httpGet: {path: /ready.html, port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: dying
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: `+busyboxRef+`
    command: ["sleep", "3600"]
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
      failureThreshold: 2
`), 0o644)
	k("apply", "-f", manifest)
	k("expose", "pod", "gated", "--port=80", "--target-port=8080")
	k("wait", "--for=jsonpath={.status.phase}=Running", "pod/gated", "--timeout=60s")
	if ready := k("get", "pod", "gated", "-o", "jsonpath={.status.containerStatuses[0].ready}"); ready != "false" {
		t.Errorf("pod gated is ready before its probe passed")
	}
	k("wait", "--for=condition=Ready", "pod/gated", "--timeout=60s")
	if ep := k("get", "endpoints", "gated", "-o", "jsonpath={.subsets[0].addresses[0].ip}"); !strings.HasPrefix(ep, "10.244.") {
		t.Errorf("ready pod not in endpoints: %q", ep)
	}
	k("wait", "--for=jsonpath={.status.containerStatuses[0].restartCount}=1", "pod/dying", "--timeout=90s")
	if ev := k("get", "events", "--field-selector", "involvedObject.name=dying,reason=Killing", "-o", "jsonpath={.items[0].message}"); ev != "Container app failed liveness probe, will be restarted" {
		t.Errorf("Killing event = %q", ev)
	}
}

// TestIntegrationInitContainers: init containers run in order, to
// completion, before the app container, sharing an emptyDir.
func TestIntegrationInitContainers(t *testing.T) {
	l := theLab
	const p = "e2e-init"
	l.startProfile(t, p)
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	manifest := filepath.Join(t.TempDir(), "init.yaml")
	os.WriteFile(manifest, []byte(`apiVersion: v1
kind: Pod
metadata: {name: withinit}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: shared, emptyDir: {}}]
  initContainers:
  - {name: first, image: `+busyboxRef+`, command: ["sh", "-c", "sleep 1; echo first > /shared/msg"], volumeMounts: [{name: shared, mountPath: /shared}]}
  - {name: second, image: `+busyboxRef+`, command: ["sh", "-c", "echo second >> /shared/msg"], volumeMounts: [{name: shared, mountPath: /shared}]}
  containers:
  - {name: app, image: `+busyboxRef+`, command: ["sh", "-c", "cat /shared/msg; sleep 3600"], volumeMounts: [{name: shared, mountPath: /shared}]}
`), 0o644)
	k("apply", "-f", manifest)
	k("wait", "--for=condition=Ready", "pod/withinit", "--timeout=60s")
	if out := k("logs", "withinit", "-c", "app"); out != "first\nsecond\n" {
		t.Errorf("app saw %q, want the init containers' output in order", out)
	}
	if got := k("get", "pod", "withinit", "-o", "jsonpath={.status.initContainerStatuses[*].state.terminated.reason}"); got != "Completed Completed" {
		t.Errorf("init container states = %q", got)
	}
}
