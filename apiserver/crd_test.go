package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

func cronTabCRD() *apiextensionsv1.CustomResourceDefinition {
	props := map[string]apiextensionsv1.JSONSchemaProps{
		"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"cronSpec": {Type: "string", Pattern: `^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$`},
			"image":    {Type: "string"},
			"replicas": {Type: "integer", Minimum: ptr.To(0.0), Maximum: ptr.To(10.0), Default: &apiextensionsv1.JSON{Raw: []byte("1")}},
			"extra":    {Type: "object", XPreserveUnknownFields: ptr.To(true)},
			"ports":    {Type: "array", XListType: ptr.To("set"), Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "integer"}}},
		}},
		"status": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"replicas": {Type: "integer"},
			"selector": {Type: "string"},
		}},
	}
	version := func(name string, storage bool) apiextensionsv1.CustomResourceDefinitionVersion {
		return apiextensionsv1.CustomResourceDefinitionVersion{
			Name: name, Served: true, Storage: storage, Deprecated: !storage,
			Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: props}},
			Subresources: &apiextensionsv1.CustomResourceSubresources{
				Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
				Scale:  &apiextensionsv1.CustomResourceSubresourceScale{SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas", LabelSelectorPath: ptr.To(".status.selector")},
			},
			AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
				{Name: "Spec", Type: "string", JSONPath: ".spec.cronSpec"},
				{Name: "Replicas", Type: "integer", JSONPath: ".spec.replicas"},
				{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
			},
		}
	}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "crontabs.stable.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group:    "stable.example.com",
			Names:    apiextensionsv1.CustomResourceDefinitionNames{Plural: "crontabs", Kind: "CronTab", ShortNames: []string{"ct"}, Categories: []string{"all"}},
			Scope:    apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{version("v1", true), version("v1beta1", false)},
		},
	}
}

// waitEstablished watches the CRD until its Established condition is True.
func waitEstablished(t *testing.T, cs apiextensionsclient.Interface, name string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	w, err := cs.ApiextensionsV1().CustomResourceDefinitions().Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		crd, ok := ev.Object.(*apiextensionsv1.CustomResourceDefinition)
		if !ok {
			continue
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return crd
			}
		}
	}
	t.Fatalf("CRD %s not established in 10s", name)
	return nil
}

func TestCustomResources(t *testing.T) {
	s := startTestServer(t)
	cfg := s.LoopbackConfig()
	ctx := t.Context()
	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	// A bad CRD is refused with field causes.
	bad := cronTabCRD()
	bad.Name = "wrong.stable.example.com"
	bad.Spec.Versions[1].Storage = true
	_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `must be spec.names.plural+"."+spec.group`) || !strings.Contains(err.Error(), "exactly one version marked as storage version") {
		t.Errorf("bad CRD = %v, want 422 about the name and the storage version", err)
	}

	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, cronTabCRD(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crd := waitEstablished(t, ext, "crontabs.stable.example.com")
	if crd.Status.AcceptedNames.Kind != "CronTab" || crd.Status.AcceptedNames.ListKind != "CronTabList" || !slices.Equal(crd.Status.StoredVersions, []string{"v1"}) {
		t.Errorf("CRD status = %+v", crd.Status)
	}

	// Discovery: per group-version and aggregated.
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := dc.ServerResourcesForGroupVersion("stable.example.com/v1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rl.APIResources {
		names = append(names, r.Name)
		if r.Name == "crontabs" && (!slices.Equal(r.ShortNames, []string{"ct"}) || !slices.Equal(r.Categories, []string{"all"}) || r.SingularName != "crontab" || !r.Namespaced) {
			t.Errorf("crontabs discovery = %+v", r)
		}
	}
	if !slices.Equal(names, []string{"crontabs", "crontabs/scale", "crontabs/status"}) && !slices.Equal(names, []string{"crontabs", "crontabs/status", "crontabs/scale"}) {
		t.Errorf("stable.example.com/v1 resources = %v", names)
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range lists {
		if l.GroupVersion == "stable.example.com/v1beta1" {
			found = true
		}
	}
	if !found {
		t.Error("aggregated discovery lacks stable.example.com/v1beta1")
	}

	gvr := schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "crontabs"}
	cts := dyn.Resource(gvr).Namespace("default")
	ct := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "stable.example.com/v1", "kind": "CronTab",
		"metadata": map[string]any{"name": "c1"},
		"spec":     map[string]any{"cronSpec": "* * * * */5", "image": "img", "bogus": "x", "extra": map[string]any{"kept": "yes"}},
	}}
	got, err := cts.Create(ctx, ct, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); r != 1 {
		t.Errorf("defaulted spec.replicas = %d, want 1", r)
	}
	if _, found, _ := unstructured.NestedString(got.Object, "spec", "bogus"); found {
		t.Error("unknown field spec.bogus was not pruned")
	}
	if v, _, _ := unstructured.NestedString(got.Object, "spec", "extra", "kept"); v != "yes" {
		t.Error("field under x-kubernetes-preserve-unknown-fields was pruned")
	}
	if got.GetGeneration() != 1 || got.GetUID() == "" {
		t.Errorf("created CR metadata = generation %d uid %q", got.GetGeneration(), got.GetUID())
	}

	// Schema validation: 422 with the field path and upstream's message.
	badCT := ct.DeepCopy()
	badCT.SetName("c2")
	unstructured.SetNestedField(badCT.Object, int64(20), "spec", "replicas")
	unstructured.SetNestedField(badCT.Object, "nope", "spec", "cronSpec")
	_, err = cts.Create(ctx, badCT, metav1.CreateOptions{})
	var se apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10") || !strings.Contains(err.Error(), "spec.cronSpec in body should match") {
		t.Errorf("invalid CR = %v", err)
	} else if errors_As(err, &se); len(se.Status().Details.Causes) != 2 {
		t.Errorf("invalid CR causes = %+v", se.Status().Details.Causes)
	}
	unstructured.SetNestedField(badCT.Object, "* * * * *", "spec", "cronSpec")
	unstructured.SetNestedField(badCT.Object, int64(2), "spec", "replicas")
	unstructured.SetNestedSlice(badCT.Object, []any{int64(80), int64(80)}, "spec", "ports")
	if _, err = cts.Create(ctx, badCT, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "Duplicate value: 80") {
		t.Errorf("duplicate in a set list = %v", err)
	}

	// Strict field validation reports pruned fields.
	strict := ct.DeepCopy()
	strict.SetName("c3")
	_, err = cts.Create(ctx, strict, metav1.CreateOptions{FieldValidation: "Strict"})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.bogus"`) {
		t.Errorf("strict create with an unknown field = %v", err)
	}

	// The other version serves the same object (conversion None).
	old, err := dyn.Resource(schema.GroupVersionResource{Group: "stable.example.com", Version: "v1beta1", Resource: "crontabs"}).Namespace("default").Get(ctx, "c1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if old.GetAPIVersion() != "stable.example.com/v1beta1" || old.GetUID() != got.GetUID() {
		t.Errorf("v1beta1 read = %s uid %s", old.GetAPIVersion(), old.GetUID())
	}

	// Status subresource: a main update keeps the status, a status update
	// changes only the status.
	got.Object["status"] = map[string]any{"replicas": int64(3), "selector": "app=cron"}
	upd, err := cts.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(upd.Object, "status"); found {
		t.Error("main update wrote the status")
	}
	upd.Object["status"] = map[string]any{"replicas": int64(3), "selector": "app=cron"}
	unstructured.SetNestedField(upd.Object, "changed", "spec", "image")
	st, err := cts.UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img, _, _ := unstructured.NestedString(st.Object, "spec", "image"); img != "img" {
		t.Errorf("status update changed spec.image to %q", img)
	}
	if r, _, _ := unstructured.NestedInt64(st.Object, "status", "replicas"); r != 3 {
		t.Errorf("status.replicas = %d", r)
	}
	if st.GetGeneration() != 1 {
		t.Errorf("generation after a status update = %d, want 1", st.GetGeneration())
	}

	// Scale subresource.
	scale, err := cts.Get(ctx, "c1", metav1.GetOptions{}, "scale")
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(scale.Object, "spec", "replicas"); r != 1 {
		t.Errorf("scale spec.replicas = %d", r)
	}
	if sel, _, _ := unstructured.NestedString(scale.Object, "status", "selector"); sel != "app=cron" {
		t.Errorf("scale status.selector = %q", sel)
	}
	if _, err := cts.Patch(ctx, "c1", types.MergePatchType, []byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{}, "scale"); err != nil {
		t.Fatal(err)
	}

	// Patches: merge and JSON patch work, strategic merge is refused.
	p, err := cts.Patch(ctx, "c1", types.MergePatchType, []byte(`{"spec":{"image":"img2"}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(p.Object, "spec", "replicas"); r != 4 || p.GetGeneration() != 3 {
		t.Errorf("after scale and patch: replicas %d generation %d, want 4 and 3", r, p.GetGeneration())
	}
	if _, err := cts.Patch(ctx, "c1", types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/image","value":"img3"}]`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = cts.Patch(ctx, "c1", types.StrategicMergePatchType, []byte(`{"spec":{"image":"x"}}`), metav1.PatchOptions{})
	if !apierrors.IsUnsupportedMediaType(err) {
		t.Errorf("strategic merge patch = %v, want 415", err)
	}

	// Server-side apply creates and updates with managed fields.
	applied := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "stable.example.com/v1", "kind": "CronTab",
		"metadata": map[string]any{"name": "c4"},
		"spec":     map[string]any{"cronSpec": "* * * * *", "image": "applied"},
	}}
	a, err := cts.Apply(ctx, "c4", applied, metav1.ApplyOptions{FieldManager: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.GetManagedFields()) != 1 || a.GetManagedFields()[0].Manager != "tester" {
		t.Errorf("managed fields = %+v", a.GetManagedFields())
	}
	unstructured.SetNestedField(applied.Object, "applied2", "spec", "image")
	if a, err = cts.Apply(ctx, "c4", applied, metav1.ApplyOptions{FieldManager: "tester"}); err != nil {
		t.Fatal(err)
	}
	if img, _, _ := unstructured.NestedString(a.Object, "spec", "image"); img != "applied2" {
		t.Errorf("applied image = %q", img)
	}

	// Table output has the printer columns.
	tbl := getTable(t, cfg, "/apis/stable.example.com/v1/namespaces/default/crontabs")
	var cols []string
	for _, c := range tbl.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if !slices.Equal(cols, []string{"Name", "Spec", "Replicas", "Age"}) || len(tbl.Rows) != 2 {
		t.Fatalf("table columns %v rows %d", cols, len(tbl.Rows))
	}
	if tbl.Rows[0].Cells[1] != "* * * * */5" || tbl.Rows[0].Cells[2] != float64(4) {
		t.Errorf("row cells = %v", tbl.Rows[0].Cells)
	}

	// OpenAPI v3 describes the kind.
	body := getRaw(t, cfg, "/openapi/v3/apis/stable.example.com/v1")
	if !strings.Contains(body, `"com.example.stable.v1.CronTab"`) || !strings.Contains(body, `"cronSpec"`) || !strings.Contains(body, "fieldValidation") {
		t.Errorf("openapi v3 document lacks the CronTab schema: %.300s", body)
	}

	// Watch sees changes.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	w, err := cts.Watch(wctx, metav1.ListOptions{ResourceVersion: a.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	if err := cts.Delete(ctx, "c4", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := <-w.ResultChan()
	if ev.Type != watch.Deleted {
		t.Errorf("watch event = %v", ev.Type)
	}
	w.Stop()

	// Deleting the CRD deletes its custom resources and stops serving them.
	if err := ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	cw, err := ext.ApiextensionsV1().CustomResourceDefinitions().Watch(wctx, metav1.ListOptions{FieldSelector: "metadata.name=" + crd.Name})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range cw.ResultChan() {
		if ev.Type == watch.Deleted || time.Now().After(deadline) {
			break
		}
	}
	cw.Stop()
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("CRD after delete: %v", err)
	}
	if kvs, _, _, _ := s.store.List("/registry/stable.example.com/", storeListAll); len(kvs) != 0 {
		t.Errorf("%d custom resources left after the CRD was deleted", len(kvs))
	}
	if _, err := cts.Get(ctx, "c1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after CRD deletion = %v, want 404", err)
	}
}

func getTable(t *testing.T, cfg *rest.Config, path string) *metav1.Table {
	t.Helper()
	var tbl metav1.Table
	if err := json.Unmarshal([]byte(getRawAccept(t, cfg, path, "application/json;as=Table;v=v1;g=meta.k8s.io")), &tbl); err != nil {
		t.Fatal(err)
	}
	return &tbl
}

func getRaw(t *testing.T, cfg *rest.Config, path string) string {
	return getRawAccept(t, cfg, path, "application/json")
}

func getRawAccept(t *testing.T, cfg *rest.Config, path, accept string) string {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, cfg.Host+path, nil)
	req.Header.Set("Accept", accept)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	return string(b)
}

var storeListAll = store.ListOptions{}

func errors_As(err error, target *apierrors.APIStatus) bool { return errors.As(err, target) }

// runServerAt runs a server over the store at path until stop is called.
func runServerAt(t *testing.T, path string) (*Server, func()) {
	t.Helper()
	st, err := store.Open(store.Options{Path: path, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Resources: registry.Resources()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		st.Close()
	}
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		stop()
		t.Fatal("server not ready in 10s")
	}
	return s, stop
}

func TestCustomResourcesServedAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, stop := runServerAt(t, path)
	ext, _ := apiextensionsclient.NewForConfig(s.LoopbackConfig())
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(t.Context(), cronTabCRD(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEstablished(t, ext, "crontabs.stable.example.com")
	gvr := schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "crontabs"}
	dyn, _ := dynamic.NewForConfig(s.LoopbackConfig())
	ct := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": map[string]any{"name": "kept"}}}
	if _, err := dyn.Resource(gvr).Namespace("default").Create(t.Context(), ct, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stop()

	s, stop = runServerAt(t, path)
	defer stop()
	dyn, _ = dynamic.NewForConfig(s.LoopbackConfig())
	if _, err := dyn.Resource(gvr).Namespace("default").Get(t.Context(), "kept", metav1.GetOptions{}); err != nil {
		t.Errorf("custom resource right after a restart: %v", err)
	}
}

// TestServerSideApplyCRD applies a CRD server-side the way helm 4 does
// (field manager "helm", force): created, then changed by a second apply,
// with the manager's entry in managedFields.
func TestServerSideApplyCRD(t *testing.T) {
	s := startTestServer(t)
	cs, err := apiextensionsclient.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	crd := cronTabCRD()
	crd.TypeMeta = metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"}
	body, err := json.Marshal(crd)
	if err != nil {
		t.Fatal(err)
	}
	crds := cs.ApiextensionsV1().CustomResourceDefinitions()
	opts := metav1.PatchOptions{FieldManager: "helm", Force: ptr.To(true)}
	got, err := crds.Patch(t.Context(), crd.Name, types.ApplyPatchType, body, opts)
	if err != nil {
		t.Fatalf("apply (create): %v", err)
	}
	if len(got.ManagedFields) != 1 || got.ManagedFields[0].Manager != "helm" || got.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Fatalf("managedFields after create: %+v", got.ManagedFields)
	}
	waitEstablished(t, cs, crd.Name)
	crd.Spec.Names.ShortNames = []string{"ct", "cts"}
	if body, err = json.Marshal(crd); err != nil {
		t.Fatal(err)
	}
	got, err = crds.Patch(t.Context(), crd.Name, types.ApplyPatchType, body, opts)
	if err != nil {
		t.Fatalf("apply (update): %v", err)
	}
	if !slices.Equal(got.Spec.Names.ShortNames, []string{"ct", "cts"}) {
		t.Errorf("short names after the second apply: %v", got.Spec.Names.ShortNames)
	}
	if _, err := crds.Patch(t.Context(), crd.Name, types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "helm", DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("dry-run apply: %v", err)
	}
}
