package registry

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Custom is what a custom resource (one served version of a
// CustomResourceDefinition) needs beyond a built-in's descriptor. Its
// objects are *unstructured.Unstructured.
type Custom struct {
	// CRDName is the defining CustomResourceDefinition ("crontabs.stable.example.com").
	CRDName string
	// StorageVersion is the version objects are stored in; conversion
	// between versions is "None" (only apiVersion changes).
	StorageVersion string
	// StatusSubresource and Scale are the version's subresources.
	StatusSubresource bool
	Scale             *apiextensionsv1.CustomResourceSubresourceScale
	// Prune drops the fields the schema does not know (except under
	// x-kubernetes-preserve-unknown-fields) and returns their paths.
	Prune func(obj map[string]any) []string
	// Schema is the version's openAPIV3Schema in kube-openapi form (nil: none).
	Schema *spec.Schema
	// Deprecated versions warn every request with DeprecationWarning.
	Deprecated         bool
	DeprecationWarning string
	// Terminating: the CRD is being deleted; new objects are refused.
	Terminating bool
}
