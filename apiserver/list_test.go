package apiserver

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestListPagesAndResourceVersions: paged lists continue at their first
// page's revision (a change between pages shows in neither page nor in
// the revision a watch would start from), carry remainingItemCount when
// nothing filters them, and resourceVersion/resourceVersionMatch mean
// what they mean to kube-apiserver.
func TestListPagesAndResourceVersions(t *testing.T) {
	cs := newTestServer(t)
	ctx := t.Context()
	cms := cs.CoreV1().ConfigMaps("pages")
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pages"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c%d", i), Labels: map[string]string{"odd": strconv.FormatBool(i%2 == 1)}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The namespace controller is not running here: no kube-root-ca.crt.
	first, err := cms.List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Items) != 2 || first.Continue == "" || first.RemainingItemCount == nil || *first.RemainingItemCount != 2 {
		t.Fatalf("first page: %d items, continue %q, remaining %v", len(first.Items), first.Continue, first.RemainingItemCount)
	}
	// Changes after the first page: c3 goes, c9 comes, c2 changes.
	if err := cms.Delete(ctx, "c3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c9"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c2, _ := cms.Get(ctx, "c2", metav1.GetOptions{})
	c2.Data = map[string]string{"changed": "yes"}
	if _, err := cms.Update(ctx, c2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rest, err := cms.List(ctx, metav1.ListOptions{Limit: 5, Continue: first.Continue})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, cm := range rest.Items {
		names = append(names, cm.Name+fmt.Sprint(len(cm.Data)))
	}
	if fmt.Sprint(names) != "[c20 c30]" || rest.ResourceVersion != first.ResourceVersion || rest.Continue != "" || rest.RemainingItemCount != nil {
		t.Errorf("second page = %v at %s (continue %q, remaining %v), want [c20 c30] at the first page's %s",
			names, rest.ResourceVersion, rest.Continue, rest.RemainingItemCount, first.ResourceVersion)
	}
	if sel, err := cms.List(ctx, metav1.ListOptions{Limit: 1, LabelSelector: "odd=false"}); err != nil || sel.Continue == "" || sel.RemainingItemCount != nil {
		t.Errorf("a filtered page has continue %q and remainingItemCount %v (want a token and none), %v", sel.Continue, sel.RemainingItemCount, err)
	}
	exact, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if err != nil || len(exact.Items) != 4 || exact.ResourceVersion != first.ResourceVersion {
		t.Errorf("list at Exact %s: %d items at %s, %v", first.ResourceVersion, len(exact.Items), exact.ResourceVersion, err)
	}
	latest, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if err != nil || len(latest.Items) != 4 || latest.ResourceVersion == first.ResourceVersion {
		t.Errorf("list NotOlderThan %s: %d items at %s, %v", first.ResourceVersion, len(latest.Items), latest.ResourceVersion, err)
	}
	rv, _ := strconv.ParseInt(latest.ResourceVersion, 10, 64)
	future := strconv.FormatInt(rv+100, 10)
	_, err = cms.List(ctx, metav1.ListOptions{ResourceVersion: future, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if !apierrors.IsTimeout(err) || !apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge) {
		t.Errorf("list at a future resourceVersion = %v, want 504 ResourceVersionTooLarge", err)
	}
	for _, c := range []struct {
		opts metav1.ListOptions
		want string
	}{
		{metav1.ListOptions{ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}, "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"},
		{metav1.ListOptions{ResourceVersion: "0", ResourceVersionMatch: metav1.ResourceVersionMatchExact}, `resourceVersionMatch "exact" is forbidden for resourceVersion "0"`},
		{metav1.ListOptions{ResourceVersion: "1", ResourceVersionMatch: "Newest"}, `Unsupported value: "Newest"`},
	} {
		_, err := cms.List(ctx, c.opts)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("list %+v = %v, want 422 with %q", c.opts, err, c.want)
		}
	}
	if _, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}); !apierrors.IsInvalid(err) {
		t.Errorf("watch with resourceVersionMatch and no sendInitialEvents = %v, want 422", err)
	}
}
