package scheduler

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
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
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: std}, Provisioner: "nanokube.io/hostpath", VolumeBindingMode: &wffc},
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
	if n, _, vols := place(claimPod("bound", "late")); n != "b" || len(vols.delayed) != 1 || vols.delayed[0].pvc.Name != "late" {
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

func localPV(name, size, node string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeSpec{
		StorageClassName: "local", Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
		AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/mnt/" + name}},
		NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable}}
}

func wffcClaim(name, class, size string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}}}
}

// WaitForFirstConsumer with pre-created volumes: the pod goes only where
// a fitting volume is reachable (upstream's VolumeBinding), or where its
// class may provision.
func TestVolumeBindingWaitForFirstConsumer(t *testing.T) {
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	local := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Provisioner: "kubernetes.io/no-provisioner", VolumeBindingMode: &wffc}
	std := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "standard"}, Provisioner: "nanokube.io/hostpath", VolumeBindingMode: &wffc,
		AllowedTopologies: []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{{Key: corev1.LabelHostname, Values: []string{"a", "c"}}}}}}
	nodes := []*corev1.Node{node("a", "4", map[string]string{corev1.LabelHostname: "a"}), node("b", "4", map[string]string{corev1.LabelHostname: "b"}),
		node("c", "4", map[string]string{corev1.LabelHostname: "c"})}
	selected := wffcClaim("picked", "standard", "1Gi")
	selected.Annotations = map[string]string{annSelectedNode: "c"}
	taken := localPV("pv-c", "1Gi", "c")
	taken.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "someone"}
	objs := []any{local, std, wffcClaim("data", "local", "1Gi"), wffcClaim("data2", "local", "1Gi"), wffcClaim("dyn", "standard", "1Gi"), selected,
		localPV("pv-b", "1Gi", "b"), localPV("pv-small-a", "100Mi", "a"), taken}
	fits := func(claims ...string) map[string]string {
		l := testListers(objs...)
		p := claimPod(claims...)
		snap := newSnapshot(nodes, nil, nil)
		snap.volumes = l.podVolumes(p)
		out := map[string]string{}
		for _, ni := range snap.nodes {
			out[ni.node.Name] = ""
			if v := filterVolumes(p, ni, snap); v != nil {
				out[ni.node.Name] = v.reason
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		claims []string
		ok     string // the nodes that pass, in order
	}{
		{"local claim goes where its volume is", []string{"data"}, "b"},
		{"two local claims, one volume: nowhere", []string{"data", "data2"}, ""},
		{"dynamic claim where the class's topology allows", []string{"dyn"}, "ac"},
		{"an already selected node binds only there", []string{"picked"}, "c"},
		{"local and dynamic together", []string{"data", "dyn"}, ""},
	} {
		got := fits(tc.claims...)
		pass := ""
		for _, n := range []string{"a", "b", "c"} {
			if got[n] == "" {
				pass += n
			} else if got[n] != reasonBindConflict {
				t.Errorf("%s: node %s fails with %q, want %q", tc.name, n, got[n], reasonBindConflict)
			}
		}
		if pass != tc.ok {
			t.Errorf("%s: nodes %q pass, want %q (%v)", tc.name, pass, tc.ok, got)
		}
	}

	// PreBind: the local claim's volume is pre-bound to it; the dynamic
	// claim gets the selected node.
	l := testListers(objs...)
	client := fake.NewClientset(localPV("pv-b", "1Gi", "b"), wffcClaim("data", "local", "1Gi"), wffcClaim("dyn", "standard", "1Gi"))
	s := &Scheduler{cfg: Config{Client: client}}
	if err := s.selectNode(context.Background(), l.podVolumes(claimPod("data")), nodes[1]); err != nil {
		t.Fatal(err)
	}
	pv, err := client.CoreV1().PersistentVolumes().Get(context.Background(), "pv-b", metav1.GetOptions{})
	if err != nil || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Name != "data" || pv.Spec.ClaimRef.UID != "uid-data" || pv.Annotations[annBoundByController] != "yes" {
		t.Fatalf("pv-b after PreBind: %+v (err %v), want pre-bound to default/data", pv, err)
	}
	if err := s.selectNode(context.Background(), l.podVolumes(claimPod("dyn")), nodes[0]); err != nil {
		t.Fatal(err)
	}
	pvc, err := client.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), "dyn", metav1.GetOptions{})
	if err != nil || pvc.Annotations[annSelectedNode] != "a" {
		t.Fatalf("claim dyn after PreBind: %+v (err %v), want selected node a", pvc.Annotations, err)
	}
}

// A claim the binder has given its volume but not yet its Bound status
// holds the pod back (the agent would find it not bound), still filtered
// by the volume's node affinity.
func TestVolumeBindingWaitsForBoundStatus(t *testing.T) {
	halfway := wffcClaim("halfway", "local", "1Gi")
	halfway.Spec.VolumeName = "pv-b"
	halfway.Status.Phase = corev1.ClaimPending
	done := wffcClaim("done", "local", "1Gi")
	done.Spec.VolumeName = "pv-b2"
	done.Status.Phase = corev1.ClaimBound
	l := testListers(halfway, done, localPV("pv-b", "1Gi", "b"), localPV("pv-b2", "1Gi", "b"))
	if v := l.podVolumes(claimPod("halfway")); !v.binding || len(v.bound) != 1 {
		t.Errorf("claim with a volume, still Pending: binding %v bound %d, want to wait", v.binding, len(v.bound))
	}
	if v := l.podVolumes(claimPod("done")); v.binding || len(v.bound) != 1 {
		t.Errorf("Bound claim: binding %v bound %d", v.binding, len(v.bound))
	}
}
