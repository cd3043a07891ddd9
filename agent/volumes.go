package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/nanokube/nanokube/agent/volume"
)

// Kubelet's volume plugin directory names under pods/<uid>/volumes/.
const (
	pluginEmptyDir  = "kubernetes.io~empty-dir"
	pluginConfigMap = "kubernetes.io~configmap"
	pluginSecret    = "kubernetes.io~secret"
	pluginDownward  = "kubernetes.io~downward-api"
	pluginProjected = "kubernetes.io~projected"
	pluginLocal     = "kubernetes.io~local-volume"
)

// mountEventEvery bounds how often one volume's unchanged failure is
// reported again.
const mountEventEvery = 30 * time.Second

func (a *Agent) volumeDir(uid, plugin, name string) string {
	return filepath.Join(a.podDir(uid), "volumes", plugin, name)
}

// mountError is a volume failure with the event text kubelet gives it.
type mountError struct {
	event string
	err   error
}

func (e *mountError) Error() string { return e.err.Error() }
func (e *mountError) Unwrap() error { return e.err }

// setupVolumes is kubelet's volume manager for one pod: every volume is set
// up (and refreshed: ConfigMaps, Secrets, downward API fields and tokens)
// before any container starts. A volume that fails is a FailedMount event
// and keeps the pod in ContainerCreating; the pod is retried when the
// object it waits for changes.
func (a *Agent) setupVolumes(ctx context.Context, pod *corev1.Pod, st *podState) (map[string]volume.Mounted, error) {
	a.objects.track(st.key, volumeRefs(pod))
	out := map[string]volume.Mounted{}
	var errs []error
	for _, v := range pod.Spec.Volumes {
		m, err := a.setupVolume(ctx, pod, st, v)
		if err != nil {
			msg := fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", v.Name, err)
			var me *mountError
			if errors.As(err, &me) {
				msg = me.event
			}
			a.mountFailed(pod, st, v.Name, msg)
			errs = append(errs, fmt.Errorf("volume %s: %w", v.Name, err))
			continue
		}
		delete(st.mountErrors, v.Name)
		out[v.Name] = m
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("pod %s: %w", st.key, errors.Join(errs...))
	}
	return out, nil
}

// mountFailed records a FailedMount event, again only when the message
// changes or a while has passed.
func (a *Agent) mountFailed(pod *corev1.Pod, st *podState, name, msg string) {
	if last, ok := st.mountErrors[name]; ok && last.msg == msg && time.Since(last.at) < mountEventEvery {
		return
	}
	st.mountErrors[name] = lastEvent{msg: msg, at: time.Now()}
	a.recorder.Event(pod, corev1.EventTypeWarning, "FailedMount", msg)
}

// volumeRefs are the objects the pod's volumes read, to be watched.
func volumeRefs(pod *corev1.Pod) []objectRef {
	var refs []objectRef
	add := func(kind objectKind, name string) {
		refs = append(refs, objectRef{kind: kind, namespace: pod.Namespace, name: name})
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			add(kindConfigMap, v.ConfigMap.Name)
		case v.Secret != nil:
			add(kindSecret, v.Secret.SecretName)
		case v.PersistentVolumeClaim != nil:
			add(kindPVC, v.PersistentVolumeClaim.ClaimName)
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				switch {
				case src.ConfigMap != nil:
					add(kindConfigMap, src.ConfigMap.Name)
				case src.Secret != nil:
					add(kindSecret, src.Secret.Name)
				}
			}
		}
	}
	return refs
}

func (a *Agent) setupVolume(ctx context.Context, pod *corev1.Pod, st *podState, v corev1.Volume) (volume.Mounted, error) {
	var fsGroup *int64
	var policy *corev1.PodFSGroupChangePolicy
	if psc := pod.Spec.SecurityContext; psc != nil {
		fsGroup, policy = psc.FSGroup, psc.FSGroupChangePolicy
	}
	uid := st.uid
	switch {
	case v.EmptyDir != nil:
		dir := a.volumeDir(uid, pluginEmptyDir, v.Name)
		if err := a.wrapperDir(pod, dir, v.EmptyDir.Medium == corev1.StorageMediumMemory, v.EmptyDir.SizeLimit); err != nil {
			return volume.Mounted{}, err
		}
		// fsGroup is applied when the volume is set up, not on every sync.
		if !st.setUp[v.Name] {
			if err := volume.SetOwnership(dir, fsGroup, false, policy); err != nil {
				return volume.Mounted{}, err
			}
			st.setUp[v.Name] = true
		}
		return volume.Mounted{Path: dir}, nil
	case v.HostPath != nil:
		if err := volume.CheckHostPath(v.HostPath.Path, v.HostPath.Type); err != nil {
			return volume.Mounted{}, err
		}
		return volume.Mounted{Path: v.HostPath.Path}, nil
	case v.ConfigMap != nil:
		optional := v.ConfigMap.Optional != nil && *v.ConfigMap.Optional
		cm, err := a.configMap(ctx, pod.Namespace, v.ConfigMap.Name, optional)
		if err != nil {
			return volume.Mounted{}, err
		}
		payload, err := volume.ConfigMapPayload(v.ConfigMap.Items, cm, v.ConfigMap.DefaultMode, optional)
		if err != nil {
			return volume.Mounted{}, err
		}
		return a.writeVolume(pod, a.volumeDir(uid, pluginConfigMap, v.Name), false, payload, fsGroup)
	case v.Secret != nil:
		optional := v.Secret.Optional != nil && *v.Secret.Optional
		s, err := a.secret(ctx, pod.Namespace, v.Secret.SecretName, optional)
		if err != nil {
			return volume.Mounted{}, err
		}
		payload, err := volume.SecretPayload(v.Secret.Items, s, v.Secret.DefaultMode, optional)
		if err != nil {
			return volume.Mounted{}, err
		}
		return a.writeVolume(pod, a.volumeDir(uid, pluginSecret, v.Name), true, payload, fsGroup)
	case v.DownwardAPI != nil:
		payload, err := volume.DownwardAPIPayload(v.DownwardAPI.Items, pod, a.resources(), v.DownwardAPI.DefaultMode)
		if err != nil {
			return volume.Mounted{}, err
		}
		return a.writeVolume(pod, a.volumeDir(uid, pluginDownward, v.Name), false, payload, fsGroup)
	case v.Projected != nil:
		payload, err := a.projected(ctx, pod, st, v.Projected, fsGroup)
		if err != nil {
			return volume.Mounted{}, err
		}
		return a.writeVolume(pod, a.volumeDir(uid, pluginProjected, v.Name), true, payload, fsGroup)
	case v.PersistentVolumeClaim != nil:
		return a.claimVolume(ctx, pod, st, v, fsGroup, policy)
	}
	return volume.Mounted{}, fmt.Errorf("volume type not supported by nanokube: %s", volumeType(v))
}

// volumeType names the source a volume uses, for the "not supported" error.
func volumeType(v corev1.Volume) string {
	switch {
	case v.NFS != nil:
		return "nfs"
	case v.CSI != nil:
		return "csi"
	case v.Ephemeral != nil:
		return "ephemeral"
	case v.ISCSI != nil:
		return "iscsi"
	case v.Image != nil:
		return "image"
	}
	return "unknown"
}

// wrapperDir makes a volume's directory the way kubelet's emptyDir does:
// on disk with mode 0777, or as a tmpfs sized by the pod's memory limit.
func (a *Agent) wrapperDir(pod *corev1.Pod, dir string, memory bool, sizeLimit *resource.Quantity) error {
	if memory {
		return volume.MountTmpfs(dir, a.memoryVolumeSize(pod, sizeLimit))
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm() != 0o777 {
		return os.Chmod(dir, 0o777)
	}
	return nil
}

// memoryVolumeSize is kubelet's calculateEmptyDirMemorySize: the node's
// allocatable memory, or the pod's memory limit when every container has
// one, or the volume's sizeLimit when that is smaller still.
func (a *Agent) memoryVolumeSize(pod *corev1.Pod, sizeLimit *resource.Quantity) int64 {
	alloc := a.allocatable[corev1.ResourceMemory]
	size := alloc.Value()
	if lim, ok := podMemoryLimit(pod); ok && lim > 0 && lim <= size {
		size = lim
	}
	if sizeLimit != nil && sizeLimit.Value() > 0 && sizeLimit.Value() <= size {
		size = sizeLimit.Value()
	}
	return size
}

// podMemoryLimit is the pod's memory limit when all containers declare
// one: the sum of the app containers or the largest init container.
func podMemoryLimit(pod *corev1.Pod) (int64, bool) {
	var sum int64
	for _, c := range pod.Spec.Containers {
		q, ok := c.Resources.Limits[corev1.ResourceMemory]
		if !ok {
			return 0, false
		}
		sum += q.Value()
	}
	for _, c := range pod.Spec.InitContainers {
		q, ok := c.Resources.Limits[corev1.ResourceMemory]
		if !ok {
			return 0, false
		}
		sum = max(sum, q.Value())
	}
	return sum, true
}

// writeVolume projects payload into dir with the atomic writer, fsGroup
// applied to the new files before they are published.
func (a *Agent) writeVolume(pod *corev1.Pod, dir string, memory bool, payload map[string]volume.FileProjection, fsGroup *int64) (volume.Mounted, error) {
	if err := a.wrapperDir(pod, dir, memory, nil); err != nil {
		return volume.Mounted{}, err
	}
	var setPerms func(string) error
	if fsGroup != nil {
		setPerms = func(string) error { return volume.SetOwnership(dir, fsGroup, true, nil) }
	}
	if _, err := (volume.AtomicWriter{Dir: dir}).Write(payload, setPerms); err != nil {
		return volume.Mounted{}, err
	}
	return volume.Mounted{Path: dir, ReadOnly: true}, nil
}

func (a *Agent) configMap(ctx context.Context, ns, name string, optional bool) (*corev1.ConfigMap, error) {
	obj, err := a.objects.get(ctx, objectRef{kind: kindConfigMap, namespace: ns, name: name})
	if apierrors.IsNotFound(err) && optional {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.ConfigMap), nil
}

func (a *Agent) secret(ctx context.Context, ns, name string, optional bool) (*corev1.Secret, error) {
	obj, err := a.objects.get(ctx, objectRef{kind: kindSecret, namespace: ns, name: name})
	if apierrors.IsNotFound(err) && optional {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Secret), nil
}

// resources is what the downward API reads for unset limits.
func (a *Agent) resources() volume.Resources {
	return volume.Resources{Allocatable: a.allocatable}
}

// projected is kubelet's projected volume payload: every source into one
// directory; a token is renewed when 80% of its lifetime has passed.
func (a *Agent) projected(ctx context.Context, pod *corev1.Pod, st *podState, src *corev1.ProjectedVolumeSource, fsGroup *int64) (map[string]volume.FileProjection, error) {
	payload := map[string]volume.FileProjection{}
	var errs []error
	add := func(p map[string]volume.FileProjection) {
		for k, v := range p {
			payload[k] = v
		}
	}
	for _, s := range src.Sources {
		switch {
		case s.ConfigMap != nil:
			optional := s.ConfigMap.Optional != nil && *s.ConfigMap.Optional
			cm, err := a.configMap(ctx, pod.Namespace, s.ConfigMap.Name, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p, err := volume.ConfigMapPayload(s.ConfigMap.Items, cm, src.DefaultMode, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(p)
		case s.Secret != nil:
			optional := s.Secret.Optional != nil && *s.Secret.Optional
			sec, err := a.secret(ctx, pod.Namespace, s.Secret.Name, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p, err := volume.SecretPayload(s.Secret.Items, sec, src.DefaultMode, optional)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(p)
		case s.DownwardAPI != nil:
			p, err := volume.DownwardAPIPayload(s.DownwardAPI.Items, pod, a.resources(), src.DefaultMode)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(p)
		case s.ServiceAccountToken != nil:
			tok, refresh, err := a.tokens.get(ctx, pod, s.ServiceAccountToken)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			a.queue.AddAfter(st.key, time.Until(refresh))
			// With an fsUser or fsGroup the token is 0600 (0640 after
			// SetOwnership), like kubelet.
			mode := int32(corev1.ProjectedVolumeSourceDefaultMode)
			if src.DefaultMode != nil {
				mode = *src.DefaultMode
			}
			user := fsUser(pod)
			if user != nil || fsGroup != nil {
				mode = 0o600
			}
			payload[s.ServiceAccountToken.Path] = volume.FileProjection{Data: []byte(tok), Mode: mode, FsUser: user}
		case s.ClusterTrustBundle != nil:
			errs = append(errs, errors.New("clusterTrustBundle projections are not supported by nanokube"))
		case s.PodCertificate != nil:
			errs = append(errs, errors.New("podCertificate projections are not supported by nanokube"))
		}
	}
	if agg := utilerrors.NewAggregate(errs); agg != nil {
		return nil, agg
	}
	return payload, nil
}

// claimVolume mounts a PersistentVolumeClaim: the claim must be bound, and
// its PersistentVolume's hostPath or local path is what containers mount.
func (a *Agent) claimVolume(ctx context.Context, pod *corev1.Pod, st *podState, v corev1.Volume, fsGroup *int64, policy *corev1.PodFSGroupChangePolicy) (volume.Mounted, error) {
	claim := v.PersistentVolumeClaim
	pv, err := a.boundVolume(ctx, pod.Namespace, claim.ClaimName)
	if err != nil {
		err = fmt.Errorf("error processing PVC %s/%s: %w", pod.Namespace, claim.ClaimName, err)
		return volume.Mounted{}, &mountError{err: err,
			event: fmt.Sprintf("Unable to attach or mount volumes: unmounted volumes=[%s], unattached volumes=[%s], failed to process volumes=[%s]: %v", v.Name, v.Name, v.Name, err)}
	}
	setupFailed := func(err error) error {
		return &mountError{err: err, event: fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", pv.Name, err)}
	}
	switch {
	case pv.Spec.HostPath != nil:
		if err := volume.CheckHostPath(pv.Spec.HostPath.Path, pv.Spec.HostPath.Type); err != nil {
			return volume.Mounted{}, setupFailed(err)
		}
		return volume.Mounted{Path: pv.Spec.HostPath.Path, ReadOnly: claim.ReadOnly}, nil
	case pv.Spec.Local != nil:
		p := pv.Spec.Local.Path
		if _, err := os.Stat(p); err != nil {
			return volume.Mounted{}, &mountError{err: err,
				event: fmt.Sprintf("MountVolume.NewMounter initialization failed for volume %q : path %q does not exist", pv.Name, p)}
		}
		if !claim.ReadOnly && !st.setUp[v.Name] {
			if err := volume.SetOwnership(p, fsGroup, false, policy); err != nil {
				return volume.Mounted{}, setupFailed(err)
			}
			st.setUp[v.Name] = true
		}
		return volume.Mounted{Path: p, ReadOnly: claim.ReadOnly}, nil
	}
	return volume.Mounted{}, setupFailed(fmt.Errorf("persistent volume %s: only hostPath and local volumes are supported by nanokube", pv.Name))
}

// boundVolume is kubelet's getPVCExtractPV and getPVSpec, with their
// messages.
func (a *Agent) boundVolume(ctx context.Context, ns, name string) (*corev1.PersistentVolume, error) {
	obj, err := a.objects.get(ctx, objectRef{kind: kindPVC, namespace: ns, name: name})
	if err != nil {
		return nil, fmt.Errorf("failed to fetch PVC from API server: %w", err)
	}
	pvc := obj.(*corev1.PersistentVolumeClaim)
	protected := false
	for _, f := range pvc.Finalizers {
		protected = protected || f == "kubernetes.io/pvc-protection"
	}
	switch {
	case pvc.DeletionTimestamp != nil && !protected:
		return nil, errors.New("PVC is being deleted")
	case pvc.Status.Phase != corev1.ClaimBound:
		return nil, errors.New("PVC is not bound")
	case pvc.Spec.VolumeName == "":
		return nil, errors.New("PVC has empty pvc.Spec.VolumeName")
	}
	pv, err := a.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to fetch PV %s from API server: %w", pvc.Spec.VolumeName, err)
	}
	if pv.Spec.ClaimRef == nil {
		return nil, fmt.Errorf("found PV object %s but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim", pv.Name)
	}
	if pv.Spec.ClaimRef.UID != pvc.UID {
		return nil, fmt.Errorf("found PV object %s but its pv.Spec.ClaimRef.UID %s does not point to claim.UID %s", pv.Name, pv.Spec.ClaimRef.UID, pvc.UID)
	}
	return pv, nil
}

// envMap turns NAME=value pairs into a map (for subPathExpr).
func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// unmountPod releases what a pod's volumes mounted on the node (tmpfs).
func (a *Agent) unmountPod(uid string) error {
	return volume.UnmountUnder(a.podDir(uid))
}

// cleanupOrphans is kubelet's cleanupOrphanedPodDirs, run once the pod
// informer has synced: the directory (and tmpfs volumes, logs, address) of
// a pod that was deleted while the agent was down goes.
func (a *Agent) cleanupOrphans() {
	entries, err := os.ReadDir(filepath.Join(a.cfg.RootDir, "pods"))
	if err != nil {
		return
	}
	live := map[string]bool{}
	pods, _ := a.pods.List(labels.Everything())
	for _, p := range pods {
		live[string(p.UID)] = true
	}
	for _, e := range entries {
		uid := e.Name()
		if live[uid] {
			continue
		}
		a.log.Info("removing the directory of a deleted pod", "uid", uid)
		if err := a.cfg.Sandboxes.Teardown(uid); err != nil {
			a.log.Info("tear down pod network", "uid", uid, "err", err)
		}
		a.removePodFiles(uid)
	}
}
