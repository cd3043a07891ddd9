//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanokube/nanokube/hack/testimages"
)

const busyboxRef = "nanokube.local/busybox:test"

// loadBusybox builds the busybox test image and loads it into profile.
func (l *lab) loadBusybox(t *testing.T, profile string) {
	t.Helper()
	tarPath := filepath.Join(t.TempDir(), "busybox.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := testimages.BusyboxTar(f, busyboxRef); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out := l.nanokube(t, "image", "load", "-p", profile, tarPath).stdout; !strings.Contains(out, "Loaded image: "+busyboxRef) {
		t.Fatalf("image load: %q", out)
	}
}

// TestIntegrationPodsRun: a Deployment's pods run under containerd, serve
// HTTP on their pod IP, print logs, survive stop/start and kill -9 of the
// daemon, and go away with their Deployment.
func TestIntegrationPodsRun(t *testing.T) {
	l := theLab
	const p = "e2e-pods"
	l.startProfile(t, p)
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }

	if out := k("wait", "--for=condition=Ready", "node/"+p, "--timeout=60s"); !strings.Contains(out, "condition met") {
		t.Fatalf("node not ready: %q", out)
	}
	k("run", "once", "--image="+busyboxRef, "--restart=Never", "--", "sh", "-c", "echo hello from a pod; cat /etc/resolv.conf")
	k("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/once", "--timeout=60s")
	logs := k("logs", "once")
	for _, want := range []string{"hello from a pod", "nameserver 10.96.0.10", "search default.svc.cluster.local svc.cluster.local cluster.local", "options ndots:5"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs of pod once lack %q:\n%s", want, logs)
		}
	}

	dir := t.TempDir()
	manifest := filepath.Join(dir, "web.yaml")
	os.WriteFile(manifest, []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: httpd
        image: `+busyboxRef+`
        command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
        ports: [{containerPort: 8080}]
`), 0o644)
	k("apply", "-f", manifest)
	if out := k("rollout", "status", "deploy/web", "--timeout=90s"); !strings.Contains(out, "successfully rolled out") {
		t.Fatalf("rollout status: %q", out)
	}
	ips := strings.Fields(k("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].status.podIP}"))
	if len(ips) != 2 {
		t.Fatalf("pod IPs = %v", ips)
	}
	nodeNetns := "/run/nanokube/" + p + "/netns/" + p
	get := func(ip string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r := l.run(ctx, nil, "nsenter", "--net="+nodeNetns, "--", "busybox", "wget", "-qO-", "http://"+ip+":8080/")
		if r.code != 0 {
			t.Fatalf("GET pod %s from the node: %s", ip, r)
		}
		return r.stdout
	}
	for _, ip := range ips {
		if !strings.HasPrefix(ip, "10.244.0.") {
			t.Errorf("pod IP %s is outside the node's 10.244.0.0/24", ip)
		}
		if body := get(ip); body != "hello from nanokube\n" {
			t.Errorf("pod %s served %q", ip, body)
		}
	}
	k("scale", "deploy/web", "--replicas=3")
	k("rollout", "status", "deploy/web", "--timeout=60s")

	// kill -9 of the daemon: the containers keep running and are adopted.
	pid := daemonPid(t, p)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	get(ips[0])
	l.nanokube(t, "start", "-p", p)
	k("rollout", "status", "deploy/web", "--timeout=60s")
	if body := get(ips[0]); body != "hello from nanokube\n" {
		t.Errorf("after kill -9 pod %s served %q", ips[0], body)
	}

	// stop/start: the pods come back.
	l.nanokube(t, "stop", "-p", p)
	l.nanokube(t, "start", "-p", p)
	k("rollout", "status", "deploy/web", "--timeout=60s")
	k("wait", "--for=condition=Ready", "pod", "-l", "app=web", "--timeout=60s")
	if n := strings.Count(k("get", "pods", "-l", "app=web", "--no-headers"), "Running"); n != 3 {
		t.Errorf("after stop/start %d web pods run, want 3", n)
	}

	// Deleting the Deployment takes its ReplicaSet and pods along; each pod
	// gets its grace period (5s here), all at once.
	names := strings.Fields(k("get", "pods", "-l", "app=web", "-o", "name"))
	k("delete", "deploy", "web")
	k(append([]string{"wait", "--for=delete", "--timeout=60s"}, names...)...)
	if out := k("get", "rs,pods", "-l", "app=web", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("after deleting the deployment these remain: %q", out)
	}
}
