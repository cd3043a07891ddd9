package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLogsOfThePreviousRun: a restart keeps the last run's output for
// `kubectl logs --previous`; plain logs show the current run only.
func TestLogsOfThePreviousRun(t *testing.T) {
	a, _, _ := testAgentWithFakeRuntime(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "crasher", Namespace: "default", UID: "u1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	logs := func(opts corev1.PodLogOptions) (string, error) {
		var b bytes.Buffer
		err := a.Logs(t.Context(), pod, "", &opts, &b)
		return b.String(), err
	}
	write := func(s string) {
		path := a.LogPath("u1", "app")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write("run-1\n")
	if _, err := logs(corev1.PodLogOptions{Previous: true}); err == nil || err.Error() != `previous terminated container "app" in pod "crasher" not found` {
		t.Errorf("--previous before any restart: %v", err)
	}
	if err := a.rotateLog("u1", "app"); err != nil {
		t.Fatal(err)
	}
	write("run-2\nlast line\n")
	// Running again: lastState is the run before.
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}}}
	if got, err := logs(corev1.PodLogOptions{}); err != nil || got != "run-2\nlast line\n" {
		t.Errorf("logs = %q, %v; want the current run only", got, err)
	}
	if got, err := logs(corev1.PodLogOptions{Previous: true}); err != nil || got != "run-1\n" {
		t.Errorf("logs --previous = %q, %v", got, err)
	}
	// Dead again, waiting for the restart: lastState is the latest run,
	// and kubelet shows it for both.
	pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	if got, err := logs(corev1.PodLogOptions{Previous: true}); err != nil || got != "run-2\nlast line\n" {
		t.Errorf("logs --previous in CrashLoopBackOff = %q, %v", got, err)
	}
	one := int64(1)
	if got, err := logs(corev1.PodLogOptions{TailLines: &one}); err != nil || got != "last line\n" {
		t.Errorf("logs --tail=1 = %q, %v", got, err)
	}
	if err := a.rotateLog("u1", "other"); err != nil {
		t.Errorf("rotating the log of a container that never ran: %v", err)
	}
}

// TestLogsOptions: a CRI log is served like kubelet serves it: messages
// only, or with their RFC3339Nano time; sinceSeconds/sinceTime skip older
// entries; tailLines and limitBytes cut.
func TestLogsOptions(t *testing.T) {
	a, _, _ := testAgentWithFakeRuntime(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u2"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	now := time.Now().UTC()
	old, recent := now.Add(-time.Hour), now.Add(-time.Second)
	ts := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	path := a.LogPath("u2", "app")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	log := ts(old) + " stdout F first\n" + ts(old) + " stderr P sec\n" + ts(recent) + " stderr F ond\n" + ts(recent) + " stdout F third\n"
	if err := os.WriteFile(path, []byte(log), 0o640); err != nil {
		t.Fatal(err)
	}
	logs := func(opts corev1.PodLogOptions) string {
		var b bytes.Buffer
		if err := a.Logs(t.Context(), pod, "app", &opts, &b); err != nil {
			t.Fatalf("logs %+v: %v", opts, err)
		}
		return b.String()
	}
	i := func(v int64) *int64 { return &v }
	for _, c := range []struct {
		name string
		opts corev1.PodLogOptions
		want string
	}{
		{"plain", corev1.PodLogOptions{}, "first\nsecond\nthird\n"},
		{"timestamps", corev1.PodLogOptions{Timestamps: true}, ts(old) + " first\n" + ts(old) + " sec" + ts(recent) + " ond\n" + ts(recent) + " third\n"},
		{"sinceSeconds", corev1.PodLogOptions{SinceSeconds: i(60)}, "ond\nthird\n"},
		{"sinceTime", corev1.PodLogOptions{SinceTime: &metav1.Time{Time: old.Add(time.Minute)}}, "ond\nthird\n"},
		{"tailLines", corev1.PodLogOptions{TailLines: i(1), Timestamps: true}, ts(recent) + " third\n"},
		{"limitBytes", corev1.PodLogOptions{LimitBytes: i(8)}, "first\nse"},
	} {
		if got := logs(c.opts); got != c.want {
			t.Errorf("%s: logs = %q, want %q", c.name, got, c.want)
		}
	}
}
