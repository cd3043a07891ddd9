package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

var schemaCoreV1 = schema.GroupVersion{Version: "v1"}

// deleteOptions come from the body (kubectl, client-go) or the query.
func (s *Server) deleteOptions(w http.ResponseWriter, r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		if err := s.decodeInto(w, r, body, opts, schemaCoreV1.WithKind("DeleteOptions")); err != nil {
			return nil, err
		}
	}
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" && opts.GracePeriodSeconds == nil {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, badRequest("invalid gracePeriodSeconds %q", v)
		}
		opts.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" && opts.PropagationPolicy == nil {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if q.Get("orphanDependents") == "true" && opts.OrphanDependents == nil {
		t := true
		opts.OrphanDependents = &t
	}
	return opts, nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	opts, err := s.deleteOptions(w, r)
	if err != nil {
		return err
	}
	obj, code, err := s.deleteObject(r, info.res, info.namespace, info.name, opts)
	if err != nil {
		return err
	}
	s.respond(w, r, info.res, code, obj)
	return nil
}

// deleteObject deletes at once, or marks the object (deletionTimestamp)
// when finalizers or a graceful deletion keep it for now.
func (s *Server) deleteObject(r *http.Request, res *registry.Resource, ns, name string, opts *metav1.DeleteOptions) (runtime.Object, int, error) {
	gr := res.GroupVersionResource().GroupResource()
	for attempt := 0; attempt < 5; attempt++ {
		obj, kv, err := s.getObject(res, ns, name)
		if err != nil {
			return nil, 0, err
		}
		m, _ := meta.Accessor(obj)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != m.GetUID() {
				return nil, 0, apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
				return nil, 0, apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
			}
		}
		// DeleteOptions carry dryRun in the body (client-go) or the query.
		if dryRun(r) || slices.Contains(opts.DryRun, metav1.DryRunAll) {
			return obj, http.StatusOK, nil
		}
		changed := false
		finalizers := m.GetFinalizers()
		policy := propagation(opts)
		if policy == metav1.DeletePropagationForeground && !slices.Contains(finalizers, metav1.FinalizerDeleteDependents) && m.GetDeletionTimestamp() == nil {
			finalizers, changed = append(finalizers, metav1.FinalizerDeleteDependents), true
		}
		if f := res.DeleteFinalizer; f != "" && !slices.Contains(finalizers, f) && m.GetDeletionTimestamp() == nil {
			finalizers, changed = append(finalizers, f), true
		}
		if policy == metav1.DeletePropagationOrphan && !slices.Contains(finalizers, metav1.FinalizerOrphanDependents) && m.GetDeletionTimestamp() == nil {
			finalizers, changed = append(finalizers, metav1.FinalizerOrphanDependents), true
		}
		if res.Kind == "Namespace" && res.GroupVersion.Group == "" {
			if ns, ok := obj.(*corev1.Namespace); ok && ns.Status.Phase != corev1.NamespaceTerminating {
				ns.Status.Phase, changed = corev1.NamespaceTerminating, true
			}
		}
		grace := s.gracePeriod(res, obj, opts)
		if grace > 0 {
			if cur := m.GetDeletionGracePeriodSeconds(); cur == nil || *cur > grace {
				m.SetDeletionGracePeriodSeconds(&grace)
				t := metav1.NewTime(time.Now().Add(time.Duration(grace) * time.Second))
				m.SetDeletionTimestamp(&t)
				changed = true
			}
		} else if g := m.GetDeletionGracePeriodSeconds(); g != nil && *g > 0 {
			zero := int64(0)
			m.SetDeletionGracePeriodSeconds(&zero)
			changed = true
		}
		if len(finalizers) > 0 || grace > 0 || specFinalizers(obj) {
			if m.GetDeletionTimestamp() == nil {
				t := now()
				m.SetDeletionTimestamp(&t)
				zero := int64(0)
				m.SetDeletionGracePeriodSeconds(&zero)
				changed = true
			}
			if !changed {
				return obj, http.StatusAccepted, nil
			}
			m.SetFinalizers(finalizers)
			data, err := encodeStored(res, obj)
			if err != nil {
				return nil, 0, err
			}
			nkv, err := s.store.Update(objectKey(res, ns, name), data, kv.ModRev)
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			if err != nil {
				return nil, 0, storeError(err, gr, name)
			}
			m.SetResourceVersion(strconv.FormatInt(nkv.ModRev, 10))
			return obj, http.StatusAccepted, nil
		}
		gone, err := s.store.Delete(objectKey(res, ns, name), kv.ModRev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, 0, storeError(err, gr, name)
		}
		m.SetResourceVersion(strconv.FormatInt(gone.ModRev, 10))
		s.afterDelete(res, obj)
		s.committed(res, obj, true)
		return obj, http.StatusOK, nil
	}
	return nil, 0, apierrors.NewConflict(gr, name, errors.New(conflictMsg))
}

func propagation(opts *metav1.DeleteOptions) metav1.DeletionPropagation {
	if opts.PropagationPolicy != nil {
		return *opts.PropagationPolicy
	}
	if opts.OrphanDependents != nil && *opts.OrphanDependents {
		return metav1.DeletePropagationOrphan
	}
	return metav1.DeletePropagationBackground
}

// gracePeriod is how long a deletion waits for its owner; only pods that a
// node runs have one (kube-apiserver's pod strategy).
func (s *Server) gracePeriod(res *registry.Resource, obj runtime.Object, opts *metav1.DeleteOptions) int64 {
	if !res.GracefulDelete {
		return 0
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	if opts.GracePeriodSeconds != nil {
		return max(*opts.GracePeriodSeconds, 0)
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return max(*pod.Spec.TerminationGracePeriodSeconds, 0)
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

func (s *Server) deleteCollection(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	opts, err := s.deleteOptions(w, r)
	if err != nil {
		return err
	}
	lopts, err := s.listOptions(r, false)
	if err != nil {
		return err
	}
	objs, rev, _, err := s.listObjects(info.res, info.namespace, lopts)
	if err != nil {
		return err
	}
	for _, o := range objs {
		m, _ := meta.Accessor(o)
		if _, _, err := s.deleteObject(r, info.res, m.GetNamespace(), m.GetName(), opts); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if info.res.NewList == nil {
		return nil
	}
	list := info.res.NewList()
	if err := meta.SetList(list, objs); err != nil {
		return err
	}
	lm, _ := meta.ListAccessor(list)
	lm.SetResourceVersion(strconv.FormatInt(rev, 10))
	s.writeObject(w, r, http.StatusOK, list, info.res.GroupVersion)
	return nil
}
