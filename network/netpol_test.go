package network

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func policyPodObj(ns, name, node, ip string, labels map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}}
}

func policyFixture() PolicyInput {
	udp := corev1.ProtocolUDP
	end := int32(9100)
	named := intstr.FromString("http")
	num := intstr.FromInt32(9000)
	return PolicyInput{
		Node: "n1",
		Namespaces: []*corev1.Namespace{
			{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "mon", Labels: map[string]string{"team": "ops"}}},
		},
		Pods: []*corev1.Pod{
			policyPodObj("default", "web", "n1", "10.244.0.5", map[string]string{"app": "web"}, corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}),
			policyPodObj("default", "client", "n2", "10.244.1.6", map[string]string{"role": "client"}),
			policyPodObj("default", "other", "n1", "10.244.0.7", nil),
			policyPodObj("mon", "prom", "n2", "10.244.1.9", map[string]string{"app": "prom"}),
			policyPodObj("default", "remote-web", "n2", "10.244.1.10", map[string]string{"app": "web"}, corev1.ContainerPort{Name: "http", ContainerPort: 8081, Protocol: corev1.ProtocolTCP}),
			{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hostnet", Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true}, Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "192.168.49.2"}},
		},
		Policies: []*networkingv1.NetworkPolicy{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-allow"}, Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{
					{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
						Ports: []networkingv1.NetworkPolicyPort{{Port: &named}}},
					{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ops"}}}}},
					{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.168.0.0/16", Except: []string{"192.168.49.0/24"}}}},
						Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &num, EndPort: &end}}},
					// Selects nothing: the rule allows nothing.
					{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "nobody"}}}}},
				},
			}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "other-egress"}, Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{
					{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
						Ports: []networkingv1.NetworkPolicyPort{{Port: &named}}},
				},
			}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "mon", Name: "deny-all"}, Spec: networkingv1.NetworkPolicySpec{}},
		},
	}
}

// chainTexts is a rendered table's chains as nft text, for comparisons.
func chainTexts(r *PolicyRules) map[string][]string {
	out := map[string][]string{}
	for name, rules := range r.Chains {
		texts := []string{}
		for _, rule := range rules {
			texts = append(texts, rule.String())
		}
		out[name] = texts
	}
	return out
}

func TestRenderPolicies(t *testing.T) {
	rules := RenderPolicies(policyFixture())
	webIn, webOut, otherOut := chainName("ingress", "default/web"), chainName("egress", "default/web"), chainName("egress", "default/other")
	// other-egress selects every pod of default: egress to web pods by
	// their own named port numbers.
	egress := []string{"ip daddr 10.244.0.5 tcp dport 8080 return", "ip daddr 10.244.1.10 tcp dport 8081 return", "drop"}
	want := map[string][]string{
		webIn: {
			// The named port resolves on web itself.
			"ip saddr 10.244.1.6 tcp dport 8080 return",
			// namespaceSelector alone: every pod of the selected namespaces, any port.
			"ip saddr 10.244.1.9 return",
			"ip saddr 192.168.0.0/16 ip saddr != 192.168.49.0/24 udp dport 9000-9100 return",
			// role=nobody selects nothing: that rule allows nothing.
			"drop",
		},
		webOut:   egress,
		otherOut: egress,
	}
	if got := chainTexts(rules); !reflect.DeepEqual(got, want) {
		t.Errorf("chains:\n got %q\nwant %q", got, want)
	}
	wantElems := map[string]map[string]string{
		mapPolicyEgress:  {"10.244.0.5": "jump " + webOut, "10.244.0.7": "jump " + otherOut},
		mapPolicyIngress: {"10.244.0.5": "jump " + webIn},
	}
	if !reflect.DeepEqual(rules.Elems, wantElems) {
		t.Errorf("elements %v, want %v", rules.Elems, wantElems)
	}
	// Deterministic: the same input gives the same rules (no needless syncs).
	if again := RenderPolicies(policyFixture()); !reflect.DeepEqual(again, rules) {
		t.Error("rendering is not deterministic")
	}
	// No policies: no chains, empty maps (the fixed chain lets all through).
	in := policyFixture()
	in.Policies = nil
	if r := RenderPolicies(in); len(r.Chains) != 0 || len(r.Elems[mapPolicyIngress])+len(r.Elems[mapPolicyEgress]) != 0 {
		t.Errorf("without policies: %v %v", r.Chains, r.Elems)
	}
	// mon/deny-all isolates prom, which runs on n2: a chain of one drop.
	in = policyFixture()
	in.Node = "n2"
	r := RenderPolicies(in)
	prom := chainName("ingress", "mon/prom")
	if got := chainTexts(r)[prom]; !reflect.DeepEqual(got, []string{"drop"}) || r.Elems[mapPolicyIngress]["10.244.1.9"] != "jump "+prom {
		t.Errorf("deny-all on n2: chain %q, elements %v", got, r.Elems)
	}
	// An empty from list with ports, a /32 and an IPv6 ipBlock, an egress
	// rule without peers or ports.
	in = policyFixture()
	num := intstr.FromInt32(53)
	udp := corev1.ProtocolUDP
	in.Policies = []*networkingv1.NetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mixed"}, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress: []networkingv1.NetworkPolicyIngressRule{
			{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &num}}},
			{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.9/32"}}, {IPBlock: &networkingv1.IPBlock{CIDR: "fd00::/8"}}}},
		},
		Egress: []networkingv1.NetworkPolicyEgressRule{{}},
	}}}
	got := chainTexts(RenderPolicies(in))
	if w := []string{"udp dport 53 return", "ip saddr 192.0.2.9 return", "drop"}; !reflect.DeepEqual(got[webIn], w) {
		t.Errorf("mixed ingress: %q, want %q", got[webIn], w)
	}
	if w := []string{"return", "drop"}; !reflect.DeepEqual(got[webOut], w) {
		t.Errorf("mixed egress: %q, want %q", got[webOut], w)
	}
}

// TestPodChangeMatters checks which pod changes the enforcer renders for,
// and that every change it skips leaves the rendered rules as they were.
func TestPodChangeMatters(t *testing.T) {
	in := policyFixture()
	byName := map[string]*corev1.Pod{}
	for _, p := range in.Pods {
		byName[p.Name] = p
	}
	noIP := policyPodObj("default", "starting", "n1", "", map[string]string{"app": "web"})
	noIP.Status.PodIPs = nil
	withIP := func(p *corev1.Pod, ip string) *corev1.Pod {
		c := p.DeepCopy()
		c.Status.PodIP, c.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		return c
	}
	ready := func(p *corev1.Pod) *corev1.Pod {
		c := p.DeepCopy()
		c.Status.Conditions = append(c.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
		return c
	}
	relabel := func(p *corev1.Pod, l map[string]string) *corev1.Pod {
		c := p.DeepCopy()
		c.Labels = l
		return c
	}
	// A pod of a namespace without policies, on another node, labelled
	// like no peer selects.
	lone := policyPodObj("other", "lone", "n2", "10.244.1.50", map[string]string{"x": "y"})
	bystander := policyPodObj("default", "bystander", "n2", "10.244.1.51", map[string]string{"x": "y"})
	cases := []struct {
		name     string
		old, new *corev1.Pod
		pols     []*networkingv1.NetworkPolicy
		want     bool
	}{
		{name: "pod without an IP yet", new: noIP, want: false},
		{name: "status update of a selected pod", old: byName["web"], new: ready(byName["web"]), want: false},
		{name: "selected pod gets its IP", old: noIP, new: withIP(noIP, "10.244.0.20"), want: true},
		{name: "selected pod deleted", old: byName["web"], want: true},
		{name: "peer pod added", new: withIP(policyPodObj("default", "c2", "n2", "", map[string]string{"role": "client"}), "10.244.1.20"), want: true},
		{name: "unselected pod elsewhere added", new: lone, want: false},
		{name: "unselected pod elsewhere deleted", old: lone, want: false},
		{name: "unselected pod elsewhere in a policy's namespace", new: bystander, want: false},
		{name: "unselected pod gets a peer's labels", old: bystander, new: relabel(bystander, map[string]string{"role": "client"}), want: true},
		{name: "labels no peer selector of its namespace matches", old: lone, new: relabel(lone, map[string]string{"role": "client"}), want: false},
		// "other-egress" selects every pod of default on n1.
		{name: "any pod of default on the node", new: withIP(policyPodObj("default", "new", "n1", "", nil), "10.244.0.30"), want: true},
		{name: "finished pod was never a subject", old: func() *corev1.Pod {
			p := lone.DeepCopy()
			p.Status.Phase = corev1.PodSucceeded
			return p
		}(), new: func() *corev1.Pod {
			p := relabel(lone, map[string]string{"role": "client"})
			p.Status.Phase = corev1.PodSucceeded
			return p
		}(), want: false},
		{name: "no policies", old: byName["web"], new: relabel(byName["web"], nil), pols: []*networkingv1.NetworkPolicy{}, want: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pols := in.Policies
			if c.pols != nil {
				pols = c.pols
			}
			nsLabels := func(name string) labels.Set {
				for _, ns := range append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}}) {
					if ns.Name == name {
						return labels.Merge(labels.Set{}, ns.Labels)
					}
				}
				return nil
			}
			if got := PodChangeMatters(in.Node, c.old, c.new, pols, nsLabels); got != c.want {
				t.Fatalf("PodChangeMatters = %v, want %v", got, c.want)
			}
			if c.want {
				return
			}
			// Skipped: the rules with the old pod and with the new one agree.
			render := func(p *corev1.Pod) *PolicyRules {
				var pods []*corev1.Pod
				for _, q := range in.Pods {
					if (c.old == nil || q.Name != c.old.Name) && (c.new == nil || q.Name != c.new.Name) {
						pods = append(pods, q)
					}
				}
				if p != nil {
					pods = append(pods, p)
				}
				return RenderPolicies(PolicyInput{Node: in.Node, Pods: pods, Namespaces: in.Namespaces, Policies: pols})
			}
			if before, after := render(c.old), render(c.new); !reflect.DeepEqual(before, after) {
				t.Fatalf("skipped change alters the rules:\n%v\nvs\n%v", chainTexts(before), chainTexts(after))
			}
		})
	}
}
