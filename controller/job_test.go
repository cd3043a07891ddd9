package controller

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestIndexRanges(t *testing.T) {
	for want, set := range map[string][]int{"": nil, "3": {3}, "0-2,4,6-7": {7, 0, 1, 2, 4, 6}, "1,3,5": {5, 3, 1}} {
		m := map[int]bool{}
		for _, i := range set {
			m[i] = true
		}
		if got := indexRanges(m); got != want {
			t.Errorf("indexRanges(%v) = %q, want %q", set, got, want)
		}
	}
}

func jobPod(name string, phase corev1.PodPhase, exit int32, idx string) *corev1.Pod {
	yes := true
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns",
		OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Name: "j", UID: "job-uid", Controller: &yes}}},
		Status: corev1.PodStatus{Phase: phase}}
	if idx != "" {
		p.Annotations = map[string]string{batchv1.JobCompletionIndexAnnotation: idx}
	}
	if phase == corev1.PodFailed || phase == corev1.PodSucceeded {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit}}}}
	}
	return p
}

func TestClassifyJobPodsWithFailurePolicy(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", UID: types.UID("job-uid")}, Spec: batchv1.JobSpec{
		PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
			{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{137}}},
			{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		}}}}
	pods := []*corev1.Pod{jobPod("ok", corev1.PodSucceeded, 0, "0"), jobPod("killed", corev1.PodFailed, 137, "1"),
		jobPod("plain", corev1.PodFailed, 1, "1"), jobPod("run", corev1.PodRunning, 0, "2"), jobPod("other", corev1.PodFailed, 1, "")}
	pods[4].OwnerReferences = nil
	jp := classifyJobPods(job, pods)
	if jp.succeeded != 1 || jp.failed != 1 || len(jp.active) != 1 || jp.failJob != "" {
		t.Fatalf("succeeded %d failed %d active %d failJob %q, want 1 1 1 \"\"", jp.succeeded, jp.failed, len(jp.active), jp.failJob)
	}
	if !jp.doneIdx[0] || !jp.activeIdx[2] || jp.doneIdx[1] {
		t.Errorf("indexes done %v active %v", jp.doneIdx, jp.activeIdx)
	}
	jp = classifyJobPods(job, append(pods, jobPod("fatal", corev1.PodFailed, 42, "")))
	want := "Container main for pod ns/fatal failed with exit code 42 matching FailJob rule at index 1"
	if jp.failJob != want {
		t.Errorf("failJob = %q, want %q", jp.failJob, want)
	}
}

func TestJobBackoff(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		failed int32
		want   time.Duration
	}{{0, 0}, {1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second}, {20, 6 * time.Minute}} {
		left := jobBackoffLeft(jobPods{failed: c.failed, lastFailure: now})
		if left > c.want || left < c.want-time.Second {
			t.Errorf("%d failures: wait %v, want %v", c.failed, left, c.want)
		}
	}
}

func TestIndexedTemplate(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "work"}}
	job.Spec.Template.Labels = map[string]string{"app": "w"}
	job.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c"}}
	tmpl := indexedTemplate(job, 3)
	if tmpl.Annotations[batchv1.JobCompletionIndexAnnotation] != "3" || tmpl.Labels[batchv1.JobCompletionIndexAnnotation] != "3" || tmpl.Labels["app"] != "w" {
		t.Errorf("labels %v annotations %v", tmpl.Labels, tmpl.Annotations)
	}
	if tmpl.Spec.Hostname != "work-3" || tmpl.Spec.Containers[0].Env[0].Name != "JOB_COMPLETION_INDEX" {
		t.Errorf("hostname %q env %v", tmpl.Spec.Hostname, tmpl.Spec.Containers[0].Env)
	}
	if _, ok := job.Spec.Template.Labels[batchv1.JobCompletionIndexAnnotation]; ok {
		t.Errorf("the job's own template was changed")
	}
}

// activeDeadlineSeconds fails a running Job (its pods go) with upstream's
// reason, and a suspended Job loses its pods and says so, without the
// deadline clock running.
func TestJobDeadlineAndSuspend(t *testing.T) {
	sel := map[string]string{batchv1.ControllerUidLabel: "uid-job"}
	mkJob := func(mod func(*batchv1.Job)) *batchv1.Job {
		started := metav1.NewTime(time.Now().Add(-time.Minute))
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "work", UID: "uid-job"}, Spec: batchv1.JobSpec{
			Parallelism: ptrTo(int32(1)), Completions: ptrTo(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "img"}}}}},
			Status: batchv1.JobStatus{StartTime: &started}}
		mod(j)
		return j
	}
	cases := []struct {
		name       string
		job        *batchv1.Job
		wantCond   batchv1.JobConditionType
		wantReason string
	}{
		{"deadline exceeded", mkJob(func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptrTo(int64(10)) }), batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded},
		{"suspended, deadline not counted", mkJob(func(j *batchv1.Job) {
			j.Spec.ActiveDeadlineSeconds = ptrTo(int64(10))
			j.Spec.Suspend = ptrTo(true)
		}), batchv1.JobSuspended, "JobSuspended"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := readyPod("default", "work-a", sel, "node1", time.Now())
			pod.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(tc.job, batchv1.SchemeGroupVersion.WithKind("Job"))}
			f := newFakeCluster(tc.job, pod)
			c, err := NewJob(JobConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
			if err != nil {
				t.Fatal(err)
			}
			f.run(t, c.Run)
			ctx := context.Background()
			eventually(t, string(tc.wantCond)+" with its pod gone", func() bool {
				j, _ := f.client.BatchV1().Jobs("default").Get(ctx, "work", metav1.GetOptions{})
				_, err := f.client.CoreV1().Pods("default").Get(ctx, "work-a", metav1.GetOptions{})
				for _, c := range j.Status.Conditions {
					if c.Type == tc.wantCond && c.Status == corev1.ConditionTrue && c.Reason == tc.wantReason {
						return err != nil && j.Status.Active == 0
					}
				}
				return false
			})
			j, _ := f.client.BatchV1().Jobs("default").Get(ctx, "work", metav1.GetOptions{})
			for _, c := range j.Status.Conditions {
				if tc.wantCond == batchv1.JobSuspended && c.Type == batchv1.JobFailed {
					t.Errorf("a suspended job failed: %+v", c)
				}
			}
		})
	}
}
