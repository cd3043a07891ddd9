package scheduler

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// describe is what the filters and scores read from a snapshot.
func describe(s *snapshot) string {
	var out []string
	for _, ni := range s.nodes {
		var names []string
		for _, p := range ni.pods {
			names = append(names, p.Name)
		}
		sort.Strings(names)
		cpu, nzCPU, nzMem := ni.requested[corev1.ResourceCPU], ni.nonzero[corev1.ResourceCPU], ni.nonzero[corev1.ResourceMemory]
		out = append(out, fmt.Sprintf("%s: %v cpu=%dm nonzero=%dm/%d", ni.node.Name, names, cpu.MilliValue(), nzCPU.MilliValue(), nzMem.Value()))
	}
	var nom []string
	for _, p := range s.nominated {
		nom = append(nom, p.Name)
	}
	sort.Strings(nom)
	return strings.Join(out, "; ") + fmt.Sprintf("; nominated %v", nom)
}

// TestCacheMatchesFullSnapshot drives the cache through informer events
// and assumptions and checks each step's snapshot equals the one built
// from the whole pod list, as the scheduler did before the cache.
func TestCacheMatchesFullSnapshot(t *testing.T) {
	nodes := []*corev1.Node{node("a", "4", nil), node("b", "4", nil)}
	c := newPodCache()
	view := map[string]*corev1.Pod{} // the pod list with assumptions applied
	check := func(step string) {
		t.Helper()
		var pods []*corev1.Pod
		for _, p := range view {
			pods = append(pods, p)
		}
		want := describe(newSnapshot(nodes, pods, nil))
		if got := describe(c.snapshot(nodes, nil)); got != want {
			t.Fatalf("%s: cache snapshot\n %s\nwant\n %s", step, got, want)
		}
	}
	set := func(p *corev1.Pod) { c.setPod(p); view[p.Name] = p }

	set(pod("r1", "a", "1"))
	set(pod("r2", "b", "500m"))
	set(pod("free", "", ""))
	check("bound and pending pods")

	pending := pod("p1", "", "1500m")
	set(pending)
	assumed := pending.DeepCopy()
	assumed.Spec.NodeName = "b"
	c.assume(assumed)
	view["p1"] = assumed
	check("assumed pod counts on its node")

	bound := assumed.DeepCopy()
	set(bound)
	c.forget(bound.UID) // a late forget of a bound pod changes nothing
	check("bound pod replaces its assumption")

	failed := pod("p2", "", "1")
	set(failed)
	a2 := failed.DeepCopy()
	a2.Spec.NodeName = "a"
	c.assume(a2)
	c.forget(a2.UID)
	check("failed binding drops the assumption")

	done := pod("r1", "a", "1")
	done.Status.Phase = corev1.PodSucceeded
	set(done)
	check("terminal pod frees its node")

	nom := pod("n1", "", "2")
	nom.Status.NominatedNodeName = "a"
	set(nom)
	check("nominated pod")
	gone := nom.DeepCopy()
	gone.DeletionTimestamp = &metav1.Time{}
	set(gone)
	check("deleting nominated pod")

	moved := pod("r2", "b", "2")
	set(moved)
	check("updated requests")

	c.deletePod(moved.UID)
	delete(view, "r2")
	c.deletePod(bound.UID)
	delete(view, "p1")
	check("deleted pods")

	elsewhere := pod("x", "c", "1")
	set(elsewhere)
	check("pod on a node not in the snapshot")

	// Before the informer's event: the assumption waits for the pod.
	early := pod("e", "", "1")
	ea := early.DeepCopy()
	ea.Spec.NodeName = "b"
	c.assume(ea)
	check("assumption before the pod's event")
	c.setPod(early)
	view["e"] = ea
	check("pod event after its assumption")
}

// TestSnapshotPodsAreShared checks that a reader appending to a node's pods
// (as preemption's copies do) does not change the cache.
func TestSnapshotPodsAreShared(t *testing.T) {
	nodes := []*corev1.Node{node("a", "4", nil)}
	c := newPodCache()
	c.setPod(pod("r1", "a", "1"))
	c.setPod(pod("r2", "a", "1"))
	s1 := c.snapshot(nodes, nil)
	s1.nodes[0].pods = append(s1.nodes[0].pods, pod("extra", "a", "1"))
	s2 := c.snapshot(nodes, nil)
	if got := describe(s2); got != "a: [r1 r2] cpu=2000m nonzero=2000m/419430400; nominated []" {
		t.Fatalf("snapshot after a reader's writes: %s", got)
	}
}

// BenchmarkSnapshot compares a snapshot from the whole pod list (what
// every attempt built before the cache) with one from the cache, with
// 1,000 pods on one node.
func BenchmarkSnapshot(b *testing.B) {
	nodes := []*corev1.Node{node("a", "100", nil)}
	var pods []*corev1.Pod
	c := newPodCache()
	for i := 0; i < 1000; i++ {
		p := pod(fmt.Sprintf("p%d", i), "a", "10m")
		pods = append(pods, p)
		c.setPod(p)
	}
	b.Run("full", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			newSnapshot(nodes, pods, nil)
		}
	})
	b.Run("cache", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			// Each attempt assumes one more pod, so the node's list is rebuilt.
			c.setPod(pods[i%len(pods)])
			c.snapshot(nodes, nil)
		}
	})
}
