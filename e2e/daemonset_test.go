//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestIntegrationDaemonSet: one pod on each of three nodes, replaced node
// by node when the template changes.
func TestIntegrationDaemonSet(t *testing.T) {
	l := theLab
	const p = "e2e-ds"
	l.startProfile(t, p, "--nodes=3")
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	k("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s")
	manifest := filepath.Join(t.TempDir(), "ds.yaml")
	write := func(msg string) {
		os.WriteFile(manifest, []byte(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: a, image: `+busyboxRef+`, command: ["sh", "-c", "echo `+msg+`; sleep 3600"]}
`), 0o644)
	}
	write("v1")
	k("apply", "-f", manifest)
	k("rollout", "status", "ds/agent", "--timeout=90s")
	nodes := strings.Fields(k("get", "pods", "-l", "app=agent", "-o", "jsonpath={.items[*].spec.nodeName}"))
	sort.Strings(nodes)
	if strings.Join(nodes, " ") != p+" "+p+"-m02 "+p+"-m03" {
		t.Errorf("daemon pods on %v, want one on each node", nodes)
	}
	if got := k("get", "ds", "agent", "-o", "jsonpath={.status.desiredNumberScheduled} {.status.numberReady}"); got != "3 3" {
		t.Errorf("status desired/ready = %q", got)
	}
	old := strings.Fields(k("get", "pods", "-l", "app=agent", "-o", "name"))
	write("v2")
	k("apply", "-f", manifest)
	k("rollout", "status", "ds/agent", "--timeout=120s")
	k(append([]string{"wait", "--for=delete", "--timeout=60s"}, old...)...)
	logs := func(want string) {
		t.Helper()
		for _, pod := range strings.Fields(k("get", "pods", "-l", "app=agent", "-o", "name")) {
			if out := k("logs", pod); out != want+"\n" {
				t.Errorf("%s logs %q, want %s", pod, out, want)
			}
		}
	}
	logs("v2")
	// History and rollback through ControllerRevisions.
	hist := k("rollout", "history", "ds/agent")
	if !strings.Contains(hist, "\n1 ") || !strings.Contains(hist, "\n2 ") {
		t.Errorf("rollout history:\n%s", hist)
	}
	if got := k("get", "controllerrevisions", "-l", "app=agent", "-o", "jsonpath={range .items[*]}{.revision} {end}"); got != "1 2 " && got != "2 1 " {
		t.Errorf("controller revisions: %q", got)
	}
	if out := k("rollout", "history", "ds/agent", "--revision=1"); !strings.Contains(out, "echo v1") {
		t.Errorf("revision 1 does not show the v1 template:\n%s", out)
	}
	old = strings.Fields(k("get", "pods", "-l", "app=agent", "-o", "name"))
	k("rollout", "undo", "ds/agent")
	k("rollout", "status", "ds/agent", "--timeout=120s")
	k(append([]string{"wait", "--for=delete", "--timeout=60s"}, old...)...)
	logs("v1")
	if hist := k("rollout", "history", "ds/agent"); !strings.Contains(hist, "\n2 ") || !strings.Contains(hist, "\n3 ") || strings.Contains(hist, "\n1 ") {
		t.Errorf("rollout history after undo (revision 1 becomes 3):\n%s", hist)
	}
}
