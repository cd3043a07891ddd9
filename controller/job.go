package controller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// JobConfig builds the Job controller.
type JobConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Log       *slog.Logger
}

// Job runs a Job's pods to completion like kube-controller-manager's:
// parallelism, completions, backoffLimit, activeDeadlineSeconds, suspend,
// and the Complete/Failed conditions kubectl waits for.
type Job struct {
	cfg    JobConfig
	jobs   batchlisters.JobLister
	pods   corelisters.PodLister
	synced []cache.InformerSynced
	w      *worker
	exp    *expectations
}

// NewJob builds the controller.
func NewJob(cfg JobConfig) (*Job, error) {
	jobInf := cfg.Informers.Batch().V1().Jobs()
	podInf := cfg.Informers.Core().V1().Pods()
	c := &Job{cfg: cfg, jobs: jobInf.Lister(), pods: podInf.Lister(), exp: newExpectations()}
	c.w = newWorker("job", cfg.Log, c.sync)
	if _, err := jobInf.Informer().AddEventHandler(c.w.handler()); err != nil {
		return nil, err
	}
	onPod := func(obj any, added, _ bool) {
		if key, ok := controllerKey(obj, "Job"); ok {
			if added {
				c.exp.observe(key, 1, 0)
			}
			c.w.queue.Add(key)
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { onPod(o, true, false) }, UpdateFunc: func(_, o any) { onPod(o, false, false) }, DeleteFunc: func(o any) { onPod(o, false, true) },
	}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{jobInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *Job) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

func jobFinished(j *batchv1.Job) bool {
	for _, cond := range j.Status.Conditions {
		if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func (c *Job) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	job, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.forget(key)
		return nil
	}
	if err != nil || job.DeletionTimestamp != nil || jobFinished(job) {
		return err
	}
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	var active []*corev1.Pod
	var succeeded, failed int32
	for _, p := range all {
		if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != job.UID {
			continue
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			succeeded++
		case corev1.PodFailed:
			failed++
		default:
			if p.DeletionTimestamp == nil {
				active = append(active, p)
			}
		}
	}
	now := metav1.Now()
	st := job.Status.DeepCopy()
	if st.StartTime == nil && (job.Spec.Suspend == nil || !*job.Spec.Suspend) {
		st.StartTime = &now
	}
	st.Active, st.Succeeded, st.Failed = int32(len(active)), succeeded, failed
	ready := int32(0)
	for _, p := range active {
		if podReady(p) {
			ready++
		}
	}
	st.Ready = &ready
	completions := int32(1)
	if job.Spec.Completions != nil {
		completions = *job.Spec.Completions
	}
	parallelism := int32(1)
	if job.Spec.Parallelism != nil {
		parallelism = *job.Spec.Parallelism
	}
	backoff := int32(6)
	if job.Spec.BackoffLimit != nil {
		backoff = *job.Spec.BackoffLimit
	}
	var finish *batchv1.JobCondition
	switch {
	case succeeded >= completions:
		finish = &batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastProbeTime: now, LastTransitionTime: now}
		st.CompletionTime = &now
	case failed > backoff:
		finish = &batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded",
			Message: "Job has reached the specified backoff limit", LastProbeTime: now, LastTransitionTime: now}
	case job.Spec.ActiveDeadlineSeconds != nil && st.StartTime != nil && time.Since(st.StartTime.Time) > time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second:
		finish = &batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "DeadlineExceeded",
			Message: "Job was active longer than specified deadline", LastProbeTime: now, LastTransitionTime: now}
	}
	if finish != nil {
		for _, p := range active {
			c.cfg.Client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{})
		}
		st.Active = 0
		if finish.Type == batchv1.JobComplete {
			// Like upstream: SuccessCriteriaMet comes first, then Complete.
			st.Conditions = append(st.Conditions, batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastProbeTime: now, LastTransitionTime: now})
			c.cfg.Recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
		} else {
			st.Conditions = append(st.Conditions, batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: finish.Reason, Message: finish.Message, LastProbeTime: now, LastTransitionTime: now})
			c.cfg.Recorder.Event(job, corev1.EventTypeWarning, finish.Reason, finish.Message)
		}
		st.Conditions = append(st.Conditions, *finish)
	} else if (job.Spec.Suspend == nil || !*job.Spec.Suspend) && c.exp.satisfied(key) {
		want := min(parallelism, completions-succeeded) - int32(len(active))
		if want > 0 {
			c.exp.expect(key, int(want), 0)
			for range want {
				if err := c.createPod(ctx, job); err != nil {
					c.exp.observe(key, 1, 0)
					return err
				}
			}
		}
		if job.Spec.ActiveDeadlineSeconds != nil && st.StartTime != nil {
			c.w.queue.AddAfter(key, time.Until(st.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second)))
		}
	}
	next := job.DeepCopy()
	next.Status = *st
	if _, err := c.cfg.Client.BatchV1().Jobs(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update job %s status: %w", key, err)
	}
	return nil
}

func (c *Job) createPod(ctx context.Context, job *batchv1.Job) error {
	return createPodFor(ctx, c.cfg.Client, c.cfg.Recorder, job, job, batchv1.SchemeGroupVersion.WithKind("Job"), &job.Spec.Template)
}
