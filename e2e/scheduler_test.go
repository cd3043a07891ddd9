//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestIntegrationScheduling: kubectl label/taint steer pods the way
// kube-scheduler would, anti-affinity spreads replicas one per node, and a
// pod that fits nowhere says why in kube-scheduler's words.
func TestIntegrationScheduling(t *testing.T) {
	l := theLab
	const p = "e2e-sched"
	l.startProfile(t, p, "--nodes=3")
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	k("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s")
	m2, m3 := p+"-m02", p+"-m03"

	k("label", "nodes", m2, "disk=ssd")
	k("taint", "nodes", m3, "dedicated=db:NoSchedule")
	manifest := filepath.Join(t.TempDir(), "pods.yaml")
	os.WriteFile(manifest, []byte(`apiVersion: v1
kind: Pod
metadata: {name: on-ssd}
spec:
  terminationGracePeriodSeconds: 0
  nodeSelector: {disk: ssd}
  containers: [{name: c, image: `+busyboxRef+`, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: db}
spec:
  terminationGracePeriodSeconds: 0
  tolerations: [{key: dedicated, operator: Equal, value: db, effect: NoSchedule}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [`+m3+`]}]
  containers: [{name: c, image: `+busyboxRef+`, command: [sleep, "3600"]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 2
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      terminationGracePeriodSeconds: 0
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - topologyKey: kubernetes.io/hostname
            labelSelector: {matchLabels: {app: spread}}
      containers: [{name: c, image: `+busyboxRef+`, command: [sleep, "3600"]}]
`), 0o644)
	k("apply", "-f", manifest)
	k("wait", "--for=condition=Ready", "pod/on-ssd", "pod/db", "--timeout=60s")
	if got := k("get", "pod", "on-ssd", "-o", "jsonpath={.spec.nodeName}"); got != m2 {
		t.Errorf("nodeSelector disk=ssd put the pod on %q, want %s", got, m2)
	}
	if got := k("get", "pod", "db", "-o", "jsonpath={.spec.nodeName}"); got != m3 {
		t.Errorf("the tolerating pod with node affinity runs on %q, want %s", got, m3)
	}
	k("rollout", "status", "deploy/spread", "--timeout=60s")
	// The taint keeps the replicas off m03, anti-affinity keeps them apart.
	nodes := strings.Fields(k("get", "pods", "-l", "app=spread", "-o", "jsonpath={.items[*].spec.nodeName}"))
	sort.Strings(nodes)
	if strings.Join(nodes, " ") != p+" "+m2 {
		t.Errorf("replicas on %v, want one on %s and one on %s", nodes, p, m2)
	}

	k("scale", "deploy/spread", "--replicas=3")
	want := "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 2 node(s) didn't match pod anti-affinity rules. " +
		"preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
	k("wait", "--for=jsonpath={.status.replicas}=3", "deploy/spread", "--timeout=60s")
	k("wait", "--for=condition=PodScheduled=false", "pod", "-l", "app=spread", "--field-selector=status.phase=Pending", "--timeout=60s")
	msg := k("get", "pods", "-l", "app=spread", "--field-selector=status.phase=Pending", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="PodScheduled")].message}`)
	if msg != want {
		t.Errorf("unschedulable message\n got: %s\nwant: %s", msg, want)
	}
	if ev := k("get", "events", "--field-selector=reason=FailedScheduling", "-o", "jsonpath={.items[*].message}"); !strings.Contains(ev, want) {
		t.Errorf("FailedScheduling events %q lack %q", ev, want)
	}
	// Removing the taint lets the third replica in.
	k("taint", "nodes", m3, "dedicated=db:NoSchedule-")
	k("rollout", "status", "deploy/spread", "--timeout=60s")
}
