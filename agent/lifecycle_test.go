package agent

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestHTTPHandlers: httpGet hooks and probes reach the pod like kubelet's
// (user agent, headers, Host, a named port) and fail with its messages.
func TestHTTPHandlers(t *testing.T) {
	a, _, _ := testAgentWithFakeRuntime(t)
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"}}
	st := &podState{uid: "u1", ip: "127.0.0.1"}
	c := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	hook := &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/hook", Port: intstr.FromString("http"),
		HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Test", Value: "1"}, {Name: "Host", Value: "example.test"}}}}
	if msg, err := a.runHandler(t.Context(), pod, st, c, hook); err != nil {
		t.Fatalf("hook: %v %s", err, msg)
	}
	if got.URL.Path != "/hook" || got.UserAgent() != "kube-lifecycle/1.37" || got.Header.Get("X-Test") != "1" || got.Host != "example.test" {
		t.Errorf("hook request: path %s agent %q header %q host %q", got.URL.Path, got.UserAgent(), got.Header.Get("X-Test"), got.Host)
	}
	hook.HTTPGet.Path = "/bad"
	msg, err := a.runHandler(t.Context(), pod, st, c, hook)
	if want := `HTTP lifecycle hook (/bad) for Container "app" in Pod "web_default(u1)" failed - error: HTTP probe failed with statuscode: 500`; err == nil || msg != want {
		t.Errorf("failing hook: %q, want %q", msg, want)
	}
	probe := &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(int32(port))}}}
	if err := a.probe(t.Context(), st, c, probe); err != nil || got.UserAgent() != "kube-probe/1.37" {
		t.Errorf("probe: %v, agent %q", err, got.UserAgent())
	}
	srv.Close()
	if err := a.probe(t.Context(), st, c, probe); err == nil || !strings.Contains(err.Error(), "connect: connection refused") {
		t.Errorf("probe of a closed port: %v", err)
	}
}

// TestSleepHandler: a sleep hook waits its seconds, or until the grace
// period (the context) ends.
func TestSleepHandler(t *testing.T) {
	a, _, _ := testAgentWithFakeRuntime(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"}}
	st := &podState{uid: "u1"}
	c := &corev1.Container{Name: "app"}
	h := &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 1}}
	start := time.Now()
	if _, err := a.runHandler(t.Context(), pod, st, c, h); err != nil || time.Since(start) < time.Second {
		t.Errorf("sleep 1: %v after %v", err, time.Since(start))
	}
	h.Sleep.Seconds = 3600
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := a.runHandler(ctx, pod, st, c, h); err != nil || time.Since(start) > 5*time.Second {
		t.Errorf("sleep 3600 cut by the grace period: %v after %v", err, time.Since(start))
	}
}

// TestReadinessSuccessThreshold: a readiness probe makes the container
// ready only after successThreshold checks in a row pass.
func TestReadinessSuccessThreshold(t *testing.T) {
	a, _, _ := testAgentWithFakeRuntime(t)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"}}
	st := a.stateOf(pod)
	st.ip = "127.0.0.1"
	c := corev1.Container{Name: "app", ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, SuccessThreshold: 2, FailureThreshold: 3, TimeoutSeconds: 1,
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(int32(srv.Listener.Addr().(*net.TCPAddr).Port))}}}}
	start := time.Now()
	a.startProbes(pod, st, c)
	defer a.waiters.Wait()
	defer a.stopProbes(st, "app")
	for deadline := start.Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ready, _ := a.probeReady(st, "app"); ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready within 5s")
		}
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("ready after %v: the second passing check is one period (1s) after the first", d)
	}
}
