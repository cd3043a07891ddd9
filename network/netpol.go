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

// NetpolTable is the nftables table (family ip) that enforces
// NetworkPolicies on a node, hooked on forward: traffic between pods of the
// node (bridged, seen there through br_netfilter) and to and from other
// nodes and Services (routed; Service addresses are already translated to
// the endpoint's there). It is separate from the service proxy's table.
const NetpolTable = "nanokube-netpol"

// The maps of the policy table: a local pod's address → jump to its chain.
const (
	mapPolicyIngress = "policy-ingress" // ip daddr: ingress-isolated pods
	mapPolicyEgress  = "policy-egress"  // ip saddr: egress-isolated pods
)

// PolicyInput is everything a node's NetworkPolicy rules are computed from.
type PolicyInput struct {
	Node       string
	Pods       []*corev1.Pod
	Namespaces []*corev1.Namespace
	Policies   []*networkingv1.NetworkPolicy
}

// PolicyRules is the rendered desired state of a node's policy table
// apart from its fixed forward chain: one chain per isolated local pod
// and direction, and the elements of the two dispatch maps. Like the
// proxy's rules it is diffed against what was applied or read back.
type PolicyRules struct {
	Chains map[string][]Rule            // chain → rules: return what is allowed, then drop
	Elems  map[string]map[string]string // map → pod IP → "jump chain"
}

// policyPod is a pod that policies can select: it has an address on the
// pod network (hostNetwork pods and finished pods are not subjects or peers).
type policyPod struct {
	pod *corev1.Pod
	ips []string
}

// RenderPolicies computes the policy rules of the pods of in.Node.
// Replies of allowed connections pass by conntrack (the fixed chain);
// a pod selected by a policy of a type (Ingress/Egress) accepts only what
// some such policy allows (default deny), every other pod everything.
func RenderPolicies(in PolicyInput) *PolicyRules {
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
	out := &PolicyRules{Chains: map[string][]Rule{}, Elems: map[string]map[string]string{mapPolicyIngress: {}, mapPolicyEgress: {}}}
	// isolate gives a pod its chain (named for the pod, so a change
	// elsewhere leaves it alone) and maps its addresses to it.
	isolate := func(pp policyPod, kind, m string, rules []Rule) {
		name := chainName(kind, pp.pod.Namespace+"/"+pp.pod.Name)
		out.Chains[name] = append(rules, Rule{Verdict: "drop"})
		for _, ip := range pp.ips {
			if _, ok := out.Elems[m][ip]; !ok {
				out.Elems[m][ip] = "jump " + name
			}
		}
	}
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
		if len(ing) > 0 {
			var rules []Rule
			for _, pol := range ing {
				for _, rule := range pol.Spec.Ingress {
					rules = append(rules, r.ingressRule(pp, rule)...)
				}
			}
			isolate(pp, "ingress", mapPolicyIngress, rules)
		}
		if len(eg) > 0 {
			var rules []Rule
			for _, pol := range eg {
				for _, rule := range pol.Spec.Egress {
					rules = append(rules, r.egressRule(pol.Namespace, rule)...)
				}
			}
			isolate(pp, "egress", mapPolicyEgress, rules)
		}
	}
	return out
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

// peer is one "from"/"to" entry resolved: the addresses or CIDRs it
// matches (with an ipBlock's except) and, for selector peers, the pods
// it stands for (named ports resolve on them).
type peer struct {
	addrs  []string
	except string
	pods   []policyPod
	any    bool // an empty list: every address
}

// portSpec is one NetworkPolicyPort resolved: a protocol and an optional
// port or range; proto "" matches everything.
type portSpec struct{ proto, dport string }

// allow is the rules that let pe on port through: one per address.
func (pe peer) allow(dir string, port portSpec) []Rule {
	base := Rule{L4Proto: port.proto, Dport: port.dport, Except: pe.except, Verdict: "return"}
	if pe.any {
		return []Rule{base}
	}
	out := make([]Rule, 0, len(pe.addrs))
	for _, a := range pe.addrs {
		r := base
		if dir == "saddr" {
			r.Saddr = a
		} else {
			r.Daddr = a
		}
		out = append(out, r)
	}
	return out
}

// ingressRule renders one ingress rule for target: the rules of each
// (peer, port) pair that can match anything.
func (r *policyRenderer) ingressRule(target policyPod, rule networkingv1.NetworkPolicyIngressRule) []Rule {
	peers, ok := r.peers(rule.From, target.pod.Namespace)
	if !ok {
		return nil
	}
	ports := []portSpec{{}}
	if len(rule.Ports) > 0 {
		ports = nil
		for _, p := range rule.Ports {
			if m, ok := portMatch(p, target.pod); ok {
				ports = append(ports, m)
			}
		}
	}
	var out []Rule
	for _, pe := range peers {
		for _, pm := range ports {
			out = append(out, pe.allow("saddr", pm)...)
		}
	}
	return out
}

// egressRule renders one egress rule of a policy in namespace ns; named
// ports resolve on the destination pods (they match no ipBlock address).
func (r *policyRenderer) egressRule(ns string, rule networkingv1.NetworkPolicyEgressRule) []Rule {
	peers, ok := r.peers(rule.To, ns)
	if !ok {
		return nil
	}
	var out []Rule
	for _, pe := range peers {
		if len(rule.Ports) == 0 {
			out = append(out, pe.allow("daddr", portSpec{})...)
			continue
		}
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.Type != intstr.String {
				m, _ := portMatch(p, nil)
				out = append(out, pe.allow("daddr", m)...)
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
				to := peer{addrs: unique(byPort[port])}
				out = append(out, to.allow("daddr", portSpec{proto: strings.ToLower(string(proto)), dport: fmt.Sprint(port)})...)
			}
		}
	}
	return out
}

// peers resolves a rule's from/to list; ok is false when the list names
// peers but none of them can match (the rule allows nothing).
func (r *policyRenderer) peers(list []networkingv1.NetworkPolicyPeer, ns string) ([]peer, bool) {
	if len(list) == 0 {
		return []peer{{any: true, pods: r.pods}}, true
	}
	var out []peer
	for _, p := range list {
		if p.IPBlock != nil {
			cidr, ok := ipv4Net(p.IPBlock.CIDR)
			if !ok {
				continue // IPv6 (or invalid): matches no IPv4 packet
			}
			var except []string
			for _, e := range p.IPBlock.Except {
				if c, ok := ipv4Net(e); ok {
					except = append(except, c)
				}
			}
			out = append(out, peer{addrs: []string{cidr}, except: strings.Join(except, ", ")})
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
		out = append(out, peer{addrs: ips, pods: matched})
	}
	return out, len(out) > 0
}

// ipv4Net is an IPv4 CIDR as nft prints it: the network, or the bare
// address for a /32.
func ipv4Net(s string) (string, bool) {
	_, n, err := net.ParseCIDR(s)
	if err != nil || n.IP.To4() == nil {
		return "", false
	}
	if ones, _ := n.Mask.Size(); ones == 32 {
		return n.IP.String(), true
	}
	return n.String(), true
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

// portMatch resolves one NetworkPolicyPort against the pod whose ports
// a named port refers to; ok is false when a named port does not resolve.
func portMatch(p networkingv1.NetworkPolicyPort, pod *corev1.Pod) (portSpec, bool) {
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	m := portSpec{proto: strings.ToLower(string(proto))}
	if p.Port == nil {
		return m, true
	}
	port := p.Port.IntValue()
	if p.Port.Type == intstr.String {
		port = 0
		if pod != nil {
			port = namedPort(pod, p.Port.StrVal, proto)
		}
		if port == 0 {
			return portSpec{}, false
		}
	} else if p.EndPort != nil && int(*p.EndPort) > port {
		m.dport = fmt.Sprintf("%d-%d", port, *p.EndPort)
		return m, true
	}
	m.dport = fmt.Sprint(port)
	return m, true
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
