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

// ProxyRules is the rendered desired state of the proxy table: one chain
// per service port and per endpoint, affinity sets and the elements of
// the four dispatch maps. It is diffed against what was applied, so an
// update touches only the chains and elements that changed.
type ProxyRules struct {
	Chains map[string][]string          // chain name → rules
	Sets   map[string]int32             // affinity set → timeout seconds
	Elems  map[string]map[string]string // map → key → verdict
}

// The dispatch maps of the table.
const (
	mapServiceIPs     = "service-ips"           // daddr . proto . port → goto svc/ext chain
	mapNodePorts      = "service-nodeports"     // proto . port → goto ext chain
	mapNoEndpoints    = "no-endpoint-services"  // daddr . proto . port → reject / drop
	mapNoEndpointPort = "no-endpoint-nodeports" // proto . port → reject / drop
	setHairpin        = "hairpin"               // endpoint . endpoint: masquerade a pod reaching itself
	masqMark          = "0x4000"
	// maxCascade is the most endpoints a service chain picks from with
	// one numgen rule per endpoint; bigger services use one numgen map.
	maxCascade = 16
)

// proxyBase is the fixed part of the table; service chains, sets and map
// elements are added to it.
func proxyBase() string {
	return fmt.Sprintf(`table ip %[1]s {
  map %[2]s { type ipv4_addr . inet_proto . inet_service : verdict; }
  map %[3]s { type inet_proto . inet_service : verdict; }
  map %[4]s { type ipv4_addr . inet_proto . inet_service : verdict; }
  map %[5]s { type inet_proto . inet_service : verdict; }
  set %[7]s { type ipv4_addr . ipv4_addr; }
  chain nat-prerouting { type nat hook prerouting priority dstnat; policy accept; jump services; }
  chain nat-output { type nat hook output priority -100; policy accept; jump services; }
  chain nat-postrouting { type nat hook postrouting priority srcnat; policy accept; ct status dnat ip saddr . ip daddr @%[7]s jump mark-for-masquerade; jump masquerading; }
  chain services {
    ip daddr . meta l4proto . th dport vmap @%[2]s
    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @%[3]s
  }
  chain mark-for-masquerade { meta mark set meta mark | %[6]s; }
  chain masquerading {
    meta mark & %[6]s == 0 return
    meta mark set meta mark ^ %[6]s
    masquerade fully-random
  }
  chain filter-input { type filter hook input priority -110; policy accept; ct state new jump service-endpoints-check; }
  chain filter-forward { type filter hook forward priority -110; policy accept; ct state new jump service-endpoints-check; }
  chain filter-output { type filter hook output priority -110; policy accept; ct state new jump service-endpoints-check; }
  chain service-endpoints-check {
    ip daddr . meta l4proto . th dport vmap @%[4]s
    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @%[5]s
  }
  chain reject-chain {
    meta l4proto tcp reject with tcp reset
    reject
  }
}
`, ProxyTable, mapServiceIPs, mapNodePorts, mapNoEndpoints, mapNoEndpointPort, masqMark, setHairpin)
}

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
	r := &ProxyRules{Chains: map[string][]string{}, Sets: map[string]int32{}, Elems: map[string]map[string]string{
		mapServiceIPs: {}, mapNodePorts: {}, mapNoEndpoints: {}, mapNoEndpointPort: {}, setHairpin: {},
	}}
	notPod := ""
	if in.ClusterCIDR != nil {
		notPod = in.ClusterCIDR.String()
	}
	for _, s := range in.Services {
		if s.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		vip := s.Spec.ClusterIP
		headless := vip == "" || vip == corev1.ClusterIPNone
		if headless || net.ParseIP(vip).To4() == nil {
			continue
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
			lb := func(name string, eps []proxyEP, pre []string) {
				rules := pre
				switch {
				case affinity > 0:
					for _, e := range eps {
						rules = append(rules, fmt.Sprintf("ip saddr @%s goto %s", affinitySet(epChain(e), affinity), epChain(e)))
					}
					if len(eps) == 1 {
						rules = append(rules, "goto "+epChain(eps[0]))
						break
					}
					vm := make([]string, len(eps))
					for i, e := range eps {
						vm[i] = fmt.Sprintf("%d : goto %s", i, epChain(e))
					}
					rules = append(rules, fmt.Sprintf("numgen random mod %d vmap { %s }", len(eps), strings.Join(vm, ", ")))
				case len(eps) == 1:
					rules = append(rules, fmt.Sprintf("meta l4proto %s dnat to %s:%d", proto, eps[0].ip, eps[0].port))
				case len(eps) <= maxCascade:
					// Rule i takes 1/(N-i) of what is left, so each of the
					// N endpoints gets 1/N (iptables' statistic cascade).
					// No anonymous map per service: the kernel names each
					// of those with a scan of all sets of the table, which
					// made a full sync quadratic (see docs/DESIGN.md).
					for i, e := range eps {
						cond := ""
						if left := len(eps) - i; left > 1 {
							cond = fmt.Sprintf("numgen random mod %d 0 ", left)
						}
						rules = append(rules, fmt.Sprintf("%smeta l4proto %s dnat to %s:%d", cond, proto, e.ip, e.port))
					}
				default:
					m := make([]string, len(eps))
					for i, e := range eps {
						m[i] = fmt.Sprintf("%d : %s . %d", i, e.ip, e.port)
					}
					rules = append(rules, fmt.Sprintf("meta l4proto %s dnat to numgen random mod %d map { %s }", proto, len(eps), strings.Join(m, ", ")))
				}
				r.Chains[name] = rules
			}
			clusterEPs := eps
			if internalLocal {
				clusterEPs = localOnly(eps, in.Node)
			}
			// Traffic from outside the pod range (the node, the host,
			// NodePort and LoadBalancer clients) is masqueraded so the
			// reply comes back through this node; pods keep their IP.
			var masq []string
			if notPod != "" {
				masq = []string{fmt.Sprintf("ip saddr != %s jump mark-for-masquerade", notPod)}
			}
			if len(clusterEPs) == 0 {
				r.Elems[mapNoEndpoints][vipKey] = "drop"
			} else {
				lb(svc, clusterEPs, masq)
				r.Elems[mapServiceIPs][vipKey] = "goto " + svc
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
				r.Chains[name] = []string{fmt.Sprintf("update @%s { ip saddr }", set), fmt.Sprintf("meta l4proto %s dnat to %s:%d", proto, e.ip, e.port)}
			}
			if len(extIPs) == 0 && sp.NodePort == 0 {
				continue
			}
			// External entries (NodePort, LoadBalancer, externalIPs).
			ext := chainName("ext", id)
			var extRules []string
			switch {
			case externalLocal:
				local := localOnly(eps, in.Node)
				if len(clusterEPs) > 0 {
					if notPod != "" {
						extRules = append(extRules, fmt.Sprintf("ip saddr %s goto %s", notPod, svc))
					}
					extRules = append(extRules, "fib saddr type local goto "+svc)
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
				extRules = append(extRules, "goto "+svl)
			case len(clusterEPs) == len(eps):
				// The cluster policy: the service chain already
				// masquerades what comes from outside the pod range.
				ext = svc
			default:
				// internalTrafficPolicy Local: outside traffic still
				// goes to every endpoint.
				lb(ext, eps, masq)
			}
			if ext != svc && extRules != nil {
				r.Chains[ext] = extRules
			}
			for _, ip := range extIPs {
				r.Elems[mapServiceIPs][fmt.Sprintf("%s . %s . %d", ip, proto, sp.Port)] = "goto " + ext
			}
			if sp.NodePort != 0 {
				r.Elems[mapNodePorts][fmt.Sprintf("%s . %d", proto, sp.NodePort)] = "goto " + ext
			}
		}
	}
	return r
}

// Script is the nft transaction that turns the table from old (nil: an
// unknown state, e.g. after a restart) into r. With old nil the table is
// replaced whole; otherwise only changed chains, sets and elements are
// touched.
func (r *ProxyRules) Script(old *ProxyRules) string {
	var b strings.Builder
	t := "ip " + ProxyTable
	if old == nil {
		fmt.Fprintf(&b, "add table %s\ndelete table %s\n", t, t)
		b.WriteString(proxyBase())
		old = &ProxyRules{Chains: map[string][]string{}, Sets: map[string]int32{}, Elems: map[string]map[string]string{}}
	}
	// New sets and chains first, so rules may refer to them.
	for _, name := range sortedKeys(r.Sets) {
		if _, ok := old.Sets[name]; !ok {
			fmt.Fprintf(&b, "add set %s %s { type ipv4_addr; flags dynamic,timeout; timeout %ds; }\n", t, name, r.Sets[name])
		}
	}
	// New chains are declared with their rules in one table block;
	// changed ones are flushed and refilled.
	var block strings.Builder
	for _, name := range sortedKeys(r.Chains) {
		if _, ok := old.Chains[name]; !ok {
			fmt.Fprintf(&block, "  chain %s {\n", name)
			for _, rule := range r.Chains[name] {
				fmt.Fprintf(&block, "    %s\n", rule)
			}
			block.WriteString("  }\n")
		}
	}
	if block.Len() > 0 {
		fmt.Fprintf(&b, "table %s {\n%s}\n", t, block.String())
	}
	for _, name := range sortedKeys(r.Chains) {
		rules := r.Chains[name]
		prev, ok := old.Chains[name]
		if !ok || equalStrings(prev, rules) {
			continue
		}
		fmt.Fprintf(&b, "flush chain %s %s\n", t, name)
		for _, rule := range rules {
			fmt.Fprintf(&b, "add rule %s %s %s\n", t, name, rule)
		}
	}
	// Elements: one delete and one add command per map.
	for _, m := range sortedKeys(r.Elems) {
		var del, add []string
		for _, k := range sortedKeys(old.Elems[m]) {
			if v, ok := r.Elems[m][k]; !ok || v != old.Elems[m][k] {
				del = append(del, k)
			}
		}
		for _, k := range sortedKeys(r.Elems[m]) {
			if v, ok := old.Elems[m][k]; !ok || v != r.Elems[m][k] {
				if v := r.Elems[m][k]; v != "" {
					k += " : " + v
				}
				add = append(add, k)
			}
		}
		if len(del) > 0 {
			fmt.Fprintf(&b, "delete element %s %s { %s }\n", t, m, strings.Join(del, ", "))
		}
		if len(add) > 0 {
			fmt.Fprintf(&b, "add element %s %s { %s }\n", t, m, strings.Join(add, ", "))
		}
	}
	// Chains and sets nothing refers to any more go last.
	var gone []string
	for name := range old.Chains {
		if _, ok := r.Chains[name]; !ok {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		fmt.Fprintf(&b, "flush chain %s %s\n", t, name)
	}
	for _, name := range gone {
		fmt.Fprintf(&b, "delete chain %s %s\n", t, name)
	}
	for _, name := range sortedKeys(old.Sets) {
		if _, ok := r.Sets[name]; !ok {
			fmt.Fprintf(&b, "delete set %s %s\n", t, name)
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
