package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
)

// ControllerRevisions are the history of StatefulSets and DaemonSets, what
// `kubectl rollout history|undo` reads and applies. Their data is the
// strategic merge patch upstream stores: the pod template with
// "$patch": "replace".

// templatePatch is the revision data of a pod template.
func templatePatch(t *corev1.PodTemplateSpec) ([]byte, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	var tmpl map[string]any
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		return nil, err
	}
	tmpl["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": tmpl}})
}

// revisionTemplate is the pod template a revision stores.
func revisionTemplate(cr *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	var patch struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(cr.Data.Raw, &patch); err != nil {
		return nil, fmt.Errorf("decode controller revision %s: %w", cr.Name, err)
	}
	return &patch.Spec.Template, nil
}

// revisionHash is upstream's HashControllerRevision: fnv32 of the data and
// the collision count.
func revisionHash(data []byte, collisions *int32) string {
	h := fnv.New32()
	h.Write(data)
	if collisions != nil {
		h.Write(strconv.AppendInt(nil, int64(*collisions), 10))
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// ownedRevisions lists the revisions owner controls, oldest first.
func ownedRevisions(lister appslisters.ControllerRevisionLister, owner metav1.Object) ([]*appsv1.ControllerRevision, error) {
	all, err := lister.ControllerRevisions(owner.GetNamespace()).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []*appsv1.ControllerRevision
	for _, cr := range all {
		if ref := metav1.GetControllerOf(cr); ref != nil && ref.UID == owner.GetUID() {
			out = append(out, cr)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Revision != out[j].Revision {
			return out[i].Revision < out[j].Revision
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// history makes and trims an owner's revisions.
type history struct {
	client kubernetes.Interface
	gvk    schema.GroupVersionKind
}

// revisionSpec is what a new revision is made of.
type revisionSpec struct {
	owner       metav1.Object
	labels      map[string]string // the template's labels (the owner's selector matches them)
	hashLabel   bool              // add controller-revision-hash=<hash> (DaemonSets)
	data        []byte
	hash        string
	name        string
	annotations map[string]string
}

// current returns the revision holding data: the newest one if it holds
// it, an older one moved to the top (a rollback), or a new one. A name
// taken by other data is a collision the caller resolves by bumping its
// collision count.
func (h *history) current(ctx context.Context, revs []*appsv1.ControllerRevision, spec revisionSpec) (*appsv1.ControllerRevision, bool, error) {
	var top int64
	for _, cr := range revs {
		top = max(top, cr.Revision)
	}
	for _, cr := range revs {
		if string(cr.Data.Raw) != string(spec.data) {
			continue
		}
		if cr.Revision == top {
			return cr, false, nil
		}
		next := cr.DeepCopy()
		next.Revision = top + 1
		updated, err := h.client.AppsV1().ControllerRevisions(cr.Namespace).Update(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			return nil, false, fmt.Errorf("move controller revision %s to %d: %w", cr.Name, top+1, err)
		}
		return updated, false, nil
	}
	lbls := copyMap(spec.labels)
	if lbls == nil {
		lbls = map[string]string{}
	}
	lbls["controller.kubernetes.io/hash"] = spec.hash
	if spec.hashLabel {
		lbls[appsv1.DefaultDaemonSetUniqueLabelKey] = spec.hash
	}
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: spec.name, Namespace: spec.owner.GetNamespace(), Labels: lbls, Annotations: copyMap(spec.annotations),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(spec.owner, h.gvk)}},
		Data:     runtime.RawExtension{Raw: spec.data},
		Revision: top + 1,
	}
	created, err := h.client.AppsV1().ControllerRevisions(cr.Namespace).Create(ctx, cr, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := h.client.AppsV1().ControllerRevisions(cr.Namespace).Get(ctx, cr.Name, metav1.GetOptions{})
		if gerr == nil && string(existing.Data.Raw) == string(spec.data) {
			if ref := metav1.GetControllerOf(existing); ref != nil && ref.UID == spec.owner.GetUID() {
				return existing, false, nil
			}
		}
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("create controller revision %s: %w", cr.Name, err)
	}
	return created, false, nil
}

// trim deletes the oldest revisions beyond limit that no live pod or
// status names.
func (h *history) trim(ctx context.Context, revs []*appsv1.ControllerRevision, live map[string]bool, limit *int32) error {
	keep := int32(10)
	if limit != nil {
		keep = *limit
	}
	var old []*appsv1.ControllerRevision
	for _, cr := range revs {
		if !live[cr.Name] {
			old = append(old, cr)
		}
	}
	for i := 0; i < len(old)-int(keep); i++ {
		if err := h.client.AppsV1().ControllerRevisions(old[i].Namespace).Delete(ctx, old[i].Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete controller revision %s: %w", old[i].Name, err)
		}
	}
	return nil
}
