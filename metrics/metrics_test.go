package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// fakeSource reports 100m and 10Mi per running container.
type fakeSource struct{ node string }

func (f fakeSource) NodeMetrics(context.Context) (*metricsv1beta1.NodeMetrics, error) {
	return &metricsv1beta1.NodeMetrics{ObjectMeta: metav1.ObjectMeta{Name: f.node}, Timestamp: metav1.Now(), Window: metav1.Duration{Duration: 15 * time.Second},
		Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("100Mi")}}, nil
}

func (f fakeSource) PodMetrics(_ context.Context, pods []*corev1.Pod) ([]metricsv1beta1.PodMetrics, error) {
	var out []metricsv1beta1.PodMetrics
	for _, p := range pods {
		m := metricsv1beta1.PodMetrics{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels}, Timestamp: metav1.Now(), Window: metav1.Duration{Duration: 15 * time.Second}}
		for _, c := range p.Spec.Containers {
			m.Containers = append(m.Containers, metricsv1beta1.ContainerMetrics{Name: c.Name,
				Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("10Mi")}})
		}
		out = append(out, m)
	}
	return out, nil
}

func pod(ns, name, node string, phase corev1.PodPhase, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}, Status: corev1.PodStatus{Phase: phase}}
}

func newTestHandler(t *testing.T) *Handler {
	t.Helper()
	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"role": "cp"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}},
		pod("default", "web", "n1", corev1.PodRunning, map[string]string{"app": "web"}),
		pod("default", "db", "n2", corev1.PodRunning, map[string]string{"app": "db"}),
		pod("default", "waiting", "", corev1.PodPending, map[string]string{"app": "web"}),
		pod("other", "x", "n1", corev1.PodRunning, nil),
	)
	f := informers.NewSharedInformerFactory(cs, 0)
	pods, nodes := f.Core().V1().Pods(), f.Core().V1().Nodes()
	h := NewHandler(Config{Pods: pods.Lister(), Nodes: nodes.Lister(), Sources: map[string]Source{"n1": fakeSource{"n1"}, "n2": fakeSource{"n2"}},
		Synced: []cache.InformerSynced{pods.Informer().HasSynced, nodes.Informer().HasSynced}})
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx.Done())
	t.Cleanup(func() { cancel(); f.Shutdown() })
	return h
}

func get(t *testing.T, h http.Handler, path, accept string, into any) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if into != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), into); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, rec.Body)
		}
	}
	return rec.Code
}

func TestPodMetrics(t *testing.T) {
	h := newTestHandler(t)
	var list metricsv1beta1.PodMetricsList
	if code := get(t, h, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb", "", &list); code != 200 {
		t.Fatalf("list: %d", code)
	}
	// The pending pod has no metrics yet; only web matches the selector.
	if list.Kind != "PodMetricsList" || len(list.Items) != 1 || list.Items[0].Name != "web" || len(list.Items[0].Containers) != 2 || list.Items[0].Kind != "PodMetrics" {
		t.Errorf("list = %+v", list)
	}
	var all metricsv1beta1.PodMetricsList
	get(t, h, "/apis/metrics.k8s.io/v1beta1/pods", "", &all)
	if len(all.Items) != 3 {
		t.Errorf("all namespaces: %d pods", len(all.Items))
	}
	var one metricsv1beta1.PodMetrics
	if code := get(t, h, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/db", "", &one); code != 200 || one.Name != "db" {
		t.Errorf("get db: %d %+v", code, one)
	}
	var st metav1.Status
	if code := get(t, h, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/waiting", "", &st); code != 404 || st.Message != `pods.metrics.k8s.io "waiting" not found` {
		t.Errorf("pod without metrics: %d %q", code, st.Message)
	}
	var table metav1.Table
	get(t, h, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", "application/json;as=Table;v=v1;g=meta.k8s.io", &table)
	if table.Kind != "Table" || len(table.Rows) != 2 || table.Rows[0].Cells[1] != "200m" {
		t.Errorf("table = %+v", table)
	}
	req := httptest.NewRequest(http.MethodGet, "/apis/metrics.k8s.io/v1beta1/pods?watch=true", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("watch: %d", rec.Code)
	}
}

func TestNodeMetrics(t *testing.T) {
	h := newTestHandler(t)
	var list metricsv1beta1.NodeMetricsList
	get(t, h, "/apis/metrics.k8s.io/v1beta1/nodes", "", &list)
	if len(list.Items) != 2 || list.Items[0].Name != "n1" || list.Items[0].Labels["role"] != "cp" || list.Items[0].Usage.Cpu().MilliValue() != 250 {
		t.Errorf("nodes = %+v", list)
	}
	get(t, h, "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=role%3Dcp", "", &list)
	if len(list.Items) != 1 {
		t.Errorf("selected nodes = %d", len(list.Items))
	}
	var st metav1.Status
	if code := get(t, h, "/apis/metrics.k8s.io/v1beta1/nodes/none", "", &st); code != 404 {
		t.Errorf("missing node: %d", code)
	}
}
