package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
)

// refManager is upstream's PodControllerRefManager for one owner during
// one sync (and its ControllerRevision adoption): it keeps the pods the
// owner controls and that still match,
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
	var owned []*corev1.Pod
	var errs []error
	for _, p := range pods {
		ok, err := m.claimOne(ctx, p)
		if err != nil {
			errs = append(errs, err)
		}
		if ok != nil {
			owned = append(owned, ok)
		}
	}
	return owned, errors.Join(errs...)
}

func (m *refManager) claimOne(ctx context.Context, p *corev1.Pod) (*corev1.Pod, error) {
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		if ref.UID != m.owner.GetUID() {
			return nil, nil // someone else's
		}
		if m.matches(p) {
			return p, nil
		}
		if m.owner.GetDeletionTimestamp() != nil {
			return nil, nil
		}
		return nil, m.release(ctx, p)
	}
	if m.owner.GetDeletionTimestamp() != nil || !m.matches(p) || p.DeletionTimestamp != nil || p.Namespace != m.owner.GetNamespace() {
		return nil, nil
	}
	adopted, err := m.adopt(ctx, p)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return adopted, err
}

// adopt makes the owner the pod's controller with a strategic merge patch
// whose uid guards against a pod recreated under the same name.
func (m *refManager) adopt(ctx context.Context, p *corev1.Pod) (*corev1.Pod, error) {
	if err := m.canAdopt(ctx); err != nil {
		return nil, fmt.Errorf("can't adopt Pod %v/%v (%v): %w", p.Namespace, p.Name, p.UID, err)
	}
	patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":%q,"kind":%q,"name":%q,"uid":%q,"controller":true,"blockOwnerDeletion":true}],"uid":%q}}`,
		m.gvk.GroupVersion().String(), m.gvk.Kind, m.owner.GetName(), m.owner.GetUID(), p.UID)
	adopted, err := m.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("adopt pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return adopted, nil
}

// release drops the owner's reference from the pod; a pod that is gone or
// was recreated (the uid no longer matches: 422) needs nothing.
func (m *refManager) release(ctx context.Context, p *corev1.Pod) error {
	patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"uid":%q}}`, m.owner.GetUID(), p.UID)
	_, err := m.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		return nil
	}
	return fmt.Errorf("release pod %s/%s: %w", p.Namespace, p.Name, err)
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
		patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":%q,"kind":%q,"name":%q,"uid":%q,"controller":true,"blockOwnerDeletion":true}],"uid":%q}}`,
			m.gvk.GroupVersion().String(), m.gvk.Kind, m.owner.GetName(), m.owner.GetUID(), cr.UID)
		_, err := m.client.AppsV1().ControllerRevisions(cr.Namespace).Patch(ctx, cr.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("adopt controller revision %s/%s: %w", cr.Namespace, cr.Name, err)
		}
	}
	return nil
}
