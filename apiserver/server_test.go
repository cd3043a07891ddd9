package apiserver

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/nanokube/nanokube/apiserver/openapi"
	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// newTestServer runs a server over a temp store and returns a client-go
// clientset on its in-process connection.
func newTestServer(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(startTestServer(t).LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// startTestServer runs a server (with OpenAPI documents) over a temp store.
func startTestServer(t *testing.T, opts ...func(*Config)) *Server {
	t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	resources := registry.Resources()
	oapi, err := openapi.NewHandler(resources, "v1.37.0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: st, Resources: resources, OpenAPI: oapi}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	select {
	case <-s.Ready():
	case err := <-done:
		done <- err
		t.Fatalf("server ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready in 10s")
	}
	// What the ServiceAccount controller keeps in every namespace; pod
	// admission needs it.
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range systemNamespaces {
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestCRUDConflictsAndValidation(t *testing.T) {
	cs := newTestServer(t)
	ctx := t.Context()
	cms := cs.CoreV1().ConfigMaps("default")
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"x": "1"}}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.UID == "" || cm.ResourceVersion == "" || cm.CreationTimestamp.IsZero() {
		t.Errorf("created object lacks uid/resourceVersion/creationTimestamp: %+v", cm.ObjectMeta)
	}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create = %v, want AlreadyExists", err)
	}
	stale := cm.DeepCopy()
	cm.Data["k"] = "v2"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stale.Data["k"] = "v3"
	if _, err := cms.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("update with a stale resourceVersion = %v, want Conflict", err)
	}
	_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "Bad_Name"}}, metav1.CreateOptions{})
	var se apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &se) || len(se.Status().Details.Causes) == 0 || se.Status().Details.Causes[0].Field != "metadata.name" {
		t.Errorf("invalid name = %v, want 422 with a metadata.name cause", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("nowhere").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("create in a missing namespace = %v, want NotFound", err)
	}
	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "x=1"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Data["k"] != "v2" {
		t.Errorf("list by label = %+v, %v", list, err)
	}
}

func TestWatchAndFinalizers(t *testing.T) {
	cs := newTestServer(t)
	ctx := t.Context()
	cms := cs.CoreV1().ConfigMaps("default")
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	held, err := cms.Get(ctx, "held", metav1.GetOptions{})
	if err != nil || held.DeletionTimestamp == nil {
		t.Fatalf("an object with a finalizer was removed or not marked: %v", err)
	}
	held.Finalizers = nil
	if _, err := cms.Update(ctx, held, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "held", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("object still there after its last finalizer went: %v", err)
	}
	var types []watch.EventType
	timeout := time.After(5 * time.Second)
	for len(types) < 3 {
		select {
		case ev := <-w.ResultChan():
			types = append(types, ev.Type)
		case <-timeout:
			t.Fatalf("watch saw %v, want ADDED MODIFIED DELETED", types)
		}
	}
	if types[0] != watch.Added || types[1] != watch.Modified || types[2] != watch.Modified && types[2] != watch.Deleted {
		t.Errorf("watch events = %v", types)
	}
}

func TestServiceAllocation(t *testing.T) {
	cs := newTestServer(t)
	ctx := t.Context()
	svcs := cs.CoreV1().Services("default")
	svc, err := svcs.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.Ports[0].NodePort < 30000 || svc.Spec.Ports[0].TargetPort.IntValue() != 80 {
		t.Errorf("service not allocated or defaulted: %+v", svc.Spec)
	}
	_, err = svcs.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "dup"},
		Spec: corev1.ServiceSpec{ClusterIP: svc.Spec.ClusterIP, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Errorf("a second service on the same IP = %v, want Invalid", err)
	}
	if err := svcs.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "reuse"},
		Spec: corev1.ServiceSpec{ClusterIP: svc.Spec.ClusterIP, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("the IP of a deleted service is not free again: %v", err)
	}
}

func TestServiceHealthCheckNodePort(t *testing.T) {
	cs := newTestServer(t)
	ctx := t.Context()
	svcs := cs.CoreV1().Services("default")
	lb := func(name string, policy corev1.ServiceExternalTrafficPolicy, hc int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			ExternalTrafficPolicy: policy, HealthCheckNodePort: hc, Ports: []corev1.ServicePort{{Port: 80}}}}
	}
	svc, err := svcs.Create(ctx, lb("local", corev1.ServiceExternalTrafficPolicyLocal, 0), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hc := svc.Spec.HealthCheckNodePort
	if hc < 30000 || hc > 32767 || hc == svc.Spec.Ports[0].NodePort {
		t.Fatalf("healthCheckNodePort = %d (nodePort %d), want a port of its own in the node port range", hc, svc.Spec.Ports[0].NodePort)
	}
	if _, err := svcs.Create(ctx, lb("cluster", corev1.ServiceExternalTrafficPolicyCluster, 31000), metav1.CreateOptions{}); !apierrors.IsInvalid(err) ||
		!strings.Contains(err.Error(), "spec.healthCheckNodePort: Forbidden: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'") {
		t.Errorf("healthCheckNodePort with policy Cluster = %v", err)
	}
	if _, err := svcs.Create(ctx, lb("taken", corev1.ServiceExternalTrafficPolicyLocal, hc), metav1.CreateOptions{}); !apierrors.IsInvalid(err) ||
		!strings.Contains(err.Error(), "spec.healthCheckNodePort: Invalid value") || !strings.Contains(err.Error(), "provided port is already allocated") {
		t.Errorf("a taken healthCheckNodePort = %v", err)
	}
	// An update keeps it; changing it is refused.
	svc.Spec.HealthCheckNodePort = 0
	if svc, err = svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil || svc.Spec.HealthCheckNodePort != hc {
		t.Fatalf("update keeps healthCheckNodePort: %v, %d want %d", err, svc.Spec.HealthCheckNodePort, hc)
	}
	svc.Spec.HealthCheckNodePort = hc + 1
	if _, err := svcs.Update(ctx, svc, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "cannot change healthCheckNodePort") {
		t.Errorf("changing healthCheckNodePort = %v", err)
	}
	// Policy Cluster: the carried-over port is dropped and free again.
	svc.Spec.HealthCheckNodePort = hc
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	if svc, err = svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil || svc.Spec.HealthCheckNodePort != 0 {
		t.Fatalf("switch to policy Cluster: %v, healthCheckNodePort %d", err, svc.Spec.HealthCheckNodePort)
	}
	if got, err := svcs.Create(ctx, lb("reuse", corev1.ServiceExternalTrafficPolicyLocal, hc), metav1.CreateOptions{}); err != nil || got.Spec.HealthCheckNodePort != hc {
		t.Errorf("the released healthCheckNodePort is not free again: %v", err)
	}
	if err := svcs.Delete(ctx, "reuse", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Create(ctx, lb("again", corev1.ServiceExternalTrafficPolicyLocal, hc), metav1.CreateOptions{}); err != nil {
		t.Errorf("the healthCheckNodePort of a deleted service is not free again: %v", err)
	}
}
