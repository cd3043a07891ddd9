package apiserver

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

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
