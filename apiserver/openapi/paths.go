package openapi

import (
	"strings"

	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/nanokube/nanokube/apiserver/registry"
)

// v3Paths returns the operations kube-apiserver exposes for r: the
// collection (list, create, deletecollection) and the item (read, replace,
// patch, delete), with the query parameters clients look for.
func v3Paths(g *generator, r *registry.Resource) map[string]*spec3.Path {
	base := "/" + gvPath(r.GroupVersion)
	coll := base + "/" + r.Plural
	if r.Namespaced {
		coll = base + "/namespaces/{namespace}/" + r.Plural
	}
	item := coll + "/{name}"
	ref := g.ref(defNameOf(r))
	k := r.GroupVersionKind()
	gvk := map[string]any{"group": k.Group, "version": k.Version, "kind": k.Kind}
	verbs := map[string]bool{}
	for _, v := range r.Verbs {
		verbs[v] = true
	}
	op := func(action, id string, params ...string) *spec3.Operation {
		o := &spec3.Operation{OperationProps: spec3.OperationProps{
			OperationId: id + opName(r),
			Responses: &spec3.Responses{ResponsesProps: spec3.ResponsesProps{StatusCodeResponses: map[int]*spec3.Response{
				200: {ResponseProps: spec3.ResponseProps{Description: "OK", Content: map[string]*spec3.MediaType{"application/json": {MediaTypeProps: spec3.MediaTypeProps{Schema: &ref}}}}},
			}}},
		}}
		o.AddExtension("x-kubernetes-action", action)
		o.AddExtension("x-kubernetes-group-version-kind", gvk)
		for _, p := range params {
			o.Parameters = append(o.Parameters, queryParam(p))
		}
		return o
	}
	body := func(types ...string) *spec3.RequestBody {
		c := map[string]*spec3.MediaType{}
		for _, t := range types {
			c[t] = &spec3.MediaType{MediaTypeProps: spec3.MediaTypeProps{Schema: &ref}}
		}
		return &spec3.RequestBody{RequestBodyProps: spec3.RequestBodyProps{Content: c, Required: true}}
	}
	writeTypes := []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
	patchTypes := []string{"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
	if r.Custom != nil {
		writeTypes = writeTypes[:2]
		patchTypes = []string{"application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"}
	}
	out := map[string]*spec3.Path{}
	cp := &spec3.Path{}
	if verbs["list"] {
		cp.Get = op("list", "list", "labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch")
	}
	if verbs["create"] {
		cp.Post = op("post", "create", "dryRun", "fieldManager", "fieldValidation")
		cp.Post.RequestBody = body(writeTypes...)
	}
	if verbs["deletecollection"] {
		cp.Delete = op("deletecollection", "deleteCollection", "dryRun", "gracePeriodSeconds", "propagationPolicy", "labelSelector", "fieldSelector")
	}
	if cp.Get != nil || cp.Post != nil || cp.Delete != nil {
		cp.Parameters = pathParams(r.Namespaced, false)
		out[coll] = cp
	}
	ip := &spec3.Path{}
	if verbs["get"] {
		ip.Get = op("get", "read")
	}
	if verbs["update"] {
		ip.Put = op("put", "replace", "dryRun", "fieldManager", "fieldValidation")
		ip.Put.RequestBody = body(writeTypes...)
	}
	if verbs["patch"] {
		ip.Patch = op("patch", "patch", "dryRun", "fieldManager", "fieldValidation", "force")
		ip.Patch.RequestBody = body(patchTypes...)
	}
	if verbs["delete"] {
		ip.Delete = op("delete", "delete", "dryRun", "gracePeriodSeconds", "propagationPolicy")
	}
	if ip.Get != nil || ip.Put != nil || ip.Patch != nil || ip.Delete != nil {
		ip.Parameters = pathParams(r.Namespaced, true)
		out[item] = ip
	}
	return out
}

// opName is the operationId suffix: CoreV1NamespacedPod, AppsV1Deployment.
func opName(r *registry.Resource) string {
	g := r.GroupVersion.Group
	if g == "" {
		g = "core"
	}
	g = strings.Split(strings.TrimSuffix(g, ".k8s.io"), ".")[0]
	name := strings.ToUpper(g[:1]) + g[1:] + strings.ToUpper(r.GroupVersion.Version[:1]) + r.GroupVersion.Version[1:]
	if r.Namespaced {
		name += "Namespaced"
	}
	return name + r.Kind
}

var paramDocs = map[string]string{
	"dryRun":          "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
	"fieldManager":    "fieldManager is a name associated with the actor or entity that is making these changes.",
	"fieldValidation": "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
	"force":           "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people.",
}

func queryParam(name string) *spec3.Parameter {
	typ := "string"
	switch name {
	case "limit", "gracePeriodSeconds":
		typ = "integer"
	case "watch", "force":
		typ = "boolean"
	}
	s := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{typ}, UniqueItems: true}}
	return &spec3.Parameter{ParameterProps: spec3.ParameterProps{Name: name, In: "query", Description: paramDocs[name], Schema: &s}}
}

func pathParams(namespaced, item bool) []*spec3.Parameter {
	var ps []*spec3.Parameter
	str := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}, UniqueItems: true}}
	if item {
		ps = append(ps, &spec3.Parameter{ParameterProps: spec3.ParameterProps{Name: "name", In: "path", Required: true, Schema: &str}})
	}
	if namespaced {
		ps = append(ps, &spec3.Parameter{ParameterProps: spec3.ParameterProps{Name: "namespace", In: "path", Required: true, Schema: &str}})
	}
	return append(ps, &spec3.Parameter{ParameterProps: spec3.ParameterProps{Name: "pretty", In: "query", Schema: &str}})
}
