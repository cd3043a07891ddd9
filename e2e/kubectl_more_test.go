//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestIntegrationKubectlMore drives the rest of the kubectl verbs a user of
// the seeds and of issue 4 runs, against one cluster: every `create`
// generator, apply of directories, kustomize and stdin with pruning, the
// get output formats, watches, field selectors per kind, the tables of
// kube-apiserver's printers, describe of every workload and of the node,
// deletes with each cascade, edits, replaces, scales, diffs, waits, CSR
// approval and the informational verbs.
func TestIntegrationKubectlMore(t *testing.T) {
	l := theLab
	const p = "kubectl2"
	l.startProfile(t, p)
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	fails := func(args ...string) result {
		t.Helper()
		r := l.kubectlResult(t, p, args...)
		if r.code == 0 {
			t.Errorf("kubectl %s succeeded, want an error:\n%s", strings.Join(args, " "), r)
		}
		return r
	}
	has := func(what, out string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("%s lacks %q:\n%s", what, w, out)
			}
		}
	}
	// header returns the first line's column names.
	header := func(out string) string {
		line, _, _ := strings.Cut(out, "\n")
		return strings.Join(strings.Fields(line), " ")
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	// The workload first, so its pods start while the rest runs.
	k("create", "deployment", "web", "--image="+busyboxRef, "--replicas=2", "--", "sleep", "3600")
	k("create", "deployment", "www", "--image="+busyboxRef, "--port=8080", "--", "httpd", "-f", "-p", "8080", "-h", "/www")
	k("expose", "deployment", "www", "--port=80", "--target-port=8080")

	// apply: a directory, several files, stdin, kustomize, then prune.
	cm := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  labels: {set: pruned}\ndata: {k: v}\n"
	}
	write("m/a.yaml", cm("ma"))
	bFile := write("m/b.yaml", cm("mb"))
	has("apply -f dir", k("apply", "-f", filepath.Join(dir, "m")), "configmap/ma created", "configmap/mb created")
	has("apply -f -f", k("apply", "-f", filepath.Join(dir, "m/a.yaml"), "-f", bFile), "configmap/ma unchanged", "configmap/mb unchanged")
	if r := l.kubectlEnv(t, p, nil, strings.NewReader(cm("mstdin")), "apply", "-f", "-"); r.code != 0 || !strings.Contains(r.stdout, "configmap/mstdin created") {
		t.Errorf("apply -f -: %s", r)
	}
	write("kz/kustomization.yaml", "namePrefix: kz-\nlabels:\n- pairs: {app: kz}\nresources: [cm.yaml]\nconfigMapGenerator:\n- name: gen\n  literals: [x=y]\n")
	write("kz/cm.yaml", cm("one"))
	has("apply -k", k("apply", "-k", filepath.Join(dir, "kz")), "configmap/kz-one created", "configmap/kz-gen-")
	os.Remove(bFile)
	pruned := k("apply", "--prune", "-l", "set=pruned", "-f", filepath.Join(dir, "m"))
	has("apply --prune", pruned, "configmap/mb pruned", "configmap/mstdin pruned", "configmap/kz-one pruned")
	if got := k("get", "cm", "-l", "set=pruned", "-o", "name"); strings.TrimSpace(got) != "configmap/ma" {
		t.Errorf("after prune: %q", got)
	}

	// create: every generator the seeds and the issue name.
	envFile := write("app.env", "MODE=prod\nLEVEL=3\n")
	write("files/one.txt", "1")
	write("files/two.txt", "2")
	k("create", "configmap", "cfg", "--from-literal=a=b", "--from-file="+envFile, "--from-file="+filepath.Join(dir, "files"))
	if got := k("get", "cm", "cfg", "-o", "go-template={{len .data}} {{.data.a}} {{index .data \"two.txt\"}}"); got != "4 b 2" {
		t.Errorf("configmap from literal, file and dir = %q", got)
	}
	k("create", "configmap", "envs", "--from-env-file="+envFile)
	if got := k("get", "cm", "envs", "-o", "jsonpath={.data.MODE},{.data.LEVEL}"); got != "prod,3" {
		t.Errorf("configmap from env file = %q", got)
	}
	k("create", "secret", "generic", "pgpassword", "--from-literal", "PGPASSWORD=s3cret", "--from-file="+filepath.Join(dir, "files"))
	if got := k("get", "secret", "pgpassword", "-o", "jsonpath={.data.PGPASSWORD}"); got != base64.StdEncoding.EncodeToString([]byte("s3cret")) {
		t.Errorf("secret from literal = %q", got)
	}
	certFile, keyFile := writeTestCert(t, dir)
	k("create", "secret", "tls", "web-tls", "--cert="+certFile, "--key="+keyFile)
	k("create", "secret", "docker-registry", "regcred", "--docker-server=registry.test", "--docker-username=u", "--docker-password=p")
	secrets := k("get", "secrets")
	if header(secrets) != "NAME TYPE DATA AGE" {
		t.Errorf("get secrets header: %q", header(secrets))
	}
	has("get secrets", secrets, "kubernetes.io/tls", "kubernetes.io/dockerconfigjson")
	k("create", "namespace", "team")
	k("create", "service", "clusterip", "sc", "--tcp=80:8080")
	k("create", "service", "nodeport", "sn", "--tcp=80:8080")
	k("create", "service", "loadbalancer", "slb", "--tcp=80:8080")
	k("create", "service", "externalname", "se", "--external-name=db.example.test")
	k("create", "cronjob", "tick", "--image="+busyboxRef, "--schedule=*/30 * * * *", "--", "true")
	k("create", "job", "once", "--image="+busyboxRef, "--", "true")
	has("create job --from", k("create", "job", "manual", "--from=cronjob/tick"), "job.batch/manual created")
	k("create", "role", "reader", "--verb=get,list", "--resource=pods")
	k("create", "clusterrole", "node-reader", "--verb=get", "--resource=nodes")
	k("create", "rolebinding", "read-pods", "--role=reader", "--user=bob", "--serviceaccount=default:default")
	k("create", "serviceaccount", "--namespace", "kube-system", "tiller")
	k("create", "clusterrolebinding", "tiller-cluster-rule", "--clusterrole=cluster-admin", "--serviceaccount=kube-system:tiller")
	k("create", "quota", "small", "--hard=pods=20,services=10")
	k("create", "priorityclass", "high", "--value=1000", "--description=important")
	k("create", "poddisruptionbudget", "web-pdb", "--selector=app=web", "--min-available=1")
	k("create", "ingress", "web", "--class=nanokube", "--rule=web.test/api*=sc:80,tls=web-tls", "--rule=web.test/=sc:80")

	// Tables of kube-apiserver's printers.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "cs"}, "NAME STATUS MESSAGE ERROR"},
		{[]string{"get", "apiservices"}, "NAME SERVICE AVAILABLE AGE"},
		{[]string{"get", "svc"}, "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE"},
		{[]string{"get", "ingress"}, "NAME CLASS HOSTS ADDRESS PORTS AGE"},
		{[]string{"get", "leases", "-n", "kube-node-lease"}, "NAME HOLDER AGE"},
		{[]string{"get", "endpointslices"}, "NAME ADDRESSTYPE PORTS ENDPOINTS AGE"},
		{[]string{"get", "cronjobs"}, "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE"},
		{[]string{"get", "rs", "-o", "wide"}, "NAME DESIRED CURRENT READY AGE CONTAINERS IMAGES SELECTOR"},
		{[]string{"get", "clusterroles", "node-reader"}, "NAME CREATED AT"},
	} {
		if got := header(k(c.args...)); got != c.want {
			t.Errorf("kubectl %s header = %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
	}
	cs := k("get", "componentstatuses")
	for _, name := range []string{"scheduler", "controller-manager", "etcd-0"} {
		if !regexp.MustCompile(`(?m)^` + name + `\s+Healthy\s`).MatchString(cs) {
			t.Errorf("componentstatuses: %s is not Healthy:\n%s", name, cs)
		}
	}
	if svcs := k("get", "apiservices"); !regexp.MustCompile(`(?m)^v1\.apps\s+Local\s+True\s`).MatchString(svcs) {
		t.Errorf("apiservices: v1.apps is not Local True:\n%s", svcs)
	}
	has("get ingress", k("get", "ingress", "web"), "nanokube", "web.test", "80, 443")
	has("get svc", k("get", "svc", "se", "sn"), "ExternalName", "db.example.test", "NodePort", "80:3")
	if r := l.kubectlResult(t, p, "get", "endpoints", "sc"); r.code != 0 || !strings.Contains(r.stderr, "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice") {
		t.Errorf("get endpoints lacks kube-apiserver's deprecation warning: %s", r)
	}
	if got := k("get", "ingress", "web", "-o", "jsonpath={.spec.rules[0].http.paths[0].pathType} {.spec.rules[0].http.paths[0].path}"); got != "Prefix /api" {
		t.Errorf("ingress path = %q", got)
	}

	// The workload: wait, watch, field selectors, sorting, chunking.
	k("wait", "--for=condition=Available", "deploy/web", "--timeout=90s")
	k("wait", "--for=jsonpath={.status.readyReplicas}=2", "deploy/web", "--timeout=30s")
	k("wait", "--for=condition=complete", "job/once", "job/manual", "--timeout=90s")
	k("wait", "--for=condition=Available", "deploy/www", "--timeout=90s")
	// The API server's proxy to a service and to a pod, as kubectl proxy
	// and cluster-info's links use it.
	if got := k("get", "--raw", "/api/v1/namespaces/default/services/www:80/proxy/"); got != "hello from nanokube\n" {
		t.Errorf("services/www:80/proxy/ = %q", got)
	}
	wwwPod := strings.TrimPrefix(strings.TrimSpace(k("get", "pods", "-l", "app=www", "-o", "name")), "pod/")
	if got := k("get", "--raw", "/api/v1/namespaces/default/pods/"+wwwPod+":8080/proxy/index.html"); got != "hello from nanokube\n" {
		t.Errorf("pods/%s:8080/proxy/index.html = %q", wwwPod, got)
	}
	if r := fails("get", "--raw", "/api/v1/namespaces/default/services/sc/proxy/"); !strings.Contains(r.stderr, "ServiceUnavailable") && !strings.Contains(r.stderr, "no endpoints available") {
		t.Errorf("proxy to a service without endpoints: %s", r)
	}
	k("delete", "deploy", "www")
	k("delete", "svc", "www")
	k("wait", "--for=delete", "pod/"+wwwPod, "--timeout=60s")
	running := k("get", "pods", "--field-selector=status.phase=Running", "-o", "name")
	if n := len(strings.Fields(running)); n != 2 {
		t.Errorf("pods with status.phase=Running: %q", running)
	}
	if got := k("get", "pods", "-A", "--field-selector=spec.nodeName="+p+",metadata.namespace=default", "-o", "name"); len(strings.Fields(got)) != 4 {
		t.Errorf("pods on node %s in default: %q", p, got)
	}
	if r := fails("get", "pods", "--field-selector=spec.image=x"); !strings.Contains(r.stderr, "field label not supported: spec.image") {
		t.Errorf("unsupported field selector: %s", r)
	}
	has("events by field", k("get", "events", "--field-selector=involvedObject.kind=Job,reason=Completed,type=Normal"), "job/once", "Job completed")
	if got := k("get", "jobs", "--field-selector=status.successful=1", "-o", "name"); !strings.Contains(got, "job.batch/once") {
		t.Errorf("jobs with status.successful=1: %q", got)
	}
	if got := k("get", "svc", "--field-selector=spec.type=NodePort", "-o", "name"); strings.TrimSpace(got) != "service/sn" {
		t.Errorf("services with spec.type=NodePort: %q", got)
	}
	if got := k("get", "cm", "--sort-by=.metadata.name", "--chunk-size=1", "-o", "name"); !strings.HasPrefix(got, "configmap/cfg\nconfigmap/envs\n") {
		t.Errorf("sorted, chunked list: %q", got)
	}
	pods := k("get", "pods", "-l", "app=web", "-L", "app", "--show-labels")
	if header(pods) != "NAME READY STATUS RESTARTS AGE APP LABELS" {
		t.Errorf("get pods -L --show-labels header: %q", header(pods))
	}
	all := k("get", "all")
	has("get all", all, "pod/web-", "service/kubernetes", "deployment.apps/web", "replicaset.apps/web-", "job.batch/once", "cronjob.batch/tick")
	has("get all -A", k("get", "all", "-A"), "kube-system", "service/kube-dns")
	has("get -o json", k("get", "deploy", "web", "-o", "json"), `"kind": "Deployment"`, `"progressDeadlineSeconds": 600`)
	has("get -o yaml", k("get", "svc", "sn", "-o", "yaml"), "type: NodePort", "externalTrafficPolicy: Cluster")
	ev := k("get", "events")
	if header(ev) != "LAST SEEN TYPE REASON OBJECT MESSAGE" {
		t.Errorf("get events header: %q", header(ev))
	}
	has("kubectl events", k("events", "--for=deployment/web"), "ScalingReplicaSet", "Scaled up replica set web-")

	// Watches: -w with --output-watch-events sees the scale-up, --watch-only
	// only what happens after it starts.
	l.watchUntil(t, p, []string{"get", "pods", "-l", "app=web", "-w", "--output-watch-events"},
		func() { k("scale", "deploy", "web", "--replicas=3") },
		regexp.MustCompile(`^ADDED\s+web-`), 3)
	l.watchUntil(t, p, []string{"get", "cm", "--watch-only", "-v=6"},
		func() { k("create", "configmap", "late") },
		regexp.MustCompile(`^late\s`), 1)

	// describe: each kind prints its sections and its events at the bottom.
	for _, c := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"describe", "node", p}, []string{"Capacity:", "Allocatable:", "System Info:", "Conditions:", "Addresses:", "InternalIP:",
			"Non-terminated Pods:", "web-", "Allocated resources:", "Events:", "Starting kubelet.", "NodeReady", "Registered Node " + p + " in Controller"}},
		{[]string{"describe", "pod", "-l", "app=web"}, []string{"Node:", "Containers:", "Conditions:", "QoS Class:", "Events:", "Started container"}},
		{[]string{"describe", "deploy", "web"}, []string{"Replicas:", "RollingUpdateStrategy:", "NewReplicaSet:", "ScalingReplicaSet"}},
		{[]string{"describe", "rs", "-l", "app=web"}, []string{"Controlled By:  Deployment/web", "Pods Status:", "SuccessfulCreate"}},
		{[]string{"describe", "svc", "sn"}, []string{"NodePort", "TargetPort:", "Endpoints:"}},
		{[]string{"describe", "ns", "default"}, []string{"Status:", "Resource Quotas", "small"}},
		{[]string{"describe", "cm", "cfg"}, []string{"Data", "MODE=prod"}},
		{[]string{"describe", "secret", "web-tls"}, []string{"Type:  kubernetes.io/tls", "tls.crt:", "bytes"}},
		{[]string{"describe", "ingress", "web"}, []string{"Ingress Class:    nanokube", "web.test", "/api", "sc:80", "web-tls terminates web.test"}},
		{[]string{"describe", "job", "once"}, []string{"Pods Statuses:", "1 Succeeded", "Completed"}},
		{[]string{"describe", "cronjob", "tick"}, []string{"Schedule:", "*/30 * * * *", "Active Jobs:"}},
		{[]string{"describe", "clusterrolebinding", "tiller-cluster-rule"}, []string{"ClusterRole", "cluster-admin", "ServiceAccount  tiller  kube-system"}},
	} {
		out := k(c.args...)
		has("kubectl "+strings.Join(c.args, " "), out, c.wants...)
	}

	dump := filepath.Join(dir, "dump")
	k("cluster-info", "dump", "--output-directory="+dump)
	for _, f := range []string{"nodes.json", "default/pods.json", "default/events.json", "kube-system/services.json"} {
		if _, err := os.Stat(filepath.Join(dump, f)); err != nil {
			t.Errorf("cluster-info dump: %v", err)
		}
	}
	if logs, _ := filepath.Glob(filepath.Join(dump, "default", "web-*", "logs.txt")); len(logs) != 3 {
		t.Errorf("cluster-info dump has logs of %d web pods, want 3", len(logs))
	}

	// label, annotate, patch (status and scale subresources), edit, replace.
	k("label", "cm", "ma", "tier=a")
	if r := fails("label", "cm", "ma", "tier=b"); !strings.Contains(r.stderr, "--overwrite is false") {
		t.Errorf("label without --overwrite: %s", r)
	}
	k("label", "cm", "ma", "tier=b", "--overwrite")
	k("annotate", "cm", "ma", "note=x")
	k("annotate", "cm", "ma", "note=y", "--overwrite")
	if got := k("get", "cm", "ma", "-o", "jsonpath={.metadata.labels.tier} {.metadata.annotations.note}"); got != "b y" {
		t.Errorf("after label/annotate --overwrite: %q", got)
	}
	k("label", "cm", "ma", "tier-")
	k("annotate", "cm", "ma", "note-")
	if got := k("get", "cm", "ma", "-o", "jsonpath={.metadata.labels.tier}{.metadata.annotations.note}"); got != "" {
		t.Errorf("removed label/annotation still there: %q", got)
	}
	k("patch", "deploy", "web", "--subresource=scale", "--type=merge", "-p", `{"spec":{"replicas":2}}`)
	if got := k("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"); got != "2" {
		t.Errorf("replicas after a scale patch = %q", got)
	}
	// Status through its subresource only (no attacher runs here to own it).
	write("va.yaml", "apiVersion: storage.k8s.io/v1\nkind: VolumeAttachment\nmetadata: {name: va1}\nspec: {attacher: csi.test, nodeName: "+p+", source: {persistentVolumeName: pv1}}\n")
	k("apply", "-f", filepath.Join(dir, "va.yaml"))
	k("patch", "volumeattachment", "va1", "--subresource=status", "--type=merge", "-p", `{"status":{"attached":true}}`)
	k("patch", "volumeattachment", "va1", "--type=merge", "-p", `{"status":{"attached":false}}`)
	if got := k("get", "volumeattachment", "va1", "-o", "jsonpath={.status.attached}"); got != "true" {
		t.Errorf("attached after a status patch and a main-resource patch of status = %q, want true", got)
	}
	// Writes through subresources are recorded with their subresource.
	if got := k("get", "deploy", "web", "-o", "jsonpath={range .metadata.managedFields[*]}{.manager}/{.subresource} {end}"); !strings.Contains(got, "kubectl-patch/scale ") {
		t.Errorf("deployment managedFields after a scale patch: %q", got)
	}
	if got := k("get", "volumeattachment", "va1", "-o", "jsonpath={range .metadata.managedFields[*]}{.manager}/{.subresource} {end}"); !strings.Contains(got, "kubectl-patch/status ") {
		t.Errorf("volumeattachment managedFields after a status patch: %q", got)
	}
	if got := header(k("get", "volumeattachments")); got != "NAME ATTACHER PV NODE ATTACHED AGE" {
		t.Errorf("get volumeattachments header: %q", got)
	}
	editor := write("editor.sh", "#!/bin/sh\nsed -i 's/k: v/k: edited/' \"$1\"\n")
	os.Chmod(editor, 0o755)
	if r := l.kubectlEnv(t, p, []string{"KUBE_EDITOR=" + editor}, nil, "edit", "cm", "ma"); r.code != 0 || !strings.Contains(r.stdout, "configmap/ma edited") {
		t.Errorf("edit: %s", r)
	}
	live := write("ma-live.yaml", k("get", "cm", "ma", "-o", "yaml"))
	if got := k("get", "cm", "ma", "-o", "jsonpath={.data.k}"); got != "edited" {
		t.Errorf("after edit: %q", got)
	}
	b, _ := os.ReadFile(live)
	os.WriteFile(live, []byte(strings.Replace(string(b), "k: edited", "k: replaced", 1)), 0o644)
	has("replace", k("replace", "-f", live), "configmap/ma replaced")
	uid := k("get", "cm", "ma", "-o", "jsonpath={.metadata.uid}")
	has("replace --force", k("replace", "--force", "-f", live), `configmap "ma" deleted`, "configmap/ma replaced")
	if got := k("get", "cm", "ma", "-o", "jsonpath={.metadata.uid} {.data.k}"); strings.HasPrefix(got, uid) || !strings.HasSuffix(got, " replaced") {
		t.Errorf("replace --force kept the object (uid %s): %q", uid, got)
	}

	// diff exit codes, dry runs.
	same := write("same.yaml", cm("ma")+"")
	k("apply", "-f", same)
	if r := l.kubectlResult(t, p, "diff", "-f", same); r.code != 0 {
		t.Errorf("diff of an applied file: %s", r)
	}
	changed := write("changed.yaml", strings.Replace(cm("ma"), "k: v", "k: changed", 1))
	if r := l.kubectlResult(t, p, "diff", "-f", changed); r.code != 1 || !strings.Contains(r.stdout, "+  k: changed") {
		t.Errorf("diff of a change: %s", r)
	}
	has("dry-run=client", k("create", "deploy", "dry", "--image="+busyboxRef, "--dry-run=client", "-o", "yaml"), "name: dry", "strategy: {}")
	has("dry-run=server", k("create", "deploy", "dry", "--image="+busyboxRef, "--dry-run=server", "-o", "yaml"), "uid:", "maxSurge: 25%", "terminationMessagePath: /dev/termination-log")
	fails("get", "deploy", "dry")

	// scale of every scalable kind, with --current-replicas.
	write("scalable.yaml", `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: st}
spec:
  serviceName: st
  replicas: 1
  selector: {matchLabels: {app: st}}
  template:
    metadata: {labels: {app: st}}
    spec: {terminationGracePeriodSeconds: 1, containers: [{name: c, image: `+busyboxRef+`, command: [sleep, "3600"]}]}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec:
  replicas: 1
  selector: {app: rc}
  template:
    metadata: {labels: {app: rc}}
    spec: {terminationGracePeriodSeconds: 1, containers: [{name: c, image: `+busyboxRef+`, command: [sleep, "3600"]}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: ds}}
  template:
    metadata: {labels: {app: ds}}
    spec: {terminationGracePeriodSeconds: 1, containers: [{name: c, image: `+busyboxRef+`, command: [sleep, "3600"]}]}
`)
	k("apply", "-f", filepath.Join(dir, "scalable.yaml"))
	if got := header(k("get", "rc", "-o", "wide")); got != "NAME DESIRED CURRENT READY AGE CONTAINERS IMAGES SELECTOR" {
		t.Errorf("get rc -o wide header = %q", got)
	}
	if r := fails("scale", "rc", "rc", "--current-replicas=5", "--replicas=2"); !strings.Contains(r.stderr, "Expected replicas to be 5, was 1") {
		t.Errorf("scale with a wrong --current-replicas: %s", r)
	}
	k("scale", "rc", "rc", "--current-replicas=1", "--replicas=2")
	k("scale", "sts", "st", "--replicas=2")
	k("scale", "rs", "-l", "app=web", "--replicas=2")
	k("wait", "--for=jsonpath={.status.readyReplicas}=2", "rc/rc", "--timeout=90s")
	if got := k("get", "sts", "st", "-o", "jsonpath={.spec.replicas}"); got != "2" {
		t.Errorf("statefulset replicas after scale = %q", got)
	}
	has("describe sts", k("describe", "sts", "st"), "Replicas:", "2 desired", "Pods Status:", "Update Strategy:")
	has("describe rc", k("describe", "rc", "rc"), "Replicas:", "2 current / 2 desired", "SuccessfulCreate")
	has("describe ds", k("describe", "ds", "ds"), "Desired Number of Nodes Scheduled: 1", "SuccessfulCreate")
	revs := k("get", "controllerrevisions")
	if got := header(revs); got != "NAME CONTROLLER REVISION AGE" {
		t.Errorf("get controllerrevisions header: %q", got)
	}
	has("get controllerrevisions", revs, "daemonset.apps/ds", "statefulset.apps/st")

	// deletes: orphan keeps the ReplicaSet, foreground and background take
	// the pods, force deletion is immediate, -l, --all, --wait.
	rs := strings.TrimSpace(k("get", "rs", "-l", "app=web", "-o", "name"))
	var saved map[string]any
	if err := json.Unmarshal([]byte(k("get", "deploy", "web", "-o", "json")), &saved); err != nil {
		t.Fatal(err)
	}
	k("delete", "deploy", "web", "--cascade=orphan")
	if got := strings.TrimSpace(k("get", "rs", "-l", "app=web", "-o", "name")); got != rs {
		t.Errorf("after an orphaning delete the ReplicaSet is %q, want %q", got, rs)
	}
	// Made again, the deployment adopts its orphaned ReplicaSet rather
	// than rolling out a new one (upstream's ClaimReplicaSets).
	delete(saved, "status")
	saved["metadata"] = map[string]any{"name": "web", "labels": saved["metadata"].(map[string]any)["labels"]}
	again, err := json.Marshal(saved)
	if err != nil {
		t.Fatal(err)
	}
	k("create", "-f", write("web-again.json", string(again)))
	eventually(t, "the orphaned ReplicaSet adopted", 30*time.Second, func() (bool, string) {
		got := k("get", rs, "-o", "jsonpath={.metadata.ownerReferences[*].kind}")
		return got == "Deployment", got
	})
	k("rollout", "status", "deploy/web", "--timeout=60s")
	if got := strings.TrimSpace(k("get", "rs", "-l", "app=web", "-o", "name")); got != rs {
		t.Errorf("after re-creating the deployment the ReplicaSets are %q, want the adopted %q", got, rs)
	}
	k("delete", "deploy", "web", "--cascade=orphan")
	k("delete", rs, "--cascade=foreground", "--wait")
	if got := k("get", "pods", "-l", "app=web", "-o", "name"); got != "" {
		t.Errorf("pods left after a foreground delete of their ReplicaSet: %q", got)
	}
	has("force delete", k("delete", "pod", "-l", "app=rc", "--grace-period=0", "--force"), "force deleted")
	k("delete", "sts", "st", "--cascade=background")
	k("delete", "ds", "ds", "--wait")
	k("delete", "rc", "rc")
	k("wait", "--for=delete", "pod/st-0", "pod/st-1", "--timeout=60s")
	has("delete --all", k("delete", "cm", "--all"), `configmap "cfg" deleted`, `configmap "ma" deleted`)

	// A user's certificate the Kubernetes way: a CSR, approved through the
	// approval subresource, signed by the cluster CA, then used.
	csrPEM, keyPEM := testCSR(t)
	write("csr.yaml", "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {name: alice}\nspec:\n  signerName: kubernetes.io/kube-apiserver-client\n  expirationSeconds: 86400\n  usages: [client auth]\n  request: "+base64.StdEncoding.EncodeToString(csrPEM)+"\n")
	k("create", "-f", filepath.Join(dir, "csr.yaml"))
	if got := header(k("get", "csr")); got != "NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION" {
		t.Errorf("get csr header: %q", got)
	}
	has("get csr", k("get", "csr", "alice"), "Pending", "24h", "kubernetes.io/kube-apiserver-client")
	l.watchUntil(t, p, []string{"get", "csr", "alice", "-w"}, func() {
		has("certificate approve", k("certificate", "approve", "alice"), "certificatesigningrequest.certificates.k8s.io/alice approved")
	}, regexp.MustCompile(`\sApproved,Issued\s*$`), 1)
	crt, err := base64.StdEncoding.DecodeString(k("get", "csr", "alice", "-o", "jsonpath={.status.certificate}"))
	if err != nil {
		t.Fatal(err)
	}
	server := k("config", "view", "--minify", "--raw", "-o", "jsonpath={.clusters[0].cluster.server}")
	caData := k("config", "view", "--minify", "--raw", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}")
	aliceConfig := write("alice.kubeconfig", "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: '"+server+"', certificate-authority-data: "+caData+"}}]\n"+
		"users: [{name: alice, user: {client-certificate-data: "+base64.StdEncoding.EncodeToString(crt)+", client-key-data: "+base64.StdEncoding.EncodeToString(keyPEM)+"}}]\n"+
		"contexts: [{name: alice, context: {cluster: c, user: alice}}]\ncurrent-context: alice\n")
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if r := l.run(ctx, nil, "kubectl", "--kubeconfig="+aliceConfig, "get", "--raw", "/api"); r.code != 0 || !strings.Contains(r.stdout, `"APIVersions"`) {
		t.Errorf("a request with alice's certificate: %s", r)
	}
	if r := fails("certificate", "deny", "alice"); !strings.Contains(r.stderr, "already Approved") {
		t.Errorf("deny of an approved request: %s", r)
	}

	// Discovery and the informational verbs.
	wide := k("api-resources", "-o", "wide")
	has("api-resources -o wide", wide, "VERBS", "CATEGORIES", "create,delete,deletecollection,get,list,patch,update,watch", "get,list")
	if got := strings.Fields(k("api-resources", "--namespaced=false", "--api-group=rbac.authorization.k8s.io", "-o", "name")); strings.Join(got, " ") != "clusterrolebindings.rbac.authorization.k8s.io clusterroles.rbac.authorization.k8s.io" {
		t.Errorf("api-resources --namespaced=false --api-group: %q", got)
	}
	if got := k("api-resources", "--verbs=get", "--api-group=", "-o", "name"); !strings.Contains(got, "componentstatuses\n") || strings.Contains(got, "bindings\n") {
		t.Errorf("api-resources --verbs=get: %q", got)
	}
	has("api-versions", k("api-versions"), "apps/v1\n", "networking.k8s.io/v1\n", "resource.k8s.io/v1\n", "v1\n")
	has("explain", k("explain", "deployment.spec.strategy.rollingUpdate"), "maxSurge", "maxUnavailable")
	has("explain --recursive", k("explain", "pod.spec.containers", "--recursive"), "livenessProbe", "httpGet", "timeoutSeconds")
	if got := k("auth", "can-i", "create", "pods"); strings.TrimSpace(got) != "yes" {
		t.Errorf("auth can-i create pods = %q", got)
	}
	if got := k("auth", "can-i", "*", "*", "--all-namespaces"); strings.TrimSpace(got) != "yes" {
		t.Errorf("auth can-i '*' '*' --all-namespaces = %q", got)
	}
	has("auth can-i --list", k("auth", "can-i", "--list"), "*.*", "[*]")
	if got := header(k("get", "events.events.k8s.io")); got != "LAST SEEN TYPE REASON OBJECT MESSAGE" {
		t.Errorf("get events.events.k8s.io header: %q", got)
	}
	has("cluster-info", k("cluster-info"), "Kubernetes control plane is running at https://", "CoreDNS is running at")
	has("version", k("version"), "Server Version: v1.37")
	has("config view --minify", k("config", "view", "--minify"), "current-context: "+p, "name: "+p)
}

// watchUntil runs a kubectl watch, calls act once the watch shows its
// first line, and returns when want has matched n output lines (failing
// the test when the deadline passes first).
func (l *lab) watchUntil(t *testing.T, profile string, args []string, act func(), want *regexp.Regexp, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := l.Command(ctx, "kubectl", append([]string{"--context", profile}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errOut, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	// With -v=6 kubectl logs its requests: once the list it starts the
	// watch from is done, nothing that happens later can be missed.
	listed, stderrDone := make(chan struct{}), make(chan struct{})
	defer func() { <-stderrDone }()
	defer cancel()
	go func() {
		defer close(stderrDone)
		sc := bufio.NewScanner(errOut)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "200 OK") {
				once = true
				close(listed)
			}
		}
	}()
	sc := bufio.NewScanner(out)
	var seen []string
	acted, matched := false, 0
	if strings.Contains(strings.Join(args, " "), "--watch-only") {
		// Nothing is printed before the first change.
		select {
		case <-listed:
		case <-ctx.Done():
			t.Fatalf("kubectl %s never listed", strings.Join(args, " "))
		}
		act()
		acted = true
	}
	for sc.Scan() {
		line := sc.Text()
		seen = append(seen, line)
		if want.MatchString(line) {
			matched++
		}
		if matched >= n {
			return
		}
		if !acted {
			act()
			acted = true
		}
	}
	t.Errorf("kubectl %s: %d of %d lines matching %s; saw:\n%s", strings.Join(args, " "), matched, n, want, strings.Join(seen, "\n"))
}

// writeTestCert makes a self-signed certificate and key for `create secret tls`.
func writeTestCert(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "web.test"}, DNSNames: []string{"web.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// testCSR is a PEM certificate request for user alice and its key.
func testCSR(t *testing.T) ([]byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "alice", Organization: []string{"dev"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
