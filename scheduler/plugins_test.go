package scheduler

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// zoned returns three nodes in two zones with their hostname labels.
func zoned() []*corev1.Node {
	mk := func(name, zone string) *corev1.Node {
		return node(name, "4", map[string]string{corev1.LabelHostname: name, corev1.LabelTopologyZone: zone})
	}
	return []*corev1.Node{mk("a", "z1"), mk("b", "z1"), mk("c", "z2")}
}

func labelled(p *corev1.Pod, kv ...string) *corev1.Pod {
	p.Labels = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Labels[kv[i]] = kv[i+1]
	}
	return p
}

func term(key string, kv ...string) corev1.PodAffinityTerm {
	ml := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		ml[kv[i]] = kv[i+1]
	}
	return corev1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: ml}}
}

func TestInterPodAffinity(t *testing.T) {
	web := labelled(pod("web-1", "a", ""), "app", "web")
	cases := []struct {
		name    string
		pod     *corev1.Pod
		running []*corev1.Pod
		want    string
		reason  string
	}{
		{name: "affinity to the zone of web", running: []*corev1.Pod{labelled(pod("web-1", "c", ""), "app", "web")},
			pod: func() *corev1.Pod {
				p := pod("cache", "", "")
				p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term(corev1.LabelTopologyZone, "app", "web")}}}
				return p
			}(), want: "c"},
		{name: "affinity with no matching pod anywhere fails", running: nil,
			pod: func() *corev1.Pod {
				p := pod("cache", "", "")
				p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term(corev1.LabelHostname, "app", "web")}}}
				return p
			}(), reason: "3 node(s) didn't match pod affinity rules"},
		{name: "first pod of a self-affine group goes anywhere", running: nil,
			pod: func() *corev1.Pod {
				p := labelled(pod("web-1", "", ""), "app", "web")
				p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term(corev1.LabelHostname, "app", "web")}}}
				return p
			}(), want: "a"},
		{name: "anti-affinity per hostname avoids a", running: []*corev1.Pod{web},
			pod: func() *corev1.Pod {
				p := labelled(pod("web-2", "", ""), "app", "web")
				p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term(corev1.LabelHostname, "app", "web")}}}
				return p
			}(), want: "b"},
		{name: "anti-affinity per zone leaves only c", running: []*corev1.Pod{web},
			pod: func() *corev1.Pod {
				p := labelled(pod("web-2", "", ""), "app", "web")
				p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term(corev1.LabelTopologyZone, "app", "web")}}}
				return p
			}(), want: "c"},
		{name: "existing pod's anti-affinity keeps others out", running: []*corev1.Pod{func() *corev1.Pod {
			p := pod("loner", "c", "")
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term(corev1.LabelHostname, "app", "web")}}}
			return p
		}(), labelled(pod("w1", "a", "3500m"), "x", "y"), labelled(pod("w2", "b", "3500m"), "x", "y")},
			pod: labelled(pod("web-9", "", "1"), "app", "web"), reason: "1 node(s) didn't satisfy existing pods anti-affinity rules, 2 Insufficient cpu"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, reasons := pick(c.pod, zoned(), c.running)
			if got != c.want {
				t.Fatalf("pick = %q (reasons %v), want %q", got, reasons, c.want)
			}
			if c.reason != "" {
				if msg := histogram(3, reasons); !strings.Contains(msg, c.reason) {
					t.Errorf("message %q does not contain %q", msg, c.reason)
				}
			}
		})
	}
}

func TestTopologySpread(t *testing.T) {
	spread := func(p *corev1.Pod, key string, skew int32, when corev1.UnsatisfiableConstraintAction) *corev1.Pod {
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
			MaxSkew: skew, TopologyKey: key, WhenUnsatisfiable: when,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}})
		return p
	}
	running := []*corev1.Pod{labelled(pod("w1", "a", ""), "app", "web"), labelled(pod("w2", "b", ""), "app", "web")}
	// Zone z1 has two, z2 none: a skew of 1 allows only z2.
	got, reasons := pick(spread(labelled(pod("w3", "", ""), "app", "web"), corev1.LabelTopologyZone, 1, corev1.DoNotSchedule), zoned(), running)
	if got != "c" {
		t.Fatalf("zone spread picked %q (%v), want c", got, reasons)
	}
	// With c full, nothing satisfies the constraint.
	full := append([]*corev1.Pod{pod("hog", "c", "4")}, running...)
	got, reasons = pick(spread(labelled(pod("w3", "", "1"), "app", "web"), corev1.LabelTopologyZone, 1, corev1.DoNotSchedule), zoned(), full)
	if got != "" || reasons["node(s) didn't match pod topology spread constraints"] != 2 || reasons["Insufficient cpu"] != 1 {
		t.Fatalf("got %q reasons %v", got, reasons)
	}
	// A node without the key is out.
	nodes := append(zoned(), node("d", "4", nil))
	snap := newSnapshot(nodes, nil, nil)
	v := feasible(spread(labelled(pod("w3", "", ""), "app", "web"), corev1.LabelHostname, 1, corev1.DoNotSchedule), snap.byName["d"], snap)
	if v == nil || v.reason != "node(s) didn't match pod topology spread constraints (missing required label)" || v.resolvable {
		t.Fatalf("verdict for d: %+v", v)
	}
	// As a preference, the emptier zone scores higher.
	got, _ = pick(spread(labelled(pod("w3", "", ""), "app", "web"), corev1.LabelTopologyZone, 1, corev1.ScheduleAnyway), zoned(), running)
	if got != "c" {
		t.Fatalf("soft zone spread picked %q, want c", got)
	}
}

func TestScores(t *testing.T) {
	nodes := zoned()
	nodes[2].Spec.Taints = []corev1.Taint{{Key: "spot", Effect: corev1.TaintEffectPreferNoSchedule}}
	p := pod("p", "", "")
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{
		Weight: 50, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}}}}}}
	if got, _ := pick(p, nodes, nil); got != "b" {
		t.Errorf("preferred node affinity picked %q, want b", got)
	}
	// The PreferNoSchedule taint pushes away from c even though c is empty
	// and a, b hold pods.
	busy := []*corev1.Pod{pod("x", "a", "100m"), pod("y", "b", "100m")}
	if got, _ := pick(pod("q", "", ""), nodes, busy); got == "c" {
		t.Errorf("picked the PreferNoSchedule node c")
	}
	// Replicas of one owner spread over hostnames by default.
	owned := func(name, node string) *corev1.Pod {
		p := labelled(pod(name, node, ""), "app", "rs")
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "rs", Controller: &yes}}
		return p
	}
	plain := zoned()
	if got, _ := pick(owned("r3", ""), plain, []*corev1.Pod{owned("r1", "a"), owned("r2", "b")}); got != "c" {
		t.Errorf("replica went to %q, want the empty node c", got)
	}
}

func TestPreemption(t *testing.T) {
	prio := func(p *corev1.Pod, v int32) *corev1.Pod { p.Spec.Priority = &v; return p }
	nodes := []*corev1.Node{node("a", "2", nil), node("b", "2", nil)}
	running := []*corev1.Pod{prio(pod("low-a", "a", "1500m"), 10), prio(pod("tiny-a", "a", "100m"), 0),
		prio(pod("mid-b", "b", "1500m"), 100)}
	high := prio(pod("high", "", "1"), 1000)
	snap := newSnapshot(nodes, running, nil)
	node, verdicts := place(high, snap)
	if node != "" {
		t.Fatalf("placed on %q without preemption", node)
	}
	c, msg := findCandidate(high, snap, verdicts)
	if c == nil {
		t.Fatalf("no candidate: %s", msg)
	}
	if c.node != "a" || len(c.victims) != 1 || c.victims[0].Name != "low-a" {
		t.Fatalf("candidate %s with %d victims %v, want a with [low-a]", c.node, len(c.victims), c.victims)
	}
	// A pod that may not preempt says so.
	never := corev1.PreemptNever
	high.Spec.PreemptionPolicy = &never
	if _, msg := findCandidate(high, snap, verdicts); msg != "preemption: not eligible due to preemptionPolicy=Never." {
		t.Errorf("message %q", msg)
	}
	// Equal priority: no victims.
	peer := prio(pod("peer", "", "1"), 0)
	_, verdicts = place(peer, newSnapshot(nodes, []*corev1.Pod{prio(pod("l", "a", "1500m"), 0), prio(pod("m", "b", "1500m"), 0)}, nil))
	if _, msg := findCandidate(peer, newSnapshot(nodes, nil, nil), verdicts); !strings.Contains(msg, "2 No preemption victims found for incoming pod") {
		t.Errorf("message %q", msg)
	}
}

func TestRequestsWithSidecarsAndOverhead(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	req := func(cpu string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}
	}
	p := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "sidecar", RestartPolicy: &always, Resources: req("200m")}, {Name: "init", Resources: req("1")}},
		Containers:     []corev1.Container{{Name: "app", Resources: req("500m")}},
		Overhead:       corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")},
	}}
	got := requests(p)[corev1.ResourceCPU]
	// max(app 500m + sidecar 200m, init 1 + sidecar 200m) + overhead 50m.
	if got.MilliValue() != 1250 {
		t.Errorf("cpu request = %dm, want 1250m", got.MilliValue())
	}
}

func TestHostPorts(t *testing.T) {
	withPort := func(p *corev1.Pod, port int32, proto corev1.Protocol, ip string) *corev1.Pod {
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: port, Protocol: proto, HostIP: ip}}
		return p
	}
	nodes := []*corev1.Node{node("a", "2", nil)}
	running := []*corev1.Pod{withPort(pod("x", "a", ""), 8080, corev1.ProtocolTCP, "")}
	if got, _ := pick(withPort(pod("udp", "", ""), 8080, corev1.ProtocolUDP, ""), nodes, running); got != "a" {
		t.Errorf("UDP on the same port number should fit, got %q", got)
	}
	if got, r := pick(withPort(pod("tcp", "", ""), 8080, corev1.ProtocolTCP, "10.0.0.1"), nodes, running); got != "" || r["node(s) didn't have free ports for the requested pod ports"] != 1 {
		t.Errorf("TCP 8080 should conflict with 0.0.0.0:8080, got %q %v", got, r)
	}
}

func TestNormalizedImage(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                "docker.io/library/busybox:latest",
		"busybox:1.36":           "docker.io/library/busybox:1.36",
		"user/app":               "docker.io/user/app:latest",
		"localhost:5000/app:v1":  "localhost:5000/app:v1",
		"registry.k8s.io/pause":  "registry.k8s.io/pause:latest",
		"ghcr.io/a/b@sha256:abc": "ghcr.io/a/b@sha256:abc",
	} {
		if got := normalizedImage(in); got != want {
			t.Errorf("normalizedImage(%q) = %q, want %q", in, got, want)
		}
	}
}
