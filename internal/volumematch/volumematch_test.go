package volumematch

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testPV(name, size, class string, lbls map[string]string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany},
			StorageClassName: class,
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
}

func testPVC(name, size string, class *string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}},
	}
}

func TestVolumeFits(t *testing.T) {
	empty := ""
	pvc := testPVC("data", "2Gi", &empty)
	if !Fits(pvc, testPV("a", "2Gi", "", nil)) {
		t.Error("an equal capacity does not fit")
	}
	if Fits(pvc, testPV("a", "1Gi", "", nil)) {
		t.Error("a smaller volume fits")
	}
	if Fits(pvc, testPV("a", "5Gi", "fast", nil)) {
		t.Error("a volume of another class fits")
	}
	pvc.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	if Fits(pvc, testPV("a", "5Gi", "", nil)) {
		t.Error("a volume without ReadWriteMany fits a ReadWriteMany claim")
	}
	pvc.Spec.AccessModes = nil
	block := corev1.PersistentVolumeBlock
	pvc.Spec.VolumeMode = &block
	if Fits(pvc, testPV("a", "5Gi", "", nil)) {
		t.Error("a Filesystem volume fits a Block claim")
	}
	pvc.Spec.VolumeMode = nil
	pvc.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}
	if Fits(pvc, testPV("a", "5Gi", "", map[string]string{"tier": "web"})) || !Fits(pvc, testPV("a", "5Gi", "", map[string]string{"tier": "db"})) {
		t.Error("the selector is not honoured")
	}
}

func pinned(pv *corev1.PersistentVolume, node string) *corev1.PersistentVolume {
	pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}
	return pv
}

func node(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name, "zone": "z-" + name}}}
}

func TestSmallestReachable(t *testing.T) {
	class := "local"
	pvc := testPVC("data", "1Gi", &class)
	claimed := testPV("claimed", "1Gi", "local", nil)
	claimed.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "other"}
	pvs := []*corev1.PersistentVolume{pinned(testPV("big-n1", "5Gi", "local", nil), "n1"), pinned(testPV("small-n2", "1Gi", "local", nil), "n2"),
		claimed, testPV("other-class", "1Gi", "fast", nil)}
	for _, tc := range []struct{ node, want string }{{"n1", "big-n1"}, {"n2", "small-n2"}, {"n3", ""}} {
		n := node(tc.node)
		got := Smallest(pvc, pvs, func(pv *corev1.PersistentVolume) bool { return Reachable(pv, n) })
		name := ""
		if got != nil {
			name = got.Name
		}
		if name != tc.want {
			t.Errorf("node %s: volume %q, want %q", tc.node, name, tc.want)
		}
	}
	if got := Smallest(pvc, pvs, nil); got == nil || got.Name != "small-n2" {
		t.Errorf("without a node: %v, want small-n2", got)
	}
}

func TestCanProvision(t *testing.T) {
	sc := &storagev1.StorageClass{Provisioner: "nanokube.io/hostpath"}
	if !CanProvision(sc, node("n1")) {
		t.Error("a class with a provisioner and no topology cannot provision")
	}
	if CanProvision(&storagev1.StorageClass{Provisioner: NoProvisioner}, node("n1")) {
		t.Error("kubernetes.io/no-provisioner provisions")
	}
	sc.AllowedTopologies = []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{{Key: "zone", Values: []string{"z-n2"}}}}}
	if CanProvision(sc, node("n1")) || !CanProvision(sc, node("n2")) {
		t.Error("allowedTopologies not honoured")
	}
}
