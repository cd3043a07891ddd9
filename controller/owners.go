package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// metaOf returns the object of an informer event, unwrapping a deletion
// whose final state was missed.
func metaOf(obj any) (metav1.Object, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	return m, ok
}

// controllerKey is the namespace/name key of obj's controller when it is
// of kind.
func controllerKey(obj any, kind string) (string, bool) {
	m, ok := metaOf(obj)
	if !ok {
		return "", false
	}
	ref := metav1.GetControllerOf(m)
	if ref == nil || ref.Kind != kind {
		return "", false
	}
	return m.GetNamespace() + "/" + ref.Name, true
}

// createPodFor creates a pod from a workload's template, owned by it, and
// records kube-controller-manager's SuccessfulCreate/FailedCreate events.
func createPodFor(ctx context.Context, client kubernetes.Interface, rec record.EventRecorder, owner metav1.Object, ownerObj runtime.Object,
	gvk schema.GroupVersionKind, tmpl *corev1.PodTemplateSpec) error {
	return createNamedPodFor(ctx, client, rec, owner, ownerObj, gvk, tmpl, owner.GetName()+"-")
}

// createNamedPodFor is createPodFor with the pod's generateName given.
func createNamedPodFor(ctx context.Context, client kubernetes.Interface, rec record.EventRecorder, owner metav1.Object, ownerObj runtime.Object,
	gvk schema.GroupVersionKind, tmpl *corev1.PodTemplateSpec, generateName string) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    generateName,
			Namespace:       owner.GetNamespace(),
			Labels:          tmpl.Labels,
			Annotations:     tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, gvk)},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	created, err := client.CoreV1().Pods(owner.GetNamespace()).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		rec.Eventf(ownerObj, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("create pod for %s %s: %w", gvk.Kind, owner.GetName(), err)
	}
	rec.Eventf(ownerObj, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.Name)
	return nil
}
