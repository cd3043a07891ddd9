package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

func TestPodClaimer(t *testing.T) {
	set := testSet(2, appsv1.OrderedReadyPodManagement)
	mine := *metav1.NewControllerRef(set, statefulSetKind)
	other := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "x", UID: "uid-x", Controller: ptrTo(true)}
	pod := func(name string, lbl map[string]string, refs ...metav1.OwnerReference) *corev1.Pod {
		p := readyPod("default", name, lbl, "node1", time.Now())
		p.OwnerReferences = refs
		return p
	}
	match := map[string]string{"app": "nginx"}
	gone := pod("web-9", match)
	gone.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	cases := []struct {
		name      string
		pod       *corev1.Pod
		deleting  bool   // the owner has a deletionTimestamp
		freshUID  string // the owner read afresh ("" = same)
		claimed   bool
		wantOwner string // the pod's controller UID afterwards ("" = none)
		wantErr   string
	}{
		{name: "owned and matching", pod: pod("web-0", match, mine), claimed: true, wantOwner: "uid-web"},
		{name: "orphan adopted", pod: pod("web-1", match), claimed: true, wantOwner: "uid-web"},
		{name: "orphan not a member by name", pod: pod("other-1", match)},
		{name: "orphan not matching", pod: pod("web-1", map[string]string{"app": "db"})},
		{name: "orphan being deleted", pod: gone},
		{name: "owned, labels changed: released", pod: pod("web-1", map[string]string{"app": "db"}, mine)},
		{name: "someone else's", pod: pod("web-1", match, other), wantOwner: "uid-x"},
		{name: "owner being deleted adopts nothing", pod: pod("web-1", match), deleting: true},
		{name: "owner being deleted releases nothing", pod: pod("web-1", map[string]string{"app": "db"}, mine), deleting: true, wantOwner: "uid-web"},
		{name: "owner recreated: no adoption", pod: pod("web-1", match), freshUID: "uid-new", wantErr: "original default/web is gone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			owner := set.DeepCopy()
			if tc.deleting {
				owner.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			}
			stored := owner.DeepCopy()
			if tc.freshUID != "" {
				stored.UID = types.UID(tc.freshUID)
			}
			f := newFakeCluster(stored, tc.pod)
			ctx := context.Background()
			m := &refManager{client: f.client, owner: owner, gvk: statefulSetKind, sel: labels.SelectorFromSet(match),
				filter: func(p *corev1.Pod) bool { _, ok := podOrdinal(owner, p); return ok },
				fresh: func(ctx context.Context) (metav1.Object, error) {
					return f.client.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
				}}
			got, err := m.claim(ctx, []*corev1.Pod{tc.pod})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if (len(got) == 1) != tc.claimed {
				t.Fatalf("claimed %v, want %v", names(got), tc.claimed)
			}
			after, err := f.client.CoreV1().Pods("default").Get(ctx, tc.pod.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			owner2 := ""
			if ref := metav1.GetControllerOf(after); ref != nil {
				owner2 = string(ref.UID)
				if ref.UID == set.UID && (ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion || ref.Kind != "StatefulSet") {
					t.Errorf("adopted with %+v, want a blocking StatefulSet controller ref", ref)
				}
			}
			if owner2 != tc.wantOwner {
				t.Fatalf("controller afterwards %q, want %q (refs %+v)", owner2, tc.wantOwner, after.OwnerReferences)
			}
		})
	}
}

// An orphan web-0 is adopted rather than replaced, and a pod relabelled
// out of the selector is released and replaced.
func TestStatefulSetAdoptsAndReleases(t *testing.T) {
	set := testSet(2, appsv1.ParallelPodManagement)
	set.Spec.VolumeClaimTemplates = nil
	orphan := setPod(0, "", true)
	relabelled := setPod(1, "", true)
	relabelled.Labels = map[string]string{"app": "debug"}
	relabelled.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(set, statefulSetKind)}
	f := newFakeCluster(set, orphan, relabelled)
	c, err := NewStatefulSet(StatefulSetConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	ctx := context.Background()
	eventually(t, "web-0 adopted", func() bool {
		p, err := f.client.CoreV1().Pods("default").Get(ctx, "web-0", metav1.GetOptions{})
		ref := (*metav1.OwnerReference)(nil)
		if err == nil {
			ref = metav1.GetControllerOf(p)
		}
		return ref != nil && ref.UID == set.UID && p.UID == orphan.UID
	})
	eventually(t, "web-1 released", func() bool {
		p, err := f.client.CoreV1().Pods("default").Get(ctx, "web-1", metav1.GetOptions{})
		return err == nil && p.Labels["app"] == "debug" && len(p.OwnerReferences) == 0
	})
}

// An orphan ControllerRevision of the set's template (a set deleted with
// --cascade=orphan and made again) is adopted, not counted as a hash
// collision.
func TestStatefulSetAdoptsOrphanRevision(t *testing.T) {
	set := testSet(1, appsv1.OrderedReadyPodManagement)
	set.Spec.VolumeClaimTemplates = nil
	data, err := templatePatch(&set.Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	hash := revisionHash(data, nil)
	orphan := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-" + hash, UID: "uid-rev",
		Labels: map[string]string{"app": "nginx", "controller.kubernetes.io/hash": hash}}, Data: runtime.RawExtension{Raw: data}, Revision: 1}
	f := newFakeCluster(set, orphan)
	c, err := NewStatefulSet(StatefulSetConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	ctx := context.Background()
	eventually(t, "revision adopted and the set's status naming it", func() bool {
		cr, err := f.client.AppsV1().ControllerRevisions("default").Get(ctx, orphan.Name, metav1.GetOptions{})
		s, _ := f.client.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		ref := (*metav1.OwnerReference)(nil)
		if err == nil {
			ref = metav1.GetControllerOf(cr)
		}
		return ref != nil && ref.UID == set.UID && s.Status.UpdateRevision == orphan.Name
	})
	s, _ := f.client.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
	if s.Status.CollisionCount != nil && *s.Status.CollisionCount != 0 {
		t.Fatalf("collisionCount %d, want 0", *s.Status.CollisionCount)
	}
}

// A ReplicaSet adopts a matching orphan instead of creating a pod, and a
// pod relabelled out of its selector is released and replaced.
func TestWorkloadsAdoptAndRelease(t *testing.T) {
	lbl := map[string]string{"app": "web"}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "rs", UID: "uid-rs"}, Spec: appsv1.ReplicaSetSpec{
		Replicas: ptrTo(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}}}}}
	orphan := readyPod("default", "orphan", lbl, "node1", time.Now())
	moved := readyPod("default", "moved", map[string]string{"app": "debug"}, "node1", time.Now())
	moved.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
	f := newFakeCluster(rs, orphan, moved)
	c, err := NewReplicaSet(ReplicaSetConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	ctx := context.Background()
	eventually(t, "orphan adopted, moved released, one pod created", func() bool {
		pods, _ := f.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		owned := 0
		for _, p := range pods.Items {
			ref := metav1.GetControllerOf(&p)
			switch {
			case p.Name == "moved" && ref != nil:
				return false
			case ref != nil && ref.UID == rs.UID:
				owned++
			}
		}
		o, _ := f.client.CoreV1().Pods("default").Get(ctx, "orphan", metav1.GetOptions{})
		return owned == 2 && len(pods.Items) == 3 && metav1.GetControllerOf(o) != nil
	})
}

// A Job adopts a running orphan that carries its selector's labels and
// counts it as active instead of starting another pod.
func TestJobAdoptsOrphan(t *testing.T) {
	sel := map[string]string{batchv1.ControllerUidLabel: "uid-job"}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "work", UID: "uid-job"}, Spec: batchv1.JobSpec{
		Parallelism: ptrTo(int32(1)), Completions: ptrTo(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: sel},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "img"}}}}}}
	orphan := readyPod("default", "work-x", sel, "node1", time.Now())
	f := newFakeCluster(job, orphan)
	c, err := NewJob(JobConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	ctx := context.Background()
	eventually(t, "orphan adopted and active", func() bool {
		p, _ := f.client.CoreV1().Pods("default").Get(ctx, "work-x", metav1.GetOptions{})
		j, _ := f.client.BatchV1().Jobs("default").Get(ctx, "work", metav1.GetOptions{})
		ref := metav1.GetControllerOf(p)
		return ref != nil && ref.UID == job.UID && ref.Kind == "Job" && j.Status.Active == 1
	})
	if pods, _ := f.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); len(pods.Items) != 1 {
		t.Fatalf("%d pods, want the adopted one only", len(pods.Items))
	}
}
