//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIntegrationStatefulSet: on two nodes, a headless Service and a StatefulSet of three
// with a volumeClaimTemplate on the default class "standard". Pods come up
// in order with stable names, DNS records and claims; a deleted pod comes
// back to its own data; a partitioned rollout updates only the ordinals
// above the partition; the status is kube-controller-manager's; changing
// immutable fields is a 422; scaling down keeps the claims; deleting a
// claim of reclaimPolicy Delete removes its directory; a
// WaitForFirstConsumer claim takes a pre-created volume only on the node
// that volume is pinned to.
func TestIntegrationStatefulSet(t *testing.T) {
	l := theLab
	const p = "e2e-sts"
	l.startProfile(t, p, "--nodes=2")
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	k("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s")
	if got := k("get", "storageclass", "standard", "-o", `jsonpath={.metadata.annotations.storageclass\.kubernetes\.io/is-default-class} {.provisioner} {.volumeBindingMode}`); got != "true nanokube.io/hostpath WaitForFirstConsumer" {
		t.Errorf("default storage class: %q", got)
	}
	manifest := filepath.Join(t.TempDir(), "sts.yaml")
	os.WriteFile(manifest, []byte(`apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80, name: web}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: `+busyboxRef+`
        command: ["sh", "-c", "hostname >> /data/hosts; touch /tmp/ready; sleep 3600"]
        readinessProbe:
          exec: {command: ["cat", "/tmp/ready"]}
          periodSeconds: 1
        volumeMounts: [{name: www, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: standard
      resources: {requests: {storage: 1Gi}}
`), 0o644)
	k("apply", "-f", manifest)
	k("rollout", "status", "sts/web", "--timeout=120s")

	// Ordered start: each pod was made only after the one before was Ready.
	created := map[string]time.Time{}
	ready := map[string]time.Time{}
	for _, n := range []string{"web-0", "web-1", "web-2"} {
		out := k("get", "pod", n, "-o", `jsonpath={.metadata.creationTimestamp} {.status.conditions[?(@.type=="Ready")].lastTransitionTime}`)
		f := strings.Fields(out)
		if len(f) != 2 {
			t.Fatalf("pod %s timestamps: %q", n, out)
		}
		created[n], _ = time.Parse(time.RFC3339, f[0])
		ready[n], _ = time.Parse(time.RFC3339, f[1])
	}
	if created["web-1"].Before(ready["web-0"]) || created["web-2"].Before(ready["web-1"]) {
		t.Errorf("not ordered: created %v, ready %v", created, ready)
	}
	if got := k("get", "pod", "web-1", "-o", `jsonpath={.spec.hostname}.{.spec.subdomain} {.metadata.labels.statefulset\.kubernetes\.io/pod-name} {.metadata.labels.apps\.kubernetes\.io/pod-index}`); got != "web-1.nginx web-1 1" {
		t.Errorf("web-1 identity: %q", got)
	}
	for _, n := range []string{"web-0", "web-1", "web-2"} {
		if got := k("exec", n, "--", "cat", "/data/hosts"); got != n+"\n" {
			t.Errorf("%s volume holds %q", n, got)
		}
	}
	if got := k("get", "pvc", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.phase} {end}"); got != "www-web-0=Bound www-web-1=Bound www-web-2=Bound " {
		t.Errorf("claims: %q", got)
	}
	if got := k("get", "pv", "-o", "jsonpath={range .items[*]}{.status.phase}/{.spec.claimRef.name}/{.spec.storageClassName} {end}"); strings.Count(got, "Bound/www-web-") != 3 || strings.Count(got, "/standard") != 3 {
		t.Errorf("volumes: %q", got)
	}
	t.Log(k("get", "pvc,pv"))
	// The pods were bound only after their claims: no mount ever failed.
	if ev := k("get", "events", "--field-selector=reason=FailedMount", "-o", `jsonpath={range .items[*]}{.involvedObject.name}: {.message} (first {.firstTimestamp}){"\n"}{end}`); ev != "" {
		t.Errorf("FailedMount events:\n%s%s", ev, k("get", "pods,pvc,pv", "-o", "wide"))
	}
	if sc := k("get", "sc"); !strings.HasPrefix(sc, "NAME") || !strings.Contains(sc, "standard (default)   nanokube.io/hostpath   Delete          WaitForFirstConsumer   true") {
		t.Errorf("kubectl get sc:\n%s", sc)
	}
	// Expansion: the class allows it, the claim's capacity follows.
	k("patch", "pvc", "www-web-0", "-p", `{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`)
	k("wait", "--for=jsonpath={.status.capacity.storage}=2Gi", "pvc/www-web-0", "--timeout=30s")

	// Stable DNS through the headless service.
	ip0 := k("get", "pod", "web-0", "-o", "jsonpath={.status.podIP}")
	if out := k("exec", "web-2", "--", "nslookup", "web-0.nginx.default.svc.cluster.local"); !strings.Contains(out, ip0) {
		t.Errorf("nslookup web-0.nginx from web-2 does not give %s:\n%s", ip0, out)
	}

	// A deleted pod comes back with the same name and data.
	uid := k("get", "pod", "web-1", "-o", "jsonpath={.metadata.uid}")
	k("delete", "pod", "web-1", "--wait=true")
	eventually(t, "web-1 recreated and Ready", 90*time.Second, func() (bool, string) {
		r := l.kubectlResult(t, p, "get", "pod", "web-1", "-o", `jsonpath={.metadata.uid} {.status.conditions[?(@.type=="Ready")].status}`)
		return r.code == 0 && !strings.HasPrefix(r.stdout, uid) && strings.HasSuffix(r.stdout, " True"), r.String()
	})
	// Its volume is a directory on one node: the pod returns there.
	pinned := k("get", "pv", k("get", "pvc", "www-web-1", "-o", "jsonpath={.spec.volumeName}"), "-o", "jsonpath={.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}")
	if node := k("get", "pod", "web-1", "-o", "jsonpath={.spec.nodeName}"); node != pinned || node == "" {
		t.Errorf("web-1 came back on %q, its volume is on %q", node, pinned)
	}
	if got := k("exec", "web-1", "--", "cat", "/data/hosts"); got != "web-1\nweb-1\n" {
		t.Errorf("web-1 after recreation holds %q, want its earlier line and a new one", got)
	}

	// Partitioned rollout: only web-2 takes the new template.
	k("patch", "sts", "web", "-p", `{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}`)
	k("set", "env", "sts/web", "VERSION=2")
	if out := k("rollout", "status", "sts/web", "--timeout=120s"); !strings.Contains(out, "partitioned roll out complete: 1 new pods have been updated") {
		t.Errorf("rollout status with partition: %q", out)
	}
	env := func(n string) string {
		return k("get", "pod", n, "-o", `jsonpath={.spec.containers[0].env[?(@.name=="VERSION")].value}`)
	}
	if env("web-0") != "" || env("web-1") != "" || env("web-2") != "2" {
		t.Errorf("VERSION after the partitioned rollout: web-0 %q web-1 %q web-2 %q", env("web-0"), env("web-1"), env("web-2"))
	}
	k("patch", "sts", "web", "-p", `{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}`)
	if out := k("rollout", "status", "sts/web", "--timeout=120s"); !strings.Contains(out, "roll out complete: 3 new pods have been updated") {
		t.Errorf("rollout status: %q", out)
	}
	if env("web-0") != "2" || env("web-1") != "2" {
		t.Errorf("VERSION after the full rollout: web-0 %q web-1 %q", env("web-0"), env("web-1"))
	}
	hist := k("rollout", "history", "sts/web")
	if !strings.Contains(hist, "\n1 ") || !strings.Contains(hist, "\n2 ") {
		t.Errorf("rollout history:\n%s", hist)
	}
	k("rollout", "undo", "sts/web")
	k("rollout", "status", "sts/web", "--timeout=120s")
	if env("web-0") != "" || env("web-2") != "" {
		t.Errorf("VERSION after undo: web-0 %q web-2 %q", env("web-0"), env("web-2"))
	}

	// Status like kube-controller-manager's: the finished rollout made the
	// update revision current; no conditions.
	eventually(t, "statefulset status settled", 30*time.Second, func() (bool, string) {
		out := k("get", "sts", "web", "-o", `jsonpath={.metadata.generation}={.status.observedGeneration} {.status.replicas} {.status.readyReplicas} {.status.availableReplicas} {.status.currentReplicas} {.status.updatedReplicas} {.status.collisionCount} {.status.currentRevision}={.status.updateRevision} [{.status.conditions}]`)
		f := strings.Fields(out)
		return len(f) == 9 && strings.Split(f[0], "=")[0] == strings.Split(f[0], "=")[1] && strings.Join(f[1:7], " ") == "3 3 3 3 3 0" &&
			strings.Split(f[7], "=")[0] == strings.Split(f[7], "=")[1] && strings.HasSuffix(out, " []"), out
	})

	// Immutable fields: kube-apiserver's 422 Invalid with the field path.
	r := l.kubectlResult(t, p, "patch", "sts", "web", "--type=json", "-p", `[{"op":"replace","path":"/spec/volumeClaimTemplates/0/spec/resources/requests/storage","value":"5Gi"}]`)
	if want := `The StatefulSet "web" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden`; r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("changing volumeClaimTemplates: %s\nwant %q", r, want)
	}
	r = l.kubectlResult(t, p, "patch", "pvc", "www-web-0", "-p", `{"spec":{"accessModes":["ReadWriteMany"]}}`)
	if want := `The PersistentVolumeClaim "www-web-0" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims`; r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("changing a bound claim's access modes: %s\nwant %q", r, want)
	}

	// Scale down: highest first, the claims stay.
	pvPath := k("get", "pv", k("get", "pvc", "www-web-2", "-o", "jsonpath={.spec.volumeName}"), "-o", "jsonpath={.spec.hostPath.path}")
	k("scale", "sts", "web", "--replicas=1")
	k("wait", "--for=delete", "pod/web-2", "pod/web-1", "--timeout=60s")
	if got := k("get", "pods", "-l", "app=web", "-o", "name"); got != "pod/web-0\n" {
		t.Errorf("pods after scaling to 1: %q", got)
	}
	if got := k("get", "pvc", "-o", "jsonpath={range .items[*]}{.status.phase} {end}"); got != "Bound Bound Bound " {
		t.Errorf("claims after scaling to 1: %q", got)
	}
	if st, err := os.Stat(pvPath); err != nil || !st.IsDir() {
		t.Fatalf("volume directory %q of www-web-2: %v", pvPath, err)
	}
	// reclaimPolicy Delete: the claim's volume and directory go.
	k("delete", "pvc", "www-web-2", "--wait=true")
	eventually(t, "volume of www-web-2 deleted", 60*time.Second, func() (bool, string) {
		_, err := os.Stat(pvPath)
		out := k("get", "pv", "-o", "jsonpath={range .items[*]}{.spec.claimRef.name} {end}")
		return os.IsNotExist(err) && !strings.Contains(out, "www-web-2"), out
	})

	// WaitForFirstConsumer with a pre-created local volume pinned to the
	// second node: the pod goes where the volume is; a claim no volume
	// fits (and whose class cannot provision) keeps its pod Pending with
	// kube-scheduler's reason.
	m02 := p + "-m02"
	localDir := t.TempDir()
	localManifest := filepath.Join(t.TempDir(), "local.yaml")
	os.WriteFile(localManifest, []byte(`apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: local-m02}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: local
  hostPath: {path: `+localDir+`}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [`+m02+`]}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: local-small}
spec: {accessModes: [ReadWriteOnce], storageClassName: local, resources: {requests: {storage: 100Mi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: local-big}
spec: {accessModes: [ReadWriteOnce], storageClassName: local, resources: {requests: {storage: 5Gi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: local-user}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: `+busyboxRef+`, command: ["sh", "-c", "echo here > /data/f; sleep 3600"], volumeMounts: [{name: d, mountPath: /data}]}
  volumes: [{name: d, persistentVolumeClaim: {claimName: local-small}}]
---
apiVersion: v1
kind: Pod
metadata: {name: local-stuck}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: `+busyboxRef+`, command: ["sleep", "3600"], volumeMounts: [{name: d, mountPath: /data}]}
  volumes: [{name: d, persistentVolumeClaim: {claimName: local-big}}]
`), 0o644)
	if got := k("get", "node", m02, "-o", `jsonpath={.metadata.labels.kubernetes\.io/hostname}`); got != m02 {
		t.Fatalf("node %s hostname label %q", m02, got)
	}
	k("apply", "-f", localManifest)
	k("wait", "--for=condition=Ready", "pod/local-user", "--timeout=60s")
	if got := k("get", "pod", "local-user", "-o", "jsonpath={.spec.nodeName}"); got != m02 {
		t.Errorf("local-user on %q, its volume is on %s", got, m02)
	}
	if got := k("get", "pvc", "local-small", "-o", "jsonpath={.status.phase} {.spec.volumeName}"); got != "Bound local-m02" {
		t.Errorf("local-small: %q, want bound to local-m02", got)
	}
	if b, err := os.ReadFile(filepath.Join(localDir, "f")); err != nil || string(b) != "here\n" {
		t.Errorf("file through the local volume: %q %v", b, err)
	}
	eventually(t, "local-stuck unschedulable with the volume binding reason", 30*time.Second, func() (bool, string) {
		out := k("get", "events", "--field-selector=involvedObject.name=local-stuck,reason=FailedScheduling", "-o", "jsonpath={.items[*].message}")
		return strings.Contains(out, "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."), out
	})
	if got := k("get", "pod", "local-stuck", "-o", "jsonpath={.status.phase}/{.spec.nodeName}"); got != "Pending/" {
		t.Errorf("local-stuck: %q, want Pending and unbound", got)
	}
}
