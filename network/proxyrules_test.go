package network

import (
	"fmt"
	"math"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

func testService(name string, mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.20",
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}}}
	if mut != nil {
		mut(s)
	}
	return s
}

type testEP struct {
	ip, node          string
	ready, terminated bool
}

func testSlice(svc string, port int32, eps ...testEP) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: svc + "-x",
		Labels: map[string]string{discoveryv1.LabelServiceName: svc}}, AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(port)}}}
	for _, e := range eps {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.ip}, NodeName: ptr(e.node),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(e.ready), Serving: ptr(e.ready || e.terminated), Terminating: ptr(e.terminated)}})
	}
	return sl
}

var testCIDR = &net.IPNet{IP: net.IPv4(10, 244, 0, 0).To4(), Mask: net.CIDRMask(16, 32)}

// dump is the rendered state as sorted lines a reader can check.
func dump(r *ProxyRules) string {
	var lines []string
	for _, c := range sortedKeys(r.Chains) {
		for _, rule := range r.Chains[c] {
			lines = append(lines, short(c)+": "+shortAll(rule.String()))
		}
	}
	for _, s := range sortedKeys(r.Sets) {
		lines = append(lines, "set "+short(s))
	}
	for _, m := range sortedKeys(r.Elems) {
		for _, k := range sortedKeys(r.Elems[m]) {
			if v := r.Elems[m][k]; v == "" {
				lines = append(lines, m+"["+k+"]")
			} else {
				lines = append(lines, m+"["+k+"] = "+shortAll(v))
			}
		}
	}
	return strings.Join(lines, "\n")
}

// short drops the hash of a chain name: svc-abcdefgh-default/web/tcp/http → svc:default/web/tcp/http.
func short(name string) string {
	for _, k := range []string{"svc-", "sep-", "ext-", "svl-"} {
		if strings.HasPrefix(name, k) && len(name) > 13 {
			return k[:3] + ":" + name[13:]
		}
	}
	if strings.HasPrefix(name, "aff") {
		i := strings.IndexByte(name, '-')
		return name[:i] + ":" + name[i+10:]
	}
	return name
}

func shortAll(rule string) string {
	f := strings.Fields(rule)
	for i := range f {
		f[i] = strings.TrimPrefix(short(strings.TrimPrefix(f[i], "@")), "")
		if strings.HasPrefix(rule, "ip saddr @") && i == 2 {
			f[i] = "@" + f[i]
		}
	}
	return strings.Join(f, " ")
}

func TestRenderProxy(t *testing.T) {
	two := testSlice("web", 8080, testEP{"10.244.0.5", "n1", true, false}, testEP{"10.244.1.5", "n2", true, false})
	for _, tc := range []struct {
		name   string
		svc    *corev1.Service
		slices []*discoveryv1.EndpointSlice
		want   string
	}{{
		name:   "cluster IP, two ready endpoints, random; masquerade for what is not a pod",
		svc:    testService("web", nil),
		slices: []*discoveryv1.EndpointSlice{two},
		want: `svc:default/web/tcp/http: numgen random mod 2 0 dnat to 10.244.0.5:8080
svc:default/web/tcp/http: dnat to 10.244.1.5:8080
hairpin[10.244.0.5 . 10.244.0.5]
hairpin[10.244.1.5 . 10.244.1.5]
masq-service-ips[10.96.0.20 . tcp . 80]
service-ips[10.96.0.20 . tcp . 80] = goto svc:default/web/tcp/http`,
	}, {
		name: "no endpoints: reject on the VIP and the node port",
		svc:  testService("web", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort; s.Spec.Ports[0].NodePort = 30080 }),
		want: `no-endpoint-nodeports[tcp . 30080] = goto reject-chain
no-endpoint-services[10.96.0.20 . tcp . 80] = goto reject-chain`,
	}, {
		name:   "headless: nothing",
		svc:    testService("web", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }),
		slices: []*discoveryv1.EndpointSlice{two},
		want:   ``,
	}, {
		name: "not ready dropped, terminating only as a fallback",
		svc:  testService("web", nil),
		slices: []*discoveryv1.EndpointSlice{testSlice("web", 8080, testEP{"10.244.0.5", "n1", false, false},
			testEP{"10.244.0.6", "n1", false, true})},
		want: `svc:default/web/tcp/http: dnat to 10.244.0.6:8080
hairpin[10.244.0.6 . 10.244.0.6]
masq-service-ips[10.96.0.20 . tcp . 80]
service-ips[10.96.0.20 . tcp . 80] = goto svc:default/web/tcp/http`,
	}, {
		name: "terminating ignored while a ready one exists",
		svc:  testService("web", nil),
		slices: []*discoveryv1.EndpointSlice{testSlice("web", 8080, testEP{"10.244.0.5", "n1", true, false},
			testEP{"10.244.0.6", "n1", false, true})},
		want: `svc:default/web/tcp/http: dnat to 10.244.0.5:8080
hairpin[10.244.0.5 . 10.244.0.5]
masq-service-ips[10.96.0.20 . tcp . 80]
service-ips[10.96.0.20 . tcp . 80] = goto svc:default/web/tcp/http`,
	}, {
		name: "session affinity ClientIP",
		svc: testService("web", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(60))}}
		}),
		slices: []*discoveryv1.EndpointSlice{testSlice("web", 8080, testEP{"10.244.0.5", "n1", true, false})},
		want: `sep:default/web/tcp/http__10.244.0.5/8080: update aff60:default/web/tcp/http__10.244.0.5/8080 { ip saddr }
sep:default/web/tcp/http__10.244.0.5/8080: dnat to 10.244.0.5:8080
svc:default/web/tcp/http: ip saddr @aff60:default/web/tcp/http__10.244.0.5/8080 goto sep:default/web/tcp/http__10.244.0.5/8080
svc:default/web/tcp/http: goto sep:default/web/tcp/http__10.244.0.5/8080
set aff60:default/web/tcp/http__10.244.0.5/8080
hairpin[10.244.0.5 . 10.244.0.5]
masq-service-ips[10.96.0.20 . tcp . 80]
service-ips[10.96.0.20 . tcp . 80] = goto svc:default/web/tcp/http`,
	}, {
		name: "session affinity ClientIP, two endpoints: remembered clients first, then a random pick",
		svc: testService("web", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		}),
		slices: []*discoveryv1.EndpointSlice{two},
		want: `sep:default/web/tcp/http__10.244.0.5/8080: update aff10800:default/web/tcp/http__10.244.0.5/8080 { ip saddr }
sep:default/web/tcp/http__10.244.0.5/8080: dnat to 10.244.0.5:8080
sep:default/web/tcp/http__10.244.1.5/8080: update aff10800:default/web/tcp/http__10.244.1.5/8080 { ip saddr }
sep:default/web/tcp/http__10.244.1.5/8080: dnat to 10.244.1.5:8080
svc:default/web/tcp/http: ip saddr @aff10800:default/web/tcp/http__10.244.0.5/8080 goto sep:default/web/tcp/http__10.244.0.5/8080
svc:default/web/tcp/http: ip saddr @aff10800:default/web/tcp/http__10.244.1.5/8080 goto sep:default/web/tcp/http__10.244.1.5/8080
svc:default/web/tcp/http: numgen random mod 2 0 goto sep:default/web/tcp/http__10.244.0.5/8080
svc:default/web/tcp/http: goto sep:default/web/tcp/http__10.244.1.5/8080
set aff10800:default/web/tcp/http__10.244.0.5/8080
set aff10800:default/web/tcp/http__10.244.1.5/8080
hairpin[10.244.0.5 . 10.244.0.5]
hairpin[10.244.1.5 . 10.244.1.5]
masq-service-ips[10.96.0.20 . tcp . 80]
service-ips[10.96.0.20 . tcp . 80] = goto svc:default/web/tcp/http`,
	}, {
		name: "LoadBalancer with externalTrafficPolicy Local on the node with the pod",
		svc: testService("web", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeLoadBalancer, 30080
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.168.49.200"}}
		}),
		slices: []*discoveryv1.EndpointSlice{two},
		want: `ext:default/web/tcp/http: ip saddr 10.244.0.0/16 goto svc:default/web/tcp/http
ext:default/web/tcp/http: fib saddr type local jump mark-for-masquerade
ext:default/web/tcp/http: fib saddr type local goto svc:default/web/tcp/http
ext:default/web/tcp/http: goto svl:default/web/tcp/http
svc:default/web/tcp/http: numgen random mod 2 0 dnat to 10.244.0.5:8080
svc:default/web/tcp/http: dnat to 10.244.1.5:8080
svl:default/web/tcp/http: dnat to 10.244.0.5:8080
hairpin[10.244.0.5 . 10.244.0.5]
hairpin[10.244.1.5 . 10.244.1.5]
masq-service-ips[10.96.0.20 . tcp . 80]
service-ips[10.96.0.20 . tcp . 80] = goto svc:default/web/tcp/http
service-ips[192.168.49.200 . tcp . 80] = goto ext:default/web/tcp/http
service-nodeports[tcp . 30080] = goto ext:default/web/tcp/http`,
	}, {
		name: "externalTrafficPolicy Local on a node without the pod drops",
		svc: testService("web", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeNodePort, 30080
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}),
		slices: []*discoveryv1.EndpointSlice{testSlice("web", 8080, testEP{"10.244.1.5", "n2", true, false})},
		want: `svc:default/web/tcp/http: dnat to 10.244.1.5:8080
hairpin[10.244.1.5 . 10.244.1.5]
masq-service-ips[10.96.0.20 . tcp . 80]
no-endpoint-nodeports[tcp . 30080] = drop
service-ips[10.96.0.20 . tcp . 80] = goto svc:default/web/tcp/http`,
	}, {
		name: "externalIPs and NodePort with the cluster policy masquerade",
		svc: testService("web", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeNodePort, 30080
			s.Spec.ExternalIPs = []string{"192.0.2.7"}
		}),
		slices: []*discoveryv1.EndpointSlice{testSlice("web", 8080, testEP{"10.244.1.5", "n2", true, false})},
		want: `svc:default/web/tcp/http: dnat to 10.244.1.5:8080
hairpin[10.244.1.5 . 10.244.1.5]
masq-nodeports[tcp . 30080]
masq-service-ips[10.96.0.20 . tcp . 80]
masq-service-ips[192.0.2.7 . tcp . 80]
service-ips[10.96.0.20 . tcp . 80] = goto svc:default/web/tcp/http
service-ips[192.0.2.7 . tcp . 80] = goto svc:default/web/tcp/http
service-nodeports[tcp . 30080] = goto svc:default/web/tcp/http`,
	}, {
		name: "internalTrafficPolicy Local without a local endpoint drops",
		svc: testService("web", func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
		}),
		slices: []*discoveryv1.EndpointSlice{testSlice("web", 8080, testEP{"10.244.1.5", "n2", true, false})},
		want: `hairpin[10.244.1.5 . 10.244.1.5]
no-endpoint-services[10.96.0.20 . tcp . 80] = drop`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := RenderProxy(ProxyInput{Node: "n1", ClusterCIDR: testCIDR, Services: []*corev1.Service{tc.svc},
				Slices: map[string][]*discoveryv1.EndpointSlice{"default/web": tc.slices}})
			if got := dump(r); got != tc.want {
				t.Errorf("rules:\n%s\n\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestProxySpread: every ready endpoint gets the same share of new
// connections, through the numgen cascade for small services and one
// numgen lookup in the service's endpoint map for big ones.
func TestProxySpread(t *testing.T) {
	for _, n := range []int{3, maxCascade, maxCascade + 1} {
		var eps []testEP
		for i := range n {
			eps = append(eps, testEP{ip: fmt.Sprintf("10.244.0.%d", 10+i), node: "n1", ready: true})
		}
		r := RenderProxy(ProxyInput{Node: "n1", ClusterCIDR: testCIDR, Services: []*corev1.Service{testService("web", nil)},
			Slices: map[string][]*discoveryv1.EndpointSlice{"default/web": {testSlice("web", 8080, eps...)}}})
		svc := chainName("svc", "default/web/tcp/http")
		rules := r.Chains[svc]
		share := map[string]float64{}
		left := 1.0
		for _, rule := range rules {
			switch {
			case rule.DNATMap != "":
				elems := r.Elems[rule.DNATMap]
				if rule.MapMod != n || len(elems) != n || rule.DNATMap != epMapPrefix+svc[4:] {
					t.Fatalf("%d endpoints: map rule %q with %d elements", n, rule, len(elems))
				}
				for i := range n {
					share[strings.TrimSuffix(elems[fmt.Sprint(i)], " . 8080")] += left / float64(n)
				}
				left = 0
			case rule.DNAT != "" && rule.Random > 0:
				share[strings.TrimSuffix(rule.DNAT, ":8080")] += left / float64(rule.Random)
				left -= left / float64(rule.Random)
			case rule.DNAT != "":
				share[strings.TrimSuffix(rule.DNAT, ":8080")] += left
				left = 0
			default:
				t.Fatalf("%d endpoints: rule %q", n, rule)
			}
		}
		if n > maxCascade && len(rules) != 1 {
			t.Errorf("%d endpoints: %d rules, want one numgen map", n, len(rules))
		}
		for _, e := range eps {
			if got := share[e.ip]; math.Abs(got-1/float64(n)) > 1e-9 {
				t.Errorf("%d endpoints: %s gets %.4f of the connections, want %.4f", n, e.ip, got, 1/float64(n))
			}
		}
	}
}
