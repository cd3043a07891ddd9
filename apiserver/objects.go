package apiserver

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// storageGroup names the group in storage keys ("core" for the legacy group).
func storageGroup(r *registry.Resource) string {
	if r.StorageResource != nil {
		r = r.StorageResource
	}
	if r.GroupVersion.Group == "" {
		return "core"
	}
	return r.GroupVersion.Group
}

// keyPrefix is the store prefix of a resource, or of one namespace of it.
func keyPrefix(r *registry.Resource, ns string) string {
	plural := r.Plural
	if r.StorageResource != nil {
		plural = r.StorageResource.Plural
	}
	p := "/registry/" + storageGroup(r) + "/" + plural + "/"
	if r.Namespaced && ns != "" {
		p += ns + "/"
	}
	return p
}

func objectKey(r *registry.Resource, ns, name string) string {
	return keyPrefix(r, ns) + name
}

// encodeStored is the stored form: JSON without resourceVersion, custom
// resources in their CRD's storage version.
func encodeStored(res *registry.Resource, obj runtime.Object) ([]byte, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	defer m.SetResourceVersion(rv)
	if res.ToStorage != nil {
		stored := res.ToStorage(obj)
		sm, err := meta.Accessor(stored)
		if err != nil {
			return nil, err
		}
		sm.SetResourceVersion("")
		return json.Marshal(stored)
	}
	if u, ok := obj.(*unstructured.Unstructured); ok && res.Custom != nil {
		served := u.GetAPIVersion()
		u.SetAPIVersion(schema.GroupVersion{Group: res.GroupVersion.Group, Version: res.Custom.StorageVersion}.String())
		defer u.SetAPIVersion(served)
	}
	return json.Marshal(obj)
}

// decodeStored turns a stored value into a typed object with its
// resourceVersion and type meta set.
func decodeStored(r *registry.Resource, kv store.KV) (runtime.Object, error) {
	obj := r.New()
	if r.StorageResource != nil && r.FromStorage != nil {
		stored := r.StorageResource.New()
		if err := json.Unmarshal(kv.Value, stored); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", r.StorageResource.Kind, kv.Key, err)
		}
		obj = r.FromStorage(stored)
	} else if err := json.Unmarshal(kv.Value, obj); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", r.Kind, kv.Key, err)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	m.SetResourceVersion(strconv.FormatInt(kv.ModRev, 10))
	obj.GetObjectKind().SetGroupVersionKind(r.GroupVersionKind())
	return obj, nil
}

// selector is a parsed label and field selector.
type selector struct {
	labels labels.Selector
	fields fields.Selector
}

func parseSelector(res *registry.Resource, opts *metav1.ListOptions) (selector, error) {
	sel := selector{labels: labels.Everything(), fields: fields.Everything()}
	var err error
	if opts.LabelSelector != "" {
		if sel.labels, err = labels.Parse(opts.LabelSelector); err != nil {
			return sel, badRequest("unable to parse requirement: %v", err)
		}
	}
	if opts.FieldSelector != "" {
		if sel.fields, err = fields.ParseSelector(opts.FieldSelector); err != nil {
			return sel, badRequest("invalid field selector: %v", err)
		}
		// kube-apiserver refuses fields the kind cannot select on.
		for _, req := range sel.fields.Requirements() {
			if !res.SelectableField(req.Field) {
				return sel, badRequest("field label not supported: %s", req.Field)
			}
		}
	}
	return sel, nil
}

func (sel selector) empty() bool { return sel.labels.Empty() && sel.fields.Empty() }

func (sel selector) matches(r *registry.Resource, obj runtime.Object) bool {
	if sel.empty() {
		return true
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return false
	}
	if !sel.labels.Matches(labels.Set(m.GetLabels())) {
		return false
	}
	if sel.fields.Empty() {
		return true
	}
	fs := fields.Set{"metadata.name": m.GetName()}
	if r.Namespaced {
		fs["metadata.namespace"] = m.GetNamespace()
	}
	if r.FieldSet != nil {
		for k, v := range r.FieldSet(obj) {
			fs[k] = v
		}
	}
	return sel.fields.Matches(fs)
}

// statusField reaches the Status field of a kind's Go struct.
func statusField(obj runtime.Object) (reflect.Value, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.Elem().FieldByName("Status")
	return f, f.IsValid() && f.CanSet()
}

// copyStatus sets dst's status to src's.
func copyStatus(dst, src runtime.Object) {
	if du, ok := dst.(*unstructured.Unstructured); ok {
		su := src.(*unstructured.Unstructured)
		if st, ok := su.Object["status"]; ok {
			du.Object["status"] = runtime.DeepCopyJSONValue(st)
		} else {
			delete(du.Object, "status")
		}
		return
	}
	d, ok1 := statusField(dst)
	s, ok2 := statusField(src)
	if ok1 && ok2 {
		d.Set(s)
	}
}

// specChanged compares everything but metadata and status (custom
// resources without a status subresource: everything but metadata).
func specChanged(res *registry.Resource, a, b runtime.Object) bool {
	if ua, ok := a.(*unstructured.Unstructured); ok {
		ub := b.(*unstructured.Unstructured)
		for _, m := range []map[string]any{ua.Object, ub.Object} {
			for k := range m {
				if k == "metadata" || k == "apiVersion" || k == "kind" || (k == "status" && res.HasStatus) {
					continue
				}
				if !equality.Semantic.DeepEqual(ua.Object[k], ub.Object[k]) {
					return true
				}
			}
		}
		return false
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	t := va.Type()
	for i := 0; i < t.NumField(); i++ {
		switch t.Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return true
		}
	}
	return false
}
