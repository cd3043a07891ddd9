package network

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

func TestDNSAnswers(t *testing.T) {
	ready := true
	host := "web-0"
	cs := fake.NewClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.5.5",
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "data"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "default"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.org"}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "data", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.7"}, Hostname: &host, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}},
	)
	f := informers.NewSharedInformerFactory(cs, 0)
	d := NewDNS(DNSConfig{Domain: "cluster.local", Informers: f})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), f.Core().V1().Services().Informer().HasSynced, f.Discovery().V1().EndpointSlices().Informer().HasSynced) {
		t.Fatal("informers did not sync")
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, udp, tcp) }()
	defer func() { cancel(); <-done }()

	query := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		r, _, err := (&dns.Client{}).Exchange(m, udp.LocalAddr().String())
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		return r
	}
	cases := []struct {
		name  string
		qtype uint16
		rcode int
		want  string
	}{
		{"web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.96.5.5"},
		{"db.data.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.244.0.7"},
		{"web-0.db.data.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.244.0.7"},
		{"ext.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "example.org."},
		{"_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, "web.default.svc.cluster.local."},
		{"10-244-0-9.default.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.244.0.9"},
		{"web.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, ""},
		{"nope.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, ""},
		{"outside.example.", dns.TypeA, dns.RcodeServerFailure, ""}, // no upstream configured
	}
	for _, c := range cases {
		r := query(c.name, c.qtype)
		if r.Rcode != c.rcode {
			t.Errorf("%s: rcode %s, want %s", c.name, dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
			continue
		}
		got := ""
		if len(r.Answer) > 0 {
			switch a := r.Answer[0].(type) {
			case *dns.A:
				got = a.A.String()
			case *dns.CNAME:
				got = a.Target
			case *dns.SRV:
				got = a.Target
			}
		}
		if got != c.want {
			t.Errorf("%s: answer %q, want %q", c.name, got, c.want)
		}
	}
}
