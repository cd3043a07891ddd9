package ingress

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeSource is a Source from maps.
type fakeSource struct {
	svcs    map[string]*corev1.Service
	slices  map[string][]*discoveryv1.EndpointSlice
	secrets map[string]*corev1.Secret
}

func newSource() *fakeSource {
	return &fakeSource{svcs: map[string]*corev1.Service{}, slices: map[string][]*discoveryv1.EndpointSlice{}, secrets: map[string]*corev1.Secret{}}
}

func (f *fakeSource) Service(ns, name string) *corev1.Service { return f.svcs[ns+"/"+name] }
func (f *fakeSource) EndpointSlices(ns, svc string) []*discoveryv1.EndpointSlice {
	return f.slices[ns+"/"+svc]
}
func (f *fakeSource) Secret(ns, name string) *corev1.Secret { return f.secrets[ns+"/"+name] }

// service adds a Service "name" with port 80 ("http") → 8080 and one
// ready endpoint per address (plus one not ready, which must be skipped).
func (f *fakeSource) service(name string, addrs ...string) {
	f.svcs["default/"+name] = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	ready, notReady := true, false
	portName, port := "http", int32(8080)
	sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: &portName, Port: &port}}}
	for _, a := range addrs {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.0.0.99"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}})
	f.slices["default/"+name] = []*discoveryv1.EndpointSlice{sl}
}

type pathSpec struct {
	path, typ, svc string
}

// ing is an Ingress created at second age with one rule per host.
func ing(name string, age int64, rules map[string][]pathSpec) *networkingv1.Ingress {
	in := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, CreationTimestamp: metav1.NewTime(time.Unix(age, 0))}}
	for host, paths := range rules {
		rule := networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}}
		for _, p := range paths {
			pt := networkingv1.PathType(p.typ)
			rule.HTTP.Paths = append(rule.HTTP.Paths, networkingv1.HTTPIngressPath{Path: p.path, PathType: &pt, Backend: backend(p.svc)})
		}
		in.Spec.Rules = append(in.Spec.Rules, rule)
	}
	return in
}

func backend(svc string) networkingv1.IngressBackend {
	return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}
}
