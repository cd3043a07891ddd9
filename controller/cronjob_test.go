package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// One sync of the CronJob controller at a fixed time, per policy: the
// jobs there are afterwards, lastScheduleTime and the events, as
// upstream's syncCronJob.
func TestCronJobSync(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 30, 0, time.UTC)
	due := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	dueJob := jobNameFor(&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "tick"}}, due)
	cronJob := func(mod func(*batchv1.CronJob)) *batchv1.CronJob {
		cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tick", UID: "uid-tick",
			CreationTimestamp: metav1.NewTime(now.Add(-80 * time.Second))},
			Spec: batchv1.CronJobSpec{Schedule: "* * * * *", ConcurrencyPolicy: batchv1.AllowConcurrent,
				JobTemplate: batchv1.JobTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "tick"}},
					Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
						Containers: []corev1.Container{{Name: "c", Image: "img"}}}}}}}}
		if mod != nil {
			mod(cj)
		}
		return cj
	}
	job := func(name string, owner *batchv1.CronJob, finished batchv1.JobConditionType, created time.Time) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name),
			Labels: map[string]string{"app": "tick"}, CreationTimestamp: metav1.NewTime(created)}}
		if owner != nil {
			j.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, batchv1.SchemeGroupVersion.WithKind("CronJob"))}
		}
		if finished != "" {
			ct := metav1.NewTime(created.Add(time.Second))
			j.Status.CompletionTime = &ct
			j.Status.Conditions = []batchv1.JobCondition{{Type: finished, Status: corev1.ConditionTrue}}
		}
		return j
	}
	earlier := now.Add(-5 * time.Minute)
	cases := []struct {
		name      string
		cj        *batchv1.CronJob
		jobs      func(cj *batchv1.CronJob) []*batchv1.Job
		wantJobs  []string
		scheduled bool   // lastScheduleTime is the due time
		wantEvent string // a substring of one event
	}{
		{name: "allow creates the due job", cj: cronJob(nil), wantJobs: []string{dueJob}, scheduled: true, wantEvent: "SuccessfulCreate Created job " + dueJob},
		{name: "allow runs next to an active job", cj: cronJob(nil),
			jobs:     func(cj *batchv1.CronJob) []*batchv1.Job { return []*batchv1.Job{job("tick-old", cj, "", earlier)} },
			wantJobs: []string{"tick-old", dueJob}, scheduled: true},
		{name: "forbid skips without marking the time", cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent }),
			jobs:     func(cj *batchv1.CronJob) []*batchv1.Job { return []*batchv1.Job{job("tick-old", cj, "", earlier)} },
			wantJobs: []string{"tick-old"}, wantEvent: "JobAlreadyActive"},
		{name: "forbid counts no orphan: CronJobs do not adopt", cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent }),
			jobs:     func(*batchv1.CronJob) []*batchv1.Job { return []*batchv1.Job{job("tick-orphan", nil, "", earlier)} },
			wantJobs: []string{"tick-orphan", dueJob}, scheduled: true},
		{name: "replace deletes the running job", cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent }),
			jobs:     func(cj *batchv1.CronJob) []*batchv1.Job { return []*batchv1.Job{job("tick-old", cj, "", earlier)} },
			wantJobs: []string{dueJob}, scheduled: true, wantEvent: "SuccessfulDelete Deleted job tick-old"},
		{name: "past the starting deadline", cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptrTo(int64(10)) })},
		{name: "within the starting deadline", cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptrTo(int64(60)) }),
			wantJobs: []string{dueJob}, scheduled: true},
		{name: "suspended", cj: cronJob(func(cj *batchv1.CronJob) { cj.Spec.Suspend = ptrTo(true) })},
		{name: "someone else's job under the name", cj: cronJob(nil),
			jobs:     func(*batchv1.CronJob) []*batchv1.Job { return []*batchv1.Job{job(dueJob, nil, "", earlier)} },
			wantJobs: []string{dueJob}},
		{name: "history limits keep the newest", cj: cronJob(func(cj *batchv1.CronJob) {
			cj.Spec.Suspend = ptrTo(true)
			cj.Spec.SuccessfulJobsHistoryLimit, cj.Spec.FailedJobsHistoryLimit = ptrTo(int32(1)), ptrTo(int32(0))
		}),
			jobs: func(cj *batchv1.CronJob) []*batchv1.Job {
				return []*batchv1.Job{job("tick-1", cj, batchv1.JobComplete, earlier), job("tick-2", cj, batchv1.JobComplete, earlier.Add(time.Minute)),
					job("tick-3", cj, batchv1.JobFailed, earlier.Add(2*time.Minute))}
			},
			wantJobs: []string{"tick-2"}},
		{name: "a finished active job is seen", cj: cronJob(func(cj *batchv1.CronJob) {
			cj.Spec.Suspend = ptrTo(true)
			cj.Status.Active = []corev1.ObjectReference{{Kind: "Job", Namespace: "default", Name: "tick-1", UID: "uid-tick-1"}}
		}),
			jobs: func(cj *batchv1.CronJob) []*batchv1.Job {
				return []*batchv1.Job{job("tick-1", cj, batchv1.JobComplete, earlier)}
			},
			wantJobs: []string{"tick-1"}, wantEvent: "SawCompletedJob Saw completed job: tick-1, condition: Complete"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{tc.cj}
			if tc.jobs != nil {
				for _, j := range tc.jobs(tc.cj) {
					objs = append(objs, j)
				}
			}
			f := newFakeCluster(objs...)
			c, err := NewCronJob(CronJobConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			defer c.w.queue.ShutDown()
			ctx, cancel := context.WithCancel(context.Background())
			f.informers.Start(ctx.Done())
			defer func() { cancel(); f.informers.Shutdown() }()
			if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
				t.Fatal("caches did not sync")
			}
			if err := c.sync(ctx, "default/tick"); err != nil {
				t.Fatal(err)
			}
			list, _ := f.client.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
			var got []string
			for _, j := range list.Items {
				got = append(got, j.Name)
			}
			slices.Sort(got)
			want := slices.Clone(tc.wantJobs)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("jobs %v, want %v", got, want)
			}
			cj, _ := f.client.BatchV1().CronJobs("default").Get(ctx, "tick", metav1.GetOptions{})
			if got := cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Time.Equal(due); got != tc.scheduled {
				t.Errorf("lastScheduleTime %v, want the due time: %v", cj.Status.LastScheduleTime, tc.scheduled)
			}
			if tc.scheduled && !slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.Name == dueJob }) {
				t.Errorf("active %v lacks %s", cj.Status.Active, dueJob)
			}
			events := f.events()
			if tc.wantEvent != "" && !slices.ContainsFunc(events, func(e string) bool { return strings.Contains(e, tc.wantEvent) }) {
				t.Errorf("events %q lack %q", events, tc.wantEvent)
			}
			for _, j := range list.Items {
				if j.Name == "tick-orphan" && len(j.OwnerReferences) != 0 {
					t.Errorf("the orphan was adopted: %+v", j.OwnerReferences)
				}
			}
		})
	}
}
