package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
)

func testListers(objs ...any) volumeListers {
	claims := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	volumes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	classes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, o := range objs {
		switch o.(type) {
		case *corev1.PersistentVolumeClaim:
			claims.Add(o)
		case *corev1.PersistentVolume:
			volumes.Add(o)
		case *storagev1.StorageClass:
			classes.Add(o)
		}
	}
	return volumeListers{claims: corelisters.NewPersistentVolumeClaimLister(claims), volumes: corelisters.NewPersistentVolumeLister(volumes),
		classes: storagelisters.NewStorageClassLister(classes)}
}

func claimPod(claims ...string) *corev1.Pod {
	p := pod("user", "", "")
	for _, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: c, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	return p
}

func TestVolumeBinding(t *testing.T) {
	wffc, imm := storagev1.VolumeBindingWaitForFirstConsumer, storagev1.VolumeBindingImmediate
	std, slow := "standard", "slow"
	l := testListers(
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: std}, VolumeBindingMode: &wffc},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: slow}, VolumeBindingMode: &imm},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "late"}, Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &std}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "now"}, Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &slow}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "bound"}, Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-b"}},
		&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-b"}, Spec: corev1.PersistentVolumeSpec{NodeAffinity: &corev1.VolumeNodeAffinity{
			Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}}}}}}},
	)
	nodes := []*corev1.Node{node("a", "4", map[string]string{corev1.LabelHostname: "a"}), node("b", "4", map[string]string{corev1.LabelHostname: "b"})}
	place := func(p *corev1.Pod) (string, map[string]int, *podVolumes) {
		snap := newSnapshot(nodes, nil, nil)
		snap.volumes = l.podVolumes(p)
		n, verdicts := place(p, snap)
		reasons := map[string]int{}
		for _, v := range verdicts {
			reasons[v.reason]++
		}
		return n, reasons, snap.volumes
	}
	if n, _, vols := place(claimPod("bound", "late")); n != "b" || len(vols.delayed) != 1 || vols.delayed[0].Name != "late" {
		t.Errorf("bound and delayed claims: node %q, delayed %+v; want b and the claim late", n, vols.delayed)
	}
	if _, reasons, _ := place(claimPod("now")); reasons["pod has unbound immediate PersistentVolumeClaims"] != 2 {
		t.Errorf("unbound immediate claim: %v", reasons)
	}
	if _, reasons, _ := place(claimPod("gone")); reasons[`persistentvolumeclaim "gone" not found`] != 2 {
		t.Errorf("missing claim: %v", reasons)
	}
	if n, _, vols := place(pod("plain", "", "")); n == "" || vols != nil {
		t.Errorf("pod without claims: node %q volumes %+v", n, vols)
	}
}
