package registry

import (
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func intOrInt(n int) intstr.IntOrString { return intstr.FromInt32(int32(n)) }

func corev1PodSpecDoc(f string) string { return corev1.PodSpec{}.SwaggerDoc()[f] }

func defaultJobSpec(s *batchv1.JobSpec) {
	if s.Completions == nil && s.Parallelism == nil {
		s.Completions = int32Ptr(1)
	}
	if s.Parallelism == nil {
		s.Parallelism = int32Ptr(1)
	}
	if s.BackoffLimit == nil {
		s.BackoffLimit = int32Ptr(6)
	}
	if s.CompletionMode == nil {
		m := batchv1.NonIndexedCompletion
		s.CompletionMode = &m
	}
	if s.Suspend == nil {
		s.Suspend = boolPtr(false)
	}
	if s.PodReplacementPolicy == nil {
		p := batchv1.TerminatingOrFailed
		s.PodReplacementPolicy = &p
	}
	defaultTemplate(&s.Template)
}

func jobBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) { defaultJobSpec(&obj.(*batchv1.Job).Spec) }
	r.PrepareForCreate = func(obj runtime.Object) {
		j := obj.(*batchv1.Job)
		j.Status = batchv1.JobStatus{}
		if j.Spec.ManualSelector == nil || !*j.Spec.ManualSelector {
			// Like kube-apiserver: select the job's own pods by its uid.
			uid := string(j.UID)
			if j.Spec.Template.Labels == nil {
				j.Spec.Template.Labels = map[string]string{}
			}
			for _, k := range []string{batchv1.ControllerUidLabel, "controller-uid"} {
				j.Spec.Template.Labels[k] = uid
			}
			for _, k := range []string{batchv1.JobNameLabel, "job-name"} {
				j.Spec.Template.Labels[k] = j.Name
			}
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: uid}}
		}
	}
	r.Validate = func(obj runtime.Object) field.ErrorList {
		j := obj.(*batchv1.Job)
		errs := validatePodSpec(&j.Spec.Template.Spec, field.NewPath("spec", "template", "spec"))
		if p := j.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyOnFailure && p != corev1.RestartPolicyNever {
			errs = append(errs, field.NotSupported(field.NewPath("spec", "template", "spec", "restartPolicy"), p, []string{"OnFailure", "Never"}))
		}
		return errs
	}
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		return validateJobSpecUpdate(obj.(*batchv1.Job), old.(*batchv1.Job))
	}
	r.FieldSet = func(obj runtime.Object) fields.Set {
		return fields.Set{"status.successful": fmt.Sprint(obj.(*batchv1.Job).Status.Succeeded)}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Status", "string", "Status of the job."),
			col("Completions", "string", batchv1.JobStatus{}.SwaggerDoc()["succeeded"]),
			col("Duration", "string", "Time required to complete the job."),
			ageCol,
			wide(col("Containers", "string", "Names of each container in the template.")),
			wide(col("Images", "string", "Images referenced by each container in the template.")),
			wide(col("Selector", "string", batchv1.JobSpec{}.SwaggerDoc()["selector"])),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			j := obj.(*batchv1.Job)
			completions := fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, derefInt32(j.Spec.Parallelism))
			if j.Spec.Completions != nil {
				completions = fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
			}
			dur := ""
			switch {
			case j.Status.StartTime == nil:
			case j.Status.CompletionTime == nil:
				dur = duration.HumanDuration(time.Since(j.Status.StartTime.Time))
			default:
				dur = duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
			}
			names, images := containersAndImages(j.Spec.Template.Spec.Containers)
			return []interface{}{j.Name, jobStatus(j), completions, dur, age(j.CreationTimestamp), names, images, labelSelectorString(j.Spec.Selector)}, nil
		},
	}
}

func jobStatus(j *batchv1.Job) string {
	has := func(t batchv1.JobConditionType) bool {
		for _, c := range j.Status.Conditions {
			if c.Type == t && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}
	// Finished states first, like upstream's printJob.
	for _, s := range []struct {
		t    batchv1.JobConditionType
		text string
	}{{batchv1.JobComplete, "Complete"}, {batchv1.JobFailed, "Failed"}} {
		if has(s.t) {
			return s.text
		}
	}
	if j.DeletionTimestamp != nil {
		return "Terminating"
	}
	for _, s := range []struct {
		t    batchv1.JobConditionType
		text string
	}{{batchv1.JobSuspended, "Suspended"}, {batchv1.JobFailureTarget, "FailureTarget"}, {batchv1.JobSuccessCriteriaMet, "SuccessCriteriaMet"}} {
		if has(s.t) {
			return s.text
		}
	}
	return "Running"
}

func derefInt32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func cronJobBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		c := obj.(*batchv1.CronJob)
		if c.Spec.ConcurrencyPolicy == "" {
			c.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
		}
		if c.Spec.Suspend == nil {
			c.Spec.Suspend = boolPtr(false)
		}
		if c.Spec.SuccessfulJobsHistoryLimit == nil {
			c.Spec.SuccessfulJobsHistoryLimit = int32Ptr(3)
		}
		if c.Spec.FailedJobsHistoryLimit == nil {
			c.Spec.FailedJobsHistoryLimit = int32Ptr(1)
		}
		defaultTemplate(&c.Spec.JobTemplate.Spec.Template)
	}
	r.PrepareForCreate = func(obj runtime.Object) { obj.(*batchv1.CronJob).Status = batchv1.CronJobStatus{} }
	r.Validate = func(obj runtime.Object) field.ErrorList {
		c := obj.(*batchv1.CronJob)
		var errs field.ErrorList
		if len(strings.Fields(strings.TrimPrefix(c.Spec.Schedule, "TZ="))) < 5 && !strings.HasPrefix(c.Spec.Schedule, "@") {
			errs = append(errs, field.Invalid(field.NewPath("spec", "schedule"), c.Spec.Schedule, "unparseable schedule"))
		}
		return append(errs, validatePodSpec(&c.Spec.JobTemplate.Spec.Template.Spec, field.NewPath("spec", "jobTemplate", "spec", "template", "spec"))...)
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Schedule", "string", batchv1.CronJobSpec{}.SwaggerDoc()["schedule"]),
			col("Timezone", "string", batchv1.CronJobSpec{}.SwaggerDoc()["timeZone"]),
			col("Suspend", "boolean", batchv1.CronJobSpec{}.SwaggerDoc()["suspend"]),
			col("Active", "integer", batchv1.CronJobStatus{}.SwaggerDoc()["active"]),
			col("Last Schedule", "string", batchv1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"]),
			ageCol,
			wide(col("Containers", "string", "Names of each container in the template.")),
			wide(col("Images", "string", "Images referenced by each container in the template.")),
			wide(col("Selector", "string", batchv1.JobSpec{}.SwaggerDoc()["selector"])),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			c := obj.(*batchv1.CronJob)
			last := "<none>"
			if c.Status.LastScheduleTime != nil {
				last = age(*c.Status.LastScheduleTime)
			}
			tz := "<none>"
			if c.Spec.TimeZone != nil {
				tz = *c.Spec.TimeZone
			}
			suspend := c.Spec.Suspend != nil && *c.Spec.Suspend
			names, images := containersAndImages(c.Spec.JobTemplate.Spec.Template.Spec.Containers)
			return []interface{}{c.Name, c.Spec.Schedule, tz, suspend, int64(len(c.Status.Active)), last, age(c.CreationTimestamp),
				names, images, labelSelectorString(c.Spec.JobTemplate.Spec.Selector)}, nil
		},
	}
}

func replicationControllerBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		rc := obj.(*corev1.ReplicationController)
		if rc.Spec.Replicas == nil {
			rc.Spec.Replicas = int32Ptr(1)
		}
		if rc.Spec.Template != nil {
			if len(rc.Spec.Selector) == 0 {
				rc.Spec.Selector = rc.Spec.Template.Labels
			}
			defaultTemplate(rc.Spec.Template)
		}
	}
	r.PrepareForCreate = func(obj runtime.Object) {
		obj.(*corev1.ReplicationController).Status = corev1.ReplicationControllerStatus{}
	}
	r.FieldSet = func(obj runtime.Object) fields.Set {
		return fields.Set{"status.replicas": fmt.Sprint(obj.(*corev1.ReplicationController).Status.Replicas)}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Desired", "integer", corev1.ReplicationControllerSpec{}.SwaggerDoc()["replicas"]),
			col("Current", "integer", corev1.ReplicationControllerStatus{}.SwaggerDoc()["replicas"]),
			col("Ready", "integer", corev1.ReplicationControllerStatus{}.SwaggerDoc()["readyReplicas"]),
			ageCol,
			wide(col("Containers", "string", "Names of each container in the template.")),
			wide(col("Images", "string", "Images referenced by each container in the template.")),
			wide(col("Selector", "string", corev1.ReplicationControllerSpec{}.SwaggerDoc()["selector"])),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			rc := obj.(*corev1.ReplicationController)
			var names, images string
			if rc.Spec.Template != nil {
				names, images = containersAndImages(rc.Spec.Template.Spec.Containers)
			}
			return []interface{}{rc.Name, int64(derefInt32(rc.Spec.Replicas)), int64(rc.Status.Replicas), int64(rc.Status.ReadyReplicas), age(rc.CreationTimestamp),
				names, images, mapSelectorString(rc.Spec.Selector)}, nil
		},
	}
}

// validateJobSpecUpdate is upstream's ValidateJobSpecUpdate: the selector,
// completionMode, podFailurePolicy, backoffLimitPerIndex, managedBy and
// successPolicy are immutable; completions too, except that an Indexed
// Job may change it in tandem with parallelism (elastic Indexed Jobs);
// the template is immutable except, for a suspended Job that never
// started, its node affinity, nodeSelector, tolerations, scheduling gates,
// labels and annotations.
func validateJobSpecUpdate(cur, old *batchv1.Job) field.ErrorList {
	spec, oldSpec := cur.Spec, old.Spec
	p := field.NewPath("spec")
	errs := validateJobCompletionsUpdate(spec, oldSpec, p.Child("completions"))
	errs = append(errs, apivalidation.ValidateImmutableField(spec.Selector, oldSpec.Selector, p.Child("selector"))...)
	errs = append(errs, validateJobTemplateUpdate(cur, old, p)...)
	errs = append(errs, apivalidation.ValidateImmutableField(spec.CompletionMode, oldSpec.CompletionMode, p.Child("completionMode"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(spec.PodFailurePolicy, oldSpec.PodFailurePolicy, p.Child("podFailurePolicy"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(spec.BackoffLimitPerIndex, oldSpec.BackoffLimitPerIndex, p.Child("backoffLimitPerIndex"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(spec.ManagedBy, oldSpec.ManagedBy, p.Child("managedBy"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(spec.SuccessPolicy, oldSpec.SuccessPolicy, p.Child("successPolicy"))...)
	return errs
}

func validateJobCompletionsUpdate(spec, oldSpec batchv1.JobSpec, p *field.Path) field.ErrorList {
	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	if !indexed {
		return apivalidation.ValidateImmutableField(spec.Completions, oldSpec.Completions, p)
	}
	if apiequality.Semantic.DeepEqual(spec.Completions, oldSpec.Completions) || spec.Completions == nil {
		return nil
	}
	if spec.Parallelism == nil || *spec.Completions != *spec.Parallelism {
		return field.ErrorList{field.Invalid(p, spec.Completions, "can only be modified in tandem with spec.parallelism")}
	}
	return nil
}

func validateJobTemplateUpdate(cur, old *batchv1.Job, p *field.Path) field.ErrorList {
	tmpl := &cur.Spec.Template
	oldTmpl := &old.Spec.Template
	suspended := old.Spec.Suspend != nil && *old.Spec.Suspend
	if suspended && old.Status.StartTime == nil {
		oldTmpl = oldTmpl.DeepCopy()
		switch {
		case tmpl.Spec.Affinity == nil && oldTmpl.Spec.Affinity != nil:
			oldTmpl.Spec.Affinity.NodeAffinity = nil
			if apiequality.Semantic.DeepEqual(*oldTmpl.Spec.Affinity, corev1.Affinity{}) {
				oldTmpl.Spec.Affinity = nil
			}
		case tmpl.Spec.Affinity != nil && oldTmpl.Spec.Affinity == nil:
			oldTmpl.Spec.Affinity = &corev1.Affinity{NodeAffinity: tmpl.Spec.Affinity.NodeAffinity}
		case tmpl.Spec.Affinity != nil && oldTmpl.Spec.Affinity != nil:
			oldTmpl.Spec.Affinity.NodeAffinity = tmpl.Spec.Affinity.NodeAffinity
		}
		oldTmpl.Spec.NodeSelector = tmpl.Spec.NodeSelector
		oldTmpl.Spec.Tolerations = tmpl.Spec.Tolerations
		oldTmpl.Annotations = tmpl.Annotations
		oldTmpl.Labels = tmpl.Labels
		oldTmpl.Spec.SchedulingGates = tmpl.Spec.SchedulingGates
	}
	return apivalidation.ValidateImmutableField(tmpl, oldTmpl, p.Child("template"))
}
