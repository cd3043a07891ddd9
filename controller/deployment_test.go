package controller

import (
	"context"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"
)

func TestSurgeAndUnavailable(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int) *intstr.IntOrString { v := intstr.FromInt32(int32(n)); return &v }
	cases := []struct {
		replicas       int32
		surge, unavail *intstr.IntOrString
		wantS, wantU   int32
	}{
		{10, pct("25%"), pct("25%"), 3, 2}, // surge rounds up, unavailable down
		{1, pct("25%"), pct("25%"), 1, 0},
		{3, num(0), num(0), 0, 1}, // both zero: one may be unavailable
		{4, num(2), pct("50%"), 2, 2},
	}
	for _, c := range cases {
		d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: c.surge, MaxUnavailable: c.unavail}}}}
		s, u := surgeAndUnavailable(d, c.replicas)
		if s != c.wantS || u != c.wantU {
			t.Errorf("replicas %d surge %v unavailable %v: got %d/%d, want %d/%d", c.replicas, c.surge, c.unavail, s, u, c.wantS, c.wantU)
		}
	}
}

func TestTemplateHashIsStable(t *testing.T) {
	d := &appsv1.Deployment{}
	d.Spec.Template.Labels = map[string]string{"app": "web"}
	h1 := templateHash(&d.Spec.Template, nil)
	h2 := templateHash(d.Spec.Template.DeepCopy(), nil)
	if h1 != h2 || h1 == "" {
		t.Fatalf("hash of equal templates differs: %q %q", h1, h2)
	}
	d.Spec.Template.Labels["app"] = "other"
	if templateHash(&d.Spec.Template, nil) == h1 {
		t.Errorf("hash ignores a template change")
	}
	one := int32(1)
	if templateHash(&d.Spec.Template, &one) == templateHash(&d.Spec.Template, nil) {
		t.Errorf("collision count does not change the hash")
	}
}

func TestDeploymentProgress(t *testing.T) {
	c := &Deployment{cfg: DeploymentConfig{Recorder: record.NewFakeRecorder(10)}, w: newWorker("test", slog.New(slog.DiscardHandler), nil)}
	defer c.w.queue.ShutDown()
	three, deadline := int32(3), int32(60)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}, Spec: appsv1.DeploymentSpec{Replicas: &three, ProgressDeadlineSeconds: &deadline}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-abc"}}
	now := metav1.Now()
	reason := func(st *appsv1.DeploymentStatus) string {
		if c := deploymentCondition(st, appsv1.DeploymentProgressing); c != nil {
			return string(c.Status) + "/" + c.Reason
		}
		return ""
	}
	st := &appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3}
	c.progress(d, st, rs, true, now)
	if got := reason(st); got != "True/NewReplicaSetCreated" {
		t.Fatalf("after create: %s", got)
	}
	d.Status = *st
	st = d.Status.DeepCopy()
	st.AvailableReplicas = 1
	c.progress(d, st, rs, false, now)
	if got := reason(st); got != "True/ReplicaSetUpdated" {
		t.Fatalf("after progress: %s", got)
	}
	// Nothing moves for longer than the deadline.
	d.Status = *st
	st = d.Status.DeepCopy()
	c.progress(d, st, rs, false, metav1.NewTime(now.Add(61*time.Second)))
	if got := reason(st); got != "False/ProgressDeadlineExceeded" {
		t.Fatalf("after the deadline: %s", got)
	}
	if msg := deploymentCondition(st, appsv1.DeploymentProgressing).Message; msg != `ReplicaSet "web-abc" has timed out progressing.` {
		t.Errorf("message %q", msg)
	}
	// It stays timed out until something moves; completion clears it.
	d.Status = *st
	st = d.Status.DeepCopy()
	st.AvailableReplicas = 3
	c.progress(d, st, rs, false, now)
	if got := reason(st); got != "True/NewReplicaSetAvailable" {
		t.Fatalf("after completion: %s", got)
	}
	// Pausing and resuming.
	d.Spec.Paused = true
	d.Status = *st
	st = d.Status.DeepCopy()
	c.progress(d, st, rs, false, now)
	if got := reason(st); got != "Unknown/DeploymentPaused" {
		t.Fatalf("paused: %s", got)
	}
	d.Spec.Paused = false
	d.Status = *st
	st = d.Status.DeepCopy()
	c.progress(d, st, rs, false, now)
	if got := reason(st); got != "True/NewReplicaSetAvailable" {
		t.Fatalf("resumed and complete: %s", got)
	}
}

func testDeployment() *appsv1.Deployment {
	lbl := map[string]string{"app": "web"}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web", Generation: 1},
		Spec: appsv1.DeploymentSpec{Replicas: ptrTo(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}}}}}
}

// testReplicaSetOf is the ReplicaSet the deployment would make for its
// current template, owned by owner (nil: an orphan).
func testReplicaSetOf(d *appsv1.Deployment, name string, owner *appsv1.Deployment) *appsv1.ReplicaSet {
	hash := templateHash(&d.Spec.Template, nil)
	lbl := map[string]string{"app": "web", podTemplateHashLabel: hash}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name), Labels: lbl,
		Annotations: map[string]string{revisionAnnotation: "1"}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: d.Spec.Template.Spec}}}
	if owner != nil {
		rs.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, deploymentKind)}
	}
	return rs
}

// A deployment made again after `delete --cascade=orphan` adopts its old
// ReplicaSet instead of creating one, and a ReplicaSet relabelled out of
// its selector is released (and left alone).
func TestDeploymentAdoptsAndReleasesReplicaSets(t *testing.T) {
	d := testDeployment()
	orphan := testReplicaSetOf(d, "web-"+templateHash(&d.Spec.Template, nil), nil)
	moved := testReplicaSetOf(d, "web-debug", d)
	moved.Labels = map[string]string{"app": "debug"}
	other := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "other", UID: "uid-other"}}
	theirs := testReplicaSetOf(d, "web-theirs", other)
	f := newFakeCluster(d, orphan, moved, theirs)
	c, err := NewDeployment(DeploymentConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	ctx := context.Background()
	controller := func(name string) types.UID {
		rs, err := f.client.AppsV1().ReplicaSets("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "gone"
		}
		if ref := metav1.GetControllerOf(rs); ref != nil {
			return ref.UID
		}
		return ""
	}
	eventually(t, "orphan adopted, moved released, status from the adopted set", func() bool {
		got, _ := f.client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		return controller(orphan.Name) == d.UID && controller(moved.Name) == "" && got.Status.ObservedGeneration == 1 &&
			got.Annotations[revisionAnnotation] == "1"
	})
	if got := controller(theirs.Name); got != other.UID {
		t.Errorf("another deployment's ReplicaSet now controlled by %q", got)
	}
	list, _ := f.client.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{})
	if len(list.Items) != 3 {
		t.Fatalf("%d ReplicaSets, want the 3 there were (no new one for the adopted template)", len(list.Items))
	}
	rs, _ := f.client.AppsV1().ReplicaSets("default").Get(ctx, orphan.Name, metav1.GetOptions{})
	if ref := metav1.GetControllerOf(rs); ref.Kind != "Deployment" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("adopted with %+v, want a blocking Deployment controller ref", ref)
	}
}

// The claimer adopts nothing for a deployment being deleted or one that
// was deleted and made again under the same name (the fresh read), and
// releases nothing while the deployment is being deleted.
func TestDeploymentClaimGuards(t *testing.T) {
	cases := []struct {
		name      string
		deleting  bool
		freshUID  types.UID
		owned     bool // the ReplicaSet starts owned, relabelled out of the selector
		wantOwner types.UID
		wantErr   string
	}{
		{name: "deleting adopts nothing", deleting: true},
		{name: "deleting releases nothing", owned: true, deleting: true, wantOwner: "uid-web"},
		{name: "recreated owner adopts nothing", freshUID: "uid-new", wantErr: "original default/web is gone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := testDeployment()
			if tc.deleting {
				d.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			}
			stored := d.DeepCopy()
			if tc.freshUID != "" {
				stored.UID = tc.freshUID
			}
			var rs *appsv1.ReplicaSet
			if tc.owned {
				rs = testReplicaSetOf(d, "web-x", d)
				rs.Labels = map[string]string{"app": "debug"}
			} else {
				rs = testReplicaSetOf(d, "web-x", nil)
			}
			f := newFakeCluster(stored, rs)
			ctx := context.Background()
			m := &refManager{client: f.client, owner: d, gvk: deploymentKind, sel: labels.SelectorFromSet(d.Spec.Selector.MatchLabels),
				fresh: func(ctx context.Context) (metav1.Object, error) {
					return f.client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
				}}
			got, err := m.claimReplicaSets(ctx, []*appsv1.ReplicaSet{rs})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if len(got) != 0 {
				t.Fatalf("claimed %d, want none", len(got))
			}
			after, _ := f.client.AppsV1().ReplicaSets("default").Get(ctx, "web-x", metav1.GetOptions{})
			var owner types.UID
			if ref := metav1.GetControllerOf(after); ref != nil {
				owner = ref.UID
			}
			if owner != tc.wantOwner {
				t.Fatalf("controller %q, want %q", owner, tc.wantOwner)
			}
		})
	}
}

// The rolling-update arithmetic on upstream's own cases (rolling_test.go:
// reconcileNewReplicaSet, reconcileOldReplicaSets, cleanupUnhealthyReplicas
// and scaleDownOldReplicaSetsForRollingUpdate).
func TestPlanRollingUpdate(t *testing.T) {
	cases := []struct {
		name                string
		replicas            int32
		surge, unavail      int32
		oldReplicas, newRep int32
		oldReady, newReady  int32
		wantNew, wantOld    int32
	}{
		{name: "no surge room: old set drops to minAvailable 0", replicas: 1, oldReplicas: 10, oldReady: 10, wantNew: 0, wantOld: 0},
		{name: "surge 2 over a full old set", replicas: 10, surge: 2, oldReplicas: 10, wantNew: 2, wantOld: 10},
		{name: "surge fills up to replicas+surge", replicas: 10, surge: 2, oldReplicas: 5, wantNew: 7, wantOld: 5},
		{name: "surge used up", replicas: 10, surge: 2, oldReplicas: 10, newRep: 2, wantNew: 2, wantOld: 10},
		{name: "new set above replicas shrinks", replicas: 2, surge: 2, oldReplicas: 2, newRep: 3, newReady: 3, wantNew: 2, wantOld: 0},
		{name: "both zero: one may be unavailable", replicas: 10, oldReplicas: 10, oldReady: 10, wantNew: 0, wantOld: 9},
		{name: "maxUnavailable 2", replicas: 10, unavail: 2, oldReplicas: 10, oldReady: 10, wantNew: 0, wantOld: 8},
		{name: "unhealthy old replicas cleaned up", replicas: 10, unavail: 2, oldReplicas: 10, oldReady: 8, wantNew: 0, wantOld: 8},
		{name: "one unhealthy cleaned, one ready dropped", replicas: 10, unavail: 2, oldReplicas: 10, oldReady: 9, wantNew: 0, wantOld: 8},
		{name: "new set's unavailable pods block scale-down", replicas: 10, unavail: 2, oldReplicas: 8, newRep: 2, oldReady: 8, wantNew: 2, wantOld: 8},
		{name: "too few available", replicas: 10, unavail: 2, oldReplicas: 10, oldReady: 1, wantNew: 0, wantOld: 8},
		{name: "surge 1, new pod not ready, crashing old pod kept", replicas: 3, surge: 1, oldReplicas: 3, oldReady: 2, wantNew: 1, wantOld: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, u := intstr.FromInt32(tc.surge), intstr.FromInt32(tc.unavail)
			d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &tc.replicas, Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &s, MaxUnavailable: &u}}}}
			newRS := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "new"}, Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo(tc.newRep)},
				Status: appsv1.ReplicaSetStatus{AvailableReplicas: tc.newReady}}
			old := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "old"}, Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo(tc.oldReplicas)},
				Status: appsv1.ReplicaSetStatus{AvailableReplicas: tc.oldReady}}
			plan := planRollingUpdate(d, newRS, []*appsv1.ReplicaSet{old}, tc.replicas)
			gotOld, ok := plan.old["old"]
			if !ok {
				gotOld = tc.oldReplicas
			}
			if plan.newReplicas != tc.wantNew || gotOld != tc.wantOld {
				t.Fatalf("new %d old %d, want new %d old %d", plan.newReplicas, gotOld, tc.wantNew, tc.wantOld)
			}
		})
	}
}

// Old ReplicaSets go oldest first, unhealthy replicas before healthy ones.
func TestPlanRollingUpdateOldestFirst(t *testing.T) {
	noSurge, three := intstr.FromInt32(0), intstr.FromInt32(3)
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptrTo(int32(6)), Strategy: appsv1.DeploymentStrategy{
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &noSurge, MaxUnavailable: &three}}}}
	at := func(min int) metav1.Time { return metav1.NewTime(time.Date(2026, 1, 1, 0, min, 0, 0, time.UTC)) }
	newRS := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "new", CreationTimestamp: at(3)}, Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo(int32(0))}}
	younger := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "younger", CreationTimestamp: at(2)}, Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo(int32(3))},
		Status: appsv1.ReplicaSetStatus{AvailableReplicas: 2}}
	older := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "older", CreationTimestamp: at(1)}, Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo(int32(3))},
		Status: appsv1.ReplicaSetStatus{AvailableReplicas: 3}}
	// minAvailable 3, 5 available: the younger set's unhealthy pod goes
	// first (cleanup), then 2 healthy ones from the older set.
	plan := planRollingUpdate(d, newRS, []*appsv1.ReplicaSet{younger, older}, 6)
	if plan.old["younger"] != 2 || plan.old["older"] != 1 {
		t.Fatalf("plan %+v, want younger 2 older 1", plan.old)
	}
}

// Proportional scaling on upstream's TestScale cases (maxSurge and
// maxUnavailable 0, the ReplicaSets sized for the old replicas).
func TestProportionalSizes(t *testing.T) {
	at := func(min int) metav1.Time { return metav1.NewTime(time.Date(2026, 1, 1, 0, min, 0, 0, time.UTC)) }
	set := func(name string, replicas int32, created int, sizedFor int) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: at(created),
			Annotations: map[string]string{maxReplicasAnnotation: strconv.Itoa(sizedFor)}}, Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo(replicas)}}
	}
	cases := []struct {
		name     string
		replicas int32
		sets     []*appsv1.ReplicaSet
		want     map[string]int32
	}{
		{"5 -> 10", 10, []*appsv1.ReplicaSet{set("v2", 2, 2, 5), set("v1", 3, 1, 5)}, map[string]int32{"v2": 4, "v1": 6}},
		{"leftover to the newest: 3 -> 4", 4, []*appsv1.ReplicaSet{set("v3", 1, 3, 3), set("v2", 1, 2, 3), set("v1", 1, 1, 3)}, map[string]int32{"v3": 2, "v2": 1, "v1": 1}},
		{"leftover from the oldest: 3 -> 2", 2, []*appsv1.ReplicaSet{set("v3", 1, 3, 3), set("v2", 1, 2, 3), set("v1", 1, 1, 3)}, map[string]int32{"v3": 1, "v2": 1, "v1": 0}},
		{"to zero", 0, []*appsv1.ReplicaSet{set("v2", 2, 2, 5), set("v1", 3, 1, 5)}, map[string]int32{"v2": 0, "v1": 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			zero := intstr.FromInt32(0)
			d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &tc.replicas, Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &zero, MaxUnavailable: &zero}}}}
			if got := proportionalSizes(d, tc.sets); !maps.Equal(got, tc.want) {
				t.Fatalf("sizes %v, want %v", got, tc.want)
			}
		})
	}
}

// A paused deployment is still scaled (kubectl scale works while paused)
// but its changed template makes no new ReplicaSet.
func TestPausedDeploymentScales(t *testing.T) {
	d := testDeployment()
	rs := testReplicaSetOf(d, "web-"+templateHash(&d.Spec.Template, nil), d)
	rs.Annotations[desiredReplicasAnnotation] = "2"
	d.Spec.Paused = true
	d.Spec.Replicas = ptrTo(int32(4))
	d.Spec.Template.Spec.Containers[0].Image = "img:v2"
	f := newFakeCluster(d, rs)
	c, err := NewDeployment(DeploymentConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	ctx := context.Background()
	eventually(t, "the paused deployment's ReplicaSet scaled to 4", func() bool {
		got, err := f.client.AppsV1().ReplicaSets("default").Get(ctx, rs.Name, metav1.GetOptions{})
		return err == nil && *got.Spec.Replicas == 4 && got.Annotations[desiredReplicasAnnotation] == "4"
	})
	if list, _ := f.client.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{}); len(list.Items) != 1 {
		t.Fatalf("%d ReplicaSets, want no new one while paused", len(list.Items))
	}
}
