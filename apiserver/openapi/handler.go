package openapi

import (
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// Handler serves /openapi/v2, /openapi/v3 and /openapi/v3/<api/v1|apis/g/v>.
// Documents are built on first request and kept as bytes.
type Handler struct {
	resources []*registry.Resource
	byGV      map[string][]*registry.Resource // "api/v1", "apis/apps/v1"
	title     string

	mu     sync.Mutex
	custom map[string][]*registry.Resource // custom resources by "apis/g/v"
	docs   map[string][]byte               // v3 documents by path
	index  []byte
	v2     []byte
}

// NewHandler serves the OpenAPI documents of resources.
func NewHandler(resources []*registry.Resource, version string) (*Handler, error) {
	h := &Handler{resources: resources, byGV: map[string][]*registry.Resource{}, docs: map[string][]byte{}, title: version}
	for _, r := range resources {
		h.byGV[gvPath(r.GroupVersion)] = append(h.byGV[gvPath(r.GroupVersion)], r)
	}
	return h, nil
}

func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	var body []byte
	var err error
	switch {
	case p == "/openapi/v3":
		body, err = h.v3Index()
	case strings.HasPrefix(p, "/openapi/v3/"):
		gv := strings.TrimPrefix(p, "/openapi/v3/")
		body, err = h.v3Doc(gv)
		if body == nil && err == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, immutable")
	case p == "/openapi/v2":
		if strings.Contains(r.Header.Get("Accept"), "protobuf") && !strings.Contains(r.Header.Get("Accept"), "application/json") {
			http.Error(w, "406 Not Acceptable: only application/json", http.StatusNotAcceptable)
			return
		}
		body, err = h.v2Doc()
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	etag := fmt.Sprintf(`"%X"`, sha512.Sum512(body))
	w.Header().Set("Etag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func (h *Handler) v3Index() ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.index != nil {
		return h.index, nil
	}
	type entry struct {
		ServerRelativeURL string `json:"serverRelativeURL"`
	}
	paths := map[string]entry{}
	gvs := []string{}
	for gv := range h.byGV {
		gvs = append(gvs, gv)
	}
	for gv := range h.custom {
		if h.byGV[gv] == nil {
			gvs = append(gvs, gv)
		}
	}
	for _, gv := range gvs {
		doc, err := h.v3DocLocked(gv)
		if err != nil {
			return nil, err
		}
		paths[gv] = entry{ServerRelativeURL: fmt.Sprintf("/openapi/v3/%s?hash=%X", gv, sha512.Sum512(doc))}
	}
	b, err := json.Marshal(map[string]any{"paths": paths})
	h.index = b
	return b, err
}

func (h *Handler) v3Doc(gv string) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.v3DocLocked(gv)
}

func (h *Handler) v3DocLocked(gv string) ([]byte, error) {
	if b := h.docs[gv]; b != nil {
		return b, nil
	}
	if h.byGV[gv] == nil && h.custom[gv] == nil {
		return nil, nil
	}
	g := newGenerator("#/components/schemas/")
	doc := &spec3.OpenAPI{
		Version:    "3.0.0",
		Info:       &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: h.title}},
		Paths:      &spec3.Paths{Paths: map[string]*spec3.Path{}},
		Components: &spec3.Components{Schemas: map[string]*spec.Schema{}},
	}
	rs := append(append([]*registry.Resource{}, h.byGV[gv]...), h.custom[gv]...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Plural < rs[j].Plural })
	for _, r := range rs {
		g.kind(r)
		for p, item := range v3Paths(g, r) {
			doc.Paths.Paths[p] = item
		}
	}
	for name, s := range g.defs {
		s := s
		doc.Components.Schemas[name] = &s
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode openapi %s: %w", gv, err)
	}
	h.docs[gv] = b
	return b, nil
}

// kind defines a resource's kind (and list) with its GVK extension.
func (g *generator) kind(r *registry.Resource) {
	if r.Custom != nil {
		g.customKind(r)
		return
	}
	for _, obj := range []any{r.New(), newList(r)} {
		if obj == nil {
			continue
		}
		t := reflect.TypeOf(obj).Elem()
		g.define(t)
		name := DefName(t)
		s := g.defs[name]
		kind := r.Kind
		if t.Name() != r.Kind {
			kind = t.Name()
		}
		s.AddExtension("x-kubernetes-group-version-kind", gvkExtension(r.GroupVersion.WithKind(kind)))
		g.defs[name] = s
	}
}

func newList(r *registry.Resource) any {
	if r.NewList == nil {
		return nil
	}
	return r.NewList()
}

func (h *Handler) v2Doc() ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.v2 != nil {
		return h.v2, nil
	}
	g := newGenerator("#/definitions/")
	sw := &spec.Swagger{SwaggerProps: spec.SwaggerProps{
		Swagger:     "2.0",
		Info:        &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: h.title}},
		Paths:       &spec.Paths{Paths: map[string]spec.PathItem{}},
		Definitions: spec.Definitions{},
	}}
	for _, r := range h.resources {
		g.kind(r)
	}
	for _, rs := range h.custom {
		for _, r := range rs {
			g.kind(r)
		}
	}
	for name, s := range g.defs {
		sw.Definitions[name] = s
	}
	b, err := json.Marshal(sw)
	if err != nil {
		return nil, fmt.Errorf("encode openapi v2: %w", err)
	}
	h.v2 = b
	return b, nil
}
