//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
  terminationGracePeriodSeconds: 30
  volumes: [{name: state, emptyDir: {}}]
  containers:
  - name: app
    image: `+busyboxRef+`
    command: ["sh", "-c", "n=$(($(cat /state/n 2>/dev/null || echo 0)+1)); echo $n > /state/n; echo run-$n; exec sleep 3600"]
    volumeMounts: [{name: state, mountPath: /state}]
    livenessProbe:
      tcpSocket: {port: 8080}
      initialDelaySeconds: 4
      periodSeconds: 1
      failureThreshold: 2
      terminationGracePeriodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: slowstart
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: `+busyboxRef+`
    command: ["sh", "-c", "sleep 5; touch /tmp/up; exec sleep 3600"]
    startupProbe:
      exec: {command: ["test", "-f", "/tmp/up"]}
      periodSeconds: 1
      failureThreshold: 30
    livenessProbe:
      exec: {command: ["test", "-f", "/tmp/up"]}
      periodSeconds: 1
      failureThreshold: 1
    readinessProbe:
      exec: {command: ["sleep", "2"]}
      timeoutSeconds: 4
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: badhook
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: `+busyboxRef+`
    command: ["sleep", "3600"]
    lifecycle:
      postStart: {exec: {command: ["sh", "-c", "echo nope >&2; exit 1"]}}
`), 0o644)
	k("apply", "-f", manifest)
	k("expose", "pod", "gated", "--port=80", "--target-port=8080")
	k("wait", "--for=jsonpath={.status.phase}=Running", "pod/gated", "--timeout=60s")
	if ready := k("get", "pod", "gated", "-o", "jsonpath={.status.containerStatuses[0].ready}"); ready != "false" {
		t.Errorf("pod gated is ready before its probe passed")
	}
	// slowstart's startup probe passes after 5s.
	k("wait", "--for=jsonpath={.status.phase}=Running", "pod/slowstart", "--timeout=60s")
	if st := k("get", "pod", "slowstart", "-o", "jsonpath={.status.containerStatuses[0].started} {.status.containerStatuses[0].ready}"); st != "false false" {
		t.Errorf("slowstart before its startup probe passed: started ready = %q", st)
	}
	k("wait", "--for=condition=Ready", "pod/gated", "--timeout=60s")
	if ep := k("get", "endpoints", "gated", "-o", "jsonpath={.subsets[0].addresses[0].ip}"); !strings.HasPrefix(ep, "10.244.") {
		t.Errorf("ready pod not in endpoints: %q", ep)
	}
	// Liveness: initialDelaySeconds, then failureThreshold failures, then
	// the probe's own terminationGracePeriodSeconds (1s, not the pod's
	// 30s) before SIGKILL of a process that ignores SIGTERM.
	k("wait", "--for=jsonpath={.status.containerStatuses[0].restartCount}=1", "pod/dying", "--timeout=90s")
	if ev := k("get", "events", "--field-selector", "involvedObject.name=dying,reason=Killing", "-o", "jsonpath={.items[0].involvedObject.fieldPath}: {.items[0].message}"); ev != "spec.containers{app}: Container app failed liveness probe, will be restarted" {
		t.Errorf("Killing event = %q, want kubelet's fieldPath and message", ev)
	}
	{
		last := strings.Fields(k("get", "pod", "dying", "-o", "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode} {.status.containerStatuses[0].lastState.terminated.startedAt} {.status.containerStatuses[0].lastState.terminated.finishedAt}"))
		if len(last) != 3 || last[0] != "137" {
			t.Fatalf("lastState of dying = %v, want exit code 137", last)
		}
		start, err1 := time.Parse(time.RFC3339, last[1])
		end, err2 := time.Parse(time.RFC3339, last[2])
		if ran := end.Sub(start); err1 != nil || err2 != nil || ran < 5*time.Second || ran > 12*time.Second {
			t.Errorf("dying ran %v before it was killed, want 4s delay + 1s + 1s grace", ran)
		}
		// Running again: --previous is the run before.
		if cur, prev := k("logs", "dying"), k("logs", "dying", "--previous"); cur != "run-2\n" || prev != "run-1\n" {
			t.Errorf("logs dying = %q, --previous = %q; want run-2 and run-1", cur, prev)
		}
	}

	// Container status fields and kubelet's event texts of a running pod.
	{
		st := k("get", "pod", "gated", "-o", "jsonpath={.status.containerStatuses[0].imageID}|{.status.containerStatuses[0].containerID}|{.status.containerStatuses[0].started}|{.status.hostIP}|{.status.startTime}|{.status.qosClass}|{.status.conditions[*].type}")
		f := strings.Split(st, "|")
		if len(f) != 7 || !strings.HasPrefix(f[0], "nanokube.local/busybox@sha256:") || !strings.HasPrefix(f[1], "containerd://") || f[2] != "true" ||
			!strings.HasPrefix(f[3], "192.168.") || f[4] == "" || f[5] != "BestEffort" {
			t.Errorf("status of gated: imageID|containerID|started|hostIP|startTime|qosClass|conditions = %q", st)
		}
		for _, c := range []string{"PodScheduled", "Initialized", "ContainersReady", "Ready"} {
			if !strings.Contains(f[len(f)-1], c) {
				t.Errorf("conditions of gated %q lack %s", f[len(f)-1], c)
			}
		}
		ev := k("get", "events", "--field-selector", "involvedObject.name=gated", "-o", "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}")
		for _, want := range []string{`Pulled: Container image "` + busyboxRef + `" already present on machine`, "Created: Created container: web", "Started: Started container web",
			"Unhealthy: Readiness probe failed: Get \"http://"} {
			if !strings.Contains(ev, want) {
				t.Errorf("events of gated lack %q:\n%s", want, ev)
			}
		}
	}

	// A startup probe holds the liveness probe (which would fail at once)
	// until it passes; a readiness probe may take its timeoutSeconds.
	{
		k("wait", "--for=condition=Ready", "pod/slowstart", "--timeout=60s")
		if st := k("get", "pod", "slowstart", "-o", "jsonpath={.status.containerStatuses[0].started} {.status.containerStatuses[0].restartCount}"); st != "true 0" {
			t.Errorf("slowstart after its startup probe passed: started restartCount = %q", st)
		}
	}

	// A failing postStart hook kills the container, with kubelet's events
	// (the hook's output stays out of them) and a restart.
	{
		l.waitLine(t, p, 60*time.Second, lineHas("Warning PostStartHook failed"),
			"get", "events", "-w", "--field-selector", "involvedObject.name=badhook,reason=FailedPostStartHook", "-o", `jsonpath={.type} {.message}{"\n"}`)
		l.waitLine(t, p, 60*time.Second, lineHas("Normal FailedPostStartHook"),
			"get", "events", "-w", "--field-selector", "involvedObject.name=badhook,reason=Killing", "-o", `jsonpath={.type} {.message}{"\n"}`)
		l.waitLine(t, p, 60*time.Second, func(n string) bool { return n != "" && n != "0" },
			"get", "pod", "badhook", "-w", "-o", `jsonpath={.status.containerStatuses[0].restartCount}{"\n"}`)
	}

	// A crashing container (restartPolicy OnFailure): the first restart at once, then
	// CrashLoopBackOff with kubelet's 10s, 20s… back-off, its event, and
	// the run before in lastState and `logs --previous`.
	{
		// Made now, so that the waits below see its first back-off.
		crasher := filepath.Join(t.TempDir(), "crasher.yaml")
		os.WriteFile(crasher, []byte(`apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: OnFailure
  volumes: [{name: state, emptyDir: {}}]
  containers:
  - name: app
    image: `+busyboxRef+`
    command: ["sh", "-c", "n=$(($(cat /state/n 2>/dev/null || echo 0)+1)); echo $n > /state/n; echo run-$n; echo last-line; exit 3"]
    volumeMounts: [{name: state, mountPath: /state}]
`), 0o644)
		k("apply", "-f", crasher)
		uid := k("get", "pod", "crasher", "-o", "jsonpath={.metadata.uid}")
		podRef := "crasher_default(" + uid + ")"
		l.waitLine(t, p, 60*time.Second, lineHas("1 back-off 10s restarting failed container=app pod="+podRef), "get", "pod", "crasher", "-w",
			"-o", `jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.waiting.message}{"\n"}`)
		if got := k("logs", "crasher"); got != "run-2\nlast-line\n" {
			t.Errorf("logs crasher = %q, want the current run only", got)
		}
		// Waiting for its restart, lastState is the latest run: kubelet
		// shows it for --previous too.
		if got := k("logs", "crasher", "--previous"); got != "run-2\nlast-line\n" {
			t.Errorf("logs crasher --previous = %q", got)
		}
		if got := k("logs", "crasher", "--tail=1"); got != "last-line\n" {
			t.Errorf("logs crasher --tail=1 = %q", got)
		}
		// The log is in the CRI format: --timestamps puts each line's
		// time first, --since-time and --since select by it.
		stamped := strings.Split(strings.TrimSuffix(k("logs", "crasher", "--timestamps"), "\n"), "\n")
		if len(stamped) != 2 {
			t.Fatalf("logs crasher --timestamps = %q, want 2 lines", stamped)
		}
		var lastAt time.Time
		for i, want := range []string{"run-2", "last-line"} {
			at, msg, _ := strings.Cut(stamped[i], " ")
			ts, err := time.Parse(time.RFC3339Nano, at)
			if err != nil || msg != want || time.Since(ts) > time.Minute || time.Since(ts) < 0 {
				t.Errorf("logs --timestamps line %q: want a recent RFC3339Nano time, a space, %q (%v)", stamped[i], want, err)
			}
			lastAt = ts
		}
		if got := k("logs", "crasher", "--since-time="+lastAt.Truncate(time.Second).Format(time.RFC3339)); !strings.HasSuffix(got, "last-line\n") {
			t.Errorf("logs --since-time of the last line's second = %q", got)
		}
		if got := k("logs", "crasher", "--since-time="+lastAt.Truncate(time.Second).Add(time.Second).Format(time.RFC3339)); got != "" {
			t.Errorf("logs --since-time after the last line = %q, want nothing", got)
		}
		eventually(t, "logs crasher --since=1s is empty a second after its output", 8*time.Second, func() (bool, string) {
			got := k("logs", "crasher", "--since=1s")
			return got == "", got
		})
		if r := l.kubectlResult(t, p, "logs", "gated", "--previous"); r.code == 0 || !strings.Contains(r.stderr, `previous terminated container "web" in pod "gated" not found`) {
			t.Errorf("logs --previous of a container that never restarted: %s", r)
		}
		last := k("get", "pod", "crasher", "-o", "jsonpath={.status.containerStatuses[0].lastState.terminated.reason} {.status.containerStatuses[0].lastState.terminated.exitCode} {.status.containerStatuses[0].lastState.terminated.finishedAt}")
		f := strings.Fields(last)
		if len(f) != 3 || f[0] != "Error" || f[1] != "3" {
			t.Fatalf("lastState of crasher = %q, want Error 3", last)
		}
		if row := k("get", "pod", "crasher", "--no-headers"); !strings.Contains(row, "CrashLoopBackOff") {
			t.Errorf("kubectl get pod crasher: %q", row)
		}
		if ev := k("get", "events", "--field-selector", "involvedObject.name=crasher,reason=BackOff", "-o", "jsonpath={.items[0].type} {.items[0].message}"); ev != "Warning Back-off restarting failed container app in pod "+podRef {
			t.Errorf("BackOff event = %q", ev)
		}
		// The third run starts 10s after the second ended.
		l.waitLine(t, p, 60*time.Second, lineHas("2 back-off 20s restarting failed container=app pod="+podRef), "get", "pod", "crasher", "-w",
			"-o", `jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.waiting.message}{"\n"}`)
		started := k("get", "pod", "crasher", "-o", "jsonpath={.status.containerStatuses[0].lastState.terminated.startedAt}")
		end, err1 := time.Parse(time.RFC3339, f[2])
		start, err2 := time.Parse(time.RFC3339, started)
		if gap := start.Sub(end); err1 != nil || err2 != nil || gap < 9*time.Second || gap > 15*time.Second {
			t.Errorf("run 3 started %v after run 2 ended (%q → %q), want the 10s back-off", gap, f[2], started)
		}
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
