package registry

import (
	"fmt"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func deploymentBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		d := obj.(*appsv1.Deployment)
		if d.Spec.Replicas == nil {
			d.Spec.Replicas = int32Ptr(1)
		}
		if d.Spec.Strategy.Type == "" {
			d.Spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
		}
		if d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
			if d.Spec.Strategy.RollingUpdate == nil {
				d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
			}
			if d.Spec.Strategy.RollingUpdate.MaxUnavailable == nil {
				d.Spec.Strategy.RollingUpdate.MaxUnavailable = intOrPercent("25%")
			}
			if d.Spec.Strategy.RollingUpdate.MaxSurge == nil {
				d.Spec.Strategy.RollingUpdate.MaxSurge = intOrPercent("25%")
			}
		}
		if d.Spec.RevisionHistoryLimit == nil {
			d.Spec.RevisionHistoryLimit = int32Ptr(10)
		}
		if d.Spec.ProgressDeadlineSeconds == nil {
			d.Spec.ProgressDeadlineSeconds = int32Ptr(600)
		}
		defaultTemplate(&d.Spec.Template)
	}
	r.PrepareForCreate = func(obj runtime.Object) { obj.(*appsv1.Deployment).Status = appsv1.DeploymentStatus{} }
	r.Validate = func(obj runtime.Object) field.ErrorList {
		d := obj.(*appsv1.Deployment)
		errs := validateTemplate(d.Spec.Selector, &d.Spec.Template, field.NewPath("spec"))
		return append(errs, validateReplicas(d.Spec.Replicas)...)
	}
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		return immutableSelector(obj.(*appsv1.Deployment).Spec.Selector, old.(*appsv1.Deployment).Spec.Selector)
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Ready", "string", "Number of the pod with ready state"),
			col("Up-to-date", "string", appsv1.DeploymentStatus{}.SwaggerDoc()["updatedReplicas"]),
			col("Available", "string", appsv1.DeploymentStatus{}.SwaggerDoc()["availableReplicas"]),
			ageCol,
			wide(col("Containers", "string", "Names of each container in the template.")),
			wide(col("Images", "string", "Images referenced by each container in the template.")),
			wide(col("Selector", "string", appsv1.DeploymentSpec{}.SwaggerDoc()["selector"])),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			d := obj.(*appsv1.Deployment)
			desired := int32(0)
			if d.Spec.Replicas != nil {
				desired = *d.Spec.Replicas
			}
			names, images := containersAndImages(d.Spec.Template.Spec.Containers)
			return []interface{}{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, desired), int64(d.Status.UpdatedReplicas),
				int64(d.Status.AvailableReplicas), age(d.CreationTimestamp), names, images, labelSelectorString(d.Spec.Selector)}, nil
		},
	}
}

func validateReplicas(r *int32) field.ErrorList {
	if r != nil && *r < 0 {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), *r, "must be greater than or equal to 0")}
	}
	return nil
}

func immutableSelector(cur, old *metav1.LabelSelector) field.ErrorList {
	return apivalidation.ValidateImmutableField(cur, old, field.NewPath("spec", "selector"))
}

func replicaSetBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		rs := obj.(*appsv1.ReplicaSet)
		if rs.Spec.Replicas == nil {
			rs.Spec.Replicas = int32Ptr(1)
		}
		defaultTemplate(&rs.Spec.Template)
	}
	r.PrepareForCreate = func(obj runtime.Object) { obj.(*appsv1.ReplicaSet).Status = appsv1.ReplicaSetStatus{} }
	r.Validate = func(obj runtime.Object) field.ErrorList {
		rs := obj.(*appsv1.ReplicaSet)
		return append(validateTemplate(rs.Spec.Selector, &rs.Spec.Template, field.NewPath("spec")), validateReplicas(rs.Spec.Replicas)...)
	}
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		return immutableSelector(obj.(*appsv1.ReplicaSet).Spec.Selector, old.(*appsv1.ReplicaSet).Spec.Selector)
	}
	r.FieldSet = func(obj runtime.Object) fields.Set {
		return fields.Set{"status.replicas": fmt.Sprint(obj.(*appsv1.ReplicaSet).Status.Replicas)}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Desired", "integer", appsv1.ReplicaSetSpec{}.SwaggerDoc()["replicas"]),
			col("Current", "integer", appsv1.ReplicaSetStatus{}.SwaggerDoc()["replicas"]),
			col("Ready", "integer", appsv1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"]),
			ageCol,
			wide(col("Containers", "string", "Names of each container in the template.")),
			wide(col("Images", "string", "Images referenced by each container in the template.")),
			wide(col("Selector", "string", appsv1.ReplicaSetSpec{}.SwaggerDoc()["selector"])),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			rs := obj.(*appsv1.ReplicaSet)
			desired := int64(1)
			if rs.Spec.Replicas != nil {
				desired = int64(*rs.Spec.Replicas)
			}
			names, images := containersAndImages(rs.Spec.Template.Spec.Containers)
			return []interface{}{rs.Name, desired, int64(rs.Status.Replicas), int64(rs.Status.ReadyReplicas), age(rs.CreationTimestamp),
				names, images, labelSelectorString(rs.Spec.Selector)}, nil
		},
	}
}

func statefulSetBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		s := obj.(*appsv1.StatefulSet)
		if s.Spec.Replicas == nil {
			s.Spec.Replicas = int32Ptr(1)
		}
		if s.Spec.PodManagementPolicy == "" {
			s.Spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
		}
		if s.Spec.UpdateStrategy.Type == "" {
			s.Spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		}
		if s.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && s.Spec.UpdateStrategy.RollingUpdate == nil {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: int32Ptr(0)}
		}
		if s.Spec.RevisionHistoryLimit == nil {
			s.Spec.RevisionHistoryLimit = int32Ptr(10)
		}
		if s.Spec.PersistentVolumeClaimRetentionPolicy == nil {
			s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType}
		}
		defaultTemplate(&s.Spec.Template)
	}
	r.PrepareForCreate = func(obj runtime.Object) { obj.(*appsv1.StatefulSet).Status = appsv1.StatefulSetStatus{} }
	r.Validate = func(obj runtime.Object) field.ErrorList {
		s := obj.(*appsv1.StatefulSet)
		// The pods mount the claims of the volumeClaimTemplates, like
		// upstream's validation sees them.
		tmpl := s.Spec.Template.DeepCopy()
		for _, c := range s.Spec.VolumeClaimTemplates {
			found := false
			for _, v := range tmpl.Spec.Volumes {
				found = found || v.Name == c.Name
			}
			if !found {
				tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, corev1.Volume{Name: c.Name,
					VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name}}})
			}
		}
		return append(validateTemplate(s.Spec.Selector, tmpl, field.NewPath("spec")), validateReplicas(s.Spec.Replicas)...)
	}
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		return validateStatefulSetUpdate(obj.(*appsv1.StatefulSet), old.(*appsv1.StatefulSet))
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Ready", "string", "Number of the pod with ready state"),
			ageCol,
			wide(col("Containers", "string", "Names of each container in the template.")),
			wide(col("Images", "string", "Images referenced by each container in the template.")),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			s := obj.(*appsv1.StatefulSet)
			desired := int32(1)
			if s.Spec.Replicas != nil {
				desired = *s.Spec.Replicas
			}
			names, images := containersAndImages(s.Spec.Template.Spec.Containers)
			return []interface{}{s.Name, fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, desired), age(s.CreationTimestamp), names, images}, nil
		},
	}
}

// validateStatefulSetUpdate is upstream's ValidateStatefulSetUpdate: only
// the listed spec fields may change (the selector, serviceName,
// volumeClaimTemplates, podManagementPolicy … may not), reported as one
// Forbidden error on spec with kube-apiserver's text.
func validateStatefulSetUpdate(cur, old *appsv1.StatefulSet) field.ErrorList {
	spec := cur.Spec.DeepCopy()
	spec.Replicas = old.Spec.Replicas
	spec.Template = old.Spec.Template
	spec.UpdateStrategy = old.Spec.UpdateStrategy
	spec.MinReadySeconds = old.Spec.MinReadySeconds
	spec.Ordinals = old.Spec.Ordinals
	spec.RevisionHistoryLimit = old.Spec.RevisionHistoryLimit
	spec.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	if !apiequality.Semantic.DeepEqual(*spec, old.Spec) {
		return field.ErrorList{field.Forbidden(field.NewPath("spec"), "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")}
	}
	return nil
}

func daemonSetBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		d := obj.(*appsv1.DaemonSet)
		if d.Spec.UpdateStrategy.Type == "" {
			d.Spec.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
		}
		if d.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType && d.Spec.UpdateStrategy.RollingUpdate == nil {
			one, zero := intOrInt(1), intOrInt(0)
			d.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one, MaxSurge: &zero}
		}
		if d.Spec.RevisionHistoryLimit == nil {
			d.Spec.RevisionHistoryLimit = int32Ptr(10)
		}
		defaultTemplate(&d.Spec.Template)
	}
	r.PrepareForCreate = func(obj runtime.Object) { obj.(*appsv1.DaemonSet).Status = appsv1.DaemonSetStatus{} }
	r.Validate = func(obj runtime.Object) field.ErrorList {
		d := obj.(*appsv1.DaemonSet)
		return validateTemplate(d.Spec.Selector, &d.Spec.Template, field.NewPath("spec"))
	}
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		return immutableSelector(obj.(*appsv1.DaemonSet).Spec.Selector, old.(*appsv1.DaemonSet).Spec.Selector)
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Desired", "integer", appsv1.DaemonSetStatus{}.SwaggerDoc()["desiredNumberScheduled"]),
			col("Current", "integer", appsv1.DaemonSetStatus{}.SwaggerDoc()["currentNumberScheduled"]),
			col("Ready", "integer", appsv1.DaemonSetStatus{}.SwaggerDoc()["numberReady"]),
			col("Up-to-date", "integer", appsv1.DaemonSetStatus{}.SwaggerDoc()["updatedNumberScheduled"]),
			col("Available", "integer", appsv1.DaemonSetStatus{}.SwaggerDoc()["numberAvailable"]),
			col("Node Selector", "string", corev1PodSpecDoc("nodeSelector")),
			ageCol,
			wide(col("Containers", "string", "Names of each container in the template.")),
			wide(col("Images", "string", "Images referenced by each container in the template.")),
			wide(col("Selector", "string", appsv1.DaemonSetSpec{}.SwaggerDoc()["selector"])),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			d := obj.(*appsv1.DaemonSet)
			names, images := containersAndImages(d.Spec.Template.Spec.Containers)
			return []interface{}{d.Name, int64(d.Status.DesiredNumberScheduled), int64(d.Status.CurrentNumberScheduled), int64(d.Status.NumberReady),
				int64(d.Status.UpdatedNumberScheduled), int64(d.Status.NumberAvailable), mapSelectorString(d.Spec.Template.Spec.NodeSelector),
				age(d.CreationTimestamp), names, images, labelSelectorString(d.Spec.Selector)}, nil
		},
	}
}
