package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
)

// refManager is upstream's ControllerRefManager for one owner during one
// sync (pods, the Deployment's ReplicaSets, ControllerRevision adoption):
// it keeps the objects the owner controls and that still match,
// adopts matching orphans (only while the owner, read afresh from the API
// once, is the same object and not being deleted) and releases owned pods
// that no longer match by removing its ownerReference.
type refManager struct {
	client kubernetes.Interface
	owner  metav1.Object
	gvk    schema.GroupVersionKind
	sel    labels.Selector
	// filter, when set, must also hold for a pod to be claimed (the
	// StatefulSet's name-and-ordinal membership).
	filter func(*corev1.Pod) bool
	// fresh reads the owner from the API, bypassing the cache.
	fresh func(ctx context.Context) (metav1.Object, error)

	once     sync.Once
	adoptErr error
}

// canAdopt is upstream's RecheckDeletionTimestamp, done once per sync.
func (m *refManager) canAdopt(ctx context.Context) error {
	m.once.Do(func() {
		cur, err := m.fresh(ctx)
		switch {
		case err != nil:
			m.adoptErr = err
		case cur.GetUID() != m.owner.GetUID():
			m.adoptErr = fmt.Errorf("original %v/%v is gone: got uid %v, wanted %v", m.owner.GetNamespace(), m.owner.GetName(), cur.GetUID(), m.owner.GetUID())
		case cur.GetDeletionTimestamp() != nil:
			m.adoptErr = fmt.Errorf("%v/%v has just been deleted at %v", m.owner.GetNamespace(), m.owner.GetName(), cur.GetDeletionTimestamp())
		}
	})
	return m.adoptErr
}

func (m *refManager) matches(p *corev1.Pod) bool {
	return m.sel.Matches(labels.Set(p.Labels)) && (m.filter == nil || m.filter(p))
}

// claim returns the pods the owner controls after adopting and releasing;
// the error joins the adoptions and releases that failed (the pods that
// could be claimed are still returned, as upstream's ClaimPods does).
func (m *refManager) claim(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	return claimObjects(ctx, m, pods, "Pod", m.matches, func(ctx context.Context, p *corev1.Pod, patch []byte) (*corev1.Pod, error) {
		return m.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	})
}

// claimReplicaSets is upstream's ClaimReplicaSets (the Deployment's
// ControllerRefManager): the ReplicaSets the owner controls after
// adopting matching orphans and releasing owned ones that stopped
// matching the selector.
func (m *refManager) claimReplicaSets(ctx context.Context, sets []*appsv1.ReplicaSet) ([]*appsv1.ReplicaSet, error) {
	match := func(rs *appsv1.ReplicaSet) bool { return m.sel.Matches(labels.Set(rs.Labels)) }
	return claimObjects(ctx, m, sets, "ReplicaSet", match, func(ctx context.Context, rs *appsv1.ReplicaSet, patch []byte) (*appsv1.ReplicaSet, error) {
		return m.client.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	})
}

// claimObjects is upstream's ClaimObject over a list of one kind: owned
// and matching objects are kept, owned ones that stopped matching are
// released (not while the owner is being deleted), and matching orphans
// of the owner's namespace that are not being deleted are adopted after
// the fresh owner check. patch applies a strategic merge patch.
func claimObjects[T metav1.Object](ctx context.Context, m *refManager, objs []T, kind string, matches func(T) bool,
	patch func(context.Context, T, []byte) (T, error)) ([]T, error) {
	var owned []T
	var errs []error
	for _, o := range objs {
		ref := metav1.GetControllerOfNoCopy(o)
		switch {
		case ref != nil && ref.UID != m.owner.GetUID():
			// someone else's
		case ref != nil && matches(o):
			owned = append(owned, o)
		case ref != nil:
			if m.owner.GetDeletionTimestamp() != nil {
				continue
			}
			_, err := patch(ctx, o, releasePatch(m.owner.GetUID(), o.GetUID()))
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
				// Gone or recreated (the uid no longer matches: 422) needs nothing.
				errs = append(errs, fmt.Errorf("release %s %s/%s: %w", kind, o.GetNamespace(), o.GetName(), err))
			}
		case m.owner.GetDeletionTimestamp() != nil || !matches(o) || o.GetDeletionTimestamp() != nil || o.GetNamespace() != m.owner.GetNamespace():
			// not an orphan this owner may adopt
		default:
			if err := m.canAdopt(ctx); err != nil {
				errs = append(errs, fmt.Errorf("can't adopt %s %v/%v (%v): %w", kind, o.GetNamespace(), o.GetName(), o.GetUID(), err))
				continue
			}
			adopted, err := patch(ctx, o, m.adoptPatch(o.GetUID()))
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				errs = append(errs, fmt.Errorf("adopt %s %s/%s: %w", kind, o.GetNamespace(), o.GetName(), err))
			default:
				owned = append(owned, adopted)
			}
		}
	}
	return owned, errors.Join(errs...)
}

// adoptPatch makes the owner an object's controller; the uid guards
// against an object recreated under the same name.
func (m *refManager) adoptPatch(uid types.UID) []byte {
	return fmt.Appendf(nil, `{"metadata":{"ownerReferences":[{"apiVersion":%q,"kind":%q,"name":%q,"uid":%q,"controller":true,"blockOwnerDeletion":true}],"uid":%q}}`,
		m.gvk.GroupVersion().String(), m.gvk.Kind, m.owner.GetName(), m.owner.GetUID(), uid)
}

// releasePatch drops the owner's reference from an object.
func releasePatch(owner, uid types.UID) []byte {
	return fmt.Appendf(nil, `{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"uid":%q}}`, owner, uid)
}

// adoptRevisions is upstream's AdoptOrphanRevisions: ControllerRevisions
// of the owner's namespace that match its selector and have no controller
// become the owner's (after the same fresh check as pods).
func (m *refManager) adoptRevisions(ctx context.Context, lister appslisters.ControllerRevisionLister) error {
	if m.owner.GetDeletionTimestamp() != nil {
		return nil
	}
	all, err := lister.ControllerRevisions(m.owner.GetNamespace()).List(m.sel)
	if err != nil {
		return err
	}
	for _, cr := range all {
		if metav1.GetControllerOfNoCopy(cr) != nil || cr.DeletionTimestamp != nil {
			continue
		}
		if err := m.canAdopt(ctx); err != nil {
			return fmt.Errorf("can't adopt ControllerRevision %v/%v (%v): %w", cr.Namespace, cr.Name, cr.UID, err)
		}
		_, err := m.client.AppsV1().ControllerRevisions(cr.Namespace).Patch(ctx, cr.Name, types.StrategicMergePatchType, m.adoptPatch(cr.UID), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("adopt controller revision %s/%s: %w", cr.Namespace, cr.Name, err)
		}
	}
	return nil
}
