package controller

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

func testPV(name, size, class string, lbls map[string]string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany},
			StorageClassName:              class,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
}

func testPVC(name, size string, class *string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}},
	}
}

func newPVController(t *testing.T, dir string, objs ...runtime.Object) *fakeCluster {
	t.Helper()
	f := newFakeCluster(objs...)
	c, err := NewPersistentVolume(PersistentVolumeConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log, VolumeDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	return f
}

func TestBinderPicksSmallestFittingVolume(t *testing.T) {
	empty := ""
	f := newPVController(t, "", testPV("big", "10Gi", "", nil), testPV("small", "1Gi", "", nil), testPV("right", "3Gi", "", nil), testPVC("data", "2Gi", &empty))
	ctx := context.Background()
	eventually(t, "claim bound", func() bool {
		pvc, _ := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
		return pvc.Status.Phase == corev1.ClaimBound
	})
	pvc, _ := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
	if pvc.Spec.VolumeName != "right" || pvc.Annotations[annBindCompleted] != "yes" || pvc.Annotations[annBoundByController] != "yes" {
		t.Fatalf("claim bound to %q with annotations %v, want the 3Gi volume and the binder's annotations", pvc.Spec.VolumeName, pvc.Annotations)
	}
	if got := pvc.Status.Capacity[corev1.ResourceStorage]; got.String() != "3Gi" {
		t.Errorf("claim capacity %s, want the volume's 3Gi", got.String())
	}
	eventually(t, "volume bound", func() bool {
		pv, _ := f.client.CoreV1().PersistentVolumes().Get(ctx, "right", metav1.GetOptions{})
		return pv.Status.Phase == corev1.VolumeBound && pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.UID == pvc.UID
	})
	// Retain: the deleted claim's volume is Released and kept.
	if err := f.client.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "volume released", func() bool {
		pv, _ := f.client.CoreV1().PersistentVolumes().Get(ctx, "right", metav1.GetOptions{})
		return pv.Status.Phase == corev1.VolumeReleased
	})
	for _, n := range []string{"big", "small"} {
		if pv, _ := f.client.CoreV1().PersistentVolumes().Get(ctx, n, metav1.GetOptions{}); pv.Spec.ClaimRef != nil {
			t.Errorf("volume %s was bound too", n)
		}
	}
}

func TestProvisionerWaitsForConsumerAndDeletes(t *testing.T) {
	dir := t.TempDir()
	std := DefaultStorageClass
	f := newPVController(t, dir, testPVC("www-web-0", "1Gi", &std))
	ctx := context.Background()
	eventually(t, "default class", func() bool {
		sc, err := f.client.StorageV1().StorageClasses().Get(ctx, DefaultStorageClass, metav1.GetOptions{})
		return err == nil && sc.Annotations[annDefaultClass] == "true" && sc.Provisioner == HostPathProvisioner &&
			*sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
	})
	eventually(t, "WaitForFirstConsumer event", func() bool {
		return slices.Contains(f.events(), "Normal WaitForFirstConsumer waiting for first consumer to be created before binding")
	})
	if pvs, _ := f.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{}); len(pvs.Items) != 0 {
		t.Fatalf("provisioned %d volumes before the scheduler chose a node", len(pvs.Items))
	}
	pvc, _ := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-0", metav1.GetOptions{})
	pvc.Annotations = map[string]string{annSelectedNode: "node1"}
	if _, err := f.client.CoreV1().PersistentVolumeClaims("default").Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	name := "pvc-uid-www-web-0"
	eventually(t, "claim bound to a provisioned volume", func() bool {
		pvc, _ := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-0", metav1.GetOptions{})
		return pvc.Status.Phase == corev1.ClaimBound && pvc.Spec.VolumeName == name
	})
	pv, _ := f.client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	path := filepath.Join(dir, name)
	if pv.Spec.HostPath == nil || pv.Spec.HostPath.Path != path || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Fatalf("volume %+v, want hostPath %s with reclaimPolicy Delete", pv.Spec, path)
	}
	if terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms; terms[0].MatchExpressions[0].Values[0] != "node1" {
		t.Errorf("node affinity %+v, want node1", terms)
	}
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		t.Fatalf("directory %s: %v", path, err)
	}
	// Expansion: the claim's capacity follows its request.
	pvc, _ = f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-0", metav1.GetOptions{})
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	if _, err := f.client.CoreV1().PersistentVolumeClaims("default").Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "claim expanded", func() bool {
		pvc, _ := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-0", metav1.GetOptions{})
		q := pvc.Status.Capacity[corev1.ResourceStorage]
		return q.String() == "2Gi"
	})
	// Reclaim Delete: the directory and the volume go with the claim.
	if err := f.client.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "www-web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "volume deleted", func() bool {
		_, err := f.client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("directory %s still there: %v", path, err)
	}
}

func TestClaimProtectionWaitsForPods(t *testing.T) {
	empty := ""
	pvc := testPVC("data", "1Gi", &empty)
	now := metav1.Now()
	pvc.DeletionTimestamp = &now
	pvc.Finalizers = []string{finalizerPVC}
	pod := readyPod("default", "user", nil, "node1", now.Time)
	pod.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	f := newPVController(t, "", pvc, pod)
	ctx := context.Background()
	eventually(t, "informers", func() bool { return f.informers.Core().V1().Pods().Informer().HasSynced() })
	if got, _ := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{}); !slices.Contains(got.Finalizers, finalizerPVC) {
		t.Fatal("protection removed while a pod uses the claim")
	}
	if err := f.client.CoreV1().Pods("default").Delete(ctx, "user", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "protection removed", func() bool {
		got, _ := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
		return !slices.Contains(got.Finalizers, finalizerPVC)
	})
}

// A WaitForFirstConsumer claim takes a pre-created volume only when the
// scheduler pre-bound it (claimRef, after checking the volume's node
// affinity against the pod's node); with a selected node and no such
// volume it is provisioned, never bound to a volume the node may not
// reach.
func TestWaitForFirstConsumerHonoursSchedulerChoice(t *testing.T) {
	dir := t.TempDir()
	std := DefaultStorageClass
	elsewhere := testPV("pv-node2", "5Gi", std, nil)
	elsewhere.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"node2"}}}}}}}
	prebound := testPV("pv-mine", "5Gi", std, nil)
	a, b := testPVC("a", "1Gi", &std), testPVC("b", "1Gi", &std)
	a.Annotations = map[string]string{annSelectedNode: "node1"}
	prebound.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "b", UID: b.UID}
	// The class exists before the claims are seen (a claim of a class not
	// yet known binds like an Immediate one, as upstream's does).
	wffc, del := storagev1.VolumeBindingWaitForFirstConsumer, corev1.PersistentVolumeReclaimDelete
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: std}, Provisioner: HostPathProvisioner, VolumeBindingMode: &wffc, ReclaimPolicy: &del}
	f := newPVController(t, dir, sc, elsewhere, prebound, a, b)
	ctx := context.Background()
	eventually(t, "b bound to the pre-bound volume", func() bool {
		pvc, _ := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "b", metav1.GetOptions{})
		return pvc.Status.Phase == corev1.ClaimBound && pvc.Spec.VolumeName == "pv-mine"
	})
	eventually(t, "a provisioned on node1", func() bool {
		pvc, _ := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "a", metav1.GetOptions{})
		return pvc.Status.Phase == corev1.ClaimBound && pvc.Spec.VolumeName == "pvc-uid-a"
	})
	pv, _ := f.client.CoreV1().PersistentVolumes().Get(ctx, "pv-node2", metav1.GetOptions{})
	if pv.Spec.ClaimRef != nil {
		t.Fatalf("pv-node2 (node2 only) bound to %+v", pv.Spec.ClaimRef)
	}
}
