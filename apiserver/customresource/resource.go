// Package customresource turns the served versions of a
// CustomResourceDefinition into resource descriptors: unstructured objects
// validated against the version's structural schema, pruned of unknown
// fields, defaulted from the schema, printed with the additional printer
// columns and selectable by the declared fields. Nothing in here knows
// about HTTP or storage.
package customresource

import (
	"fmt"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"

	"github.com/nanokube/nanokube/apiserver/registry"
)

var crudVerbs = []string{"delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"}

// Resources returns one resource per served version of crd.
func Resources(crd *apiextensionsv1.CustomResourceDefinition) ([]*registry.Resource, error) {
	storage := ""
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			storage = v.Name
		}
	}
	names := crd.Status.AcceptedNames
	if names.Plural == "" {
		names = crd.Spec.Names
	}
	var out []*registry.Resource
	for i := range crd.Spec.Versions {
		v := &crd.Spec.Versions[i]
		if !v.Served {
			continue
		}
		r, err := versionResource(crd, names, v, storage)
		if err != nil {
			return nil, fmt.Errorf("CRD %s version %s: %w", crd.Name, v.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func versionResource(crd *apiextensionsv1.CustomResourceDefinition, names apiextensionsv1.CustomResourceDefinitionNames, v *apiextensionsv1.CustomResourceDefinitionVersion, storage string) (*registry.Resource, error) {
	gv := schema.GroupVersion{Group: crd.Spec.Group, Version: v.Name}
	gvk, listGVK := gv.WithKind(names.Kind), gv.WithKind(names.ListKind)
	st, err := registry.StructuralSchema(v.Schema)
	if err != nil {
		return nil, err
	}
	c := &registry.Custom{CRDName: crd.Name, StorageVersion: storage, Deprecated: v.Deprecated}
	if v.Deprecated {
		c.DeprecationWarning = fmt.Sprintf("%s %s is deprecated", gv, names.Kind)
		if v.DeprecationWarning != nil {
			c.DeprecationWarning = *v.DeprecationWarning
		}
	}
	for _, cond := range crd.Status.Conditions {
		if cond.Type == apiextensionsv1.Terminating && cond.Status == apiextensionsv1.ConditionTrue {
			c.Terminating = true
		}
	}
	r := &registry.Resource{
		GroupVersion: gv, Kind: names.Kind, ListKind: names.ListKind, Plural: names.Plural, Singular: names.Singular,
		Namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped, ShortNames: names.ShortNames, Categories: names.Categories,
		Verbs: crudVerbs, HasSpecGeneration: true, Custom: c,
		New: func() runtime.Object {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			return u
		},
		NewList: func() runtime.Object {
			l := &unstructured.UnstructuredList{}
			l.SetGroupVersionKind(listGVK)
			return l
		},
	}
	if sub := v.Subresources; sub != nil {
		if sub.Status != nil {
			r.Subresources = append(r.Subresources, "status")
			r.HasStatus, c.StatusSubresource = true, true
		}
		if sub.Scale != nil {
			r.Subresources = append(r.Subresources, "scale")
			c.Scale = sub.Scale.DeepCopy()
		}
	}
	if st != nil {
		c.Schema = st.ToKubeOpenAPI()
		validator := validate.NewSchemaValidator(validationSchema(st), nil, "", strfmt.Default)
		r.Validate = func(obj runtime.Object) field.ErrorList {
			u := obj.(*unstructured.Unstructured).Object
			errs := resultErrors(validator.Validate(u))
			return append(errs, listtype.ValidateListSetsAndMaps(nil, st, u)...)
		}
		r.Default = func(obj runtime.Object) { applyDefaults(obj.(*unstructured.Unstructured).Object, st) }
	}
	c.Prune = func(obj map[string]any) []string {
		s := st
		if s == nil {
			s = &structuralschema.Structural{}
		}
		return pruning.PruneWithOptions(obj, s, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	}
	t, err := newTable(v.AdditionalPrinterColumns)
	if err != nil {
		return nil, err
	}
	r.Table = t
	if len(v.SelectableFields) > 0 {
		var paths [][]string
		for _, f := range v.SelectableFields {
			paths = append(paths, strings.Split(strings.TrimPrefix(f.JSONPath, "."), "."))
		}
		r.FieldSet = func(obj runtime.Object) fields.Set {
			u := obj.(*unstructured.Unstructured).Object
			set := fields.Set{}
			for _, p := range paths {
				if val, ok, _ := unstructured.NestedFieldNoCopy(u, p...); ok && val != nil {
					set[strings.Join(p, ".")] = fmt.Sprint(val)
				} else {
					set[strings.Join(p, ".")] = ""
				}
			}
			return set
		}
	}
	return r, nil
}
