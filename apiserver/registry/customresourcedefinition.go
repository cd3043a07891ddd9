package registry

import (
	"fmt"
	"slices"
	"strings"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CRDCleanupFinalizer keeps a deleted CRD until its custom resources are gone.
const CRDCleanupFinalizer = "customresourcecleanup.apiextensions.k8s.io"

func crdBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) { DefaultCRD(obj.(*apiextensionsv1.CustomResourceDefinition)) }
	r.PrepareForCreate = func(obj runtime.Object) {
		crd := obj.(*apiextensionsv1.CustomResourceDefinition)
		crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
		for _, v := range crd.Spec.Versions {
			if v.Storage {
				crd.Status.StoredVersions = []string{v.Name}
			}
		}
	}
	r.Validate = func(obj runtime.Object) field.ErrorList {
		return ValidateCRD(obj.(*apiextensionsv1.CustomResourceDefinition))
	}
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		n, o := obj.(*apiextensionsv1.CustomResourceDefinition), old.(*apiextensionsv1.CustomResourceDefinition)
		var errs field.ErrorList
		if n.Spec.Group != o.Spec.Group {
			errs = append(errs, field.Invalid(field.NewPath("spec", "group"), n.Spec.Group, "field is immutable"))
		}
		if n.Spec.Names.Plural != o.Spec.Names.Plural {
			errs = append(errs, field.Invalid(field.NewPath("spec", "names", "plural"), n.Spec.Names.Plural, "field is immutable"))
		}
		return errs
	}
	r.DeleteFinalizer = CRDCleanupFinalizer
}

// DefaultCRD sets what kube-apiserver defaults in a CRD.
func DefaultCRD(crd *apiextensionsv1.CustomResourceDefinition) {
	n := &crd.Spec.Names
	if n.Singular == "" {
		n.Singular = strings.ToLower(n.Kind)
	}
	if n.ListKind == "" && n.Kind != "" {
		n.ListKind = n.Kind + "List"
	}
	if crd.Spec.Conversion == nil {
		crd.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.NoneConverter}
	}
	if crd.Spec.Conversion.Strategy == apiextensionsv1.WebhookConverter && crd.Spec.Conversion.Webhook != nil &&
		crd.Spec.Conversion.Webhook.ClientConfig != nil && crd.Spec.Conversion.Webhook.ClientConfig.Service != nil &&
		crd.Spec.Conversion.Webhook.ClientConfig.Service.Port == nil {
		port := int32(443)
		crd.Spec.Conversion.Webhook.ClientConfig.Service.Port = &port
	}
	for i := range crd.Spec.Versions {
		if s := crd.Spec.Versions[i].Subresources; s != nil && s.Scale != nil && s.Scale.SpecReplicasPath == "" {
			s.Scale.SpecReplicasPath = ".spec.replicas"
		}
	}
}

// StructuralSchema converts a version's schema into the structural form
// the pruning, defaulting and validation algorithms walk.
func StructuralSchema(v *apiextensionsv1.CustomResourceValidation) (*structuralschema.Structural, error) {
	if v == nil || v.OpenAPIV3Schema == nil {
		return nil, nil
	}
	internal := &apiextensions.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.OpenAPIV3Schema, internal, nil); err != nil {
		return nil, err
	}
	return structuralschema.NewStructural(internal)
}

// ValidateCRD checks a CRD like kube-apiserver (names, versions, scope,
// structural schemas, subresources, printer columns).
func ValidateCRD(crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	s := crd.Spec
	if want := s.Names.Plural + "." + s.Group; crd.Name != want {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), crd.Name, `must be spec.names.plural+"."+spec.group`))
	}
	if s.Group == "" {
		errs = append(errs, field.Required(spec.Child("group"), ""))
	} else if len(strings.Split(s.Group, ".")) < 2 {
		errs = append(errs, field.Invalid(spec.Child("group"), s.Group, "should be a domain with at least one dot"))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(s.Group) {
			errs = append(errs, field.Invalid(spec.Child("group"), s.Group, msg))
		}
	}
	switch s.Scope {
	case apiextensionsv1.ClusterScoped, apiextensionsv1.NamespaceScoped:
	case "":
		errs = append(errs, field.Required(spec.Child("scope"), ""))
	default:
		errs = append(errs, field.NotSupported(spec.Child("scope"), s.Scope, []string{string(apiextensionsv1.ClusterScoped), string(apiextensionsv1.NamespaceScoped)}))
	}
	errs = append(errs, validateCRDNames(s.Names, spec.Child("names"))...)
	if len(s.Versions) == 0 {
		errs = append(errs, field.Invalid(spec.Child("versions"), s.Versions, "must have exactly one version marked as storage version"))
	}
	storage := 0
	seen := sets.New[string]()
	for i, v := range s.Versions {
		vp := spec.Child("versions").Index(i)
		if v.Storage {
			storage++
		}
		if seen.Has(v.Name) {
			errs = append(errs, field.Invalid(vp.Child("name"), v.Name, "must be unique"))
		}
		seen.Insert(v.Name)
		for _, msg := range validation.IsDNS1035Label(v.Name) {
			errs = append(errs, field.Invalid(vp.Child("name"), v.Name, msg))
		}
		errs = append(errs, validateCRDVersion(&v, vp)...)
	}
	if len(s.Versions) > 0 && storage != 1 {
		errs = append(errs, field.Invalid(spec.Child("versions"), s.Versions, "must have exactly one version marked as storage version"))
	}
	if !slices.ContainsFunc(s.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Served }) && len(s.Versions) > 0 {
		errs = append(errs, field.Invalid(spec.Child("versions"), s.Versions, "must have at least one version marked as served"))
	}
	if c := s.Conversion; c != nil {
		switch c.Strategy {
		case apiextensionsv1.NoneConverter:
		case apiextensionsv1.WebhookConverter:
			errs = append(errs, field.NotSupported(spec.Child("conversion", "strategy"), c.Strategy, []string{string(apiextensionsv1.NoneConverter)}))
		default:
			errs = append(errs, field.NotSupported(spec.Child("conversion", "strategy"), c.Strategy, []string{string(apiextensionsv1.NoneConverter), string(apiextensionsv1.WebhookConverter)}))
		}
	}
	return errs
}

func validateCRDNames(n apiextensionsv1.CustomResourceDefinitionNames, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	check := func(child, v string, required bool) {
		if v == "" {
			if required {
				errs = append(errs, field.Required(p.Child(child), ""))
			}
			return
		}
		for _, msg := range validation.IsDNS1035Label(v) {
			errs = append(errs, field.Invalid(p.Child(child), v, msg))
		}
	}
	check("plural", n.Plural, true)
	check("singular", n.Singular, true)
	if n.Kind == "" {
		errs = append(errs, field.Required(p.Child("kind"), ""))
	} else if len(validation.IsDNS1035Label(strings.ToLower(n.Kind))) > 0 {
		errs = append(errs, field.Invalid(p.Child("kind"), n.Kind, "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?"))
	}
	if n.ListKind == "" {
		errs = append(errs, field.Required(p.Child("listKind"), ""))
	} else if n.ListKind == n.Kind {
		errs = append(errs, field.Invalid(p.Child("listKind"), n.ListKind, "kind and listKind may not be the same"))
	}
	for i, s := range n.ShortNames {
		for _, msg := range validation.IsDNS1035Label(s) {
			errs = append(errs, field.Invalid(p.Child("shortNames").Index(i), s, msg))
		}
	}
	for i, c := range n.Categories {
		for _, msg := range validation.IsDNS1035Label(c) {
			errs = append(errs, field.Invalid(p.Child("categories").Index(i), c, msg))
		}
	}
	return errs
}

func validateCRDVersion(v *apiextensionsv1.CustomResourceDefinitionVersion, vp *field.Path) field.ErrorList {
	var errs field.ErrorList
	sp := vp.Child("schema", "openAPIV3Schema")
	if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
		errs = append(errs, field.Required(sp, "schemas are required"))
	} else {
		st, err := StructuralSchema(v.Schema)
		if err != nil {
			errs = append(errs, field.Invalid(sp, "", err.Error()))
		} else {
			errs = append(errs, structuralschema.ValidateStructural(sp, st)...)
			if st.Type != "object" {
				errs = append(errs, field.Invalid(sp.Child("type"), st.Type, "must be object at the root"))
			}
		}
	}
	if sub := v.Subresources; sub != nil && sub.Scale != nil {
		scp := vp.Child("subresources", "scale")
		for _, pp := range []struct {
			name, path string
			required   bool
		}{{"specReplicasPath", sub.Scale.SpecReplicasPath, true}, {"statusReplicasPath", sub.Scale.StatusReplicasPath, true}} {
			if pp.path == "" {
				errs = append(errs, field.Required(scp.Child(pp.name), ""))
			} else if !strings.HasPrefix(pp.path, ".spec.") && !strings.HasPrefix(pp.path, ".status.") {
				errs = append(errs, field.Invalid(scp.Child(pp.name), pp.path, "should be a json path under either .spec or .status"))
			}
		}
		if p := sub.Scale.LabelSelectorPath; p != nil && !strings.HasPrefix(*p, ".spec.") && !strings.HasPrefix(*p, ".status.") {
			errs = append(errs, field.Invalid(scp.Child("labelSelectorPath"), *p, "should be a json path under either .spec or .status"))
		}
	}
	for i, c := range v.AdditionalPrinterColumns {
		cp := vp.Child("additionalPrinterColumns").Index(i)
		if c.Name == "" {
			errs = append(errs, field.Required(cp.Child("name"), ""))
		}
		if !slices.Contains([]string{"integer", "number", "string", "boolean", "date"}, c.Type) {
			errs = append(errs, field.NotSupported(cp.Child("type"), c.Type, []string{"integer", "number", "string", "boolean", "date"}))
		}
		if c.JSONPath == "" {
			errs = append(errs, field.Required(cp.Child("jsonPath"), ""))
		} else if !strings.HasPrefix(c.JSONPath, ".") {
			errs = append(errs, field.Invalid(cp.Child("jsonPath"), c.JSONPath, fmt.Sprintf("must be a simple json path starting with .")))
		}
	}
	return errs
}
