package apiserver

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

const limitRangerAnnotation = "kubernetes.io/limit-ranger"

// mutatingAdmission runs kube-apiserver's mutating plugins that need other
// objects, before the kind's create preparation: LimitRanger's defaults
// and Priority for pods, DefaultIngressClass for Ingresses,
// DefaultStorageClass and in-use protection for claims and volumes.
func (s *Server) mutatingAdmission(res *registry.Resource, obj runtime.Object) error {
	switch o := obj.(type) {
	case *networkingv1.Ingress:
		return s.admitDefaultIngressClass(o)
	case *corev1.PersistentVolumeClaim:
		return s.admitClaim(o)
	case *corev1.PersistentVolume:
		addFinalizer(&o.Finalizers, finalizerPVProtection)
		return nil
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	ranges, err := s.limitRanges(pod.Namespace)
	if err != nil {
		return err
	}
	applyLimitDefaults(pod, ranges)
	if err := s.admitPodServiceAccount(context.Background(), pod); err != nil {
		return err
	}
	return s.admitPriority(pod)
}

// validatingAdmission runs the validating plugins after the object's own
// validation: LimitRanger's minimum, maximum and ratio checks, then
// ResourceQuota.
func (s *Server) validatingAdmission(res *registry.Resource, obj runtime.Object, name string) error {
	gr := res.GroupVersionResource().GroupResource()
	var ns string
	switch o := obj.(type) {
	case *corev1.Pod:
		ns = o.Namespace
	case *corev1.PersistentVolumeClaim:
		ns = o.Namespace
	}
	if ns != "" {
		ranges, err := s.limitRanges(ns)
		if err != nil {
			return err
		}
		var errs []error
		switch o := obj.(type) {
		case *corev1.Pod:
			errs = validatePodLimits(o, ranges)
		case *corev1.PersistentVolumeClaim:
			errs = validateClaimLimits(o, ranges)
		}
		if len(errs) > 0 {
			return apierrors.NewForbidden(gr, name, utilerrors.NewAggregate(errs))
		}
	}
	return s.admitQuota(res, obj, name)
}

func (s *Server) limitRanges(ns string) ([]*corev1.LimitRange, error) {
	res := s.resource(schemaCoreV1, "limitranges")
	if res == nil {
		return nil, nil
	}
	kvs, _, _, err := s.store.List(keyPrefix(res, ns), store.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []*corev1.LimitRange
	for _, kv := range kvs {
		obj, err := decodeStored(res, kv)
		if err != nil {
			return nil, err
		}
		out = append(out, obj.(*corev1.LimitRange))
	}
	return out, nil
}

// applyLimitDefaults is LimitRanger's defaulting: containers get the
// Container items' default limits and requests they lack, and the pod an
// annotation that says what was set.
func applyLimitDefaults(pod *corev1.Pod, ranges []*corev1.LimitRange) {
	limits, requests := corev1.ResourceList{}, corev1.ResourceList{}
	for _, lr := range ranges {
		for _, it := range lr.Spec.Limits {
			if it.Type != corev1.LimitTypeContainer {
				continue
			}
			for k, v := range it.Default {
				if _, ok := limits[k]; !ok {
					limits[k] = v.DeepCopy()
				}
			}
			for k, v := range it.DefaultRequest {
				if _, ok := requests[k]; !ok {
					requests[k] = v.DeepCopy()
				}
			}
		}
	}
	if len(limits) == 0 && len(requests) == 0 {
		return
	}
	var notes []string
	merge := func(c *corev1.Container, prefix string) {
		var setReq, setLim []string
		if c.Resources.Limits == nil && len(limits) > 0 {
			c.Resources.Limits = corev1.ResourceList{}
		}
		for k, v := range limits {
			if _, ok := c.Resources.Limits[k]; !ok {
				c.Resources.Limits[k] = v.DeepCopy()
				setLim = append(setLim, string(k))
			}
		}
		if c.Resources.Requests == nil && len(requests) > 0 {
			c.Resources.Requests = corev1.ResourceList{}
		}
		for k, v := range requests {
			if _, ok := c.Resources.Requests[k]; !ok {
				c.Resources.Requests[k] = v.DeepCopy()
				setReq = append(setReq, string(k))
			}
		}
		if len(setReq) > 0 {
			sort.Strings(setReq)
			notes = append(notes, strings.Join(setReq, ", ")+fmt.Sprintf(" request for %s %s", prefix, c.Name))
		}
		if len(setLim) > 0 {
			sort.Strings(setLim)
			notes = append(notes, strings.Join(setLim, ", ")+fmt.Sprintf(" limit for %s %s", prefix, c.Name))
		}
	}
	for i := range pod.Spec.Containers {
		merge(&pod.Spec.Containers[i], "container")
	}
	for i := range pod.Spec.InitContainers {
		merge(&pod.Spec.InitContainers[i], "init container")
	}
	if len(notes) > 0 {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[limitRangerAnnotation] = "LimitRanger plugin set: " + strings.Join(notes, "; ")
	}
}

func validatePodLimits(pod *corev1.Pod, ranges []*corev1.LimitRange) []error {
	var errs []error
	for _, lr := range ranges {
		for _, it := range lr.Spec.Limits {
			switch it.Type {
			case corev1.LimitTypeContainer:
				for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
					errs = append(errs, checkLimitItem(string(corev1.LimitTypeContainer), it, c.Resources.Requests, c.Resources.Limits)...)
				}
			case corev1.LimitTypePod:
				req, lim := podTotals(pod)
				errs = append(errs, checkLimitItem(string(corev1.LimitTypePod), it, req, lim)...)
			}
		}
	}
	return errs
}

func validateClaimLimits(pvc *corev1.PersistentVolumeClaim, ranges []*corev1.LimitRange) []error {
	var errs []error
	for _, lr := range ranges {
		for _, it := range lr.Spec.Limits {
			if it.Type != corev1.LimitTypePersistentVolumeClaim {
				continue
			}
			req := pvc.Spec.Resources.Requests
			for name, min := range it.Min {
				if err := minConstraint(string(it.Type), string(name), min, req, nil); err != nil {
					errs = append(errs, err)
				}
			}
			for name, max := range it.Max {
				q, ok := req[name]
				if !ok {
					errs = append(errs, fmt.Errorf("maximum %s usage per %s is %s.  No request is specified", name, it.Type, max.String()))
				} else if q.Cmp(max) > 0 {
					errs = append(errs, fmt.Errorf("maximum %s usage per %s is %s, but request is %s", name, it.Type, max.String(), q.String()))
				}
			}
		}
	}
	return errs
}

func checkLimitItem(limitType string, it corev1.LimitRangeItem, req, lim corev1.ResourceList) []error {
	var errs []error
	for _, name := range sortedResourceNames(it.Min) {
		if err := minConstraint(limitType, name, it.Min[corev1.ResourceName(name)], req, lim); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range sortedResourceNames(it.Max) {
		if err := maxConstraint(limitType, name, it.Max[corev1.ResourceName(name)], req, lim); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range sortedResourceNames(it.MaxLimitRequestRatio) {
		if err := ratioConstraint(limitType, name, it.MaxLimitRequestRatio[corev1.ResourceName(name)], req, lim); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// podTotals are a pod's effective requests and limits: the sum over its
// containers, or the largest init container when that is larger.
func podTotals(pod *corev1.Pod) (corev1.ResourceList, corev1.ResourceList) {
	sum := func(pick func(corev1.ResourceRequirements) corev1.ResourceList) corev1.ResourceList {
		out := corev1.ResourceList{}
		for _, c := range pod.Spec.Containers {
			for k, v := range pick(c.Resources) {
				q := out[k]
				q.Add(v)
				out[k] = q
			}
		}
		for _, c := range pod.Spec.InitContainers {
			for k, v := range pick(c.Resources) {
				if q, ok := out[k]; !ok || v.Cmp(q) > 0 {
					out[k] = v.DeepCopy()
				}
			}
		}
		for k, v := range pod.Spec.Overhead {
			if q, ok := out[k]; ok {
				q.Add(v)
				out[k] = q
			}
		}
		return out
	}
	return sum(func(r corev1.ResourceRequirements) corev1.ResourceList { return r.Requests }),
		sum(func(r corev1.ResourceRequirements) corev1.ResourceList { return r.Limits })
}

func sortedResourceNames(l corev1.ResourceList) []string {
	out := make([]string, 0, len(l))
	for k := range l {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}

// enforcedValues compares in milli-units when that cannot overflow.
func enforcedValues(req, lim, enforced resource.Quantity) (int64, int64, int64) {
	r, l, e := req.Value(), lim.Value(), enforced.Value()
	if r <= resource.MaxMilliValue && l <= resource.MaxMilliValue && e <= resource.MaxMilliValue {
		return req.MilliValue(), lim.MilliValue(), enforced.MilliValue()
	}
	return r, l, e
}

func minConstraint(limitType, name string, enforced resource.Quantity, request, limit corev1.ResourceList) error {
	req, reqOK := request[corev1.ResourceName(name)]
	lim, limOK := limit[corev1.ResourceName(name)]
	r, l, e := enforcedValues(req, lim, enforced)
	if !reqOK {
		return fmt.Errorf("minimum %s usage per %s is %s.  No request is specified", name, limitType, enforced.String())
	}
	if r < e {
		return fmt.Errorf("minimum %s usage per %s is %s, but request is %s", name, limitType, enforced.String(), req.String())
	}
	if limOK && l < e {
		return fmt.Errorf("minimum %s usage per %s is %s, but limit is %s", name, limitType, enforced.String(), lim.String())
	}
	return nil
}

func maxConstraint(limitType, name string, enforced resource.Quantity, request, limit corev1.ResourceList) error {
	req, reqOK := request[corev1.ResourceName(name)]
	lim, limOK := limit[corev1.ResourceName(name)]
	r, l, e := enforcedValues(req, lim, enforced)
	if !limOK {
		return fmt.Errorf("maximum %s usage per %s is %s.  No limit is specified", name, limitType, enforced.String())
	}
	if l > e {
		return fmt.Errorf("maximum %s usage per %s is %s, but limit is %s", name, limitType, enforced.String(), lim.String())
	}
	if reqOK && r > e {
		return fmt.Errorf("maximum %s usage per %s is %s, but request is %s", name, limitType, enforced.String(), req.String())
	}
	return nil
}

func ratioConstraint(limitType, name string, enforced resource.Quantity, request, limit corev1.ResourceList) error {
	req, reqOK := request[corev1.ResourceName(name)]
	lim, limOK := limit[corev1.ResourceName(name)]
	r, l, _ := enforcedValues(req, lim, enforced)
	if !reqOK || r == 0 {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", name, limitType, enforced.String())
	}
	if !limOK || l == 0 {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no limit is specified or limit is 0", name, limitType, enforced.String())
	}
	observed := float64(l) / float64(r)
	display := observed
	max := float64(enforced.Value())
	if enforced.Value() <= resource.MaxMilliValue {
		observed *= 1000
		max = float64(enforced.MilliValue())
	}
	if observed > max {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but provided ratio is %f", name, limitType, enforced.String(), display)
	}
	return nil
}

// admitPriority is the Priority plugin: the pod's priority comes from its
// PriorityClass (or the global default class), never from the pod.
func (s *Server) admitPriority(pod *corev1.Pod) error {
	res := s.resource(schedulingv1.SchemeGroupVersion, "priorityclasses")
	if res == nil {
		return nil
	}
	gr := corev1.Resource("pods")
	var priority int32
	var policy *corev1.PreemptionPolicy
	if pod.Spec.PriorityClassName == "" {
		kvs, _, _, err := s.store.List(keyPrefix(res, ""), store.ListOptions{})
		if err != nil {
			return err
		}
		var def *schedulingv1.PriorityClass
		for _, kv := range kvs {
			obj, err := decodeStored(res, kv)
			if err != nil {
				return err
			}
			pc := obj.(*schedulingv1.PriorityClass)
			if pc.GlobalDefault && (def == nil || pc.Value < def.Value) {
				def = pc
			}
		}
		if def != nil {
			pod.Spec.PriorityClassName, priority, policy = def.Name, def.Value, def.PreemptionPolicy
		}
	} else {
		obj, _, err := s.getObject(res, "", pod.Spec.PriorityClassName)
		if apierrors.IsNotFound(err) {
			return apierrors.NewForbidden(gr, pod.Name, fmt.Errorf("no PriorityClass with name %v was found", pod.Spec.PriorityClassName))
		}
		if err != nil {
			return err
		}
		pc := obj.(*schedulingv1.PriorityClass)
		priority, policy = pc.Value, pc.PreemptionPolicy
	}
	if pod.Spec.Priority != nil && *pod.Spec.Priority != priority {
		return apierrors.NewForbidden(gr, pod.Name, fmt.Errorf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", *pod.Spec.Priority, priority))
	}
	pod.Spec.Priority = &priority
	if policy != nil {
		if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy != *policy {
			return apierrors.NewForbidden(gr, pod.Name, fmt.Errorf("the string value of PreemptionPolicy (%s) must not be provided in pod spec; priority admission controller computed %s from the given PriorityClass name", *pod.Spec.PreemptionPolicy, *policy))
		}
		pod.Spec.PreemptionPolicy = policy
	}
	return nil
}
