package registry

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// UpdateEphemeralContainers is the pods/ephemeralcontainers update (what
// `kubectl debug` sends): only spec.ephemeralContainers changes, new ones
// are defaulted, and kube-apiserver's rules hold: existing ephemeral
// containers stay as they are, names are unique in the pod, targets exist,
// and the fields an ephemeral container may not have are absent.
func UpdateEphemeralContainers(next, in, old *corev1.Pod) field.ErrorList {
	next.Spec.EphemeralContainers = append([]corev1.EphemeralContainer{}, in.Spec.EphemeralContainers...)
	path := field.NewPath("spec", "ephemeralContainers")
	var errs field.ErrorList
	prev := map[string]corev1.EphemeralContainer{}
	for _, ec := range old.Spec.EphemeralContainers {
		prev[ec.Name] = ec
	}
	names := sets.New[string]()
	for _, c := range old.Spec.InitContainers {
		names.Insert(c.Name)
	}
	for _, c := range old.Spec.Containers {
		names.Insert(c.Name)
	}
	kept := sets.New[string]()
	for i := range next.Spec.EphemeralContainers {
		ec := &next.Spec.EphemeralContainers[i]
		p := path.Index(i)
		if was, ok := prev[ec.Name]; ok {
			kept.Insert(ec.Name)
			c := corev1.Container(ec.EphemeralContainerCommon)
			defaultContainer(&c)
			ec.EphemeralContainerCommon = corev1.EphemeralContainerCommon(c)
			if !reflect.DeepEqual(*ec, was) {
				errs = append(errs, field.Forbidden(p, "existing ephemeral containers \""+ec.Name+"\" may not be changed"))
			}
			continue
		}
		c := corev1.Container(ec.EphemeralContainerCommon)
		defaultContainer(&c)
		ec.EphemeralContainerCommon = corev1.EphemeralContainerCommon(c)
		switch {
		case ec.Name == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case names.Has(ec.Name):
			errs = append(errs, field.Duplicate(p.Child("name"), ec.Name))
		default:
			for _, msg := range validation.IsDNS1123Label(ec.Name) {
				errs = append(errs, field.Invalid(p.Child("name"), ec.Name, msg))
			}
		}
		names.Insert(ec.Name)
		if ec.Image == "" {
			errs = append(errs, field.Required(p.Child("image"), ""))
		}
		if ec.TargetContainerName != "" && !hasContainer(old.Spec.Containers, ec.TargetContainerName) && !hasContainer(old.Spec.InitContainers, ec.TargetContainerName) {
			errs = append(errs, field.NotFound(p.Child("targetContainerName"), ec.TargetContainerName))
		}
		if len(ec.Ports) > 0 {
			errs = append(errs, field.Forbidden(p.Child("ports"), "cannot be set for an Ephemeral Container"))
		}
		for name, probe := range map[string]*corev1.Probe{"livenessProbe": ec.LivenessProbe, "readinessProbe": ec.ReadinessProbe, "startupProbe": ec.StartupProbe} {
			if probe != nil {
				errs = append(errs, field.Forbidden(p.Child(name), "cannot be set for an Ephemeral Container"))
			}
		}
		if ec.Lifecycle != nil {
			errs = append(errs, field.Forbidden(p.Child("lifecycle"), "cannot be set for an Ephemeral Container"))
		}
		if len(ec.Resources.Limits)+len(ec.Resources.Requests) > 0 {
			errs = append(errs, field.Forbidden(p.Child("resources"), "cannot be set for an Ephemeral Container"))
		}
	}
	for _, ec := range old.Spec.EphemeralContainers {
		if !kept.Has(ec.Name) {
			errs = append(errs, field.Forbidden(path, "existing ephemeral containers \""+ec.Name+"\" may not be removed"))
		}
	}
	return errs
}

func hasContainer(cs []corev1.Container, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}
