package controller

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDaemonMaxUnavailable(t *testing.T) {
	for _, tc := range []struct {
		max     *intstr.IntOrString
		desired int
		want    int
	}{
		{nil, 5, 1},
		{ptrTo(intstr.FromInt32(3)), 5, 3},
		{ptrTo(intstr.FromString("50%")), 5, 3}, // rounded up
		{ptrTo(intstr.FromString("10%")), 3, 1},
		{ptrTo(intstr.FromInt32(0)), 3, 1},
	} {
		ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: tc.max}}}}
		if got := daemonMaxUnavailable(ds, tc.desired); got != tc.want {
			t.Errorf("maxUnavailable %v of %d: %d, want %d", tc.max, tc.desired, got, tc.want)
		}
	}
}

func TestDaemonSetHistory(t *testing.T) {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "agent", UID: "uid-agent", Annotations: map[string]string{"kubernetes.io/change-cause": "first"}},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "agent:1"}}}}},
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}
	f := newFakeCluster(ds, node)
	c, err := NewDaemonSet(DaemonSetConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	ctx := context.Background()
	byImage := func() map[string]appsv1.ControllerRevision {
		list, _ := f.client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
		out := map[string]appsv1.ControllerRevision{}
		for _, r := range list.Items {
			tmpl, err := revisionTemplate(&r)
			if err != nil {
				t.Fatal(err)
			}
			out[tmpl.Spec.Containers[0].Image] = r
		}
		return out
	}
	eventually(t, "revision 1", func() bool { return byImage()["agent:1"].Revision == 1 })
	r1 := byImage()["agent:1"]
	hash := r1.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
	if r1.Name != "agent-"+hash || r1.Annotations["kubernetes.io/change-cause"] != "first" {
		t.Fatalf("revision %s labels %v annotations %v, want agent-<hash> with the set's annotations", r1.Name, r1.Labels, r1.Annotations)
	}
	eventually(t, "pod of revision 1", func() bool {
		pods, _ := f.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return len(pods.Items) == 1 && pods.Items[0].Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash
	})
	// The fake API lets a status write carry a stale spec, so the image
	// is set again until the controller has seen it.
	set := func(img string, cond func(map[string]appsv1.ControllerRevision) bool) {
		eventually(t, "revisions after setting "+img, func() bool {
			cur, _ := f.client.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
			if cur.Spec.Template.Spec.Containers[0].Image != img {
				cur.Spec.Template.Spec.Containers[0].Image = img
				f.client.AppsV1().DaemonSets("default").Update(ctx, cur, metav1.UpdateOptions{})
			}
			return cond(byImage())
		})
	}
	set("agent:2", func(r map[string]appsv1.ControllerRevision) bool { return r["agent:2"].Revision == 2 })
	// A rollback moves revision 1 to the top instead of making a third.
	set("agent:1", func(r map[string]appsv1.ControllerRevision) bool {
		return r["agent:1"].Revision > r["agent:2"].Revision && len(r) == 2
	})
}
