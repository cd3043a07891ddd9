package registry

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// updateCase changes a copy of an object; want is the start of each
// error's text, as kube-apiserver prints it (field: type: detail),
// separated by "\n--\n" ("" for none).
type updateCase struct {
	name   string
	change func(runtime.Object)
	want   string
}

func runUpdateCases(t *testing.T, kind string, base runtime.Object, cases []updateCase) {
	t.Helper()
	var res *Resource
	for _, r := range Resources() {
		if r.Kind == kind {
			res = r
		}
	}
	if res == nil || res.ValidateUpdate == nil {
		t.Fatalf("%s has no update validation", kind)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := base.DeepCopyObject()
			next := base.DeepCopyObject()
			if res.Default != nil {
				res.Default(old)
			}
			tc.change(next)
			if res.Default != nil {
				res.Default(next)
			}
			errs := res.ValidateUpdate(next, old)
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Fatalf("unexpected errors: %v", errs.ToAggregate())
			case tc.want == "":
			case len(errs) != len(strings.Split(tc.want, "\n--\n")):
				t.Fatalf("errors %v, want %q", errs.ToAggregate(), tc.want)
			default:
				for i, w := range strings.Split(tc.want, "\n--\n") {
					if !strings.HasPrefix(errs[i].Error(), w) {
						t.Fatalf("error %q, want %q", errs[i].Error(), w)
					}
				}
			}
		})
	}
}

func TestStatefulSetUpdateValidation(t *testing.T) {
	lbl := map[string]string{"app": "web"}
	base := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: appsv1.StatefulSetSpec{
		ServiceName: "web", Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img:1"}}}},
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}},
	}}
	forbidden := "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
	sts := func(f func(*appsv1.StatefulSet)) func(runtime.Object) {
		return func(o runtime.Object) { f(o.(*appsv1.StatefulSet)) }
	}
	runUpdateCases(t, "StatefulSet", base, []updateCase{
		{"replicas", sts(func(s *appsv1.StatefulSet) { s.Spec.Replicas = int32Ptr(5) }), ""},
		{"template", sts(func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "img:2" }), ""},
		{"updateStrategy", sts(func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		}), ""},
		{"partition", sts(func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: int32Ptr(2)}
		}), ""},
		{"minReadySeconds", sts(func(s *appsv1.StatefulSet) { s.Spec.MinReadySeconds = 10 }), ""},
		{"ordinals", sts(func(s *appsv1.StatefulSet) { s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 3} }), ""},
		{"revisionHistoryLimit", sts(func(s *appsv1.StatefulSet) { s.Spec.RevisionHistoryLimit = int32Ptr(2) }), ""},
		{"retention policy", sts(func(s *appsv1.StatefulSet) {
			s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType}
		}), ""},
		{"volumeClaimTemplates", sts(func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
		}), forbidden},
		{"serviceName", sts(func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "other" }), forbidden},
		{"podManagementPolicy", sts(func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }), forbidden},
		{"selector", sts(func(s *appsv1.StatefulSet) {
			s.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
		}), forbidden},
	})
}

func TestWorkloadSelectorImmutable(t *testing.T) {
	lbl := map[string]string{"app": "web"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}}}
	other := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "x"}}
	const want = "spec.selector: Invalid value: "
	runUpdateCases(t, "Deployment", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: tmpl}},
		[]updateCase{
			{"replicas", func(o runtime.Object) { o.(*appsv1.Deployment).Spec.Replicas = int32Ptr(3) }, ""},
			{"selector", func(o runtime.Object) { o.(*appsv1.Deployment).Spec.Selector = other }, want},
		})
	runUpdateCases(t, "ReplicaSet", &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: tmpl}},
		[]updateCase{{"selector", func(o runtime.Object) { o.(*appsv1.ReplicaSet).Spec.Selector = other }, want}})
	runUpdateCases(t, "DaemonSet", &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "ds"}, Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: tmpl}},
		[]updateCase{
			{"template", func(o runtime.Object) { o.(*appsv1.DaemonSet).Spec.Template.Spec.Containers[0].Image = "img:2" }, ""},
			{"selector", func(o runtime.Object) { o.(*appsv1.DaemonSet).Spec.Selector = other }, want},
		})
}

func TestJobUpdateValidation(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: "u1"}}
	base := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j"}, Spec: batchv1.JobSpec{Selector: sel, Completions: int32Ptr(3), Parallelism: int32Ptr(3),
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel.MatchLabels},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "img"}}}}}}
	job := func(f func(*batchv1.Job)) func(runtime.Object) { return func(o runtime.Object) { f(o.(*batchv1.Job)) } }
	runUpdateCases(t, "Job", base, []updateCase{
		{"parallelism", job(func(j *batchv1.Job) { j.Spec.Parallelism = int32Ptr(1) }), ""},
		{"suspend", job(func(j *batchv1.Job) { j.Spec.Suspend = boolPtr(true) }), ""},
		{"activeDeadlineSeconds", job(func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptrInt64(60) }), ""},
		{"selector", job(func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: "u2"}}
		}), "spec.selector: Invalid value: "},
		{"template image", job(func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "img:2" }), "spec.template: Invalid value: "},
		{"template nodeSelector of a running job", job(func(j *batchv1.Job) { j.Spec.Template.Spec.NodeSelector = map[string]string{"a": "b"} }), "spec.template: Invalid value: "},
		{"completions of a NonIndexed job", job(func(j *batchv1.Job) { j.Spec.Completions = int32Ptr(4) }), "spec.completions: Invalid value: 4: field is immutable"},
		{"completionMode", job(func(j *batchv1.Job) { m := batchv1.IndexedCompletion; j.Spec.CompletionMode = &m }), "spec.completionMode: Invalid value: "},
	})
	// A suspended Job that never started may change its scheduling
	// directives, labels and annotations, nothing else of its template.
	suspended := base.DeepCopy()
	suspended.Spec.Suspend = boolPtr(true)
	runUpdateCases(t, "Job", suspended, []updateCase{
		{"nodeSelector", job(func(j *batchv1.Job) { j.Spec.Template.Spec.NodeSelector = map[string]string{"a": "b"} }), ""},
		{"tolerations and labels", job(func(j *batchv1.Job) {
			j.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
			j.Spec.Template.Labels["queue"] = "q1"
		}), ""},
		{"image", job(func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "img:2" }), "spec.template: Invalid value: "},
	})
	// Elastic Indexed Jobs: completions moves with parallelism.
	indexed := base.DeepCopy()
	m := batchv1.IndexedCompletion
	indexed.Spec.CompletionMode = &m
	runUpdateCases(t, "Job", indexed, []updateCase{
		{"in tandem", job(func(j *batchv1.Job) { j.Spec.Completions, j.Spec.Parallelism = int32Ptr(5), int32Ptr(5) }), ""},
		{"alone", job(func(j *batchv1.Job) { j.Spec.Completions = int32Ptr(5) }), "spec.completions: Invalid value: 5: can only be modified in tandem with spec.parallelism"},
	})
}

func ptrInt64(v int64) *int64 { return &v }

func TestClaimUpdateValidation(t *testing.T) {
	class := "standard"
	base := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: &class,
		Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	bound := base.DeepCopy()
	bound.Spec.VolumeName = "pv1"
	bound.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
	pvc := func(f func(*corev1.PersistentVolumeClaim)) func(runtime.Object) {
		return func(o runtime.Object) { f(o.(*corev1.PersistentVolumeClaim)) }
	}
	const immutable = "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
	runUpdateCases(t, "PersistentVolumeClaim", base, []updateCase{
		{"volumeName once", pvc(func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv1" }), ""},
		{"labels", pvc(func(c *corev1.PersistentVolumeClaim) { c.Labels = map[string]string{"a": "b"} }), ""},
		{"access modes", pvc(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}), immutable},
		{"size of an unbound claim", pvc(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
		}), immutable},
		{"volumeMode", pvc(func(c *corev1.PersistentVolumeClaim) { b := corev1.PersistentVolumeBlock; c.Spec.VolumeMode = &b }),
			immutable + "\n--\n" + `volumeMode: Invalid value: "Block": field is immutable`},
	})
	other := "fast"
	runUpdateCases(t, "PersistentVolumeClaim", bound, []updateCase{
		{"expand", pvc(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
		}), ""},
		{"attributes class", pvc(func(c *corev1.PersistentVolumeClaim) { v := "gold"; c.Spec.VolumeAttributesClassName = &v }), ""},
		{"shrink below capacity", pvc(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("512Mi")
		}), "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"},
		{"volumeName again", pvc(func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv2" }), immutable},
		{"storage class", pvc(func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = &other }), immutable},
	})
	// The retroactive default class: nil may become a class once.
	unclassed := base.DeepCopy()
	unclassed.Spec.StorageClassName = nil
	runUpdateCases(t, "PersistentVolumeClaim", unclassed, []updateCase{
		{"default class set", pvc(func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = &class }), ""},
	})
}

func TestVolumeUpdateValidation(t *testing.T) {
	base := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv1"}, Spec: corev1.PersistentVolumeSpec{
		Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
		AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/a"}},
	}}
	pv := func(f func(*corev1.PersistentVolume)) func(runtime.Object) {
		return func(o runtime.Object) { f(o.(*corev1.PersistentVolume)) }
	}
	affinity := &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}}}}}
	runUpdateCases(t, "PersistentVolume", base, []updateCase{
		{"capacity", pv(func(v *corev1.PersistentVolume) { v.Spec.Capacity[corev1.ResourceStorage] = resource.MustParse("2Gi") }), ""},
		{"claimRef", pv(func(v *corev1.PersistentVolume) {
			v.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "data"}
		}), ""},
		{"node affinity first set", pv(func(v *corev1.PersistentVolume) { v.Spec.NodeAffinity = affinity }), ""},
		{"source", pv(func(v *corev1.PersistentVolume) { v.Spec.HostPath.Path = "/data/b" }),
			"spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"},
	})
	pinned := base.DeepCopy()
	pinned.Spec.NodeAffinity = affinity
	runUpdateCases(t, "PersistentVolume", pinned, []updateCase{
		{"node affinity changed", pv(func(v *corev1.PersistentVolume) {
			v.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values = []string{"n2"}
		}), "nodeAffinity: Invalid value: "},
	})
}

func TestServiceClusterIPImmutable(t *testing.T) {
	base := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20"},
		Ports: []corev1.ServicePort{{Port: 80}}}}
	runUpdateCases(t, "Service", base, []updateCase{
		{"ports", func(o runtime.Object) { o.(*corev1.Service).Spec.Ports[0].Port = 81 }, ""},
		{"clusterIP", func(o runtime.Object) {
			s := o.(*corev1.Service)
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.21", []string{"10.96.0.21"}
		}, `spec.clusterIPs[0]: Invalid value: "10.96.0.21": may not change once set`},
	})
}
