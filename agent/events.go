package agent

import (
	corev1 "k8s.io/api/core/v1"
)

// containerRef is what a container's events are about, like kubelet's
// GenerateContainerRef: the pod, with the container's fieldPath
// (spec.containers{c}, spec.initContainers{c}, spec.ephemeralContainers{c})
// that `kubectl describe` and `kubectl get events` show.
func containerRef(pod *corev1.Pod, name string) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
		UID: pod.UID, ResourceVersion: pod.ResourceVersion, FieldPath: containerFieldPath(pod, name)}
}

// containerFieldPath names a container in the pod's spec; kubelet's text
// for one the spec does not name.
func containerFieldPath(pod *corev1.Pod, name string) string {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return "spec.containers{" + name + "}"
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return "spec.initContainers{" + name + "}"
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return "spec.ephemeralContainers{" + name + "}"
		}
	}
	return "implicitly required container " + name
}
