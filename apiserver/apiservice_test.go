package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// TestAPIServiceDiscoveryAndRouting: a group served by another handler
// shows in legacy and aggregated discovery and gets its requests.
func TestAPIServiceDiscoveryAndRouting(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	gv := schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}
	s, err := New(Config{Store: st, Resources: registry.Resources()})
	if err != nil {
		t.Fatal(err)
	}
	s.AddAPIService(APIService{GroupVersion: gv, Resources: []metav1.APIResource{{Name: "pods", Kind: "PodMetrics", Namespaced: true, Verbs: []string{"get", "list"}}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served "+r.URL.Path) })})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	// client-go asks for aggregated discovery first.
	groups, resources, err := cs.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range groups {
		found = found || (g.Name == gv.Group && g.PreferredVersion.Version == "v1beta1")
	}
	if !found {
		t.Errorf("aggregated discovery lacks %s", gv)
	}
	found = false
	for _, rl := range resources {
		if rl.GroupVersion == gv.String() {
			for _, r := range rl.APIResources {
				found = found || (r.Name == "pods" && r.Kind == "PodMetrics" && r.Namespaced)
			}
		}
	}
	if !found {
		t.Errorf("discovery lacks pods.metrics.k8s.io: %+v", resources)
	}
	// Legacy discovery (kubectl's fallback) and the group's own documents.
	legacy, err := cs.Discovery().RESTClient().Get().AbsPath("/apis").SetHeader("Accept", "application/json").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(legacy), `"name":"metrics.k8s.io"`) {
		t.Errorf("/apis lacks the group: %s", legacy)
	}
	rl, err := cs.Discovery().ServerResourcesForGroupVersion(gv.String())
	if err != nil || len(rl.APIResources) != 1 {
		t.Errorf("/apis/metrics.k8s.io/v1beta1 = %+v, %v", rl, err)
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").DoRaw(ctx)
	if err != nil || string(body) != "served /apis/metrics.k8s.io/v1beta1/namespaces/default/pods" {
		t.Errorf("request to the APIService: %q, %v", body, err)
	}
}

// TestAPIServices: apiregistration.k8s.io serves one local APIService per
// served group version with kube-apiserver's names, priorities and table,
// and refuses writes (there is no aggregation layer to register one with).
func TestAPIServices(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Resources: registry.Resources()})
	if err != nil {
		t.Fatal(err)
	}
	s.AddAPIService(APIService{GroupVersion: schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}, Handler: http.NotFoundHandler()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	rc := cs.Discovery().RESTClient()
	raw, err := rc.Get().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices").SetHeader("Accept", "application/json").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var list apiregistrationv1.APIServiceList
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	byName := map[string]apiregistrationv1.APIService{}
	for _, a := range list.Items {
		byName[a.Name] = a
	}
	for name, want := range map[string]apiregistrationv1.APIServiceSpec{
		"v1.":                       {Version: "v1", GroupPriorityMinimum: 18000, VersionPriority: 1},
		"v1.apps":                   {Group: "apps", Version: "v1", GroupPriorityMinimum: 17800, VersionPriority: 15},
		"v2.autoscaling":            {Group: "autoscaling", Version: "v2", GroupPriorityMinimum: 17500, VersionPriority: 30},
		"v1.apiregistration.k8s.io": {Group: "apiregistration.k8s.io", Version: "v1", GroupPriorityMinimum: 18000, VersionPriority: 15},
		"v1beta1.metrics.k8s.io":    {Group: "metrics.k8s.io", Version: "v1beta1", GroupPriorityMinimum: 100, VersionPriority: 100},
	} {
		got, ok := byName[name]
		if !ok {
			t.Errorf("no APIService %s in %d", name, len(list.Items))
			continue
		}
		if got.Spec.Group != want.Group || got.Spec.Version != want.Version || got.Spec.GroupPriorityMinimum != want.GroupPriorityMinimum || got.Spec.VersionPriority != want.VersionPriority || got.Spec.Service != nil {
			t.Errorf("%s spec = %+v, want %+v", name, got.Spec, want)
		}
		if c := got.Status.Conditions; len(c) != 1 || c[0].Type != apiregistrationv1.Available || c[0].Status != apiregistrationv1.ConditionTrue || c[0].Reason != "Local" {
			t.Errorf("%s conditions = %+v", name, c)
		}
	}
	raw, err = rc.Get().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices/v1.apps").SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if strings.Join(cols, " ") != "Name Service Available Age" || len(table.Rows) != 1 || table.Rows[0].Cells[0] != "v1.apps" || table.Rows[0].Cells[1] != "Local" || table.Rows[0].Cells[2] != "True" {
		t.Errorf("table = %v %+v", cols, table.Rows)
	}
	if _, err := rc.Get().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices/v1.nope").DoRaw(ctx); !apierrors.IsNotFound(err) {
		t.Errorf("get of a missing APIService = %v, want NotFound", err)
	}
	body := `{"apiVersion":"apiregistration.k8s.io/v1","kind":"APIService","metadata":{"name":"v1.example.com"},"spec":{"group":"example.com","version":"v1","groupPriorityMinimum":1000,"versionPriority":15}}`
	err = rc.Post().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices").SetHeader("Content-Type", "application/json").Body([]byte(body)).Do(ctx).Error()
	if !apierrors.IsMethodNotSupported(err) {
		t.Errorf("create of an APIService = %v, want 405 MethodNotAllowed", err)
	}
	// A CRD's group versions get the CRD registration's priorities.
	ext, err := apiextensionsclient.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, cronTabCRD(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEstablished(t, ext, "crontabs.stable.example.com")
	raw, err = rc.Get().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.stable.example.com").SetHeader("Accept", "application/json").DoRaw(ctx)
	var crdSvc apiregistrationv1.APIService
	if err == nil {
		err = json.Unmarshal(raw, &crdSvc)
	}
	if err != nil || crdSvc.Spec.GroupPriorityMinimum != 1000 || crdSvc.Spec.VersionPriority != 100 || crdSvc.Spec.Group != "stable.example.com" {
		t.Errorf("APIService of a CRD version = %+v, %v", crdSvc.Spec, err)
	}
	// Discovery lists the group.
	groups, err := cs.Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range groups.Groups {
		found = found || (g.Name == "apiregistration.k8s.io" && g.PreferredVersion.Version == "v1")
	}
	if !found {
		t.Errorf("discovery lacks apiregistration.k8s.io")
	}
}
