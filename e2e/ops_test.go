//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestIntegrationOps runs the operations topics on one cluster: resource
// limits (a memory hog is OOMKilled), `kubectl top`, the
// HorizontalPodAutoscaler, and cordon/drain with a PodDisruptionBudget.
func TestIntegrationOps(t *testing.T) {
	l := theLab
	const p = "ops"
	// Nodes count as gone after 20s without a lease renewal (the agents
	// renew every 10s), not upstream's 40s.
	l.startProfile(t, p, "--extra-config=controller-manager.node-monitor-grace-period=20s")
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	apply := func(yaml string) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "m.yaml")
		if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		k("apply", "-f", f)
	}

	t.Run("OOMKilled", func(t *testing.T) {
		// One hog that is restarted (lastState) and one that is not (state).
		apply(`apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  containers:
  - name: hog
    image: ` + busyboxRef + `
    command: ["sh", "-c", "tail /dev/zero"]
    resources: {limits: {memory: 32Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: hog-once}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: ` + busyboxRef + `
    command: ["sh", "-c", "tail /dev/zero"]
    resources: {limits: {memory: 32Mi}}
`)
		k("wait", "--for=jsonpath={.status.containerStatuses[0].lastState.terminated.reason}=OOMKilled", "pod/hog", "--timeout=60s")
		if code := k("get", "pod", "hog", "-o", "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}"); code != "137" {
			t.Errorf("OOMKilled exit code = %q, want 137", code)
		}
		if n := k("get", "pod", "hog", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"); n == "0" {
			t.Errorf("the hog was not restarted")
		}
		k("wait", "--for=jsonpath={.status.phase}=Failed", "pod/hog-once", "--timeout=60s")
		term := k("get", "pod", "hog-once", "-o", "jsonpath={.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode} {.status.qosClass}")
		if term != "OOMKilled 137 Burstable" {
			t.Errorf("hog-once terminated as %q, want \"OOMKilled 137 Burstable\"", term)
		}
		if out := k("get", "pod", "hog-once"); !strings.Contains(out, "OOMKilled") {
			t.Errorf("kubectl get pod does not show OOMKilled:\n%s", out)
		}
		k("delete", "pod", "hog", "hog-once", "--wait=true")
	})

	t.Run("Top", func(t *testing.T) {
		k("create", "deployment", "idle", "--image="+busyboxRef, "--", "sleep", "3600")
		k("rollout", "status", "deployment/idle", "--timeout=60s")
		pods := k("top", "pod", "-l", "app=idle")
		if !regexp.MustCompile(`(?m)^idle-\S+\s+\d+m\s+\d+Mi\s*$`).MatchString(pods) {
			t.Errorf("kubectl top pod:\n%s", pods)
		}
		ctrs := k("top", "pod", "-l", "app=idle", "--containers")
		if !regexp.MustCompile(`(?m)^idle-\S+\s+busybox\s+\d+m\s+\d+Mi\s*$`).MatchString(ctrs) {
			t.Errorf("kubectl top pod --containers:\n%s", ctrs)
		}
		t.Logf("kubectl top pod --containers:\n%s", ctrs)
		nodes := k("top", "node")
		t.Logf("kubectl top node:\n%s", nodes)
		if !regexp.MustCompile(`(?m)^` + p + `\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%\s*$`).MatchString(nodes) {
			t.Errorf("kubectl top node:\n%s", nodes)
		}
		k("delete", "deployment", "idle")
	})

	t.Run("HPA", func(t *testing.T) {
		// A CPU burner capped at twice its request: 200% against a 50%
		// target asks for 4 pods, the HPA's max of 3 wins.
		apply(`apiVersion: apps/v1
kind: Deployment
metadata: {name: burn}
spec:
  selector: {matchLabels: {app: burn}}
  template:
    metadata: {labels: {app: burn}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: ` + busyboxRef + `
        command: ["sh", "-c", "while :; do :; done"]
        resources: {requests: {cpu: 100m}, limits: {cpu: 200m}}
`)
		k("rollout", "status", "deployment/burn", "--timeout=60s")
		// kubectl 1.32's autoscale writes autoscaling/v1; the same HPA in
		// autoscaling/v2 while the API server serves v2 only.
		if strings.Contains(k("api-versions"), "autoscaling/v1\n") {
			k("autoscale", "deployment", "burn", "--cpu-percent=50", "--min=1", "--max=3")
		} else {
			apply(`apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: burn}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burn}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
`)
		}
		// Scale down soon after the load goes (the default window is 5m).
		k("patch", "hpa.v2.autoscaling", "burn", "--type=merge", "-p", `{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":5}}}}`)
		if w := k("get", "hpa.v2.autoscaling", "burn", "-o", "jsonpath={.spec.behavior.scaleDown.stabilizationWindowSeconds} {.spec.behavior.scaleUp.policies[*].type}"); w != "5 Pods Percent" {
			t.Errorf("behavior after the patch (with the API's defaults) = %q", w)
		}
		k("wait", "--for=jsonpath={.spec.replicas}=3", "deployment/burn", "--timeout=120s")
		k("wait", "--for=jsonpath={.status.desiredReplicas}=3", "hpa/burn", "--timeout=30s")
		table := k("get", "hpa", "burn")
		t.Logf("kubectl get hpa:\n%s", table)
		if !regexp.MustCompile(`burn\s+Deployment/burn\s+cpu: \d+%/50%\s+1\s+3\s+\d\s+`).MatchString(table) {
			t.Errorf("kubectl get hpa:\n%s", table)
		}
		conds := k("get", "hpa", "burn", "-o", `jsonpath={range .status.conditions[*]}{.type}={.status}/{.reason}{"\n"}{end}`)
		for _, want := range []string{"AbleToScale=True/", "ScalingActive=True/ValidMetricFound", "ScalingLimited=True/TooManyReplicas"} {
			if !strings.Contains(conds, want) {
				t.Errorf("hpa conditions lack %q:\n%s", want, conds)
			}
		}
		msgs := k("get", "events", "--field-selector", "reason=SuccessfulRescale", "-o", "jsonpath={.items[*].message}")
		if !strings.Contains(msgs, "New size: 3; reason: cpu resource utilization (percentage of request) above target") {
			t.Errorf("SuccessfulRescale events: %q", msgs)
		}
		// The load goes away: the pods now sleep.
		k("patch", "deployment", "burn", "--type=json", "-p", `[{"op":"replace","path":"/spec/template/spec/containers/0/command","value":["sleep","3600"]}]`)
		k("wait", "--for=jsonpath={.spec.replicas}=1", "deployment/burn", "--timeout=180s")
		msgs = k("get", "events", "--field-selector", "reason=SuccessfulRescale", "-o", "jsonpath={.items[*].message}")
		if !strings.Contains(msgs, "New size: 1; reason: All metrics below target") {
			t.Errorf("SuccessfulRescale events after the load: %q", msgs)
		}
		k("delete", "hpa", "burn")
		k("delete", "deployment", "burn")
	})

	t.Run("Drain", func(t *testing.T) {
		k("create", "deployment", "web", "--image="+busyboxRef, "--", "sleep", "3600")
		k("rollout", "status", "deployment/web", "--timeout=60s")
		k("create", "poddisruptionbudget", "web", "--selector=app=web", "--min-available=1")
		k("wait", "--for=jsonpath={.status.currentHealthy}=1", "pdb/web", "--timeout=30s")
		if pdb := k("get", "pdb", "web"); !regexp.MustCompile(`web\s+1\s+N/A\s+0\s+`).MatchString(pdb) {
			t.Errorf("kubectl get pdb:\n%s", pdb)
		}
		k("cordon", p)
		if nodes := k("get", "node", p); !strings.Contains(nodes, "Ready,SchedulingDisabled") {
			t.Errorf("cordoned node:\n%s", nodes)
		}
		k("wait", "--for=jsonpath={.spec.taints[0].key}=node.kubernetes.io/unschedulable", "node/"+p, "--timeout=30s")
		// The budget blocks the eviction until it allows one.
		r := l.kubectlResult(t, p, "drain", p, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=12s")
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "Cannot evict pod as it would violate the pod's disruption budget.") {
			t.Errorf("drain with a blocking budget: %s", r)
		}
		k("patch", "pdb", "web", "--type=merge", "-p", `{"spec":{"minAvailable":0}}`)
		k("wait", "--for=jsonpath={.status.disruptionsAllowed}=1", "pdb/web", "--timeout=30s")
		out := k("drain", p, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s")
		if !strings.Contains(out, "evicted") || !strings.Contains(out, "node/"+p+" drained") {
			t.Errorf("drain:\n%s", out)
		}
		// The replacement waits for a schedulable node.
		k("wait", "--for=jsonpath={.status.unavailableReplicas}=1", "deployment/web", "--timeout=30s")
		k("uncordon", p)
		k("rollout", "status", "deployment/web", "--timeout=60s")
		k("delete", "pdb", "web")
		k("delete", "deployment", "web")
	})

	t.Run("NodeLifecycle", func(t *testing.T) {
		// A node no agent runs never renews a lease: it becomes Unknown,
		// gets the unreachable taints, and its pod is evicted once its
		// toleration runs out.
		apply(`apiVersion: v1
kind: Node
metadata: {name: ghost}
---
apiVersion: v1
kind: Pod
metadata: {name: haunted}
spec:
  nodeName: ghost
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
  containers:
  - {name: c, image: ` + busyboxRef + `}
`)
		k("wait", `--for=jsonpath={.status.conditions[?(@.type=="Ready")].status}=Unknown`, "node/ghost", "--timeout=60s")
		if out := k("get", "node", "ghost"); !regexp.MustCompile(`ghost\s+NotReady\s`).MatchString(out) {
			t.Errorf("kubectl get node ghost:\n%s", out)
		}
		k("wait", "--for=jsonpath={.metadata.deletionTimestamp}", "pod/haunted", "--timeout=30s")
		taints := k("get", "node", "ghost", "-o", `jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}`)
		for _, want := range []string{"node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"} {
			if !strings.Contains(taints, want) {
				t.Errorf("ghost's taints %q lack %s", taints, want)
			}
		}
		if msgs := k("get", "events", "--field-selector", "reason=TaintManagerEviction", "-o", "jsonpath={.items[*].message}"); !strings.Contains(msgs, "Marking for deletion Pod default/haunted") {
			t.Errorf("TaintManagerEviction events: %q", msgs)
		}
		// The tolerations the API server adds for not-ready (300s) stay.
		if tol := k("get", "pod", "haunted", "-o", `jsonpath={.spec.tolerations[?(@.key=="node.kubernetes.io/not-ready")].tolerationSeconds}`); tol != "300" {
			t.Errorf("default not-ready toleration = %q, want 300", tol)
		}
		if ready := k("get", "node", p, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); ready != "True" {
			t.Errorf("the real node is %s after the grace period", ready)
		}
		k("delete", "pod", "haunted", "--force", "--grace-period=0")
		k("delete", "node", "ghost")
	})
}
