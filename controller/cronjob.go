package controller

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// CronJobConfig builds the CronJob controller.
type CronJobConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Log       *slog.Logger
	Now       func() time.Time // nil: time.Now
}

// CronJob creates a CronJob's Jobs on schedule (time zones,
// concurrencyPolicy, startingDeadlineSeconds, suspend) and keeps its job
// history within the limits. It sleeps until the next schedule time: no
// polling.
type CronJob struct {
	cfg    CronJobConfig
	cjs    batchlisters.CronJobLister
	jobs   batchlisters.JobLister
	synced []cache.InformerSynced
	w      *worker
}

// NewCronJob builds the controller.
func NewCronJob(cfg CronJobConfig) (*CronJob, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cjInf := cfg.Informers.Batch().V1().CronJobs()
	jobInf := cfg.Informers.Batch().V1().Jobs()
	c := &CronJob{cfg: cfg, cjs: cjInf.Lister(), jobs: jobInf.Lister()}
	c.w = newWorker("cronjob", cfg.Log, c.sync)
	if _, err := cjInf.Informer().AddEventHandler(c.w.handler()); err != nil {
		return nil, err
	}
	onJob := func(obj any) {
		if key, ok := controllerKey(obj, "CronJob"); ok {
			c.w.queue.Add(key)
		}
	}
	if _, err := jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onJob, UpdateFunc: func(_, o any) { onJob(o) }, DeleteFunc: onJob}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{cjInf.Informer().HasSynced, jobInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *CronJob) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

func (c *CronJob) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	cj, err := c.cjs.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || cj.DeletionTimestamp != nil {
		return err
	}
	sched, err := parseCron(cj.Spec.Schedule, cj.Spec.TimeZone)
	if err != nil {
		c.cfg.Recorder.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "unparseable schedule %q: %v", cj.Spec.Schedule, err)
		return nil
	}
	all, err := c.jobs.Jobs(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	var owned, active []*batchv1.Job
	for _, j := range all {
		if ref := metav1.GetControllerOf(j); ref != nil && ref.UID == cj.UID {
			owned = append(owned, j)
			if !jobFinished(j) {
				active = append(active, j)
			}
		}
	}
	now := c.cfg.Now()
	st := cj.Status.DeepCopy()
	st.Active = nil
	for _, j := range active {
		st.Active = append(st.Active, corev1.ObjectReference{Kind: "Job", Namespace: j.Namespace, Name: j.Name, UID: j.UID, APIVersion: "batch/v1", ResourceVersion: j.ResourceVersion})
	}
	for _, j := range owned {
		if jobFinished(j) && j.Status.CompletionTime != nil && (st.LastSuccessfulTime == nil || j.Status.CompletionTime.After(st.LastSuccessfulTime.Time)) {
			st.LastSuccessfulTime = j.Status.CompletionTime
		}
		if cond := finishedCondition(j); cond != "" && inActiveList(cj, j) {
			c.cfg.Recorder.Eventf(cj, corev1.EventTypeNormal, "SawCompletedJob", "Saw completed job: %s, condition: %v", j.Name, cond)
		}
	}
	if err := c.schedule(ctx, cj, sched, active, st, now); err != nil {
		return err
	}
	if err := c.prune(ctx, cj, owned); err != nil {
		return err
	}
	if !apiequality.Semantic.DeepEqual(&cj.Status, st) {
		next := cj.DeepCopy()
		next.Status = *st
		if _, err := c.cfg.Client.BatchV1().CronJobs(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("update cronjob %s status: %w", key, err)
		}
	}
	if n := sched.next(now); !n.IsZero() {
		c.w.queue.AddAfter(key, n.Sub(now)+100*time.Millisecond)
	}
	return nil
}

// schedule is upstream's syncCronJob from the most recent unmet schedule
// time on: nothing while suspended; a time older than
// startingDeadlineSeconds is missed (MissSchedule); Forbid skips while a
// job runs without marking the time as scheduled (so it starts when the
// running job ends, if still within the deadline: JobAlreadyActive);
// Replace deletes the running jobs first. Only a job it made (or that is
// controlled by the CronJob already, AlreadyExists) sets lastScheduleTime.
func (c *CronJob) schedule(ctx context.Context, cj *batchv1.CronJob, sched *cronSchedule, active []*batchv1.Job, st *batchv1.CronJobStatus, now time.Time) error {
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return nil
	}
	from := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		from = cj.Status.LastScheduleTime.Time
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		// Times before the deadline window are not looked at at all.
		if earliest := now.Add(-time.Duration(*d) * time.Second); earliest.After(from) {
			from = earliest
		}
	}
	var due time.Time
	missed := 0
	for t := sched.next(from); !t.IsZero() && !t.After(now); t = sched.next(t) {
		due = t
		missed++
	}
	if due.IsZero() {
		return nil
	}
	if missed > 100 {
		c.cfg.Recorder.Eventf(cj, corev1.EventTypeWarning, "TooManyMissedTimes", "too many missed start times: %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", missed)
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && due.Add(time.Duration(*d)*time.Second).Before(now) {
		c.cfg.Recorder.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", due.UTC().Format(time.RFC1123Z))
		return nil
	}
	name := jobNameFor(cj, due)
	for _, j := range active {
		if j.Name == name {
			return nil // this time's job runs already
		}
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(active) > 0 {
			c.cfg.Recorder.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return nil
		}
	case batchv1.ReplaceConcurrent:
		bg := metav1.DeletePropagationBackground
		for _, j := range active {
			if err := c.cfg.Client.BatchV1().Jobs(cj.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
				c.cfg.Recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
				return fmt.Errorf("replace job %s: %w", j.Name, err)
			}
			c.cfg.Recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", j.Name)
		}
		st.Active = nil
	}
	job, err := c.createJob(ctx, cj, due)
	if apierrors.IsAlreadyExists(err) {
		// Someone else's job under this name is left alone, as upstream.
		if job, err = c.cfg.Client.BatchV1().Jobs(cj.Namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("get job %s: %w", name, err)
		}
		if !metav1.IsControlledBy(job, cj) {
			return nil
		}
	} else if err != nil {
		c.cfg.Recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return fmt.Errorf("create job %s: %w", name, err)
	}
	if !jobFinished(job) && !slices.ContainsFunc(st.Active, func(r corev1.ObjectReference) bool { return r.UID == job.UID }) {
		st.Active = append(st.Active, corev1.ObjectReference{Kind: "Job", Namespace: job.Namespace, Name: job.Name, UID: job.UID, APIVersion: "batch/v1", ResourceVersion: job.ResourceVersion})
	}
	t := metav1.NewTime(due)
	st.LastScheduleTime = &t
	return nil
}

// jobNameFor is upstream's getJobName: <cronjob>-<minutes since the epoch>.
func jobNameFor(cj *batchv1.CronJob, at time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, at.Unix()/60)
}

func inActiveList(cj *batchv1.CronJob, j *batchv1.Job) bool {
	return slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == j.UID })
}

// finishedCondition is the Complete or Failed condition type of a
// finished job, "" while it runs.
func finishedCondition(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

// createJob makes the Job of one schedule time, named like upstream
// (<cronjob>-<minutes since the epoch>).
func (c *CronJob) createJob(ctx context.Context, cj *batchv1.CronJob, at time.Time) (*batchv1.Job, error) {
	tmpl := cj.Spec.JobTemplate
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            jobNameFor(cj, at),
			Namespace:       cj.Namespace,
			Labels:          tmpl.Labels,
			Annotations:     map[string]string{"batch.kubernetes.io/cronjob-scheduled-timestamp": at.UTC().Format(time.RFC3339)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, batchv1.SchemeGroupVersion.WithKind("CronJob"))},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	for k, v := range tmpl.Annotations {
		job.Annotations[k] = v
	}
	created, err := c.cfg.Client.BatchV1().Jobs(cj.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	c.cfg.Recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %s", created.Name)
	return created, nil
}

// prune keeps at most the history limits of finished jobs.
func (c *CronJob) prune(ctx context.Context, cj *batchv1.CronJob, owned []*batchv1.Job) error {
	limit := func(p *int32, def int32) int {
		if p == nil {
			return int(def)
		}
		return int(*p)
	}
	var ok, failed []*batchv1.Job
	for _, j := range owned {
		for _, cond := range j.Status.Conditions {
			if cond.Status != corev1.ConditionTrue {
				continue
			}
			if cond.Type == batchv1.JobComplete {
				ok = append(ok, j)
			} else if cond.Type == batchv1.JobFailed {
				failed = append(failed, j)
			}
		}
	}
	bg := metav1.DeletePropagationBackground
	for _, set := range []struct {
		jobs []*batchv1.Job
		keep int
	}{{ok, limit(cj.Spec.SuccessfulJobsHistoryLimit, 3)}, {failed, limit(cj.Spec.FailedJobsHistoryLimit, 1)}} {
		sort.Slice(set.jobs, func(i, j int) bool { return set.jobs[i].CreationTimestamp.Before(&set.jobs[j].CreationTimestamp) })
		for i := 0; i < len(set.jobs)-set.keep; i++ {
			if err := c.cfg.Client.BatchV1().Jobs(cj.Namespace).Delete(ctx, set.jobs[i].Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}
