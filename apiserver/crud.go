package apiserver

import (
	"errors"

	"fmt"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// getObject reads one object.
func (s *Server) getObject(r *registry.Resource, ns, name string) (runtime.Object, store.KV, error) {
	kv, err := s.store.Get(objectKey(r, ns, name))
	if err != nil {
		return nil, kv, storeError(err, r.GroupVersionResource().GroupResource(), name)
	}
	obj, err := s.decoded.decode(r, kv)
	return obj, kv, err
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	obj, _, err := s.getObject(info.res, info.namespace, info.name)
	if err != nil {
		return err
	}
	s.respond(w, r, info.res, http.StatusOK, obj)
	return nil
}

// respond writes obj as the client asked: the object, a Table or metadata.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, res *registry.Resource, code int, obj runtime.Object) {
	a, _ := negotiate(r)
	switch a.as {
	case "Table":
		t, err := s.toTable(res, []runtime.Object{obj}, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeObject(w, r, code, t, metav1.SchemeGroupVersion)
		return
	case "PartialObjectMetadata":
		s.writeObject(w, r, code, partialMetadata(obj), metav1.SchemeGroupVersion)
		return
	}
	s.writeObject(w, r, code, obj, res.GroupVersion)
}

func partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	pom := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if md, ok := u.Object["metadata"].(map[string]any); ok {
			_ = runtime.DefaultUnstructuredConverter.FromUnstructured(md, &pom.ObjectMeta)
		}
		return pom
	}
	if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if om, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			pom.ObjectMeta = *om
		}
	}
	return pom
}

// namespaceActive checks that ns exists and is not being deleted.
func (s *Server) namespaceActive(r *registry.Resource, ns string) error {
	nsRes := s.resource(schemaCoreV1, "namespaces")
	if nsRes == nil {
		return nil
	}
	obj, _, err := s.getObject(nsRes, "", ns)
	if err != nil {
		return err
	}
	m, _ := meta.Accessor(obj)
	if m.GetDeletionTimestamp() != nil {
		return apierrors.NewForbidden(r.GroupVersionResource().GroupResource(), "",
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
	}
	return nil
}

func dryRun(r *http.Request) bool {
	for _, v := range r.URL.Query()["dryRun"] {
		if v == "All" {
			return true
		}
	}
	return false
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	res := info.res
	body, err := readBody(r)
	if err != nil {
		return err
	}
	obj := res.New()
	if err := s.decodeInto(w, r, body, obj, res.GroupVersionKind()); err != nil {
		return err
	}
	if err := s.pruneCustom(w, r, res, obj); err != nil {
		return err
	}
	obj = s.trackUpdate(r, res, "", nil, obj)
	created, err := s.createObject(r, res, info.namespace, obj)
	if err != nil {
		return err
	}
	s.respond(w, r, res, http.StatusCreated, created)
	return nil
}

// createObject runs the create path (defaults, validation, admission,
// storage) for a decoded object. It is shared by create and by
// create-on-update (server-side apply of a new object).
func (s *Server) createObject(r *http.Request, res *registry.Resource, ns string, obj runtime.Object) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if res.Namespaced {
		if m.GetNamespace() == "" {
			m.SetNamespace(ns)
		}
		if ns != "" && m.GetNamespace() != ns {
			return nil, badRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	} else {
		m.SetNamespace("")
	}
	if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
		// The requestor is whoever creates the request, never the body.
		csr.Spec.Username, csr.Spec.Groups, csr.Spec.UID, csr.Spec.Extra = "", nil, "", nil
		if u := userFrom(r.Context()); u != nil {
			csr.Spec.Username, csr.Spec.Groups = u.Name, u.Groups
		}
	}
	gr := res.GroupVersionResource().GroupResource()
	if res.Custom != nil && res.Custom.Terminating {
		err := apierrors.NewMethodNotSupported(gr, "create")
		err.ErrStatus.Message = "create not allowed while custom resource definition is terminating"
		return nil, err
	}
	if m.GetName() == "" && m.GetGenerateName() == "" {
		return nil, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), "", field.ErrorList{field.Required(field.NewPath("metadata", "name"), "name or generateName is required")})
	}
	generated := m.GetName() == ""
	if err := s.prepareCreate(res, obj, m); err != nil {
		return nil, err
	}
	if errs := s.validateCreate(res, obj, m); len(errs) > 0 {
		return nil, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), m.GetName(), errs)
	}
	if res.Namespaced {
		if err := s.namespaceActive(res, m.GetNamespace()); err != nil {
			return nil, err
		}
	}
	if err := s.validatingAdmission(res, obj, m.GetName()); err != nil {
		return nil, err
	}
	if err := s.checkEscalation(r, res, obj); err != nil {
		return nil, err
	}
	svc, isService := obj.(*corev1.Service)
	var orig *corev1.Service
	if isService {
		orig = svc.DeepCopy()
	}
	for attempt := 0; ; attempt++ {
		var alloc *allocation
		if isService {
			*svc = *orig.DeepCopy()
			var err error
			if alloc, err = s.allocateService(svc, nil); err != nil {
				return nil, err
			}
		}
		if dryRun(r) {
			return obj, nil
		}
		data, err := encodeStored(res, obj)
		if err != nil {
			return nil, err
		}
		key := objectKey(res, m.GetNamespace(), m.GetName())
		kvs, err := s.store.Txn(append([]store.Op{{Kind: store.OpCreate, Key: key, Value: data}}, alloc.ops()...))
		if errors.Is(err, store.ErrExists) {
			if _, gerr := s.store.Get(key); gerr == nil {
				if generated && attempt < 8 {
					m.SetName(m.GetGenerateName() + utilrand.String(5))
					continue
				}
				return nil, apierrors.NewAlreadyExists(gr, m.GetName())
			}
			if alloc != nil {
				cerr := s.allocationConflict(svc, alloc)
				if errors.Is(cerr, errRetryAllocation) && attempt < 8 {
					continue
				}
				if cerr != nil {
					return nil, cerr
				}
			}
		}
		if err != nil {
			return nil, storeError(err, gr, m.GetName())
		}
		m.SetResourceVersion(strconv.FormatInt(kvs[0].ModRev, 10))
		obj.GetObjectKind().SetGroupVersionKind(res.GroupVersionKind())
		s.committed(res, obj, false)
		return obj, nil
	}
}

func (s *Server) prepareCreate(res *registry.Resource, obj runtime.Object, m metav1.Object) error {
	if m.GetName() == "" {
		m.SetName(m.GetGenerateName() + utilrand.String(5))
	}
	m.SetUID(types.UID(uuid.NewUUID()))
	m.SetCreationTimestamp(metav1.Now())
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	if res.HasSpecGeneration {
		m.SetGeneration(1)
	} else {
		m.SetGeneration(0)
	}
	if res.Default != nil {
		res.Default(obj)
	}
	if err := s.mutatingAdmission(res, obj); err != nil {
		return err
	}
	if res.PrepareForCreate != nil {
		res.PrepareForCreate(obj)
	}
	return nil
}

func (s *Server) validateCreate(res *registry.Resource, obj runtime.Object, m metav1.Object) field.ErrorList {
	nameFn := validation.ValidateNameFunc(validation.NameIsDNSSubdomain)
	if res.ValidateName != nil {
		nameFn = res.ValidateName
	}
	errs := validation.ValidateObjectMetaAccessor(m, res.Namespaced, nameFn, field.NewPath("metadata"))
	if res.Validate != nil {
		errs = append(errs, res.Validate(obj)...)
	}
	return errs
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	res := info.res
	body, err := readBody(r)
	if err != nil {
		return err
	}
	obj := res.New()
	if err := s.decodeInto(w, r, body, obj, res.GroupVersionKind()); err != nil {
		return err
	}
	if err := s.pruneCustom(w, r, res, obj); err != nil {
		return err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return badRequest("%v", err)
	}
	if m.GetName() != info.name {
		return badRequest("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), info.name)
	}
	if res.Namespaced && m.GetNamespace() == "" {
		m.SetNamespace(info.namespace)
	}
	if res.Namespaced && m.GetNamespace() != info.namespace {
		return badRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	updated, code, err := s.updateObject(r, res, info, obj)
	if err != nil {
		return err
	}
	s.respond(w, r, res, code, updated)
	return nil
}

// updateObject runs the update path against the stored object: a
// resourceVersion in obj is a precondition; the subresource decides which
// part of the object changes.
func (s *Server) updateObject(r *http.Request, res *registry.Resource, info *requestInfo, obj runtime.Object) (runtime.Object, int, error) {
	gr := res.GroupVersionResource().GroupResource()
	m, _ := meta.Accessor(obj)
	old, kv, err := s.getObject(res, info.namespace, info.name)
	if err != nil {
		return nil, 0, err
	}
	om, _ := meta.Accessor(old)
	expect := int64(0)
	if rv := m.GetResourceVersion(); rv != "" {
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil {
			return nil, 0, badRequest("invalid resourceVersion %q", rv)
		}
		if n != kv.ModRev {
			return nil, 0, apierrors.NewConflict(gr, info.name, errors.New(conflictMsg))
		}
		expect = n
	} else {
		expect = kv.ModRev
	}
	if m.GetUID() != "" && m.GetUID() != om.GetUID() {
		return nil, 0, apierrors.NewConflict(gr, info.name, fmt.Errorf("Precondition failed: UID in precondition: %s, UID in object meta: %s", m.GetUID(), om.GetUID()))
	}
	var next runtime.Object
	switch info.subresource {
	case "status":
		next = old.DeepCopyObject()
		copyStatus(next, obj)
		// Status writers change only the status.
		if !isApply(r) {
			next = s.trackUpdate(r, res, "status", old, next)
		}
	case "finalize":
		next = old.DeepCopyObject()
		copySpec(next, obj)
	case "approval":
		next = old.DeepCopyObject()
		if errs := registry.UpdateCSRApproval(next.(*certificatesv1.CertificateSigningRequest), obj.(*certificatesv1.CertificateSigningRequest)); len(errs) > 0 {
			return nil, 0, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), info.name, errs)
		}
	case "ephemeralcontainers":
		next = old.DeepCopyObject()
		if errs := registry.UpdateEphemeralContainers(next.(*corev1.Pod), obj.(*corev1.Pod), old.(*corev1.Pod)); len(errs) > 0 {
			return nil, 0, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), info.name, errs)
		}
	default:
		next = obj
		nm := m
		nm.SetUID(om.GetUID())
		nm.SetCreationTimestamp(om.GetCreationTimestamp())
		nm.SetDeletionTimestamp(om.GetDeletionTimestamp())
		nm.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
		nm.SetGeneration(om.GetGeneration())
		if res.HasStatus {
			copyStatus(next, old)
		}
		if res.Default != nil {
			res.Default(next)
		}
		if res.PrepareForUpdate != nil {
			res.PrepareForUpdate(next, old)
		}
		if res.HasSpecGeneration && specChanged(res, next, old) {
			nm.SetGeneration(om.GetGeneration() + 1)
		}
		if !isApply(r) { // apply recorded its own managedFields
			next = s.trackUpdate(r, res, info.trackAs, old, next)
		}
	}
	nm, _ := meta.Accessor(next)
	nm.SetResourceVersion(strconv.FormatInt(kv.ModRev, 10))
	if info.subresource == "status" && res.Custom != nil && res.Validate != nil {
		if errs := res.Validate(next); len(errs) > 0 {
			return nil, 0, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), info.name, errs)
		}
	}
	if info.subresource == "" {
		errs := validation.ValidateObjectMetaAccessorUpdate(nm, om, field.NewPath("metadata"))
		nameFn := validation.ValidateNameFunc(validation.NameIsDNSSubdomain)
		if res.ValidateName != nil {
			nameFn = res.ValidateName
		}
		errs = append(errs, validation.ValidateObjectMetaAccessor(nm, res.Namespaced, nameFn, field.NewPath("metadata"))...)
		if res.Validate != nil {
			errs = append(errs, res.Validate(next)...)
		}
		if res.ValidateUpdate != nil {
			errs = append(errs, res.ValidateUpdate(next, old)...)
		}
		if len(errs) > 0 {
			return nil, 0, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), info.name, errs)
		}
		if err := s.checkEscalation(r, res, next); err != nil {
			return nil, 0, err
		}
	}
	var alloc *allocation
	if svc, ok := next.(*corev1.Service); ok && info.subresource == "" {
		var err error
		if alloc, err = s.allocateService(svc, old.(*corev1.Service)); err != nil {
			return nil, 0, err
		}
	}
	if dryRun(r) {
		nm.SetResourceVersion(strconv.FormatInt(kv.ModRev, 10))
		return next, http.StatusOK, nil
	}
	// An object being deleted whose last finalizer went away is removed.
	if nm.GetDeletionTimestamp() != nil && len(nm.GetFinalizers()) == 0 && !pendingGrace(nm) && !specFinalizers(next) {
		gone, err := s.store.Delete(objectKey(res, info.namespace, info.name), expect)
		if err != nil {
			return nil, 0, storeError(err, gr, info.name)
		}
		nm.SetResourceVersion(strconv.FormatInt(gone.ModRev, 10))
		s.committed(res, next, true)
		return next, http.StatusOK, nil
	}
	data, err := encodeStored(res, next)
	if err != nil {
		return nil, 0, err
	}
	kvs, err := s.store.Txn(append([]store.Op{{Kind: store.OpUpdate, Key: objectKey(res, info.namespace, info.name), Value: data, ExpectModRev: expect}}, alloc.ops()...))
	if errors.Is(err, store.ErrExists) && alloc != nil {
		if cerr := s.allocationConflict(next.(*corev1.Service), alloc); cerr != nil && !errors.Is(cerr, errRetryAllocation) {
			return nil, 0, cerr
		}
		return nil, 0, apierrors.NewConflict(gr, info.name, errors.New(conflictMsg))
	}
	if err != nil {
		return nil, 0, storeError(err, gr, info.name)
	}
	if alloc != nil {
		s.releaseDropped(old.(*corev1.Service), next.(*corev1.Service))
	}
	nm.SetResourceVersion(strconv.FormatInt(kvs[0].ModRev, 10))
	next.GetObjectKind().SetGroupVersionKind(res.GroupVersionKind())
	s.committed(res, next, false)
	return next, http.StatusOK, nil
}

// specFinalizers: a namespace stays until the namespace controller has
// emptied it and removed the kubernetes finalizer from its spec.
func specFinalizers(obj runtime.Object) bool {
	ns, ok := obj.(*corev1.Namespace)
	return ok && len(ns.Spec.Finalizers) > 0
}

// pendingGrace: a graceful deletion still waits for its owner (the node
// agent) to confirm with grace period 0.
func pendingGrace(m metav1.Object) bool {
	g := m.GetDeletionGracePeriodSeconds()
	return g != nil && *g > 0
}

func copySpec(dst, src runtime.Object) {
	d, s := reflectField(dst, "Spec"), reflectField(src, "Spec")
	if d.IsValid() && s.IsValid() {
		d.Set(s)
	}
}

// now is the server's clock (one place to read it).
func now() metav1.Time { return metav1.NewTime(time.Now().Truncate(time.Second)) }
