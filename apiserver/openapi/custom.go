package openapi

import (
	"reflect"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// CustomDefName names a custom resource's definition like kube-apiserver:
// the group reversed, the version and the kind ("com.example.stable.v1.CronTab").
func CustomDefName(gvk schema.GroupVersionKind) string {
	parts := strings.Split(gvk.Group, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".") + "." + gvk.Version + "." + gvk.Kind
}

// defNameOf is the definition name of a resource's kind.
func defNameOf(r *registry.Resource) string {
	if r.Custom != nil {
		return CustomDefName(r.GroupVersionKind())
	}
	return DefName(reflect.TypeOf(r.New()).Elem())
}

var (
	apiVersionDoc = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
	kindDoc       = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
	metadataDoc   = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
	listMetaDoc   = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#lists-and-slices"
)

// customKind defines a custom resource's kind and list from its schema,
// with apiVersion, kind and metadata as kube-apiserver adds them.
func (g *generator) customKind(r *registry.Resource) {
	g.define(reflect.TypeOf(metav1.ObjectMeta{}))
	g.define(reflect.TypeOf(metav1.ListMeta{}))
	s := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}}}
	if r.Custom.Schema != nil {
		s = *r.Custom.Schema
		props := make(map[string]spec.Schema, len(s.Properties)+3)
		for k, v := range s.Properties {
			props[k] = v
		}
		s.Properties = props
		s.Extensions = copyExtensions(s.Extensions)
	}
	if s.Properties == nil {
		s.Properties = map[string]spec.Schema{}
	}
	str := func(doc string) spec.Schema {
		p := prim("string", "")
		p.Description = doc
		return p
	}
	s.Properties["apiVersion"] = str(apiVersionDoc)
	s.Properties["kind"] = str(kindDoc)
	md := spec.Schema{SchemaProps: spec.SchemaProps{AllOf: []spec.Schema{g.ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")}, Description: metadataDoc}}
	s.Properties["metadata"] = md
	s.AddExtension("x-kubernetes-group-version-kind", gvkExtension(r.GroupVersionKind()))
	name := defNameOf(r)
	g.defs[name] = s

	items := g.ref(name)
	list := spec.Schema{SchemaProps: spec.SchemaProps{
		Type:        []string{"object"},
		Description: r.ListKind + " is a list of " + r.Kind,
		Required:    []string{"items"},
		Properties: map[string]spec.Schema{
			"apiVersion": str(apiVersionDoc),
			"kind":       str(kindDoc),
			"items": {SchemaProps: spec.SchemaProps{Type: []string{"array"}, Items: &spec.SchemaOrArray{Schema: &items},
				Description: "List of " + r.Plural + ". More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"}},
			"metadata": {SchemaProps: spec.SchemaProps{AllOf: []spec.Schema{g.ref("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")}, Description: listMetaDoc}},
		},
	}}
	list.AddExtension("x-kubernetes-group-version-kind", gvkExtension(r.GroupVersion.WithKind(r.ListKind)))
	g.defs[CustomDefName(r.GroupVersion.WithKind(r.ListKind))] = list
}

func copyExtensions(e spec.Extensions) spec.Extensions {
	out := spec.Extensions{}
	for k, v := range e {
		out[k] = v
	}
	return out
}

// CustomModels are the OpenAPI v2-style definitions of a custom resource
// (with ObjectMeta and what it references), the models server-side apply
// builds its type converter from.
func CustomModels(r *registry.Resource) map[string]*spec.Schema {
	g := newGenerator("#/definitions/")
	g.customKind(r)
	out := make(map[string]*spec.Schema, len(g.defs))
	for name, s := range g.defs {
		s := s
		out[name] = &s
	}
	return out
}

// SetCustom replaces the custom resources the documents describe.
func (h *Handler) SetCustom(resources []*registry.Resource) {
	byGV := map[string][]*registry.Resource{}
	for _, r := range resources {
		byGV[gvPath(r.GroupVersion)] = append(byGV[gvPath(r.GroupVersion)], r)
	}
	for _, rs := range byGV {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Plural < rs[j].Plural })
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for gv := range h.custom {
		delete(h.docs, gv)
	}
	for gv := range byGV {
		delete(h.docs, gv)
	}
	h.custom = byGV
	h.index, h.v2 = nil, nil
}
