//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanokube/nanokube/hack/testimages"
)

// loadBusyboxAs loads the busybox test image under another name, so a
// test has two images to roll between.
func (l *lab) loadBusyboxAs(t *testing.T, profile, ref string) {
	t.Helper()
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := testimages.BusyboxTar(f, ref); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l.nanokube(t, "image", "load", "-p", profile, tarPath)
}

// TestIntegrationRollout: the seeds' Deployment flow with kubectl —
// create, scale, set image, rollout status/history/undo, pause/resume,
// restart, the Recreate strategy, a progress deadline that expires — and
// a ReplicationController and an Indexed Job.
func TestIntegrationRollout(t *testing.T) {
	l := theLab
	const p = "e2e-rollout"
	l.startProfile(t, p)
	l.loadBusybox(t, p)
	const v2 = "nanokube.local/busybox:v2"
	l.loadBusyboxAs(t, p, v2)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }

	dir := t.TempDir()
	web := filepath.Join(dir, "web.yaml")
	os.WriteFile(web, []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: busybox, image: `+busyboxRef+`, command: [httpd, -f, -p, "8080", -h, /www]}
`), 0o644)
	k("apply", "-f", web)
	k("rollout", "status", "deploy/web", "--timeout=60s")
	k("scale", "deploy/web", "--replicas=3")
	k("rollout", "status", "deploy/web", "--timeout=60s")
	if got := k("get", "deploy", "web", "-o", "jsonpath={.status.readyReplicas}"); got != "3" {
		t.Errorf("ready replicas after scale = %q", got)
	}
	k("set", "image", "deployment/web", "busybox="+v2)
	k("annotate", "deployment/web", "kubernetes.io/change-cause=image v2")
	k("rollout", "status", "deploy/web", "--timeout=60s")
	if imgs := livePodImages(t, l, p, "app=web"); imgs != strings.TrimSpace(strings.Repeat(v2+" ", 3)) {
		t.Errorf("pods after set image: %q", imgs)
	}
	hist := k("rollout", "history", "deploy/web")
	if !strings.Contains(hist, "1         <none>") || !strings.Contains(hist, "2         image v2") {
		t.Errorf("rollout history:\n%s", hist)
	}
	k("rollout", "undo", "deploy/web", "--to-revision=1")
	k("rollout", "status", "deploy/web", "--timeout=60s")
	if img := k("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}"); img != busyboxRef+" 3" {
		t.Errorf("after undo: image and revision %q, want %s 3", img, busyboxRef)
	}
	if n := len(strings.Fields(k("get", "rs", "-l", "app=web", "-o", "name"))); n != 2 {
		t.Errorf("%d ReplicaSets after the undo, want 2 (revision 1 became 3)", n)
	}

	// Paused: a template change makes no new ReplicaSet until resume.
	k("rollout", "pause", "deploy/web")
	k("set", "env", "deploy/web", "MODE=paused")
	k("wait", "--for=jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}=DeploymentPaused", "deploy/web", "--timeout=30s")
	if n := len(strings.Fields(k("get", "rs", "-l", "app=web", "-o", "name"))); n != 2 {
		t.Errorf("a paused deployment made a ReplicaSet: %d", n)
	}
	k("rollout", "resume", "deploy/web")
	k("rollout", "status", "deploy/web", "--timeout=60s")
	k("rollout", "restart", "deploy/web")
	k("rollout", "status", "deploy/web", "--timeout=60s")
	if got := k("get", "deploy", "web", "-o", "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}"); got == "" {
		t.Errorf("rollout restart set no restartedAt")
	}

	// Recreate: no new pod runs next to an old one, terminating or not.
	k("patch", "deploy/web", "--type=json", `-p=[{"op":"replace","path":"/spec/strategy","value":{"type":"Recreate"}}]`)
	events := watchPods(t, l, p, "app=web")
	k("set", "image", "deployment/web", "busybox="+v2)
	k("rollout", "status", "deploy/web", "--timeout=90s")
	if imgs := livePodImages(t, l, p, "app=web"); imgs != strings.TrimSpace(strings.Repeat(v2+" ", 3)) {
		t.Errorf("pods after the Recreate rollout: %q", imgs)
	}
	alive, sawOld, sawNew := map[string]bool{}, 0, 0
	for _, ev := range events() {
		switch {
		case ev.Type == "DELETED":
			delete(alive, ev.Object.Metadata.Name)
		case ev.Object.Spec.Containers[0].Image != v2:
			alive[ev.Object.Metadata.Name] = true
			sawOld++
		case ev.Object.Status.Phase == "Running":
			sawNew++
			if len(alive) > 0 {
				t.Errorf("Recreate: new pod %s ran while old pods %v existed", ev.Object.Metadata.Name, alive)
			}
		}
	}
	if sawOld == 0 || sawNew == 0 {
		t.Errorf("the pod watch saw %d old and %d new running pod events", sawOld, sawNew)
	}

	// A rollout that cannot finish: the image is not there and may not
	// be pulled.
	k("patch", "deploy/web", "--type=merge", `-p={"spec":{"progressDeadlineSeconds":5,"template":{"spec":{"containers":[{"name":"busybox","image":"nanokube.local/missing:1","imagePullPolicy":"Never"}]}}}}`)
	r := l.kubectlResult(t, p, "rollout", "status", "deploy/web", "--timeout=60s")
	if r.code == 0 || !strings.Contains(r.stderr, `deployment "web" exceeded its progress deadline`) {
		t.Errorf("rollout status of a stuck rollout: %s", r)
	}
	if reason := k("get", "deploy", "web", "-o", `jsonpath={.status.conditions[?(@.type=="Progressing")].reason}`); reason != "ProgressDeadlineExceeded" {
		t.Errorf("Progressing reason = %q", reason)
	}
	k("rollout", "undo", "deploy/web")
	// As on kube-controller-manager, the Progressing condition keeps its
	// ProgressDeadlineExceeded reason until the restored ReplicaSet makes
	// progress, and `rollout status` gives up on it when it sees it with
	// the undo's generation observed: wait for progress first.
	eventually(t, "progress after the undo", 60*time.Second, func() (bool, string) {
		reason := k("get", "deploy", "web", "-o", `jsonpath={.status.conditions[?(@.type=="Progressing")].reason}`)
		return reason != "ProgressDeadlineExceeded", reason
	})
	k("rollout", "status", "deploy/web", "--timeout=60s")

	// A ReplicationController keeps its replicas and adopts orphans.
	manifest := filepath.Join(dir, "rc.yaml")
	os.WriteFile(manifest, []byte(`apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec:
  replicas: 2
  selector: {app: legacy}
  template:
    metadata: {labels: {app: legacy}}
    spec:
      terminationGracePeriodSeconds: 0
      containers: [{name: c, image: `+busyboxRef+`, command: [sleep, "3600"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: indexed}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: w, image: `+busyboxRef+`, command: [sh, -c, 'echo index $JOB_COMPLETION_INDEX on $(hostname)']}]
`), 0o644)
	k("apply", "-f", manifest)
	k("wait", "--for=jsonpath={.status.readyReplicas}=2", "rc/legacy", "--timeout=60s")
	victim := strings.Fields(k("get", "pods", "-l", "app=legacy", "-o", "name"))[0]
	k("delete", victim, "--wait=false")
	k("wait", "--for=jsonpath={.status.readyReplicas}=2", "rc/legacy", "--timeout=60s")
	if got := k("get", "rc", "legacy", "--no-headers"); !strings.HasPrefix(strings.Join(strings.Fields(got), " "), "legacy 2 2 2") {
		t.Errorf("kubectl get rc: %q", got)
	}
	k("wait", "--for=condition=complete", "job/indexed", "--timeout=60s")
	if got := k("get", "job", "indexed", "-o", "jsonpath={.status.completedIndexes}"); got != "0-2" {
		t.Errorf("completedIndexes = %q", got)
	}
	logs := k("logs", "-l", "job-name=indexed", "--prefix=false")
	for _, want := range []string{"index 0 on indexed-0", "index 1 on indexed-1", "index 2 on indexed-2"} {
		if !strings.Contains(logs, want) {
			t.Errorf("indexed job logs lack %q:\n%s", want, logs)
		}
	}
}

// livePodImages lists the first container image of every pod matching
// selector that is not terminating.
func livePodImages(t *testing.T, l *lab, profile, selector string) string {
	t.Helper()
	out := l.kubectl(t, profile, "get", "pods", "-l", selector, "-o",
		`jsonpath={range .items[*]}{.metadata.deletionTimestamp}|{.spec.containers[0].image}{"\n"}{end}`)
	var imgs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if img, ok := strings.CutPrefix(line, "|"); ok {
			imgs = append(imgs, img)
		}
	}
	return strings.Join(imgs, " ")
}

// podEvent is one line of `kubectl get pods -w --output-watch-events -o json`.
type podEvent struct {
	Type   string `json:"type"`
	Object struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Containers []struct {
				Image string `json:"image"`
			} `json:"containers"`
		} `json:"spec"`
		Status struct {
			Phase string `json:"phase"`
		} `json:"status"`
	} `json:"object"`
}

// watchPods runs kubectl's pod watch until the returned function is
// called, which stops it and returns every event seen, in order.
func watchPods(t *testing.T, l *lab, profile, selector string) func() []podEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := l.Command(ctx, "kubectl", "--context", profile, "get", "pods", "-l", selector, "-w", "--output-watch-events", "-o", "json")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start kubectl get -w: %v", err)
	}
	return func() []podEvent {
		cancel()
		cmd.Wait()
		var evs []podEvent
		dec := json.NewDecoder(&out)
		for {
			var ev podEvent
			if err := dec.Decode(&ev); err == io.EOF {
				return evs
			} else if err != nil {
				t.Fatalf("decode kubectl watch output: %v", err)
			}
			if len(ev.Object.Spec.Containers) > 0 {
				evs = append(evs, ev)
			}
		}
	}
}
