package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
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
// parallelism, completions (NonIndexed and Indexed), backoffLimit with the
// exponential back-off between failed pods, podFailurePolicy,
// activeDeadlineSeconds, suspend, and the conditions kubectl waits for.
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
	onPod := func(obj any, added, deleted bool) {
		if key, ok := controllerKey(obj, "Job"); ok {
			if added {
				c.exp.observeAdds(key, 1)
			}
			c.w.queue.Add(key)
			return
		}
		// An orphan may be adopted by a Job whose selector matches.
		m, ok := metaOf(obj)
		if !ok || deleted || metav1.GetControllerOfNoCopy(m) != nil {
			return
		}
		jobs, _ := c.jobs.Jobs(m.GetNamespace()).List(labels.Everything())
		for _, j := range jobs {
			if sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(m.GetLabels())) {
				c.w.queue.Add(j.Namespace + "/" + j.Name)
			}
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

// Upstream's pod failure back-off: 10 s, doubling, at most 6 minutes.
const (
	jobBackoffBase = 10 * time.Second
	jobBackoffMax  = 6 * time.Minute
)

// jobPods is a Job's pods sorted by what they mean for it.
type jobPods struct {
	active            []*corev1.Pod
	succeeded, failed int32
	// For Indexed jobs: the indexes that succeeded and that run.
	doneIdx, activeIdx map[int]bool
	lastFailure        time.Time
	failJob            string // a podFailurePolicy FailJob rule matched
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
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil // invalid selectors are rejected by validation
	}
	claimer := &refManager{client: c.cfg.Client, owner: job, gvk: batchv1.SchemeGroupVersion.WithKind("Job"), sel: sel,
		fresh: func(ctx context.Context) (metav1.Object, error) {
			return c.cfg.Client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		}}
	owned, err := claimer.claim(ctx, all)
	if err != nil {
		return fmt.Errorf("job %s: claim pods: %w", key, err)
	}
	jp := classifyJobPods(job, owned)
	now := metav1.Now()
	st := job.Status.DeepCopy()
	suspended := job.Spec.Suspend != nil && *job.Spec.Suspend
	c.suspension(job, st, suspended, now)
	if st.StartTime == nil && !suspended {
		st.StartTime = &now
	}
	st.Active, st.Succeeded, st.Failed = int32(len(jp.active)), jp.succeeded, jp.failed
	ready := int32(0)
	for _, p := range jp.active {
		if podReady(p) {
			ready++
		}
	}
	st.Ready = &ready
	indexed := job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
	if indexed {
		st.CompletedIndexes = indexRanges(jp.doneIdx)
	}
	if st.UncountedTerminatedPods == nil {
		st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	completions := derefInt32Or(job.Spec.Completions, -1)
	parallelism := derefInt32Or(job.Spec.Parallelism, 1)
	backoff := derefInt32Or(job.Spec.BackoffLimit, 6)
	var finish *batchv1.JobCondition
	switch {
	case jp.failJob != "":
		finish = &batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonPodFailurePolicy, Message: jp.failJob}
	case jobComplete(job, jp, completions, indexed):
		finish = &batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}
		st.CompletionTime = &now
	case jp.failed > backoff:
		finish = &batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonBackoffLimitExceeded,
			Message: "Job has reached the specified backoff limit"}
	case !suspended && job.Spec.ActiveDeadlineSeconds != nil && st.StartTime != nil && time.Since(st.StartTime.Time) > time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second:
		finish = &batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonDeadlineExceeded,
			Message: "Job was active longer than specified deadline"}
	}
	switch {
	case finish != nil:
		finish.LastProbeTime, finish.LastTransitionTime = now, now
		if err := c.deletePods(ctx, jp.active); err != nil {
			return err
		}
		st.Active, ready = 0, 0
		if finish.Type == batchv1.JobComplete {
			// Like upstream: SuccessCriteriaMet comes first, then Complete.
			st.Conditions = append(st.Conditions, batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached,
				Message: "Reached expected number of succeeded pods", LastProbeTime: now, LastTransitionTime: now})
			c.cfg.Recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
		} else {
			st.Conditions = append(st.Conditions, batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: finish.Reason, Message: finish.Message, LastProbeTime: now, LastTransitionTime: now})
			c.cfg.Recorder.Event(job, corev1.EventTypeWarning, finish.Reason, finish.Message)
		}
		st.Conditions = append(st.Conditions, *finish)
	case suspended:
		if err := c.deletePods(ctx, jp.active); err != nil {
			return err
		}
		st.Active = 0
	case c.exp.satisfied(key):
		if wait := jobBackoffLeft(jp); wait > 0 {
			c.w.queue.AddAfter(key, wait)
		} else if err := c.createPods(ctx, key, job, jp, completions, parallelism, indexed); err != nil {
			return err
		}
		if job.Spec.ActiveDeadlineSeconds != nil && st.StartTime != nil {
			c.w.queue.AddAfter(key, time.Until(st.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second)))
		}
	}
	if apiequality.Semantic.DeepEqual(&job.Status, st) {
		return nil
	}
	next := job.DeepCopy()
	next.Status = *st
	if _, err := c.cfg.Client.BatchV1().Jobs(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update job %s status: %w", key, err)
	}
	return nil
}

// suspension keeps the Suspended condition: pods go while a Job is
// suspended, and the clock of activeDeadlineSeconds restarts on resume.
func (c *Job) suspension(job *batchv1.Job, st *batchv1.JobStatus, suspended bool, now metav1.Time) {
	var cond *batchv1.JobCondition
	for i := range st.Conditions {
		if st.Conditions[i].Type == batchv1.JobSuspended {
			cond = &st.Conditions[i]
		}
	}
	switch {
	case suspended && (cond == nil || cond.Status != corev1.ConditionTrue):
		if cond == nil {
			st.Conditions = append(st.Conditions, batchv1.JobCondition{Type: batchv1.JobSuspended})
			cond = &st.Conditions[len(st.Conditions)-1]
		}
		*cond = batchv1.JobCondition{Type: batchv1.JobSuspended, Status: corev1.ConditionTrue, Reason: "JobSuspended", Message: "Job suspended", LastProbeTime: now, LastTransitionTime: now}
		c.cfg.Recorder.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
	case !suspended && cond != nil && cond.Status == corev1.ConditionTrue:
		*cond = batchv1.JobCondition{Type: batchv1.JobSuspended, Status: corev1.ConditionFalse, Reason: "JobResumed", Message: "Job resumed", LastProbeTime: now, LastTransitionTime: now}
		st.StartTime = &now
		c.cfg.Recorder.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
	}
}

func jobComplete(job *batchv1.Job, jp jobPods, completions int32, indexed bool) bool {
	switch {
	case indexed:
		return completions >= 0 && int32(len(jp.doneIdx)) >= completions
	case completions < 0:
		// Without completions: done when one pod succeeded and none runs.
		return jp.succeeded > 0 && len(jp.active) == 0
	}
	return jp.succeeded >= completions
}

// classifyJobPods sorts the Job's pods and applies its podFailurePolicy
// to the failed ones: Ignore does not count, FailJob fails the Job.
func classifyJobPods(job *batchv1.Job, all []*corev1.Pod) jobPods {
	jp := jobPods{doneIdx: map[int]bool{}, activeIdx: map[int]bool{}}
	for _, p := range all {
		if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != job.UID {
			continue
		}
		idx, hasIdx := completionIndex(p)
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			jp.succeeded++
			if hasIdx {
				jp.doneIdx[idx] = true
			}
		case corev1.PodFailed:
			action, msg := failurePolicyAction(job, p)
			switch action {
			case batchv1.PodFailurePolicyActionIgnore:
				continue
			case batchv1.PodFailurePolicyActionFailJob:
				if jp.failJob == "" {
					jp.failJob = msg
				}
			}
			jp.failed++
			if t := podFinished(p); t.After(jp.lastFailure) {
				jp.lastFailure = t
			}
		default:
			if p.DeletionTimestamp == nil {
				jp.active = append(jp.active, p)
				if hasIdx {
					jp.activeIdx[idx] = true
				}
			}
		}
	}
	return jp
}

// failurePolicyAction returns the action of the first podFailurePolicy
// rule the failed pod matches, with upstream's message for FailJob.
func failurePolicyAction(job *batchv1.Job, p *corev1.Pod) (batchv1.PodFailurePolicyAction, string) {
	pol := job.Spec.PodFailurePolicy
	if pol == nil {
		return batchv1.PodFailurePolicyActionCount, ""
	}
	for i, r := range pol.Rules {
		if r.OnExitCodes != nil {
			for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
				t := cs.State.Terminated
				if t == nil || t.ExitCode == 0 || (r.OnExitCodes.ContainerName != nil && *r.OnExitCodes.ContainerName != cs.Name) {
					continue
				}
				in := false
				for _, v := range r.OnExitCodes.Values {
					in = in || v == t.ExitCode
				}
				if in == (r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) {
					return r.Action, fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
						cs.Name, p.Namespace, p.Name, t.ExitCode, r.Action, i)
				}
			}
		}
		for _, pc := range r.OnPodConditions {
			for _, c := range p.Status.Conditions {
				if c.Type == pc.Type && c.Status == pc.Status {
					return r.Action, fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d", p.Namespace, p.Name, c.Type, r.Action, i)
				}
			}
		}
	}
	return batchv1.PodFailurePolicyActionCount, ""
}

// podFinished is when the pod's last container ended.
func podFinished(p *corev1.Pod) time.Time {
	var t time.Time
	for _, cs := range p.Status.ContainerStatuses {
		if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
			t = term.FinishedAt.Time
		}
	}
	if t.IsZero() {
		t = p.CreationTimestamp.Time
	}
	return t
}

// jobBackoffLeft is how long the Job still waits before it replaces a
// failed pod.
func jobBackoffLeft(jp jobPods) time.Duration {
	if jp.failed == 0 {
		return 0
	}
	delay := jobBackoffBase
	for i := int32(1); i < jp.failed && delay < jobBackoffMax; i++ {
		delay *= 2
	}
	return time.Until(jp.lastFailure.Add(min(delay, jobBackoffMax)))
}

func (c *Job) createPods(ctx context.Context, key string, job *batchv1.Job, jp jobPods, completions, parallelism int32, indexed bool) error {
	var indexes []int
	switch {
	case indexed:
		for i := 0; i < int(completions) && int32(len(indexes)+len(jp.active)) < parallelism; i++ {
			if !jp.doneIdx[i] && !jp.activeIdx[i] {
				indexes = append(indexes, i)
			}
		}
	case completions < 0:
		if jp.succeeded == 0 {
			for range parallelism - int32(len(jp.active)) {
				indexes = append(indexes, -1)
			}
		}
	default:
		for range min(parallelism, completions-jp.succeeded) - int32(len(jp.active)) {
			indexes = append(indexes, -1)
		}
	}
	if len(indexes) == 0 {
		return nil
	}
	c.exp.expectAdds(key, len(indexes))
	gvk := batchv1.SchemeGroupVersion.WithKind("Job")
	for _, idx := range indexes {
		var err error
		if idx < 0 {
			err = createPodFor(ctx, c.cfg.Client, c.cfg.Recorder, job, job, gvk, &job.Spec.Template)
		} else {
			err = createNamedPodFor(ctx, c.cfg.Client, c.cfg.Recorder, job, job, gvk, indexedTemplate(job, idx), fmt.Sprintf("%s-%d-", job.Name, idx))
		}
		if err != nil {
			c.exp.observeAdds(key, 1)
			return err
		}
	}
	return nil
}

// indexedTemplate is the pod template for one completion index, as the
// upstream controller writes it: the index as annotation and label, the
// hostname JOB-INDEX, and JOB_COMPLETION_INDEX in every container.
func indexedTemplate(job *batchv1.Job, idx int) *corev1.PodTemplateSpec {
	t := job.Spec.Template.DeepCopy()
	v := strconv.Itoa(idx)
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	t.Annotations[batchv1.JobCompletionIndexAnnotation] = v
	labels := map[string]string{}
	for k, val := range t.Labels {
		labels[k] = val
	}
	labels[batchv1.JobCompletionIndexAnnotation] = v
	t.Labels = labels
	t.Spec.Hostname = fmt.Sprintf("%s-%d", job.Name, idx)
	env := corev1.EnvVar{Name: "JOB_COMPLETION_INDEX", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
		APIVersion: "v1", FieldPath: fmt.Sprintf("metadata.annotations['%s']", batchv1.JobCompletionIndexAnnotation)}}}
	for i := range t.Spec.InitContainers {
		t.Spec.InitContainers[i].Env = append(t.Spec.InitContainers[i].Env, env)
	}
	for i := range t.Spec.Containers {
		t.Spec.Containers[i].Env = append(t.Spec.Containers[i].Env, env)
	}
	return t
}

func completionIndex(p *corev1.Pod) (int, bool) {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	return i, err == nil && i >= 0
}

// indexRanges writes a set of indexes as upstream's completedIndexes:
// "0-2,4,6-7".
func indexRanges(set map[int]bool) string {
	idx := make([]int, 0, len(set))
	for i := range set {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var parts []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(idx[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", idx[i], idx[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func (c *Job) deletePods(ctx context.Context, pods []*corev1.Pod) error {
	for _, p := range pods {
		err := c.cfg.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s: %w", p.Name, err)
		}
	}
	return nil
}

func derefInt32Or(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
