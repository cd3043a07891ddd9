package network

import (
	"fmt"
	"net"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// NetpolTable is the nftables table (family inet) that enforces
// NetworkPolicies on a node, hooked on forward: traffic between pods of the
// node (bridged, seen there through br_netfilter) and to and from other
// nodes and Services (routed; Service addresses are already translated to
// the endpoint's there). It is separate from the service proxy's table.
const NetpolTable = "nanokube-netpol"

// PolicyInput is everything a node's NetworkPolicy rules are computed from.
type PolicyInput struct {
	Node       string
	Pods       []*corev1.Pod
	Namespaces []*corev1.Namespace
	Policies   []*networkingv1.NetworkPolicy
}

// policyPod is a pod that policies can select: it has an address on the
// pod network (hostNetwork pods and finished pods are not subjects or peers).
type policyPod struct {
	pod *corev1.Pod
	ips []string
}

// RenderPolicies returns the nftables table for the pods of in.Node in
// each family given. Replies of allowed connections pass by conntrack;
// a pod selected by a policy of a type (Ingress/Egress) accepts only what
// some such policy allows (default deny), every other pod everything.
func RenderPolicies(in PolicyInput, families []string) string {
	nsLabels := map[string]labels.Set{}
	for _, ns := range in.Namespaces {
		set := labels.Set{}
		for k, v := range ns.Labels {
			set[k] = v
		}
		set[corev1.LabelMetadataName] = ns.Name // kube-apiserver always sets it
		nsLabels[ns.Name] = set
	}
	var pods []policyPod
	for _, p := range in.Pods {
		if ips := policyIPs(p); len(ips) > 0 {
			pods = append(pods, policyPod{pod: p, ips: ips})
		}
	}
	sort.Slice(pods, func(i, j int) bool {
		return pods[i].pod.Namespace+"/"+pods[i].pod.Name < pods[j].pod.Namespace+"/"+pods[j].pod.Name
	})
	policies := append([]*networkingv1.NetworkPolicy(nil), in.Policies...)
	sort.Slice(policies, func(i, j int) bool {
		return policies[i].Namespace+"/"+policies[i].Name < policies[j].Namespace+"/"+policies[j].Name
	})
	r := &policyRenderer{pods: pods, nsLabels: nsLabels}
	var chains strings.Builder
	var egressMap, ingressMap []string
	mapped := map[string]bool{}
	n := 0
	for _, pp := range pods {
		if pp.pod.Spec.NodeName != in.Node {
			continue
		}
		var ing, eg []*networkingv1.NetworkPolicy
		for _, pol := range policies {
			if pol.Namespace != pp.pod.Namespace || !selects(&pol.Spec.PodSelector, pp.pod.Labels) {
				continue
			}
			if hasPolicyType(pol, networkingv1.PolicyTypeIngress) {
				ing = append(ing, pol)
			}
			if hasPolicyType(pol, networkingv1.PolicyTypeEgress) {
				eg = append(eg, pol)
			}
		}
		key := pp.pod.Namespace + "/" + pp.pod.Name
		if len(ing) > 0 {
			name := fmt.Sprintf("ingress-%d", n)
			n++
			fmt.Fprintf(&chains, "  chain %s {\n    # pod %s, policies %s\n", name, key, policyNames(ing))
			for _, pol := range ing {
				for _, rule := range pol.Spec.Ingress {
					for _, line := range r.ingressRule(pp, rule) {
						fmt.Fprintf(&chains, "    %s return\n", line)
					}
				}
			}
			chains.WriteString("    drop\n  }\n")
			for _, ip := range pp.ips {
				if !mapped["i"+ip] {
					mapped["i"+ip] = true
					ingressMap = append(ingressMap, ip+" : jump "+name)
				}
			}
		}
		if len(eg) > 0 {
			name := fmt.Sprintf("egress-%d", n)
			n++
			fmt.Fprintf(&chains, "  chain %s {\n    # pod %s, policies %s\n", name, key, policyNames(eg))
			for _, pol := range eg {
				for _, rule := range pol.Spec.Egress {
					for _, line := range r.egressRule(pol.Namespace, rule) {
						fmt.Fprintf(&chains, "    %s return\n", line)
					}
				}
			}
			chains.WriteString("    drop\n  }\n")
			for _, ip := range pp.ips {
				if !mapped["e"+ip] {
					mapped["e"+ip] = true
					egressMap = append(egressMap, ip+" : jump "+name)
				}
			}
		}
	}
	var b strings.Builder
	for _, fam := range families {
		fmt.Fprintf(&b, "table %s %s {}\ndelete table %s %s\ntable %s %s {\n", fam, NetpolTable, fam, NetpolTable, fam, NetpolTable)
		b.WriteString("  chain forward {\n    type filter hook forward priority filter; policy accept;\n    ct state established,related accept\n")
		if len(egressMap) > 0 {
			fmt.Fprintf(&b, "    ip saddr vmap { %s }\n", strings.Join(egressMap, ", "))
		}
		if len(ingressMap) > 0 {
			fmt.Fprintf(&b, "    ip daddr vmap { %s }\n", strings.Join(ingressMap, ", "))
		}
		b.WriteString("  }\n")
		b.WriteString(chains.String())
		b.WriteString("}\n")
	}
	return b.String()
}

// policyIPs are the pod's addresses policies match on; none for a pod
// that is no subject or peer (hostNetwork, finished, no IP yet).
func policyIPs(p *corev1.Pod) []string {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.Status.PodIP == "" {
		return nil
	}
	var ips []string
	for _, ip := range p.Status.PodIPs {
		if net.ParseIP(ip.IP).To4() != nil {
			ips = append(ips, ip.IP)
		}
	}
	if len(ips) == 0 && net.ParseIP(p.Status.PodIP).To4() != nil {
		ips = []string{p.Status.PodIP}
	}
	return ips
}

// policyView is what RenderPolicies reads of a pod.
type policyView struct {
	namespace, name, node string
	labels                map[string]string
	ips                   []string
	ports                 [][]corev1.ContainerPort
}

func viewOf(p *corev1.Pod) *policyView {
	if p == nil {
		return nil
	}
	ips := policyIPs(p)
	if len(ips) == 0 {
		return nil
	}
	v := &policyView{namespace: p.Namespace, name: p.Name, node: p.Spec.NodeName, labels: p.Labels, ips: ips}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			v.ports = append(v.ports, c.Ports)
		}
	}
	return v
}

// PodChangeMatters reports whether a pod going from old to new (nil for
// an add or a delete) can change node's rules under pols: not when the
// pod has no policy address before and after (no IP yet, hostNetwork,
// finished), nor when nothing RenderPolicies reads of it changed (a
// status update), nor when no policy selects it as a subject on node or
// as a peer (so without policies no pod change matters). It errs on the
// side of true: a namespaceSelector matches when nsLabels (a namespace's
// labels, nil = unknown) does not know the pod's namespace.
func PodChangeMatters(node string, old, new *corev1.Pod, pols []*networkingv1.NetworkPolicy, nsLabels func(ns string) labels.Set) bool {
	vo, vn := viewOf(old), viewOf(new)
	if reflect.DeepEqual(vo, vn) {
		return false
	}
	return policiesUse(node, vo, pols, nsLabels) || policiesUse(node, vn, pols, nsLabels)
}

func policiesUse(node string, v *policyView, pols []*networkingv1.NetworkPolicy, nsLabels func(string) labels.Set) bool {
	if v == nil {
		return false
	}
	set := labels.Set(v.labels)
	var nsSet labels.Set
	if nsLabels != nil {
		nsSet = nsLabels(v.namespace)
	}
	nsMay := func(sel *metav1.LabelSelector) bool {
		if nsSet == nil {
			return true
		}
		withName := labels.Set{}
		for k, val := range nsSet {
			withName[k] = val
		}
		withName[corev1.LabelMetadataName] = v.namespace
		return selects(sel, withName)
	}
	peerMay := func(list []networkingv1.NetworkPolicyPeer, ns string) bool {
		for _, p := range list {
			switch {
			case p.IPBlock != nil:
			case p.NamespaceSelector == nil:
				if v.namespace == ns && p.PodSelector != nil && selects(p.PodSelector, set) {
					return true
				}
			case nsMay(p.NamespaceSelector) && (p.PodSelector == nil || selects(p.PodSelector, set)):
				return true
			}
		}
		return false
	}
	for _, pol := range pols {
		if v.node == node && pol.Namespace == v.namespace && selects(&pol.Spec.PodSelector, set) {
			return true
		}
		for _, rule := range pol.Spec.Ingress {
			if peerMay(rule.From, pol.Namespace) {
				return true
			}
		}
		for _, rule := range pol.Spec.Egress {
			// An empty list's named ports resolve on every pod.
			if len(rule.To) == 0 || peerMay(rule.To, pol.Namespace) {
				return true
			}
		}
	}
	return false
}

type policyRenderer struct {
	pods     []policyPod
	nsLabels map[string]labels.Set
}

// peer is one "from"/"to" entry resolved: a match expression and, for
// selector peers, the pods it stands for (named ports resolve on them).
type peer struct {
	expr string // "" = any address
	pods []policyPod
	any  bool
}

// ingressRule renders one ingress rule for target: one line per
// (peer, port) pair that can match anything.
func (r *policyRenderer) ingressRule(target policyPod, rule networkingv1.NetworkPolicyIngressRule) []string {
	peers, ok := r.peers(rule.From, target.pod.Namespace, "saddr")
	if !ok {
		return nil
	}
	ports := []string{""}
	if len(rule.Ports) > 0 {
		ports = nil
		for _, p := range rule.Ports {
			if m, ok := portMatch(p, target.pod); ok {
				ports = append(ports, m)
			}
		}
	}
	var out []string
	for _, pe := range peers {
		for _, pm := range ports {
			out = append(out, join(pe.expr, pm))
		}
	}
	return out
}

// egressRule renders one egress rule of a policy in namespace ns; named
// ports resolve on the destination pods (they match no ipBlock address).
func (r *policyRenderer) egressRule(ns string, rule networkingv1.NetworkPolicyEgressRule) []string {
	peers, ok := r.peers(rule.To, ns, "daddr")
	if !ok {
		return nil
	}
	var out []string
	for _, pe := range peers {
		if len(rule.Ports) == 0 {
			out = append(out, pe.expr)
			continue
		}
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.Type != intstr.String {
				m, _ := portMatch(p, nil)
				out = append(out, join(pe.expr, m))
				continue
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			byPort := map[int][]string{}
			for _, pp := range pe.pods {
				if port := namedPort(pp.pod, p.Port.StrVal, proto); port > 0 {
					byPort[port] = append(byPort[port], pp.ips...)
				}
			}
			ports := make([]int, 0, len(byPort))
			for port := range byPort {
				ports = append(ports, port)
			}
			sort.Ints(ports)
			for _, port := range ports {
				out = append(out, fmt.Sprintf("ip daddr { %s } meta l4proto %s th dport %d", strings.Join(unique(byPort[port]), ", "), strings.ToLower(string(proto)), port))
			}
		}
	}
	return out
}

// peers resolves a rule's from/to list; ok is false when the list names
// peers but none of them can match (the rule allows nothing).
func (r *policyRenderer) peers(list []networkingv1.NetworkPolicyPeer, ns, dir string) ([]peer, bool) {
	if len(list) == 0 {
		return []peer{{any: true, pods: r.pods}}, true
	}
	var out []peer
	for _, p := range list {
		if p.IPBlock != nil {
			expr := fmt.Sprintf("ip %s %s", dir, p.IPBlock.CIDR)
			if len(p.IPBlock.Except) > 0 {
				expr += fmt.Sprintf(" ip %s != { %s }", dir, strings.Join(p.IPBlock.Except, ", "))
			}
			out = append(out, peer{expr: expr})
			continue
		}
		var matched []policyPod
		var ips []string
		seen := map[string]bool{}
		for _, pp := range r.pods {
			if !r.peerSelects(p, ns, pp.pod) {
				continue
			}
			matched = append(matched, pp)
			for _, ip := range pp.ips {
				if !seen[ip] {
					seen[ip] = true
					ips = append(ips, ip)
				}
			}
		}
		if len(ips) == 0 {
			continue
		}
		out = append(out, peer{expr: fmt.Sprintf("ip %s { %s }", dir, strings.Join(ips, ", ")), pods: matched})
	}
	return out, len(out) > 0
}

// peerSelects is NetworkPolicyPeer matching: a podSelector alone selects
// pods of the policy's namespace, a namespaceSelector alone every pod of
// the namespaces it selects, both together the selected pods there.
func (r *policyRenderer) peerSelects(p networkingv1.NetworkPolicyPeer, ns string, pod *corev1.Pod) bool {
	if p.NamespaceSelector == nil {
		return pod.Namespace == ns && p.PodSelector != nil && selects(p.PodSelector, pod.Labels)
	}
	if !selects(p.NamespaceSelector, r.nsLabels[pod.Namespace]) {
		return false
	}
	return p.PodSelector == nil || selects(p.PodSelector, pod.Labels)
}

// portMatch renders one NetworkPolicyPort against the pod whose ports a
// named port refers to; ok is false when a named port does not resolve.
func portMatch(p networkingv1.NetworkPolicyPort, pod *corev1.Pod) (string, bool) {
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	l4 := "meta l4proto " + strings.ToLower(string(proto))
	if p.Port == nil {
		return l4, true
	}
	port := p.Port.IntValue()
	if p.Port.Type == intstr.String {
		port = 0
		if pod != nil {
			port = namedPort(pod, p.Port.StrVal, proto)
		}
		if port == 0 {
			return "", false
		}
		return fmt.Sprintf("%s th dport %d", l4, port), true
	}
	if p.EndPort != nil && int(*p.EndPort) > port {
		return fmt.Sprintf("%s th dport %d-%d", l4, port, *p.EndPort), true
	}
	return fmt.Sprintf("%s th dport %d", l4, port), true
}

func namedPort(pod *corev1.Pod, name string, proto corev1.Protocol) int {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, cp := range c.Ports {
				pr := cp.Protocol
				if pr == "" {
					pr = corev1.ProtocolTCP
				}
				if cp.Name == name && pr == proto {
					return int(cp.ContainerPort)
				}
			}
		}
	}
	return 0
}

func selects(sel *metav1.LabelSelector, set labels.Set) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(set)
}

// hasPolicyType applies the defaulting of policyTypes when it is empty:
// Ingress always, Egress when there are egress rules.
func hasPolicyType(pol *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	types := pol.Spec.PolicyTypes
	if len(types) == 0 {
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(pol.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

func policyNames(pols []*networkingv1.NetworkPolicy) string {
	names := make([]string, len(pols))
	for i, p := range pols {
		names[i] = p.Name
	}
	return strings.Join(names, ",")
}

func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func unique(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
