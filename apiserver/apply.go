package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	extapply "k8s.io/apiextensions-apiserver/pkg/client/applyconfiguration"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/nanokube/nanokube/apiserver/openapi"
	"github.com/nanokube/nanokube/apiserver/registry"
)

// fieldManagers builds the server-side apply machinery lazily: the type
// converter for every built-in kind costs memory that an idle cluster
// that never sees an apply should not pay.
type fieldManagers struct {
	once     sync.Once
	tc       managedfields.TypeConverter // the kinds of k8s.io/api
	tcExt    managedfields.TypeConverter // apiextensions.k8s.io (CustomResourceDefinition)
	mu       sync.Mutex
	managers map[managerKey]*managedfields.FieldManager
}

// managerKey names a field manager: one per kind and subresource, as in
// kube-apiserver, so that a write through /status or /scale is recorded
// with its subresource and owns its fields apart from the main resource's.
type managerKey struct {
	res         *registry.Resource
	subresource string // "", "status", "scale"
}

func (s *Server) fieldManager(res *registry.Resource, subresource string) (*managedfields.FieldManager, error) {
	if res.Custom != nil {
		return s.customFieldManager(res, subresource)
	}
	f := &s.fm
	f.once.Do(func() {
		f.tc = applyconfigurations.NewTypeConverter(clientgoscheme.Scheme)
		f.tcExt = extapply.NewTypeConverter(s.scheme)
		f.managers = map[managerKey]*managedfields.FieldManager{}
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	gvk := res.GroupVersionKind()
	key := managerKey{res, subresource}
	if m := f.managers[key]; m != nil {
		return m, nil
	}
	tc := f.tc
	if gvk.Group == apiextensionsv1.GroupName {
		tc = f.tcExt
	}
	m, err := managedfields.NewDefaultFieldManager(tc, s.scheme, s.scheme, s.scheme, gvk, gvk.GroupVersion(), subresource, nil)
	if err != nil {
		return nil, err
	}
	f.managers[key] = m
	return m, nil
}

// apply is server-side apply: merge the applied configuration into the live
// object (or a new one), tracking field ownership in managedFields.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, info *requestInfo, body []byte) error {
	res := info.res
	manager := r.URL.Query().Get("fieldManager")
	if manager == "" {
		return badRequest("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
	}
	force := r.URL.Query().Get("force") == "true"
	js, err := yaml.YAMLToJSON(body)
	if err != nil {
		return badRequest("error decoding YAML: %v", err)
	}
	applied := &unstructured.Unstructured{}
	if err := json.Unmarshal(js, &applied.Object); err != nil {
		return badRequest("%v", err)
	}
	// YAMLToJSON keeps the last of duplicate keys; like kube-apiserver,
	// a strict pass names them unless fieldValidation is Ignore.
	if level := fieldValidation(r); level != metav1.FieldValidationIgnore {
		if err := yaml.UnmarshalStrict(body, &map[string]any{}); err != nil {
			if level == metav1.FieldValidationStrict {
				return badRequest("error strict decoding YAML: %v", err)
			}
			addWarning(w, err)
		}
	}
	if gvk := applied.GroupVersionKind(); gvk != res.GroupVersionKind() {
		return badRequest("the API version in the data (%s) does not match the expected API version (%s)", gvk.GroupVersion(), res.GroupVersion)
	}
	if applied.GetName() != "" && applied.GetName() != info.name {
		return badRequest("the name of the object (%s) does not match the name on the URL (%s)", applied.GetName(), info.name)
	}
	fm, err := s.fieldManager(res, "")
	if err != nil {
		return err
	}
	for attempt := 0; attempt < 5; attempt++ {
		live, _, err := s.getObject(res, info.namespace, info.name)
		create := apierrors.IsNotFound(err)
		if err != nil && !create {
			return err
		}
		if create {
			live = res.New()
			live.GetObjectKind().SetGroupVersionKind(res.GroupVersionKind())
		}
		merged, err := fm.Apply(live, applied, manager, force)
		if err != nil {
			var se apierrors.APIStatus
			if errors.As(err, &se) {
				return err
			}
			return badRequest("%v", err)
		}
		obj, err := toTyped(s.scheme, res, merged)
		if err != nil {
			return err
		}
		if err := s.pruneCustom(w, r, res, obj); err != nil {
			return err
		}
		m, _ := meta.Accessor(obj)
		if create {
			m.SetName(info.name)
			created, err := s.createObject(r, res, info.namespace, obj)
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return err
			}
			s.respond(w, r, res, http.StatusCreated, created)
			return nil
		}
		updated, code, err := s.updateObject(r, res, info, obj)
		if apierrors.IsConflict(err) && applied.GetResourceVersion() == "" {
			continue
		}
		if err != nil {
			return err
		}
		s.respond(w, r, res, code, updated)
		return nil
	}
	return apierrors.NewConflict(res.GroupVersionResource().GroupResource(), info.name, errors.New(conflictMsg))
}

// customFieldManager builds a custom resource's field manager from its
// schema; it lives as long as the catalog snapshot that serves the resource.
func (s *Server) customFieldManager(res *registry.Resource, subresource string) (*managedfields.FieldManager, error) {
	snap := s.catalog.get()
	snap.fmMu.Lock()
	defer snap.fmMu.Unlock()
	key := managerKey{res, subresource}
	if m := snap.fm[key]; m != nil {
		return m, nil
	}
	tc, err := managedfields.NewTypeConverter(openapi.CustomModels(res), false)
	if err != nil {
		return nil, fmt.Errorf("type converter for %s: %w", res.GroupVersionKind(), err)
	}
	conv := noneConverter{}
	gvk := res.GroupVersionKind()
	m, err := managedfields.NewDefaultCRDFieldManager(tc, conv, nopDefaulter{}, customCreater{res}, gvk, gvk.GroupVersion(), subresource, nil)
	if err != nil {
		return nil, err
	}
	snap.fm[key] = m
	return m, nil
}

// noneConverter is the "None" conversion between a CRD's versions: only
// apiVersion changes.
type noneConverter struct{}

func (noneConverter) Convert(in, out, _ any) error {
	ui, ok1 := in.(*unstructured.Unstructured)
	uo, ok2 := out.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return fmt.Errorf("convert %T to %T: not unstructured", in, out)
	}
	uo.Object = runtime.DeepCopyJSON(ui.Object)
	return nil
}

func (noneConverter) ConvertToVersion(in runtime.Object, gv runtime.GroupVersioner) (runtime.Object, error) {
	u, ok := in.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("convert %T: not unstructured", in)
	}
	target, ok := gv.KindForGroupVersionKinds([]schema.GroupVersionKind{u.GroupVersionKind()})
	if !ok {
		return nil, fmt.Errorf("%v is not suitable for converting to %v", u.GroupVersionKind(), gv)
	}
	out := u.DeepCopy()
	out.SetGroupVersionKind(target)
	return out, nil
}

func (noneConverter) ConvertFieldLabel(_ schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

type nopDefaulter struct{}

func (nopDefaulter) Default(runtime.Object) {}

type customCreater struct{ res *registry.Resource }

func (c customCreater) New(gvk schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

func toTyped(scheme *runtime.Scheme, res *registry.Resource, obj runtime.Object) (runtime.Object, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok && res.Custom != nil {
		return u, nil
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		out := res.New()
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
			return nil, err
		}
		return out, nil
	}
	return obj, nil
}

// trackUpdate records a create, update or patch in managedFields as
// kube-apiserver does (operation Update, the fieldManager parameter or
// the user agent's first word as manager, the subresource written
// through), so a later apply conflicts with what was set this way. live
// is the stored object (nil: a create).
// The in-process components skip it: they write most, read managedFields
// never, and the conversion costs ≈ 40 µs per ConfigMap write.
func (s *Server) trackUpdate(r *http.Request, res *registry.Resource, subresource string, live, obj runtime.Object) runtime.Object {
	if userFrom(r.Context()) == loopbackUser {
		return obj
	}
	fm, err := s.fieldManager(res, subresource)
	if err != nil {
		s.log.Debug("no field manager", "kind", res.GroupVersionKind(), "err", err)
		return obj
	}
	if live == nil {
		live = res.New()
		live.GetObjectKind().SetGroupVersionKind(res.GroupVersionKind())
	}
	return fm.UpdateNoErrors(live, obj, managerOrUserAgent(r.URL.Query().Get("fieldManager"), r.UserAgent()))
}

// managerOrUserAgent is kube-apiserver's default manager name: the given
// one, else the user agent up to its first "/" (printable characters, at
// most 128 bytes).
func managerOrUserAgent(manager, userAgent string) string {
	if manager != "" {
		return manager
	}
	var b strings.Builder
	for _, c := range strings.Split(userAgent, "/")[0] {
		if !unicode.IsPrint(c) {
			continue
		}
		if b.Len()+utf8.RuneLen(c) > 128 {
			break
		}
		b.WriteRune(c)
	}
	return b.String()
}
