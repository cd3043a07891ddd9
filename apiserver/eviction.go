package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/nanokube/nanokube/store"
)

// maxDisruptedPods bounds a budget's map of evictions the disruption
// controller has not confirmed yet (upstream's MaxDisruptedPodSize).
const maxDisruptedPods = 2000

var pdbGR = schema.GroupResource{Group: "policy", Resource: "poddisruptionbudget"}

// serveEviction is pods/eviction, like kube-apiserver's: a pod that
// already stopped (or has not started) is deleted at once; otherwise its
// PodDisruptionBudget must allow one more disruption, which the eviction
// takes (disruptionsAllowed-1, the pod in disruptedPods) before deleting
// the pod, or the answer is 429 with the budget's reason.
func (s *Server) serveEviction(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	if info.verb != "create" {
		return apierrors.NewMethodNotSupported(info.res.GroupVersionResource().GroupResource(), info.verb)
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	ev := &policyv1.Eviction{}
	if err := s.decodeInto(w, r, body, ev, policyv1.SchemeGroupVersion.WithKind("Eviction")); err != nil {
		return err
	}
	if ev.Name != "" && ev.Name != info.name {
		return badRequest("name in URL does not match name in Eviction object")
	}
	opts := ev.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if dryRun(r) && len(opts.DryRun) == 0 {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	podRes := s.resource(schemaCoreV1, "pods")
	obj, _, err := s.getObject(podRes, info.namespace, info.name)
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	if canIgnorePDB(pod) {
		return s.evict(w, r, pod, opts)
	}
	pdbs, err := s.budgetsFor(pod)
	if err != nil {
		return err
	}
	switch {
	case len(pdbs) > 1:
		st := &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.", Code: http.StatusInternalServerError}
		s.writeObject(w, r, http.StatusInternalServerError, st, schemaCoreV1)
		return nil
	case len(pdbs) == 1:
		pdb := pdbs[0]
		if !isPodReady(pod) {
			// An unready pod does not count as healthy: it may go without
			// taking a disruption when the budget is met anyway.
			always := pdb.Spec.UnhealthyPodEvictionPolicy != nil && *pdb.Spec.UnhealthyPodEvictionPolicy == policyv1.AlwaysAllow
			if always || (pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0) {
				return s.evict(w, r, pod, opts)
			}
		}
		if err := s.takeDisruption(pdb.Namespace, pdb.Name, pod.Name, len(opts.DryRun) > 0); err != nil {
			return err
		}
	}
	return s.evict(w, r, pod, opts)
}

// canIgnorePDB: a pod that has ended, has not started or is already being
// deleted disrupts nothing more.
func canIgnorePDB(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending:
		return true
	}
	return pod.DeletionTimestamp != nil
}

func isPodReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// budgetsFor lists the PodDisruptionBudgets of the pod's namespace whose
// selector matches it.
func (s *Server) budgetsFor(pod *corev1.Pod) ([]*policyv1.PodDisruptionBudget, error) {
	res := s.resource(policyv1.SchemeGroupVersion, "poddisruptionbudgets")
	if res == nil {
		return nil, nil
	}
	objs, _, _, err := s.listObjects(res, pod.Namespace, &metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []*policyv1.PodDisruptionBudget
	for _, o := range objs {
		pdb := o.(*policyv1.PodDisruptionBudget)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || pdb.Spec.Selector == nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, pdb)
	}
	return out, nil
}

func tooManyRequests(pdb string, cause string) error {
	retry := 10
	if cause != "" {
		retry = 0
	}
	err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", retry)
	if cause == "" {
		cause = fmt.Sprintf("The disruption budget %s is still being processed by the server.", pdb)
	}
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause, Message: cause})
	return err
}

// takeDisruption is upstream's checkAndDecrement, retried on conflicts.
func (s *Server) takeDisruption(ns, name, podName string, dry bool) error {
	res := s.resource(policyv1.SchemeGroupVersion, "poddisruptionbudgets")
	for attempt := 0; attempt < 20; attempt++ {
		obj, kv, err := s.getObject(res, ns, name)
		if err != nil {
			return err
		}
		pdb := obj.(*policyv1.PodDisruptionBudget)
		switch {
		case pdb.Status.ObservedGeneration < pdb.Generation:
			return tooManyRequests(pdb.Name, "")
		case pdb.Status.DisruptionsAllowed < 0:
			return apierrors.NewForbidden(pdbGR, pdb.Name, errors.New("pdb disruptions allowed is negative"))
		case len(pdb.Status.DisruptedPods) > maxDisruptedPods:
			return apierrors.NewForbidden(pdbGR, pdb.Name, errors.New("DisruptedPods map too big - too many evictions not confirmed by PDB controller"))
		case pdb.Status.DisruptionsAllowed == 0:
			return tooManyRequests(pdb.Name, fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy))
		}
		if dry {
			return nil
		}
		pdb.Status.DisruptionsAllowed--
		if pdb.Status.DisruptionsAllowed == 0 {
			apimeta.SetStatusCondition(&pdb.Status.Conditions, metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse,
				Reason: policyv1.InsufficientPodsReason, ObservedGeneration: pdb.Status.ObservedGeneration})
		}
		if pdb.Status.DisruptedPods == nil {
			pdb.Status.DisruptedPods = map[string]metav1.Time{}
		}
		pdb.Status.DisruptedPods[podName] = metav1.NewTime(time.Now())
		data, err := encodeStored(res, pdb)
		if err != nil {
			return err
		}
		_, err = s.store.Update(objectKey(res, ns, name), data, kv.ModRev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return storeError(err, res.GroupVersionResource().GroupResource(), name)
		}
		return nil
	}
	return apierrors.NewTimeoutError(fmt.Sprintf("couldn't update PodDisruptionBudget %q due to conflicts", name), 10)
}

// evict marks the pod with the DisruptionTarget condition and deletes it
// with the eviction's options.
func (s *Server) evict(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, opts *metav1.DeleteOptions) error {
	podRes := s.resource(schemaCoreV1, "pods")
	gr := podRes.GroupVersionResource().GroupResource()
	dry := len(opts.DryRun) > 0 || dryRun(r)
	if !dry && pod.DeletionTimestamp == nil {
		for attempt := 0; attempt < 5; attempt++ {
			obj, kv, err := s.getObject(podRes, pod.Namespace, pod.Name)
			if err != nil {
				return err
			}
			cur := obj.(*corev1.Pod)
			if p := opts.Preconditions; p != nil && p.UID != nil && *p.UID != cur.UID {
				return apierrors.NewConflict(gr, cur.Name, fmt.Errorf("the UID in the precondition (%s) does not match the UID in record (%s). The object might have been deleted and then recreated", *p.UID, cur.UID))
			}
			setPodCondition(cur, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI",
				Message: "Eviction API: evicting", LastTransitionTime: now()})
			data, err := encodeStored(podRes, cur)
			if err != nil {
				return err
			}
			if _, err = s.store.Update(objectKey(podRes, cur.Namespace, cur.Name), data, kv.ModRev); errors.Is(err, store.ErrConflict) {
				continue
			} else if err != nil {
				return storeError(err, gr, cur.Name)
			}
			break
		}
	}
	if dry {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	dr := r
	if dry && !dryRun(r) {
		q := r.URL.Query()
		q.Set("dryRun", metav1.DryRunAll)
		u := *r.URL
		u.RawQuery = q.Encode()
		dr = r.Clone(r.Context())
		dr.URL = &u
	}
	if _, _, err := s.deleteObject(dr, podRes, pod.Namespace, pod.Name, opts); err != nil {
		return err
	}
	st := &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated}
	s.writeObject(w, r, http.StatusCreated, st, schemaCoreV1)
	return nil
}
