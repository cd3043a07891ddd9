package scheduler

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// candidate is a node where removing victims lets the pod fit.
type candidate struct {
	node    string
	victims []*corev1.Pod
}

// eligibleToPreempt is kube-scheduler's PodEligibleToPreemptOthers.
func eligibleToPreempt(pod *corev1.Pod, s *snapshot) (bool, string) {
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == corev1.PreemptNever {
		return false, "not eligible due to preemptionPolicy=Never."
	}
	if nom := pod.Status.NominatedNodeName; nom != "" {
		if ni := s.byName[nom]; ni != nil {
			for _, p := range ni.pods {
				if p.DeletionTimestamp != nil && priorityOf(p) < priorityOf(pod) {
					return false, "not eligible due to a terminating pod on the nominated node."
				}
			}
		}
	}
	return true, ""
}

// findCandidate looks for the node where the fewest, least important pods
// must go for pod to fit (DefaultPreemption's dry run); msg is the
// "preemption: …" text when there is none.
func findCandidate(pod *corev1.Pod, s *snapshot, verdicts map[string]*verdict) (*candidate, string) {
	if ok, why := eligibleToPreempt(pod, s); !ok {
		return nil, "preemption: " + why
	}
	reasons := map[string]int{}
	var found []candidate
	for _, ni := range s.nodes {
		v := verdicts[ni.node.Name]
		if v == nil {
			continue
		}
		if !v.resolvable {
			reasons["Preemption is not helpful for scheduling"]++
			continue
		}
		victims := selectVictims(pod, ni, s)
		if victims == nil {
			reasons["No preemption victims found for incoming pod"]++
			continue
		}
		found = append(found, candidate{node: ni.node.Name, victims: victims})
	}
	if len(found) == 0 {
		return nil, "preemption: " + histogram(len(s.nodes), reasons)
	}
	sort.Slice(found, func(i, j int) bool { return better(found[i], found[j]) })
	return &found[0], ""
}

// better orders candidates like pickOneNodeForPreemption: the lowest
// highest-victim priority, then the lowest priority sum, then the fewest
// victims, then the node name.
func better(a, b candidate) bool {
	ha, hb := priorityOf(a.victims[0]), priorityOf(b.victims[0])
	if ha != hb {
		return ha < hb
	}
	sa, sb := prioritySum(a.victims), prioritySum(b.victims)
	if sa != sb {
		return sa < sb
	}
	if len(a.victims) != len(b.victims) {
		return len(a.victims) < len(b.victims)
	}
	return a.node < b.node
}

func prioritySum(pods []*corev1.Pod) int64 {
	var sum int64
	for _, p := range pods {
		// Offset like upstream so that negative priorities still count.
		sum += int64(priorityOf(p)) + 1<<31
	}
	return sum
}

// selectVictims removes every lower-priority pod from the node, checks the
// pod fits, then gives back as many of them as it can, most important
// first. It returns the victims, most important first, or nil.
func selectVictims(pod *corev1.Pod, ni *nodeInfo, s *snapshot) []*corev1.Pod {
	var potential []*corev1.Pod
	for _, p := range ni.pods {
		if priorityOf(p) < priorityOf(pod) && p.DeletionTimestamp == nil {
			potential = append(potential, p)
		}
	}
	if len(potential) == 0 {
		return nil
	}
	drop := map[*corev1.Pod]bool{}
	for _, p := range potential {
		drop[p] = true
	}
	if feasible(pod, ni.without(drop), s.replacing(ni.without(drop))) != nil {
		return nil
	}
	sort.SliceStable(potential, func(i, j int) bool { return moreImportant(potential[i], potential[j]) })
	var victims []*corev1.Pod
	for _, p := range potential {
		delete(drop, p)
		trial := ni.without(drop)
		if feasible(pod, trial, s.replacing(trial)) != nil {
			drop[p] = true
			victims = append(victims, p)
		}
	}
	return victims
}

func moreImportant(a, b *corev1.Pod) bool {
	if pa, pb := priorityOf(a), priorityOf(b); pa != pb {
		return pa > pb
	}
	ta, tb := a.Status.StartTime, b.Status.StartTime
	if ta == nil || tb == nil {
		return tb == nil && ta != nil
	}
	return ta.Before(tb)
}

// replacing returns the snapshot with one node's info swapped.
func (s *snapshot) replacing(ni *nodeInfo) *snapshot {
	c := &snapshot{byName: map[string]*nodeInfo{}, nsLabels: s.nsLabels, nominated: s.nominated}
	for _, n := range s.nodes {
		if n.node.Name == ni.node.Name {
			n = ni
		}
		c.nodes = append(c.nodes, n)
		c.byName[n.node.Name] = n
	}
	return c
}

// preempt evicts the candidate's victims and nominates the node for pod,
// as kube-scheduler's prepareCandidate does.
func (s *Scheduler) preempt(ctx context.Context, pod *corev1.Pod, c *candidate) error {
	for _, v := range c.victims {
		if err := s.markDisruption(ctx, v); err != nil {
			return err
		}
		s.recorder.Eventf(v, corev1.EventTypeNormal, "Preempted", "Preempted by pod %s on node %s", pod.UID, c.node)
		err := s.cfg.Client.CoreV1().Pods(v.Namespace).Delete(ctx, v.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &v.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("preempt %s/%s: %w", v.Namespace, v.Name, err)
		}
	}
	if pod.Status.NominatedNodeName == c.node {
		return nil
	}
	next := pod.DeepCopy()
	next.Status.NominatedNodeName = c.node
	_, err := s.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nominate %s for %s/%s: %w", c.node, pod.Namespace, pod.Name, err)
	}
	return nil
}

// markDisruption sets the DisruptionTarget condition kube-scheduler puts on
// a victim before deleting it.
func (s *Scheduler) markDisruption(ctx context.Context, v *corev1.Pod) error {
	next := v.DeepCopy()
	cond := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: corev1.PodReasonPreemptionByScheduler,
		Message: corev1.DefaultSchedulerName + ": preempting to accommodate a higher priority pod", LastTransitionTime: metav1.Now()}
	setPodCondition(next, cond)
	_, err := s.cfg.Client.CoreV1().Pods(v.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("mark %s/%s for preemption: %w", v.Namespace, v.Name, err)
	}
	return nil
}

func setPodCondition(p *corev1.Pod, c corev1.PodCondition) {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == c.Type {
			p.Status.Conditions[i] = c
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, c)
}
