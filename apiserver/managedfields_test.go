package apiserver

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// TestManagedFieldsOfUpdates checks creates, updates and patches from
// clients record an Update entry (fieldManager, else the user agent's
// first word), that an apply then conflicts with those fields unless
// forced, and that the in-process components record none.
func TestManagedFieldsOfUpdates(t *testing.T) {
	s := startTestServer(t)
	alice := &User{Name: "alice", Groups: []string{groupMasters, groupAuthenticated}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Handler().ServeHTTP(w, r.WithContext(withUser(r.Context(), alice)))
	}))
	t.Cleanup(hs.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: hs.URL, UserAgent: "helm/v3.22.0 (linux/amd64)"})
	if err != nil {
		t.Fatal(err)
	}
	cms := cs.CoreV1().ConfigMaps("default")
	cm, err := cms.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mf := cm.ManagedFields; len(mf) != 1 || mf[0].Manager != "helm" || mf[0].Operation != metav1.ManagedFieldsOperationUpdate {
		t.Fatalf("managedFields after create: %+v", mf)
	}
	if _, err := cms.Patch(t.Context(), "c", types.MergePatchType, []byte(`{"data":{"b":"2"}}`), metav1.PatchOptions{FieldManager: "kubectl-patch"}); err != nil {
		t.Fatal(err)
	}
	cm, err = cms.Get(t.Context(), "c", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	managers := map[string]bool{}
	for _, e := range cm.ManagedFields {
		managers[e.Manager] = true
	}
	if !managers["helm"] || !managers["kubectl-patch"] || len(cm.ManagedFields) != 2 {
		t.Fatalf("managedFields after patch: %+v", cm.ManagedFields)
	}
	apply := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"applied"}}`)
	_, err = cms.Patch(t.Context(), "c", types.ApplyPatchType, apply, metav1.PatchOptions{FieldManager: "other"})
	if !apierrors.IsConflict(err) {
		t.Fatalf("apply over helm's field: %v, want a conflict", err)
	}
	if cm, err = cms.Patch(t.Context(), "c", types.ApplyPatchType, apply, metav1.PatchOptions{FieldManager: "other", Force: ptr.To(true)}); err != nil || cm.Data["a"] != "applied" {
		t.Fatalf("forced apply: %v %v", cm, err)
	}

	// The in-process components write without managedFields entries.
	lb, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	own, err := lb.CoreV1().ConfigMaps("default").Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "internal"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(own.ManagedFields) != 0 {
		t.Errorf("loopback create has managedFields %+v", own.ManagedFields)
	}
}

func TestManagerOrUserAgent(t *testing.T) {
	for _, c := range []struct{ manager, ua, want string }{
		{"kubectl-create", "kubectl/v1.32.0", "kubectl-create"},
		{"", "kubectl/v1.32.0 (linux/amd64) kubernetes/abc", "kubectl"},
		{"", "Go-http-client/1.1", "Go-http-client"},
		{"", "", ""},
	} {
		if got := managerOrUserAgent(c.manager, c.ua); got != c.want {
			t.Errorf("managerOrUserAgent(%q, %q) = %q, want %q", c.manager, c.ua, got, c.want)
		}
	}
}

// TestManagedFieldsOfSubresources: writes through /scale and /status are
// recorded as kube-apiserver records them, each with its subresource and
// only the fields it changed, and an apply then conflicts with the
// replicas the scale set.
func TestManagedFieldsOfSubresources(t *testing.T) {
	s := startTestServer(t)
	alice := &User{Name: "alice", Groups: []string{groupMasters, groupAuthenticated}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Handler().ServeHTTP(w, r.WithContext(withUser(r.Context(), alice)))
	}))
	t.Cleanup(hs.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: hs.URL, UserAgent: "kubectl/v1.32.0 (linux/amd64) kubernetes/abc"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	deps := cs.AppsV1().Deployments("default")
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "d"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "d"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
	if _, err := deps.Create(ctx, d, metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
		t.Fatal(err)
	}
	if _, err := deps.Patch(ctx, "d", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}, "scale"); err != nil {
		t.Fatal(err)
	}
	if _, err := deps.Patch(ctx, "d", types.MergePatchType, []byte(`{"status":{"observedGeneration":7}}`), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	got, err := deps.Get(ctx, "d", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for _, e := range got.ManagedFields {
		entries = append(entries, e.Manager+" "+string(e.Operation)+" "+e.Subresource+" "+string(e.FieldsV1.Raw))
	}
	want := []string{
		`kubectl Update scale {"f:spec":{"f:replicas":{}}}`,
		`kubectl Update status {"f:status":{"f:observedGeneration":{}}}`,
	}
	for _, w := range want {
		if !slices.Contains(entries, w) {
			t.Errorf("managedFields lack %q:\n%s", w, strings.Join(entries, "\n"))
		}
	}
	if len(entries) != 3 {
		t.Errorf("managedFields = %d entries, want kubectl-create's and the two above:\n%s", len(entries), strings.Join(entries, "\n"))
	}
	apply := []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":1}}`)
	_, err = deps.Patch(ctx, "d", types.ApplyPatchType, apply, metav1.PatchOptions{FieldManager: "other"})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas`) {
		t.Errorf("apply of replicas after a scale = %v, want kube-apiserver's conflict with the scale's manager", err)
	}
}
