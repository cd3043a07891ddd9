package apiserver

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/nanokube/nanokube/store"
)

// What kube-apiserver's ServiceAccount admission plugin adds to pods.
const (
	serviceAccountVolumePrefix = "kube-api-access-"
	serviceAccountMountPath    = "/var/run/secrets/kubernetes.io/serviceaccount"
	// defaultAccountWait is how long a pod create waits for the "default"
	// ServiceAccount of a namespace that was just made (upstream retries
	// its lookup about that long).
	defaultAccountWait = 2 * time.Second
)

// admitPodServiceAccount is kube-apiserver's ServiceAccount admission for a
// new pod: the account must exist; its imagePullSecrets are copied when
// the pod names none; and unless automountServiceAccountToken says no,
// every container mounts a projected kube-api-access-xxxxx volume (token,
// ca.crt, namespace) at /var/run/secrets/kubernetes.io/serviceaccount.
func (s *Server) admitPodServiceAccount(ctx context.Context, pod *corev1.Pod) error {
	// NamespaceLifecycle runs first: a pod in a missing namespace is told so.
	if err := s.namespaceActive(s.resource(schemaCoreV1, "pods"), pod.Namespace); err != nil {
		return err
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = "default"
	}
	sa, err := s.lookupServiceAccount(ctx, pod.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, pod.Name,
			fmt.Errorf("error looking up service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err))
	}
	if len(pod.Spec.ImagePullSecrets) == 0 && len(sa.ImagePullSecrets) > 0 {
		pod.Spec.ImagePullSecrets = append([]corev1.LocalObjectReference(nil), sa.ImagePullSecrets...)
	}
	automount := true
	switch {
	case pod.Spec.AutomountServiceAccountToken != nil:
		automount = *pod.Spec.AutomountServiceAccountToken
	case sa.AutomountServiceAccountToken != nil:
		automount = *sa.AutomountServiceAccountToken
	}
	if automount {
		mountServiceAccountToken(pod, serviceAccountVolumePrefix+utilrand.String(5))
	}
	return nil
}

// mountServiceAccountToken is upstream's mountServiceAccountToken: a
// container that already mounts something at the token path is left alone.
func mountServiceAccountToken(pod *corev1.Pod, newName string) {
	name := ""
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, serviceAccountVolumePrefix) {
			name = v.Name
			break
		}
	}
	hasVolume := name != ""
	if !hasVolume {
		name = newName
	}
	mount := corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: serviceAccountMountPath}
	needed := false
	add := func(mounts []corev1.VolumeMount) []corev1.VolumeMount {
		for _, m := range mounts {
			if m.MountPath == serviceAccountMountPath {
				return mounts
			}
		}
		needed = true
		return append(mounts, mount)
	}
	for i := range pod.Spec.InitContainers {
		pod.Spec.InitContainers[i].VolumeMounts = add(pod.Spec.InitContainers[i].VolumeMounts)
	}
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].VolumeMounts = add(pod.Spec.Containers[i].VolumeMounts)
	}
	for i := range pod.Spec.EphemeralContainers {
		pod.Spec.EphemeralContainers[i].VolumeMounts = add(pod.Spec.EphemeralContainers[i].VolumeMounts)
	}
	if !hasVolume && needed {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: tokenVolumeSource()}})
	}
}

// tokenVolumeSource is upstream's TokenVolumeSource.
func tokenVolumeSource() *corev1.ProjectedVolumeSource {
	mode := int32(corev1.ProjectedVolumeSourceDefaultMode)
	exp := int64(warnOnlyTokenSeconds)
	return &corev1.ProjectedVolumeSource{
		DefaultMode: &mode,
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &exp}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}
}

// lookupServiceAccount reads a ServiceAccount; the "default" one of a new
// namespace may still be on its way from the ServiceAccount controller, so
// for it the lookup waits a moment on a watch of its key.
func (s *Server) lookupServiceAccount(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	res := s.resource(schemaCoreV1, "serviceaccounts")
	rev := s.store.Rev()
	obj, _, err := s.getObject(res, ns, name)
	if err == nil {
		return obj.(*corev1.ServiceAccount), nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	// The message names the kind like upstream's lister does.
	err = apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccount"}, name)
	if name != "default" {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, defaultAccountWait)
	defer cancel()
	key := objectKey(res, ns, name)
	wch, werr := s.store.Watch(ctx, key, rev)
	if werr != nil {
		return nil, err
	}
	defer wch.Stop()
	for {
		select {
		case ev, ok := <-wch.Events():
			if !ok {
				return nil, err
			}
			if ev.Type != store.Put || ev.KV.Key != key {
				continue
			}
			obj, derr := decodeStored(res, ev.KV)
			if derr != nil {
				return nil, derr
			}
			return obj.(*corev1.ServiceAccount), nil
		case <-ctx.Done():
			return nil, err
		}
	}
}
