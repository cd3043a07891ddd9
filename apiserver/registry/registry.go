// Package registry describes every resource the API server serves: one file
// per kind holds its names, defaults, validation, table columns and field
// selectors. The generic REST machinery in package apiserver reads these
// descriptors; nothing in here knows about HTTP or storage.
package registry

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Resource describes one resource in one group/version.
type Resource struct {
	GroupVersion schema.GroupVersion
	Kind         string // "Deployment"
	ListKind     string // "DeploymentList"
	Plural       string // "deployments"
	Singular     string // "deployment"
	Namespaced   bool
	ShortNames   []string
	Categories   []string // e.g. "all"
	// Verbs served; nil means the full set
	// (create delete deletecollection get list patch update watch).
	Verbs []string
	// Subresources served besides the main resource: "status", "scale",
	// "binding", "eviction", "log", "exec", ...
	Subresources []string
	// HasStatus: a main-resource update keeps the stored status and a
	// status update keeps everything but status (kube-apiserver's strategy).
	HasStatus bool
	// HasSpecGeneration: metadata.generation starts at 1 and grows when
	// anything but metadata and status changes.
	HasSpecGeneration bool
	// Deprecation is the warning kube-apiserver sends with every request
	// for this resource ("v1 Endpoints is deprecated in v1.33+; …").
	Deprecation string
	// GracefulDelete: a delete sets deletionTimestamp and a grace period;
	// the object goes when its owner (the node agent for pods) confirms.
	GracefulDelete bool

	New     func() runtime.Object // &appsv1.Deployment{}
	NewList func() runtime.Object // &appsv1.DeploymentList{}

	// Default sets the fields kube-apiserver defaults (SetDefaults_*). Nil: none.
	Default func(obj runtime.Object)
	// PrepareForCreate clears what a client may not set on create (e.g.
	// status). Nil: nothing beyond the generic metadata handling.
	PrepareForCreate func(obj runtime.Object)
	// PrepareForUpdate adjusts an update against the old object before
	// validation (fields that depend on others). Nil: nothing.
	PrepareForUpdate func(obj, old runtime.Object)
	// Validate checks a new object; ValidateUpdate an update against the old
	// one (immutable fields). Errors carry field paths for the 422 causes.
	Validate       func(obj runtime.Object) field.ErrorList
	ValidateUpdate func(obj, old runtime.Object) field.ErrorList

	// ValidateName checks metadata.name; nil means a DNS-1123 subdomain.
	ValidateName func(name string, prefix bool) []string

	// Table gives the server-side table columns, the same as kube-apiserver's.
	Table *Table
	// FieldSet returns the selectable fields besides metadata.name and
	// metadata.namespace (e.g. spec.nodeName, status.phase for pods).
	FieldSet func(obj runtime.Object) fields.Set

	// DeleteFinalizer is added when a delete is asked for, so the object
	// stays until its owner (a controller) has cleaned up and removes it.
	DeleteFinalizer string
	// Custom is set for custom resources (objects are unstructured).
	Custom *Custom

	// StorageResource, when set, is the resource whose keys and JSON form
	// this one's objects are stored in (events.k8s.io/v1 events as core
	// events, autoscaling/v1 as v2); ToStorage and FromStorage convert.
	StorageResource *Resource
	ToStorage       func(obj runtime.Object) runtime.Object
	FromStorage     func(obj runtime.Object) runtime.Object
}

// Table is a kind's server-side table printer.
type Table struct {
	Columns []metav1.TableColumnDefinition
	// Row returns the cells for one object, in Columns order.
	Row func(obj runtime.Object) ([]interface{}, error)
}

// GroupVersionKind of the resource.
func (r *Resource) GroupVersionKind() schema.GroupVersionKind {
	return r.GroupVersion.WithKind(r.Kind)
}

// GroupVersionResource of the resource.
func (r *Resource) GroupVersionResource() schema.GroupVersionResource {
	return r.GroupVersion.WithResource(r.Plural)
}

// SelectableField reports whether a field selector may name field for this
// kind: metadata.name, metadata.namespace for namespaced kinds, and what
// FieldSet returns (its keys do not depend on the object).
func (r *Resource) SelectableField(field string) bool {
	switch {
	case field == "metadata.name":
		return true
	case field == "metadata.namespace":
		return r.Namespaced
	case r.FieldSet == nil:
		return false
	}
	_, ok := r.FieldSet(r.New())[field]
	return ok
}
