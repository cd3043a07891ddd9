package network

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// fakeUpstream is a resolver on loopback that knows one name.
func fakeUpstream(t *testing.T) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: conn, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		if q := req.Question[0]; strings.EqualFold(q.Name, "outside.example.") && q.Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(127, 0, 0, 53)}}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	done := make(chan struct{})
	go func() { defer close(done); srv.ActivateAndServe() }()
	t.Cleanup(func() { srv.Shutdown(); <-done })
	return conn.LocalAddr().String()
}

func dnsFixture(t *testing.T, upstream []string) (udpAddr, tcpAddr string) {
	t.Helper()
	ready, notReady := true, false
	host := "web-0"
	http, grpc := "http", "grpc"
	p80, p9000 := int32(8080), int32(9000)
	tcp := corev1.ProtocolTCP
	cs := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "data"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.5.5", ClusterIPs: []string{"10.96.5.5"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "data"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "grpc", Port: 9000, Protocol: corev1.ProtocolTCP}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "default"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "outside.example"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "alias", Namespace: "default"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "web.default.svc.cluster.local"}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "data", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
			Ports: []discoveryv1.EndpointPort{{Name: &http, Port: &p80, Protocol: &tcp}, {Name: &grpc, Port: &p9000, Protocol: &tcp}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.244.0.7"}, Hostname: &host, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
				{Addresses: []string{"10.244.1.8"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
				{Addresses: []string{"10.244.1.9"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}},
			}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: "default"}, Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.20", PodIPs: []corev1.PodIP{{IP: "10.244.0.20"}}}},
	)
	f := informers.NewSharedInformerFactory(cs, 0)
	_, svcCIDR, _ := net.ParseCIDR("10.96.0.0/12")
	_, podCIDR, _ := net.ParseCIDR("10.244.0.0/16")
	d := NewDNS(DNSConfig{Domain: "cluster.local", Informers: f, Upstream: upstream, ReverseCIDRs: []*net.IPNet{svcCIDR, podCIDR}})
	ctx, cancel := context.WithCancel(t.Context())
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), f.Core().V1().Services().Informer().HasSynced, f.Discovery().V1().EndpointSlices().Informer().HasSynced,
		f.Core().V1().Pods().Informer().HasSynced, f.Core().V1().Namespaces().Informer().HasSynced) {
		t.Fatal("informers did not sync")
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, udp, tcpl) }()
	t.Cleanup(func() { cancel(); <-done; f.Shutdown() })
	return udp.LocalAddr().String(), tcpl.Addr().String()
}

func TestDNSAnswers(t *testing.T) {
	addr, tcpAddr := dnsFixture(t, []string{fakeUpstream(t)})
	query := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		r, _, err := (&dns.Client{}).Exchange(m, addr)
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		return r
	}
	rrText := func(rrs []dns.RR) string {
		var out []string
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.A:
				out = append(out, "A "+a.A.String())
			case *dns.CNAME:
				out = append(out, "CNAME "+a.Target)
			case *dns.SRV:
				out = append(out, "SRV "+a.Target+" "+itoa(int(a.Port)))
			case *dns.PTR:
				out = append(out, "PTR "+a.Ptr)
			case *dns.SOA:
				out = append(out, "SOA "+a.Hdr.Name)
			}
		}
		return strings.Join(out, ", ")
	}
	cases := []struct {
		name  string
		qtype uint16
		rcode int
		want  string
		ns    string // authority section (SOA of negative answers)
	}{
		{"web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "A 10.96.5.5", ""},
		{"WEB.Default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "A 10.96.5.5", ""},
		{"web.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, "", "SOA cluster.local."}, // NODATA
		{"web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, "SRV web.default.svc.cluster.local. 80, SRV web.default.svc.cluster.local. 53", ""},
		{"_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, "SRV web.default.svc.cluster.local. 80", ""},
		{"_dns._udp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, "SRV web.default.svc.cluster.local. 53", ""},
		{"_dns._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeNameError, "", "SOA cluster.local."},
		{"_http._tcp.web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "", "SOA cluster.local."},
		{"db.data.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "A 10.244.0.7, A 10.244.1.8", ""},
		{"web-0.db.data.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "A 10.244.0.7", ""},
		{"10-244-1-8.db.data.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "A 10.244.1.8", ""},
		{"10-244-1-9.db.data.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, "", "SOA cluster.local."}, // not ready
		{"_grpc._tcp.db.data.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, "SRV web-0.db.data.svc.cluster.local. 9000, SRV 10-244-1-8.db.data.svc.cluster.local. 9000", ""},
		{"x.web.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, "", "SOA cluster.local."},
		{"ext.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "CNAME outside.example., A 127.0.0.53", ""},
		{"ext.default.svc.cluster.local.", dns.TypeCNAME, dns.RcodeSuccess, "CNAME outside.example.", ""},
		{"alias.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "CNAME web.default.svc.cluster.local., A 10.96.5.5", ""},
		{"10-244-0-9.default.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess, "A 10.244.0.9", ""},
		{"10-244-0-9.nowhere.pod.cluster.local.", dns.TypeA, dns.RcodeNameError, "", "SOA cluster.local."},
		{"nope.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, "", "SOA cluster.local."},
		{"default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "", "SOA cluster.local."},
		{"nowhere.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, "", "SOA cluster.local."},
		{"svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "", "SOA cluster.local."},
		{"cluster.local.", dns.TypeSOA, dns.RcodeSuccess, "SOA cluster.local.", ""},
		{"other.cluster.local.", dns.TypeA, dns.RcodeNameError, "", "SOA cluster.local."},
		{"5.5.96.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "PTR web.default.svc.cluster.local.", ""},
		{"7.0.244.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "PTR web-0.db.data.svc.cluster.local.", ""},
		{"20.0.244.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "PTR 10-244-0-20.default.pod.cluster.local.", ""},
		{"99.0.244.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, "", "SOA in-addr.arpa."},
		{"1.0.0.127.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, "", ""}, // forwarded
		{"outside.example.", dns.TypeA, dns.RcodeSuccess, "A 127.0.0.53", ""},
		{"missing.example.", dns.TypeA, dns.RcodeNameError, "", ""},
	}
	for _, c := range cases {
		r := query(c.name, c.qtype)
		if r.Rcode != c.rcode {
			t.Errorf("%s %s: rcode %s, want %s", c.name, dns.TypeToString[c.qtype], dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
			continue
		}
		if got := rrText(r.Answer); got != c.want {
			t.Errorf("%s %s: answer %q, want %q", c.name, dns.TypeToString[c.qtype], got, c.want)
		}
		if got := rrText(r.Ns); got != c.ns {
			t.Errorf("%s %s: authority %q, want %q", c.name, dns.TypeToString[c.qtype], got, c.ns)
		}
	}
	// SRV answers carry the targets' addresses.
	if r := query("_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV); rrText(r.Extra) != "A 10.96.5.5" {
		t.Errorf("SRV additional section = %q", rrText(r.Extra))
	}
	// Over TCP too.
	m := new(dns.Msg)
	m.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	if r, _, err := (&dns.Client{Net: "tcp"}).Exchange(m, tcpAddr); err != nil || rrText(r.Answer) != "A 10.96.5.5" {
		t.Errorf("query over TCP: %v %v", r, err)
	}
}

func TestDNSNoUpstream(t *testing.T) {
	addr, _ := dnsFixture(t, nil)
	m := new(dns.Msg)
	m.SetQuestion("outside.example.", dns.TypeA)
	r, _, err := (&dns.Client{}).Exchange(m, addr)
	if err != nil || r.Rcode != dns.RcodeServerFailure {
		t.Errorf("without upstream: %v %v, want SERVFAIL", r, err)
	}
}

func TestHostResolvConf(t *testing.T) {
	files := map[string]string{
		"/run/systemd/resolve/resolv.conf": "# systemd-resolved\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example\n",
		"/etc/resolv.conf":                 "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n",
	}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, net.UnknownNetworkError(p)
	}
	c, path := HostResolvConf(read)
	if path != "/run/systemd/resolve/resolv.conf" || strings.Join(c.Nameservers, ",") != "192.0.2.53,192.0.2.54" || strings.Join(c.Searches, ",") != "corp.example" {
		t.Errorf("HostResolvConf = %+v from %s", c, path)
	}
	if got := HostResolvers(read); strings.Join(got, ",") != "192.0.2.53:53,192.0.2.54:53" {
		t.Errorf("HostResolvers = %v", got)
	}
	delete(files, "/run/systemd/resolve/resolv.conf")
	if c, _ := HostResolvConf(read); strings.Join(c.Nameservers, ",") != "127.0.0.53" || strings.Join(c.Options, " ") != "edns0 trust-ad" {
		t.Errorf("without systemd-resolved = %+v", c)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
