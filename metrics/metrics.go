// Package metrics serves the resource metrics API (metrics.k8s.io/v1beta1)
// that `kubectl top` and the HorizontalPodAutoscaler read, the way
// metrics-server does behind kube-apiserver's APIService
// v1beta1.metrics.k8s.io: PodMetrics and NodeMetrics, got from each
// node's agent on demand.
package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// GroupVersion is metrics.k8s.io/v1beta1.
var GroupVersion = metricsv1beta1.SchemeGroupVersion

// Resources is what discovery lists for the group, as metrics-server does.
func Resources() []metav1.APIResource {
	get := metav1.Verbs{"get", "list"}
	return []metav1.APIResource{
		{Name: "nodes", Kind: "NodeMetrics", Verbs: get},
		{Name: "pods", Kind: "PodMetrics", Namespaced: true, Verbs: get},
	}
}

// Source is one node's usage: its agent.
type Source interface {
	NodeMetrics(ctx context.Context) (*metricsv1beta1.NodeMetrics, error)
	PodMetrics(ctx context.Context, pods []*corev1.Pod) ([]metricsv1beta1.PodMetrics, error)
}

// Config builds the handler.
type Config struct {
	Pods    corelisters.PodLister
	Nodes   corelisters.NodeLister
	Synced  []cache.InformerSynced
	Sources map[string]Source // by node name
}

// Handler serves /apis/metrics.k8s.io/v1beta1/...
type Handler struct{ cfg Config }

// NewHandler builds the handler.
func NewHandler(cfg Config) *Handler { return &Handler{cfg: cfg} }

var (
	podsGR  = schema.GroupResource{Group: GroupVersion.Group, Resource: "pods"}
	nodesGR = schema.GroupResource{Group: GroupVersion.Group, Resource: "nodes"}
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	prefix := "/apis/" + GroupVersion.String() + "/"
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		writeError(w, notFound())
		return
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	var ns, res, name string
	switch {
	case len(parts) >= 3 && parts[0] == "namespaces" && len(parts) <= 4:
		ns, res = parts[1], parts[2]
		if len(parts) == 4 {
			name = parts[3]
		}
	case len(parts) <= 2:
		res = parts[0]
		if len(parts) == 2 {
			name = parts[1]
		}
	default:
		writeError(w, notFound())
		return
	}
	gr := podsGR
	if res == "nodes" {
		gr = nodesGR
	}
	if (res != "pods" && res != "nodes") || (res == "nodes" && ns != "") {
		writeError(w, notFound())
		return
	}
	q := r.URL.Query()
	if r.Method != http.MethodGet || q.Get("watch") == "true" || q.Get("watch") == "1" {
		verb := strings.ToLower(r.Method)
		if r.Method == http.MethodGet {
			verb = "watch"
		}
		writeError(w, apierrors.NewMethodNotSupported(gr, verb))
		return
	}
	sel, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("invalid labelSelector: %v", err)))
		return
	}
	fsel, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("invalid fieldSelector: %v", err)))
		return
	}
	if !cache.WaitForCacheSync(r.Context().Done(), h.cfg.Synced...) {
		writeError(w, apierrors.NewServiceUnavailable("the metrics cache is not ready"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	table := wantsTable(r)
	if res == "nodes" {
		h.serveNodes(ctx, w, name, sel, fsel, table)
	} else {
		h.servePods(ctx, w, ns, name, sel, fsel, table)
	}
}

func (h *Handler) servePods(ctx context.Context, w http.ResponseWriter, ns, name string, sel labels.Selector, fsel fields.Selector, table bool) {
	var pods []*corev1.Pod
	if name != "" {
		p, err := h.cfg.Pods.Pods(ns).Get(name)
		if err != nil {
			writeError(w, apierrors.NewNotFound(podsGR, name))
			return
		}
		pods = []*corev1.Pod{p}
	} else {
		var err error
		if pods, err = h.cfg.Pods.Pods(ns).List(sel); err != nil {
			writeError(w, err)
			return
		}
	}
	byNode := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			continue
		}
		if !fsel.Matches(fields.Set{"metadata.name": p.Name, "metadata.namespace": p.Namespace}) {
			continue
		}
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}
	var mu sync.Mutex
	var items []metricsv1beta1.PodMetrics
	var wg sync.WaitGroup
	for node, ps := range byNode {
		src := h.cfg.Sources[node]
		if src == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := src.PodMetrics(ctx, ps)
			if err != nil {
				return // like metrics-server: a node that fails is left out
			}
			mu.Lock()
			items = append(items, got...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(items, func(i, j int) bool {
		if items[i].Namespace != items[j].Namespace {
			return items[i].Namespace < items[j].Namespace
		}
		return items[i].Name < items[j].Name
	})
	for i := range items {
		items[i].TypeMeta = metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: "PodMetrics"}
	}
	if name != "" {
		if len(items) == 0 {
			writeError(w, apierrors.NewNotFound(podsGR, name))
			return
		}
		if table {
			writeJSON(w, http.StatusOK, podTable(items))
			return
		}
		writeJSON(w, http.StatusOK, &items[0])
		return
	}
	if table {
		writeJSON(w, http.StatusOK, podTable(items))
		return
	}
	if items == nil {
		items = []metricsv1beta1.PodMetrics{}
	}
	writeJSON(w, http.StatusOK, &metricsv1beta1.PodMetricsList{TypeMeta: metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: "PodMetricsList"}, Items: items})
}

func (h *Handler) serveNodes(ctx context.Context, w http.ResponseWriter, name string, sel labels.Selector, fsel fields.Selector, table bool) {
	var nodes []*corev1.Node
	if name != "" {
		n, err := h.cfg.Nodes.Get(name)
		if err != nil {
			writeError(w, apierrors.NewNotFound(nodesGR, name))
			return
		}
		nodes = []*corev1.Node{n}
	} else {
		var err error
		if nodes, err = h.cfg.Nodes.List(sel); err != nil {
			writeError(w, err)
			return
		}
	}
	var mu sync.Mutex
	var items []metricsv1beta1.NodeMetrics
	var wg sync.WaitGroup
	for _, n := range nodes {
		src := h.cfg.Sources[n.Name]
		if src == nil || !fsel.Matches(fields.Set{"metadata.name": n.Name}) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := src.NodeMetrics(ctx)
			if err != nil {
				return
			}
			m.Labels = n.Labels
			m.TypeMeta = metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: "NodeMetrics"}
			mu.Lock()
			items = append(items, *m)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	switch {
	case name != "" && len(items) == 0:
		writeError(w, apierrors.NewNotFound(nodesGR, name))
	case table:
		writeJSON(w, http.StatusOK, nodeTable(items))
	case name != "":
		writeJSON(w, http.StatusOK, &items[0])
	default:
		if items == nil {
			items = []metricsv1beta1.NodeMetrics{}
		}
		writeJSON(w, http.StatusOK, &metricsv1beta1.NodeMetricsList{TypeMeta: metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: "NodeMetricsList"}, Items: items})
	}
}

func wantsTable(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if strings.Contains(strings.ReplaceAll(part, " ", ""), "as=Table") {
			return true
		}
	}
	return false
}

// The table columns metrics-server prints for `kubectl get podmetrics`.
var tableColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "Name of the resource"},
	{Name: "CPU", Type: "string", Description: "CPU usage"},
	{Name: "Memory", Type: "string", Description: "Memory usage"},
	{Name: "Window", Type: "string", Description: "Interval the metrics were collected over"},
}

func podTable(items []metricsv1beta1.PodMetrics) *metav1.Table {
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}, ColumnDefinitions: tableColumns, Rows: []metav1.TableRow{}}
	for _, m := range items {
		var c, b int64
		for _, ctr := range m.Containers {
			c += ctr.Usage.Cpu().MilliValue()
			b += ctr.Usage.Memory().Value()
		}
		t.Rows = append(t.Rows, tableRow(&m.ObjectMeta, c, b, m.Window.Duration))
	}
	return t
}

func nodeTable(items []metricsv1beta1.NodeMetrics) *metav1.Table {
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}, ColumnDefinitions: tableColumns, Rows: []metav1.TableRow{}}
	for _, m := range items {
		t.Rows = append(t.Rows, tableRow(&m.ObjectMeta, m.Usage.Cpu().MilliValue(), m.Usage.Memory().Value(), m.Window.Duration))
	}
	return t
}

func tableRow(om *metav1.ObjectMeta, milliCPU, bytes int64, window time.Duration) metav1.TableRow {
	meta := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}, ObjectMeta: *om}
	raw, _ := json.Marshal(meta)
	return metav1.TableRow{
		Cells:  []interface{}{om.Name, fmt.Sprintf("%dm", milliCPU), fmt.Sprintf("%dKi", bytes/1024), window.String()},
		Object: runtime.RawExtension{Raw: raw},
	}
}

func notFound() error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, "", schema.GroupResource{}, "", "the server could not find the requested resource", 0, false)
}

func writeError(w http.ResponseWriter, err error) {
	var st metav1.Status
	if se, ok := err.(apierrors.APIStatus); ok {
		st = se.Status()
	} else {
		st = apierrors.NewInternalError(err).ErrStatus
	}
	st.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}
	writeJSON(w, int(st.Code), &st)
}

func writeJSON(w http.ResponseWriter, code int, obj any) {
	b, err := json.Marshal(obj)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}
