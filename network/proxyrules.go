package network

import (
	"fmt"
	"hash/fnv"
	"net"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// ProxyTable is the nftables table of a node's service proxy.
const ProxyTable = "nanokube"

// ProxyInput is what a node's service rules are rendered from.
type ProxyInput struct {
	Node        string
	ClusterCIDR *net.IPNet
	// DNS is the node-local DNS listener the ClusterDNS service goes to.
	DNS, ClusterDNS net.IP
	Services        []*corev1.Service
	// Slices are the EndpointSlices by "namespace/service".
	Slices map[string][]*discoveryv1.EndpointSlice
}

// ProxyRules is the rendered desired state of the service chains of the
// proxy table: one chain per service port and per endpoint, affinity
// sets and the elements of the dispatch maps and the per-service
// endpoint maps. The fixed part (hooks, dispatch chains, masquerade,
// reject) belongs to the netlink backend. It is diffed against what was
// applied (or, after a restart, read back from the kernel), so an update
// touches only the chains and elements that changed.
type ProxyRules struct {
	Chains map[string][]Rule            // chain name → rules
	Sets   map[string]int32             // affinity set → timeout seconds
	Elems  map[string]map[string]string // map → key → verdict or data
	// PodCIDR: traffic to a service from outside it is masqueraded
	// (the dispatch chain marks it for the keys in the masq- sets).
	PodCIDR string
}

// The dispatch maps of the table.
const (
	mapServiceIPs     = "service-ips"           // daddr . proto . port → goto svc/ext chain
	mapNodePorts      = "service-nodeports"     // proto . port → goto ext chain
	mapNoEndpoints    = "no-endpoint-services"  // daddr . proto . port → reject / drop
	mapNoEndpointPort = "no-endpoint-nodeports" // proto . port → reject / drop
	setHairpin        = "hairpin"               // endpoint . endpoint: masquerade a pod reaching itself
	setMasqIPs        = "masq-service-ips"      // daddr . proto . port whose path masquerades non-pod clients
	setMasqNodePorts  = "masq-nodeports"        // proto . port, the same for node ports
	// epMapPrefix names a big service's endpoint map: index → ip . port.
	epMapPrefix = "epm-"
	masqMark    = 0x4000
	// maxCascade is the most endpoints a service chain picks from with
	// one numgen rule per endpoint; bigger services use one numgen
	// lookup in a named endpoint map.
	maxCascade = 16
)

// chainName is a readable, bounded nft name: kind-hash-ns/name/proto/port.
func chainName(kind, id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	n := fmt.Sprintf("%s-%08x-%s", kind, h.Sum32(), id)
	if len(n) > 200 {
		n = n[:200]
	}
	return n
}

// affinitySet names an endpoint's ClientIP affinity set; the timeout is
// part of the name, so a new timeout is a new set.
func affinitySet(epChain string, timeout int32) string {
	return fmt.Sprintf("aff%d-%s", timeout, epChain[4:])
}

type proxyEP struct {
	ip, node string
	port     int32
}

// proxyEndpoints picks the endpoints of a service port like kube-proxy:
// the ready ones; when none is ready, the serving terminating ones as a
// fallback. Terminating endpoints are dropped otherwise.
func proxyEndpoints(slices []*discoveryv1.EndpointSlice, portName string, proto corev1.Protocol) []proxyEP {
	var ready, term []proxyEP
	seen := map[string]bool{}
	for _, sl := range slices {
		if sl.AddressType != "" && sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		var port int32
		found := false
		for _, pt := range sl.Ports {
			name := ""
			if pt.Name != nil {
				name = *pt.Name
			}
			p := corev1.ProtocolTCP
			if pt.Protocol != nil {
				p = *pt.Protocol
			}
			if name == portName && p == proto && pt.Port != nil {
				port, found = *pt.Port, true
			}
		}
		if !found {
			continue
		}
		for _, e := range sl.Endpoints {
			c := e.Conditions
			isReady := c.Ready == nil || *c.Ready
			isTerm := c.Terminating != nil && *c.Terminating
			isServing := c.Serving == nil || *c.Serving
			node := ""
			if e.NodeName != nil {
				node = *e.NodeName
			}
			for _, a := range e.Addresses {
				key := net.JoinHostPort(a, fmt.Sprint(port))
				if seen[key] || net.ParseIP(a).To4() == nil {
					continue
				}
				switch {
				case isReady && !isTerm:
					seen[key] = true
					ready = append(ready, proxyEP{ip: a, node: node, port: port})
				case isServing && isTerm:
					seen[key] = true
					term = append(term, proxyEP{ip: a, node: node, port: port})
				}
			}
		}
	}
	out := ready
	if len(out) == 0 {
		out = term
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ip != out[j].ip {
			return out[i].ip < out[j].ip
		}
		return out[i].port < out[j].port
	})
	return out
}

func localOnly(eps []proxyEP, node string) []proxyEP {
	var out []proxyEP
	for _, e := range eps {
		if e.node == node {
			out = append(out, e)
		}
	}
	return out
}

// RenderProxy computes the desired proxy state of one node.
func RenderProxy(in ProxyInput) *ProxyRules {
	r := newProxyRules(in)
	for _, s := range in.Services {
		r.addService(in, s)
	}
	return r
}

func newProxyRules(in ProxyInput) *ProxyRules {
	r := &ProxyRules{Chains: map[string][]Rule{}, Sets: map[string]int32{}, Elems: map[string]map[string]string{
		mapServiceIPs: {}, mapNodePorts: {}, mapNoEndpoints: {}, mapNoEndpointPort: {}, setHairpin: {}, setMasqIPs: {}, setMasqNodePorts: {},
	}}
	if in.ClusterCIDR != nil {
		r.PodCIDR = in.ClusterCIDR.String()
	}
	return r
}

// addService renders the chains, sets and elements of one service into r.
func (r *ProxyRules) addService(in ProxyInput, s *corev1.Service) {
	notPod := r.PodCIDR
	// masq: traffic from outside the pod range (the node, the host,
	// NodePort and LoadBalancer clients) to this key is masqueraded so
	// the reply comes back through this node; pods keep their IP. One
	// set element instead of a rule in every service chain.
	masq := func(set, key string) {
		if notPod != "" {
			r.Elems[set][key] = ""
		}
	}
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	vip := s.Spec.ClusterIP
	headless := vip == "" || vip == corev1.ClusterIPNone
	if headless || net.ParseIP(vip).To4() == nil {
		return
	}
	var extIPs []string
	for _, ip := range s.Spec.ExternalIPs {
		if net.ParseIP(ip).To4() != nil {
			extIPs = append(extIPs, ip)
		}
	}
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if net.ParseIP(ing.IP).To4() != nil {
				extIPs = append(extIPs, ing.IP)
			}
		}
	}
	affinity := int32(0)
	if s.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = corev1.DefaultClientIPServiceAffinitySeconds
		if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity = *c.ClientIP.TimeoutSeconds
		}
	}
	internalLocal := s.Spec.InternalTrafficPolicy != nil && *s.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	externalLocal := s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal &&
		(s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer)
	slices := in.Slices[s.Namespace+"/"+s.Name]
	for _, sp := range s.Spec.Ports {
		proto := strings.ToLower(string(sp.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			continue
		}
		id := fmt.Sprintf("%s/%s/%s/%s", s.Namespace, s.Name, proto, sp.Name)
		var eps []proxyEP
		if in.DNS != nil && vip == in.ClusterDNS.String() {
			eps = []proxyEP{{ip: in.DNS.String(), node: in.Node, port: 53}}
		} else {
			eps = proxyEndpoints(slices, sp.Name, sp.Protocol)
		}
		vipKey := fmt.Sprintf("%s . %s . %d", vip, proto, sp.Port)
		if len(eps) == 0 {
			// kube-proxy: no endpoints at all → reject every entry.
			r.Elems[mapNoEndpoints][vipKey] = "goto reject-chain"
			for _, ip := range extIPs {
				r.Elems[mapNoEndpoints][fmt.Sprintf("%s . %s . %d", ip, proto, sp.Port)] = "goto reject-chain"
			}
			if sp.NodePort != 0 {
				r.Elems[mapNoEndpointPort][fmt.Sprintf("%s . %d", proto, sp.NodePort)] = "goto reject-chain"
			}
			continue
		}
		svc := chainName("svc", id)
		epChain := func(e proxyEP) string {
			return chainName("sep", fmt.Sprintf("%s__%s/%d", id, e.ip, e.port))
		}
		// lb renders a chain that spreads over eps: straight DNAT by
		// a random number, or (ClientIP affinity) through one chain
		// per endpoint that remembers the client.
		lb := func(name string, eps []proxyEP, pre []Rule) {
			rules := pre
			switch {
			case affinity > 0:
				for _, e := range eps {
					rules = append(rules, Rule{SaddrInSet: affinitySet(epChain(e), affinity), Goto: epChain(e)})
				}
				for i, e := range eps {
					rules = append(rules, Rule{Random: cascade(len(eps), i), Goto: epChain(e)})
				}
			case len(eps) <= maxCascade:
				// Rule i takes 1/(N-i) of what is left, so each of the
				// N endpoints gets 1/N (iptables' statistic cascade).
				// No set per service: the kernel finds sets by a walk
				// of all sets of the table, which made a full sync
				// quadratic (see docs/DESIGN.md).
				for i, e := range eps {
					rules = append(rules, Rule{Random: cascade(len(eps), i), DNAT: fmt.Sprintf("%s:%d", e.ip, e.port)})
				}
			default:
				m := epMapPrefix + name[4:]
				elems := make(map[string]string, len(eps))
				for i, e := range eps {
					elems[fmt.Sprint(i)] = fmt.Sprintf("%s . %d", e.ip, e.port)
				}
				r.Elems[m] = elems
				rules = append(rules, Rule{DNATMap: m, MapMod: len(eps)})
			}
			r.Chains[name] = rules
		}
		clusterEPs := eps
		if internalLocal {
			clusterEPs = localOnly(eps, in.Node)
		}
		if len(clusterEPs) == 0 {
			r.Elems[mapNoEndpoints][vipKey] = "drop"
		} else {
			lb(svc, clusterEPs, nil)
			r.Elems[mapServiceIPs][vipKey] = "goto " + svc
			masq(setMasqIPs, vipKey)
		}
		for _, e := range eps {
			// A pod that reaches itself through the service is
			// masqueraded (hairpin), in postrouting.
			r.Elems[setHairpin][e.ip+" . "+e.ip] = ""
			if affinity == 0 {
				continue
			}
			name := epChain(e)
			set := affinitySet(name, affinity)
			r.Sets[set] = affinity
			r.Chains[name] = []Rule{{Update: set}, {DNAT: fmt.Sprintf("%s:%d", e.ip, e.port)}}
		}
		if len(extIPs) == 0 && sp.NodePort == 0 {
			continue
		}
		// External entries (NodePort, LoadBalancer, externalIPs).
		ext := chainName("ext", id)
		var extRules []Rule
		switch {
		case externalLocal:
			local := localOnly(eps, in.Node)
			if len(clusterEPs) > 0 {
				if notPod != "" {
					// The node itself is outside the pod range.
					extRules = append(extRules, Rule{Saddr: notPod, Goto: svc}, Rule{FibSaddrLoc: true, Jump: "mark-for-masquerade"})
				}
				extRules = append(extRules, Rule{FibSaddrLoc: true, Goto: svc})
			}
			if len(local) == 0 {
				// Nothing to answer with on this node: drop like
				// kube-proxy, so clients time out here and use a node
				// that has the pod.
				for _, ip := range extIPs {
					r.Elems[mapNoEndpoints][fmt.Sprintf("%s . %s . %d", ip, proto, sp.Port)] = "drop"
				}
				if sp.NodePort != 0 {
					r.Elems[mapNoEndpointPort][fmt.Sprintf("%s . %d", proto, sp.NodePort)] = "drop"
				}
				continue
			}
			svl := chainName("svl", id)
			lb(svl, local, nil)
			extRules = append(extRules, Rule{Goto: svl})
		case len(clusterEPs) == len(eps):
			// The cluster policy: the service chain.
			ext = svc
		default:
			// internalTrafficPolicy Local: outside traffic still
			// goes to every endpoint.
			lb(ext, eps, nil)
		}
		if ext != svc && extRules != nil {
			r.Chains[ext] = extRules
		}
		for _, ip := range extIPs {
			key := fmt.Sprintf("%s . %s . %d", ip, proto, sp.Port)
			r.Elems[mapServiceIPs][key] = "goto " + ext
			if !externalLocal {
				masq(setMasqIPs, key)
			}
		}
		if sp.NodePort != 0 {
			key := fmt.Sprintf("%s . %d", proto, sp.NodePort)
			r.Elems[mapNodePorts][key] = "goto " + ext
			if !externalLocal {
				masq(setMasqNodePorts, key)
			}
		}
	}
}

// cascade is the numgen modulus of rule i of an n-way random cascade
// (0: the last rule, unconditional).
func cascade(n, i int) int {
	if left := n - i; left > 1 {
		return left
	}
	return 0
}
