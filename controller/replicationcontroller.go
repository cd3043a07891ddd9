package controller

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// NewReplicationController builds the ReplicationController controller:
// the ReplicaSet loop over ReplicationControllers seen as ReplicaSets (a
// map selector is a LabelSelector of matchLabels), as
// kube-controller-manager runs it.
func NewReplicationController(cfg ReplicaSetConfig) (*ReplicaSet, error) {
	inf := cfg.Informers.Core().V1().ReplicationControllers()
	lister := inf.Lister()
	kind := replicaKind{
		gvk: corev1.SchemeGroupVersion.WithKind("ReplicationController"),
		get: func(ns, name string) (*appsv1.ReplicaSet, runtime.Object, error) {
			rc, err := lister.ReplicationControllers(ns).Get(name)
			if err != nil {
				return nil, nil, err
			}
			return rcAsReplicaSet(rc), rc, nil
		},
		list: func(ns string) ([]*appsv1.ReplicaSet, error) {
			rcs, err := lister.ReplicationControllers(ns).List(labels.Everything())
			out := make([]*appsv1.ReplicaSet, 0, len(rcs))
			for _, rc := range rcs {
				out = append(out, rcAsReplicaSet(rc))
			}
			return out, err
		},
		fresh: func(ctx context.Context, ns, name string) (metav1.Object, error) {
			return cfg.Client.CoreV1().ReplicationControllers(ns).Get(ctx, name, metav1.GetOptions{})
		},
		writeStatus: func(ctx context.Context, obj runtime.Object, st appsv1.ReplicaSetStatus) error {
			next := obj.(*corev1.ReplicationController).DeepCopy()
			next.Status = corev1.ReplicationControllerStatus{Replicas: st.Replicas, FullyLabeledReplicas: st.FullyLabeledReplicas,
				ReadyReplicas: st.ReadyReplicas, AvailableReplicas: st.AvailableReplicas, ObservedGeneration: st.ObservedGeneration}
			for _, c := range st.Conditions {
				next.Status.Conditions = append(next.Status.Conditions, corev1.ReplicationControllerCondition{
					Type: corev1.ReplicationControllerConditionType(c.Type), Status: c.Status, Reason: c.Reason, Message: c.Message, LastTransitionTime: c.LastTransitionTime})
			}
			_, err := cfg.Client.CoreV1().ReplicationControllers(next.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
			return err
		},
	}
	return newReplicaController(cfg, kind, inf.Informer())
}

// rcAsReplicaSet is the ReplicaSet view of a ReplicationController.
func rcAsReplicaSet(rc *corev1.ReplicationController) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: rc.ObjectMeta,
		Spec: appsv1.ReplicaSetSpec{Replicas: rc.Spec.Replicas, MinReadySeconds: rc.Spec.MinReadySeconds,
			Selector: &metav1.LabelSelector{MatchLabels: rc.Spec.Selector}},
		Status: appsv1.ReplicaSetStatus{Replicas: rc.Status.Replicas, FullyLabeledReplicas: rc.Status.FullyLabeledReplicas,
			ReadyReplicas: rc.Status.ReadyReplicas, AvailableReplicas: rc.Status.AvailableReplicas, ObservedGeneration: rc.Status.ObservedGeneration},
	}
	if rc.Spec.Template != nil {
		rs.Spec.Template = *rc.Spec.Template
	}
	for _, c := range rc.Status.Conditions {
		rs.Status.Conditions = append(rs.Status.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status, Reason: c.Reason, Message: c.Message, LastTransitionTime: c.LastTransitionTime})
	}
	return rs
}
