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
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
)

// TTLAfterFinishedConfig builds the TTL-after-finished controller.
type TTLAfterFinishedConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Log       *slog.Logger
}

// TTLAfterFinished deletes finished Jobs whose ttlSecondsAfterFinished
// has passed (counted from their Complete or Failed condition), with
// their pods (foreground), like kube-controller-manager's ttl-after-finished
// controller. Each Job is looked at again exactly when it expires.
type TTLAfterFinished struct {
	cfg    TTLAfterFinishedConfig
	jobs   batchlisters.JobLister
	synced []cache.InformerSynced
	w      *worker
}

// NewTTLAfterFinished builds the controller.
func NewTTLAfterFinished(cfg TTLAfterFinishedConfig) (*TTLAfterFinished, error) {
	inf := cfg.Informers.Batch().V1().Jobs()
	c := &TTLAfterFinished{cfg: cfg, jobs: inf.Lister()}
	c.w = newWorker("ttlafterfinished", cfg.Log, c.sync)
	onJob := func(obj any) {
		if j, ok := obj.(*batchv1.Job); ok && j.Spec.TTLSecondsAfterFinished != nil && j.DeletionTimestamp == nil && jobFinished(j) {
			c.w.enqueue(j)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onJob, UpdateFunc: func(_, o any) { onJob(o) }}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{inf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *TTLAfterFinished) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

// jobFinishTime is when the Job's Complete or Failed condition became true.
func jobFinishTime(j *batchv1.Job) (time.Time, bool) {
	for _, cond := range j.Status.Conditions {
		if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
			if cond.LastTransitionTime.IsZero() {
				return time.Time{}, false
			}
			return cond.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

// ttlLeft is how long the finished job still has; ok is false when it has
// no TTL or has not finished.
func ttlLeft(j *batchv1.Job, now time.Time) (time.Duration, bool) {
	if j.Spec.TTLSecondsAfterFinished == nil || j.DeletionTimestamp != nil {
		return 0, false
	}
	finished, ok := jobFinishTime(j)
	if !ok {
		return 0, false
	}
	return finished.Add(time.Duration(*j.Spec.TTLSecondsAfterFinished) * time.Second).Sub(now), true
}

func (c *TTLAfterFinished) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	job, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	left, ok := ttlLeft(job, time.Now())
	if !ok {
		return nil
	}
	if left > 0 {
		c.w.queue.AddAfter(key, left)
		return nil
	}
	// The cache may be stale (the TTL was just raised): decide on a fresh copy.
	fresh, err := c.cfg.Client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if left, ok := ttlLeft(fresh, time.Now()); !ok || left > 0 {
		if ok {
			c.w.queue.AddAfter(key, left)
		}
		return nil
	}
	policy := metav1.DeletePropagationForeground
	err = c.cfg.Client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &fresh.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete expired job %s: %w", key, err)
	}
	return nil
}
