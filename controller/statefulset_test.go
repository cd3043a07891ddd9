package controller

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

func testSet(replicas int32, policy appsv1.PodManagementPolicyType) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web", Generation: 1},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, ServiceName: "nginx", PodManagementPolicy: policy,
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}},
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "nginx"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1"}}}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "www"},
				Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}},
		},
	}
}

func setPod(n int, revision string, ready bool) *corev1.Pod {
	p := readyPod("default", fmt.Sprintf("web-%d", n), map[string]string{"app": "nginx", appsv1.StatefulSetRevisionLabel: revision}, "node1", time.Now().Add(-time.Minute))
	if !ready {
		p.Status.Conditions[0].Status = corev1.ConditionFalse
	}
	return p
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestPlanSetOrderedReady(t *testing.T) {
	set := testSet(3, appsv1.OrderedReadyPodManagement)
	if p := planSet(set, nil, "r1", time.Now()); !slices.Equal(p.create, []int{0}) {
		t.Fatalf("empty set: create %v, want [0] only", p.create)
	}
	if p := planSet(set, []*corev1.Pod{setPod(0, "r1", false)}, "r1", time.Now()); len(p.create) != 0 || p.wait == "" {
		t.Fatalf("web-0 not ready: create %v wait %q, want to wait", p.create, p.wait)
	}
	if p := planSet(set, []*corev1.Pod{setPod(0, "r1", true)}, "r1", time.Now()); !slices.Equal(p.create, []int{1}) {
		t.Fatalf("web-0 ready: create %v, want [1]", p.create)
	}
	// Scale 3 → 1: highest first, one at a time.
	one := testSet(1, appsv1.OrderedReadyPodManagement)
	all := []*corev1.Pod{setPod(0, "r1", true), setPod(1, "r1", true), setPod(2, "r1", true)}
	if p := planSet(one, all, "r1", time.Now()); !slices.Equal(names(p.remove), []string{"web-2"}) {
		t.Fatalf("scale down: remove %v, want [web-2]", names(p.remove))
	}
	terminating := setPod(2, "r1", true)
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	if p := planSet(one, []*corev1.Pod{all[0], all[1], terminating}, "r1", time.Now()); len(p.remove) != 0 {
		t.Fatalf("web-2 terminating: remove %v, want to wait for it", names(p.remove))
	}
	// A failed pod is replaced before anything above it.
	failed := setPod(1, "r1", false)
	failed.Status.Phase = corev1.PodFailed
	if p := planSet(set, []*corev1.Pod{all[0], failed}, "r1", time.Now()); !slices.Equal(names(p.remove), []string{"web-1"}) || len(p.create) != 0 {
		t.Fatalf("failed web-1: remove %v create %v", names(p.remove), p.create)
	}
}

func TestPlanSetParallel(t *testing.T) {
	set := testSet(3, appsv1.ParallelPodManagement)
	if p := planSet(set, []*corev1.Pod{setPod(1, "r1", false)}, "r1", time.Now()); !slices.Equal(p.create, []int{0, 2}) {
		t.Fatalf("parallel: create %v, want [0 2]", p.create)
	}
	one := testSet(1, appsv1.ParallelPodManagement)
	all := []*corev1.Pod{setPod(0, "r1", true), setPod(1, "r1", false), setPod(2, "r1", true)}
	if p := planSet(one, all, "r1", time.Now()); !slices.Equal(names(p.remove), []string{"web-2", "web-1"}) {
		t.Fatalf("parallel scale down: remove %v, want [web-2 web-1]", names(p.remove))
	}
}

func TestPlanSetRollingUpdatePartition(t *testing.T) {
	set := testSet(3, appsv1.OrderedReadyPodManagement)
	set.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptrTo(int32(1))}
	pods := []*corev1.Pod{setPod(0, "r1", true), setPod(1, "r1", true), setPod(2, "r1", true)}
	if p := planSet(set, pods, "r2", time.Now()); !slices.Equal(names(p.remove), []string{"web-2"}) {
		t.Fatalf("update: remove %v, want [web-2] first", names(p.remove))
	}
	pods[2] = setPod(2, "r2", true)
	if p := planSet(set, pods, "r2", time.Now()); !slices.Equal(names(p.remove), []string{"web-1"}) {
		t.Fatalf("update: remove %v, want [web-1] next", names(p.remove))
	}
	pods[1] = setPod(1, "r2", true)
	if p := planSet(set, pods, "r2", time.Now()); len(p.remove) != 0 {
		t.Fatalf("web-0 is below the partition, yet remove %v", names(p.remove))
	}
	// An updated pod that is not ready holds the update.
	pods[1] = setPod(1, "r1", true)
	pods[2] = setPod(2, "r2", false)
	if p := planSet(set, pods, "r2", time.Now()); len(p.remove) != 0 {
		t.Fatalf("web-2 not ready, yet remove %v", names(p.remove))
	}
	// New pods below the partition keep the current revision.
	if got := revisionFor(set, 0, "r1", "r2"); got != "r1" {
		t.Fatalf("ordinal 0 below partition 1 gets %s, want r1", got)
	}
	if got := revisionFor(set, 2, "r1", "r2"); got != "r2" {
		t.Fatalf("ordinal 2 gets %s, want r2", got)
	}
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	pods[2] = setPod(2, "r1", true)
	if p := planSet(set, pods, "r2", time.Now()); len(p.remove) != 0 {
		t.Fatalf("OnDelete removed %v", names(p.remove))
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestStatefulSetCreatesIdentityAndClaims(t *testing.T) {
	set := testSet(2, appsv1.OrderedReadyPodManagement)
	f := newFakeCluster(set)
	c, err := NewStatefulSet(StatefulSetConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	ctx := context.Background()
	var pod *corev1.Pod
	eventually(t, "web-0", func() bool {
		pod, err = f.client.CoreV1().Pods("default").Get(ctx, "web-0", metav1.GetOptions{})
		return err == nil
	})
	if pod.Spec.Hostname != "web-0" || pod.Spec.Subdomain != "nginx" {
		t.Errorf("hostname %q subdomain %q, want web-0 and nginx", pod.Spec.Hostname, pod.Spec.Subdomain)
	}
	if pod.Labels[labelPodName] != "web-0" || pod.Labels[labelPodIndex] != "0" || pod.Labels[appsv1.StatefulSetRevisionLabel] == "" {
		t.Errorf("labels %v lack the pod name, index or revision", pod.Labels)
	}
	if len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].PersistentVolumeClaim == nil || pod.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "www-web-0" {
		t.Errorf("volumes %+v, want claim www-web-0", pod.Spec.Volumes)
	}
	pvc, err := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("claim www-web-0: %v", err)
	}
	if pvc.Labels["app"] != "nginx" {
		t.Errorf("claim labels %v, want the selector's", pvc.Labels)
	}
	revs, err := f.client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(revs.Items) != 1 || revs.Items[0].Revision != 1 || pod.Labels[appsv1.StatefulSetRevisionLabel] != revs.Items[0].Name {
		t.Fatalf("controller revisions %+v (err %v), want one, revision 1, named by the pod label", revs, err)
	}
	// web-1 waits for web-0 to be Running and Ready.
	if _, err := f.client.CoreV1().Pods("default").Get(ctx, "web-1", metav1.GetOptions{}); err == nil {
		t.Fatal("web-1 was created before web-0 was ready")
	}
	pod.Status = readyPod("", "", nil, "", time.Now()).Status
	if _, err := f.client.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var web1 *corev1.Pod
	eventually(t, "web-1", func() bool {
		web1, err = f.client.CoreV1().Pods("default").Get(ctx, "web-1", metav1.GetOptions{})
		return err == nil
	})
	// The API server makes a new pod Pending (the fake does not); only
	// then does upstream count it in status.replicas.
	web1.Status.Phase = corev1.PodPending
	if _, err := f.client.CoreV1().Pods("default").UpdateStatus(ctx, web1, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "status", func() bool {
		s, _ := f.client.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		return s.Status.Replicas == 2 && s.Status.ReadyReplicas == 1 && s.Status.UpdateRevision == revs.Items[0].Name && s.Status.ObservedGeneration == 1
	})
	evs := f.events()
	if !slices.Contains(evs, "Normal SuccessfulCreate create Pod web-0 in StatefulSet web successful") ||
		!slices.Contains(evs, "Normal SuccessfulCreate create Claim www-web-0 Pod web-0 in StatefulSet web success") {
		t.Errorf("events %q lack the upstream creation events", evs)
	}
}

func TestStatefulSetRevisionsAndRollback(t *testing.T) {
	set := testSet(1, appsv1.OrderedReadyPodManagement)
	f := newFakeCluster(set)
	c, err := NewStatefulSet(StatefulSetConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	ctx := context.Background()
	revisions := func() map[string]int64 {
		list, _ := f.client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{LabelSelector: labels.Set{"app": "nginx"}.String()})
		out := map[string]int64{}
		for _, r := range list.Items {
			tmpl, err := revisionTemplate(&r)
			if err != nil {
				t.Fatal(err)
			}
			out[tmpl.Spec.Containers[0].Image] = r.Revision
		}
		return out
	}
	eventually(t, "revision 1", func() bool { return revisions()["nginx:1"] == 1 })
	// The fake API lets a status write carry a stale spec, so the image
	// is set again until the controller has seen it.
	setImage := func(img string, cond func(map[string]int64) bool) {
		eventually(t, "revisions after setting "+img, func() bool {
			s, _ := f.client.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
			if s.Spec.Template.Spec.Containers[0].Image != img {
				s.Spec.Template.Spec.Containers[0].Image = img
				s.Generation++
				f.client.AppsV1().StatefulSets("default").Update(ctx, s, metav1.UpdateOptions{})
			}
			return cond(revisions())
		})
	}
	setImage("nginx:2", func(r map[string]int64) bool { return r["nginx:2"] == 2 })
	// What kubectl rollout undo does: the old revision moves to the top
	// (3, or higher when the fake's stale writes made the controller flip
	// more than once), no third revision appears.
	setImage("nginx:1", func(r map[string]int64) bool { return r["nginx:1"] > r["nginx:2"] && r["nginx:2"] >= 2 && len(r) == 2 })
}

func TestStatefulSetStatusCompletesUpdate(t *testing.T) {
	set := testSet(2, appsv1.OrderedReadyPodManagement)
	pods := []*corev1.Pod{setPod(0, "r2", true), setPod(1, "r2", true)}
	for _, p := range pods {
		p.OwnerReferences = []metav1.OwnerReference{{UID: types.UID("uid-web")}}
	}
	st := setStatus(set, pods, "r1", "r2", time.Now())
	if st.CurrentRevision != "r2" || st.CurrentReplicas != 2 || st.UpdatedReplicas != 2 || st.ReadyReplicas != 2 || st.AvailableReplicas != 2 {
		t.Fatalf("status %+v, want the update complete at r2", st)
	}
	pods[0] = setPod(0, "r1", true)
	st = setStatus(set, pods, "r1", "r2", time.Now())
	if st.CurrentRevision != "r1" || st.CurrentReplicas != 1 || st.UpdatedReplicas != 1 {
		t.Fatalf("status %+v, want one pod at each revision", st)
	}
}

func TestStatefulSetClaimRetention(t *testing.T) {
	set := testSet(1, appsv1.OrderedReadyPodManagement)
	set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
	pods := []*corev1.Pod{setPod(0, "", true), setPod(1, "", true)}
	for _, p := range pods {
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(set, statefulSetKind)}
	}
	claim := func(n string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: n}}
	}
	f := newFakeCluster(set, pods[0], pods[1], claim("www-web-0"), claim("www-web-1"))
	c, err := NewStatefulSet(StatefulSetConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	ctx := context.Background()
	// web-0's existing claim becomes owned by the set (whenDeleted:
	// Delete), so the garbage collector removes it with the set.
	eventually(t, "web-1 and its claim deleted", func() bool {
		_, perr := f.client.CoreV1().Pods("default").Get(ctx, "web-1", metav1.GetOptions{})
		_, cerr := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-1", metav1.GetOptions{})
		return perr != nil && cerr != nil
	})
	eventually(t, "web-0's claim owned by the set", func() bool {
		pvc, err := f.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-0", metav1.GetOptions{})
		return err == nil && len(pvc.OwnerReferences) == 1 && pvc.OwnerReferences[0].UID == set.UID
	})
	if !slices.Contains(f.events(), "Normal SuccessfulDelete delete Pod web-1 in StatefulSet web successful") {
		t.Error("no SuccessfulDelete event for web-1")
	}
}

func TestStatefulSetStatusLikeUpstream(t *testing.T) {
	now := time.Now()
	set := testSet(3, appsv1.OrderedReadyPodManagement)
	set.Generation = 4
	set.Spec.MinReadySeconds = 30
	set.Status.Conditions = []appsv1.StatefulSetCondition{{Type: "Custom", Status: corev1.ConditionTrue}}
	fresh := setPod(2, "r2", true)
	fresh.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-10 * time.Second))
	unseen := setPod(5, "r2", false)
	unseen.Status.Phase = ""
	pods := []*corev1.Pod{setPod(0, "r1", true), setPod(1, "r1", true), fresh, unseen}
	st := setStatus(set, pods, "r1", "r2", now)
	want := appsv1.StatefulSetStatus{ObservedGeneration: 4, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 2, CurrentReplicas: 2,
		UpdatedReplicas: 1, CurrentRevision: "r1", UpdateRevision: "r2", CollisionCount: ptrTo(int32(0))}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("status\n got %+v\nwant %+v", st, want)
	}
	// Ready for minReadySeconds: available.
	if st := setStatus(set, pods, "r1", "r2", now.Add(20*time.Second)); st.AvailableReplicas != 3 {
		t.Fatalf("after minReadySeconds: available %d, want 3", st.AvailableReplicas)
	}
	// OnDelete never completes the rollout (currentRevision stays), so
	// kubectl rollout status refuses it like upstream's.
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	all := []*corev1.Pod{setPod(0, "r2", true), setPod(1, "r2", true), setPod(2, "r2", true)}
	if st := setStatus(set, all, "r1", "r2", now); st.CurrentRevision != "r1" || st.UpdatedReplicas != 3 || st.CurrentReplicas != 0 {
		t.Fatalf("OnDelete: %+v, want current r1 with 3 updated", st)
	}
	// Only the counted fields decide a write, like inconsistentStatus.
	set.Status = setStatus(set, all, "r1", "r2", now)
	set.Status.Conditions = []appsv1.StatefulSetCondition{{Type: "Custom", Status: corev1.ConditionTrue}}
	if inconsistentStatus(set, setStatus(set, all, "r1", "r2", now)) {
		t.Fatal("same counts reported as inconsistent")
	}
	set.Generation = 5
	if !inconsistentStatus(set, setStatus(set, all, "r1", "r2", now)) {
		t.Fatal("a new generation is not written")
	}
}

func TestPlanSetWaitsForAvailability(t *testing.T) {
	now := time.Now()
	set := testSet(3, appsv1.OrderedReadyPodManagement)
	set.Spec.MinReadySeconds = 60
	young := setPod(0, "r1", true)
	young.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-5 * time.Second))
	if p := planSet(set, []*corev1.Pod{young}, "r1", now); len(p.create) != 0 || p.wait == "" {
		t.Fatalf("web-0 ready for 5s of 60: create %v wait %q, want to wait", p.create, p.wait)
	}
	if p := planSet(set, []*corev1.Pod{young}, "r1", now.Add(time.Minute)); !slices.Equal(p.create, []int{1}) {
		t.Fatalf("web-0 available: create %v, want [1]", p.create)
	}
	// A rolling update waits for the updated pod to be available before
	// the next one goes.
	set.Spec.MinReadySeconds = 0
	pods := []*corev1.Pod{setPod(0, "r1", true), setPod(1, "r1", true), setPod(2, "r2", true)}
	set.Spec.MinReadySeconds = 0
	if p := planSet(set, pods, "r2", now); !slices.Equal(names(p.remove), []string{"web-1"}) {
		t.Fatalf("update: remove %v, want [web-1]", names(p.remove))
	}
	// Parallel: an updated pod that is not ready holds the update even
	// though Parallel does not wait while creating.
	par := testSet(3, appsv1.ParallelPodManagement)
	pods[2] = setPod(2, "r2", false)
	if p := planSet(par, pods, "r2", now); len(p.remove) != 0 || p.wait == "" {
		t.Fatalf("parallel update with web-2 unready: remove %v wait %q", names(p.remove), p.wait)
	}
}
