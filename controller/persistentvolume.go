package controller

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/nanokube/nanokube/internal/volumematch"
)

// The annotations and finalizers of kube-controller-manager's volume
// controllers.
const (
	annBindCompleted     = "pv.kubernetes.io/bind-completed"
	annBoundByController = "pv.kubernetes.io/bound-by-controller"
	annProvisionedBy     = "pv.kubernetes.io/provisioned-by"
	annSelectedNode      = "volume.kubernetes.io/selected-node"
	annStorageProvision  = "volume.kubernetes.io/storage-provisioner"
	annBetaProvisioner   = "volume.beta.kubernetes.io/storage-provisioner"
	annDefaultClass      = "storageclass.kubernetes.io/is-default-class"
	finalizerPVC         = "kubernetes.io/pvc-protection"
	finalizerPV          = "kubernetes.io/pv-protection"
	// HostPathProvisioner is the name of the built-in provisioner.
	HostPathProvisioner = "nanokube.io/hostpath"
	// DefaultStorageClass is the class made at start.
	DefaultStorageClass = "standard"
)

// PersistentVolumeConfig builds the volume binder and provisioner.
type PersistentVolumeConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Log       *slog.Logger
	// VolumeDir holds the directories of provisioned volumes ("" turns
	// the provisioner off).
	VolumeDir string
}

// PersistentVolume is kube-controller-manager's persistent volume binder,
// its PVC and PV protection controllers, and the dynamic provisioner of
// the default StorageClass: a claim binds to the smallest Available volume
// that fits (capacity, access modes, class, volume mode, selector), or gets
// a new hostPath volume under VolumeDir once the scheduler picked its node
// (WaitForFirstConsumer). A volume whose claim is gone is Released and,
// with reclaimPolicy Delete, removed with its directory.
type PersistentVolume struct {
	cfg     PersistentVolumeConfig
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
	pods    corelisters.PodLister
	synced  []cache.InformerSynced
	w       *worker
}

// NewPersistentVolume builds the controller.
func NewPersistentVolume(cfg PersistentVolumeConfig) (*PersistentVolume, error) {
	pvcInf := cfg.Informers.Core().V1().PersistentVolumeClaims()
	pvInf := cfg.Informers.Core().V1().PersistentVolumes()
	scInf := cfg.Informers.Storage().V1().StorageClasses()
	podInf := cfg.Informers.Core().V1().Pods()
	c := &PersistentVolume{cfg: cfg, claims: pvcInf.Lister(), volumes: pvInf.Lister(), classes: scInf.Lister(), pods: podInf.Lister()}
	c.w = newWorker("persistentvolume", cfg.Log, c.sync)
	claimKey := func(obj any) {
		if m, ok := metaOf(obj); ok {
			c.w.queue.Add("pvc/" + m.GetNamespace() + "/" + m.GetName())
		}
	}
	volumeKey := func(obj any) {
		if m, ok := metaOf(obj); ok {
			c.w.queue.Add("pv/" + m.GetName())
		}
		pv, ok := obj.(*corev1.PersistentVolume)
		if !ok {
			return
		}
		if pv.Spec.ClaimRef != nil {
			c.w.queue.Add("pvc/" + pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name)
			return
		}
		// A free volume may fit claims that wait.
		claims, _ := c.claims.List(labels.Everything())
		for _, pvc := range claims {
			if pvc.Spec.VolumeName == "" {
				c.w.queue.Add("pvc/" + pvc.Namespace + "/" + pvc.Name)
			}
		}
	}
	if _, err := pvcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: claimKey, UpdateFunc: func(_, o any) { claimKey(o) },
		DeleteFunc: func(o any) {
			// The claim's volume is released.
			if m, ok := metaOf(o); ok {
				if pvc, ok := m.(*corev1.PersistentVolumeClaim); ok && pvc.Spec.VolumeName != "" {
					c.w.queue.Add("pv/" + pvc.Spec.VolumeName)
				}
			}
		}}); err != nil {
		return nil, err
	}
	if _, err := pvInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: volumeKey, UpdateFunc: func(_, o any) { volumeKey(o) }, DeleteFunc: volumeKey}); err != nil {
		return nil, err
	}
	// A class that appears or changes decides for the claims that wait
	// on it (upstream's binder finds them on its periodic resync).
	onClass := func(obj any) {
		m, ok := metaOf(obj)
		if !ok {
			return
		}
		claims, _ := c.claims.List(labels.Everything())
		for _, pvc := range claims {
			if pvc.Spec.VolumeName == "" && claimClass(pvc) == m.GetName() {
				c.w.queue.Add("pvc/" + pvc.Namespace + "/" + pvc.Name)
			}
		}
	}
	if _, err := scInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onClass, UpdateFunc: func(_, o any) { onClass(o) }}); err != nil {
		return nil, err
	}
	// A pod that goes may unblock the deletion of a claim it used.
	onPod := func(obj any) {
		m, ok := metaOf(obj)
		if !ok {
			return
		}
		if p, ok := m.(*corev1.Pod); ok {
			for _, v := range p.Spec.Volumes {
				if v.PersistentVolumeClaim != nil {
					c.w.queue.Add("pvc/" + p.Namespace + "/" + v.PersistentVolumeClaim.ClaimName)
				}
			}
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, o any) { onPod(o) }, DeleteFunc: onPod}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{pvcInf.Informer().HasSynced, pvInf.Informer().HasSynced, scInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c, nil
}

// Run makes the default StorageClass when there is none, then works until
// ctx ends.
func (c *PersistentVolume) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	if c.cfg.VolumeDir != "" {
		if err := c.ensureDefaultClass(ctx); err != nil {
			return err
		}
	}
	return c.w.run(ctx, c.synced...)
}

// ensureDefaultClass creates the StorageClass "standard" of the built-in
// provisioner unless it exists.
func (c *PersistentVolume) ensureDefaultClass(ctx context.Context) error {
	if _, err := c.classes.Get(DefaultStorageClass); err == nil {
		return nil
	}
	del, wffc, yes := corev1.PersistentVolumeReclaimDelete, storagev1.VolumeBindingWaitForFirstConsumer, true
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultStorageClass, Annotations: map[string]string{annDefaultClass: "true"},
			Labels: map[string]string{"addonmanager.kubernetes.io/mode": "EnsureExists"}},
		Provisioner: HostPathProvisioner, ReclaimPolicy: &del, VolumeBindingMode: &wffc, AllowVolumeExpansion: &yes,
	}
	if _, err := c.cfg.Client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create default storage class %s: %w", DefaultStorageClass, err)
	}
	return nil
}

func (c *PersistentVolume) sync(ctx context.Context, key string) error {
	if name, ok := strings.CutPrefix(key, "pv/"); ok {
		return c.syncVolume(ctx, name)
	}
	ns, name, _ := cache.SplitMetaNamespaceKey(strings.TrimPrefix(key, "pvc/"))
	return c.syncClaim(ctx, ns, name)
}

// claimClass is the class a claim asks for ("" for none).
func claimClass(pvc *corev1.PersistentVolumeClaim) string {
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return pvc.Annotations[corev1.BetaStorageClassAnnotation]
}

func hasFinalizer(m metav1.Object, f string) bool {
	for _, x := range m.GetFinalizers() {
		if x == f {
			return true
		}
	}
	return false
}

func withoutFinalizer(fs []string, f string) []string {
	var out []string
	for _, x := range fs {
		if x != f {
			out = append(out, x)
		}
	}
	return out
}

func (c *PersistentVolume) syncClaim(ctx context.Context, ns, name string) error {
	pvc, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pvc.DeletionTimestamp != nil {
		return c.releaseClaimProtection(ctx, pvc)
	}
	if pvc.Spec.VolumeName != "" {
		return c.syncBoundClaim(ctx, pvc)
	}
	pv, err := c.findVolume(pvc)
	if err != nil {
		return err
	}
	if pv != nil {
		return c.bind(ctx, pvc, pv)
	}
	class := claimClass(pvc)
	if class == "" {
		c.pending(ctx, pvc, "FailedBinding", "no persistent volumes available for this claim and no storage class is set")
		return nil
	}
	sc, err := c.classes.Get(class)
	if err != nil {
		c.pending(ctx, pvc, "ProvisioningFailed", fmt.Sprintf("storageclass.storage.k8s.io %q not found", class))
		return nil
	}
	if sc.Provisioner != HostPathProvisioner || c.cfg.VolumeDir == "" {
		c.pending(ctx, pvc, "ExternalProvisioning", fmt.Sprintf("Waiting for a volume to be created either by the external provisioner '%s' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.", sc.Provisioner))
		return nil
	}
	node := pvc.Annotations[annSelectedNode]
	if sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer && node == "" {
		c.pending(ctx, pvc, "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
		return nil
	}
	return c.provision(ctx, pvc, sc, node)
}

// pending keeps an unbound claim Pending with an event saying why.
func (c *PersistentVolume) pending(ctx context.Context, pvc *corev1.PersistentVolumeClaim, reason, msg string) {
	c.cfg.Recorder.Event(pvc, corev1.EventTypeNormal, reason, msg)
	if pvc.Status.Phase != corev1.ClaimPending {
		next := pvc.DeepCopy()
		next.Status.Phase = corev1.ClaimPending
		if _, err := c.cfg.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
			c.cfg.Log.Info("set claim pending", "claim", pvc.Namespace+"/"+pvc.Name, "err", err)
		}
	}
}

// claimInUse reports whether a pod that is not finished uses the claim
// (the PVC protection controller's check).
func (c *PersistentVolume) claimInUse(pvc *corev1.PersistentVolumeClaim) (bool, error) {
	pods, err := c.pods.Pods(pvc.Namespace).List(labels.Everything())
	if err != nil {
		return false, err
	}
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name {
				return true, nil
			}
		}
	}
	return false, nil
}

// releaseClaimProtection drops kubernetes.io/pvc-protection from a claim
// being deleted once no pod uses it.
func (c *PersistentVolume) releaseClaimProtection(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if !hasFinalizer(pvc, finalizerPVC) {
		return nil
	}
	used, err := c.claimInUse(pvc)
	if err != nil || used {
		return err
	}
	next := pvc.DeepCopy()
	next.Finalizers = withoutFinalizer(next.Finalizers, finalizerPVC)
	if _, err := c.cfg.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove protection of claim %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	return nil
}

// findVolume is the binder's choice: a volume pre-bound to the claim
// (by the user, or by the scheduler for a WaitForFirstConsumer claim),
// else the smallest Available volume that fits. Like upstream's
// delayBinding, a WaitForFirstConsumer claim never takes an unbound
// volume here: the scheduler picks one reachable from the pod's node, or
// the claim is provisioned there.
func (c *PersistentVolume) findVolume(pvc *corev1.PersistentVolumeClaim) (*corev1.PersistentVolume, error) {
	all, err := c.volumes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, pv := range all {
		if ref := pv.Spec.ClaimRef; pv.DeletionTimestamp == nil && ref != nil &&
			ref.Namespace == pvc.Namespace && ref.Name == pvc.Name && (ref.UID == "" || ref.UID == pvc.UID) {
			return pv, nil
		}
	}
	if claimClass(pvc) != "" && c.delayBinding(pvc) {
		return nil, nil
	}
	return volumematch.Smallest(pvc, all, nil), nil
}

// delayBinding: the claim's class binds WaitForFirstConsumer.
func (c *PersistentVolume) delayBinding(pvc *corev1.PersistentVolumeClaim) bool {
	sc, err := c.classes.Get(claimClass(pvc))
	return err == nil && sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}

// bind is the binder's two writes: the volume's claimRef and phase, then
// the claim's volumeName, annotations and status. The volume is updated
// from the cached copy, so a stale cache is a conflict, never a double
// binding.
func (c *PersistentVolume) bind(ctx context.Context, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) error {
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID {
		next := pv.DeepCopy()
		if next.Spec.ClaimRef == nil {
			metav1.SetMetaDataAnnotation(&next.ObjectMeta, annBoundByController, "yes")
		}
		next.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID, ResourceVersion: pvc.ResourceVersion}
		updated, err := c.cfg.Client.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("bind volume %s to claim %s/%s: %w", pv.Name, pvc.Namespace, pvc.Name, err)
		}
		pv = updated
	}
	if pv.Status.Phase != corev1.VolumeBound {
		next := pv.DeepCopy()
		next.Status.Phase = corev1.VolumeBound
		if _, err := c.cfg.Client.CoreV1().PersistentVolumes().UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("set volume %s bound: %w", pv.Name, err)
		}
	}
	next := pvc.DeepCopy()
	next.Spec.VolumeName = pv.Name
	metav1.SetMetaDataAnnotation(&next.ObjectMeta, annBindCompleted, "yes")
	metav1.SetMetaDataAnnotation(&next.ObjectMeta, annBoundByController, "yes")
	updated, err := c.cfg.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("bind claim %s/%s to volume %s: %w", pvc.Namespace, pvc.Name, pv.Name, err)
	}
	return c.setClaimBound(ctx, updated, pv)
}

func (c *PersistentVolume) setClaimBound(ctx context.Context, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) error {
	next := pvc.DeepCopy()
	next.Status.Phase = corev1.ClaimBound
	next.Status.AccessModes = pv.Spec.AccessModes
	next.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: pv.Spec.Capacity[corev1.ResourceStorage]}
	if equalClaimStatus(next.Status, pvc.Status) {
		return nil
	}
	if _, err := c.cfg.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("set claim %s/%s bound: %w", pvc.Namespace, pvc.Name, err)
	}
	return nil
}

func equalClaimStatus(a, b corev1.PersistentVolumeClaimStatus) bool {
	if a.Phase != b.Phase || len(a.AccessModes) != len(b.AccessModes) {
		return false
	}
	for i := range a.AccessModes {
		if a.AccessModes[i] != b.AccessModes[i] {
			return false
		}
	}
	qa, qb := a.Capacity[corev1.ResourceStorage], b.Capacity[corev1.ResourceStorage]
	return qa.Cmp(qb) == 0 && len(a.Capacity) == len(b.Capacity)
}

// syncBoundClaim finishes a binding (the claim names a volume) and grows
// provisioned volumes of classes that allow expansion.
func (c *PersistentVolume) syncBoundClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	pv, err := c.volumes.Get(pvc.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		if pvc.Status.Phase != corev1.ClaimLost {
			c.cfg.Recorder.Event(pvc, corev1.EventTypeWarning, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
			next := pvc.DeepCopy()
			next.Status.Phase = corev1.ClaimLost
			if _, err := c.cfg.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("set claim %s/%s lost: %w", pvc.Namespace, pvc.Name, err)
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID || pvc.Annotations[annBindCompleted] != "yes" {
		return c.bind(ctx, pvc, pv)
	}
	want := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	have := pv.Spec.Capacity[corev1.ResourceStorage]
	if want.Cmp(have) > 0 && pv.Annotations[annProvisionedBy] == HostPathProvisioner {
		if sc, err := c.classes.Get(claimClass(pvc)); err == nil && sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion {
			return c.expand(ctx, pvc, pv, want)
		}
	}
	return c.setClaimBound(ctx, pvc, pv)
}

// expand grows a hostPath volume (a directory has no size to change) and
// reports the new capacity on the claim.
func (c *PersistentVolume) expand(ctx context.Context, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume, size resource.Quantity) error {
	next := pv.DeepCopy()
	next.Spec.Capacity[corev1.ResourceStorage] = size
	updated, err := c.cfg.Client.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("expand volume %s: %w", pv.Name, err)
	}
	c.cfg.Recorder.Eventf(pvc, corev1.EventTypeNormal, "VolumeResizeSuccessful", "resize volume %q by resizer %q finished successfully", pv.Name, HostPathProvisioner)
	return c.setClaimBound(ctx, pvc, updated)
}

// provision makes a hostPath volume for the claim in a directory of its
// own, pinned to the node the scheduler chose.
func (c *PersistentVolume) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim, sc *storagev1.StorageClass, node string) error {
	name := "pvc-" + string(pvc.UID)
	if pvc.Annotations[annStorageProvision] != sc.Provisioner {
		next := pvc.DeepCopy()
		metav1.SetMetaDataAnnotation(&next.ObjectMeta, annStorageProvision, sc.Provisioner)
		metav1.SetMetaDataAnnotation(&next.ObjectMeta, annBetaProvisioner, sc.Provisioner)
		if _, err := c.cfg.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("annotate claim %s/%s: %w", pvc.Namespace, pvc.Name, err)
		}
		c.cfg.Recorder.Eventf(pvc, corev1.EventTypeNormal, "Provisioning", "External provisioner is provisioning volume for claim %q", pvc.Namespace+"/"+pvc.Name)
		return nil // the update brings the claim back
	}
	dir := filepath.Join(c.cfg.VolumeDir, name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		c.cfg.Recorder.Eventf(pvc, corev1.EventTypeWarning, "ProvisioningFailed", "failed to provision volume with StorageClass %q: %v", sc.Name, err)
		return fmt.Errorf("provision %s: %w", name, err)
	}
	// Any user of any image may write, like minikube's hostpath provisioner.
	if err := os.Chmod(dir, 0o777); err != nil {
		return fmt.Errorf("provision %s: %w", name, err)
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	dirType := corev1.HostPathDirectoryOrCreate
	size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	modes := pvc.Spec.AccessModes
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annProvisionedBy: sc.Provisioner}, Finalizers: []string{finalizerPV}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   modes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              sc.Name,
			VolumeMode:                    pvc.Spec.VolumeMode,
			MountOptions:                  sc.MountOptions,
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID, ResourceVersion: pvc.ResourceVersion},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &dirType}},
		},
	}
	if node != "" {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}
	}
	if _, err := c.cfg.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		c.cfg.Recorder.Eventf(pvc, corev1.EventTypeWarning, "ProvisioningFailed", "failed to provision volume with StorageClass %q: %v", sc.Name, err)
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	c.cfg.Recorder.Eventf(pvc, corev1.EventTypeNormal, "ProvisioningSucceeded", "Successfully provisioned volume %s", name)
	return nil
}

func (c *PersistentVolume) setVolumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase) error {
	if pv.Status.Phase == phase {
		return nil
	}
	next := pv.DeepCopy()
	next.Status.Phase = phase
	if _, err := c.cfg.Client.CoreV1().PersistentVolumes().UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("set volume %s %s: %w", pv.Name, phase, err)
	}
	return nil
}

func (c *PersistentVolume) syncVolume(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pv.DeletionTimestamp != nil {
		// PV protection: the finalizer goes once no claim is bound to it.
		if !hasFinalizer(pv, finalizerPV) || pv.Status.Phase == corev1.VolumeBound {
			return nil
		}
		next := pv.DeepCopy()
		next.Finalizers = withoutFinalizer(next.Finalizers, finalizerPV)
		if _, err := c.cfg.Client.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove protection of volume %s: %w", name, err)
		}
		return nil
	}
	ref := pv.Spec.ClaimRef
	if ref == nil {
		return c.setVolumePhase(ctx, pv, corev1.VolumeAvailable)
	}
	pvc, err := c.claims.PersistentVolumeClaims(ref.Namespace).Get(ref.Name)
	if apierrors.IsNotFound(err) && ref.UID != "" {
		// Ask the API, not the cache, before releasing the volume.
		pvc, err = c.cfg.Client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	}
	switch {
	case err == nil && (ref.UID == "" || pvc.UID == ref.UID):
		if pvc.Spec.VolumeName == pv.Name {
			return c.setVolumePhase(ctx, pv, corev1.VolumeBound)
		}
		c.w.queue.Add("pvc/" + pvc.Namespace + "/" + pvc.Name)
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return err
	case ref.UID == "":
		return c.setVolumePhase(ctx, pv, corev1.VolumeAvailable) // pre-bound to a claim yet to come
	}
	return c.reclaim(ctx, pv)
}

// reclaim handles a volume whose claim is gone: Released, and with
// reclaimPolicy Delete its directory and object go.
func (c *PersistentVolume) reclaim(ctx context.Context, pv *corev1.PersistentVolume) error {
	if err := c.setVolumePhase(ctx, pv, corev1.VolumeReleased); err != nil {
		return err
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return nil
	}
	if pv.Annotations[annProvisionedBy] != HostPathProvisioner || pv.Spec.HostPath == nil || c.cfg.VolumeDir == "" {
		c.cfg.Recorder.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedDelete", "error getting deleter volume plugin for volume %q: no deletable volume plugin matched", pv.Name)
		return nil
	}
	dir := filepath.Clean(pv.Spec.HostPath.Path)
	if filepath.Dir(dir) != filepath.Clean(c.cfg.VolumeDir) {
		c.cfg.Recorder.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedDelete", "host path %s is not a provisioned directory", dir)
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		c.cfg.Recorder.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedDelete", "%v", err)
		return fmt.Errorf("delete volume %s: %w", pv.Name, err)
	}
	if err := c.cfg.Client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete volume %s: %w", pv.Name, err)
	}
	return nil
}
