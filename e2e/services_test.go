//go:build e2e

package e2e

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/nanokube/nanokube/network"
)

// upstreamResolver is the "outside world" DNS for the lab: it runs on the
// lab's loopback and knows one name; everything else is NXDOMAIN.
func upstreamResolver(t *testing.T) string {
	t.Helper()
	conn, err := network.ListenUDP(theLab.Netns, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for the upstream resolver in the lab: %v", err)
	}
	srv := &dns.Server{PacketConn: conn, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		if q := req.Question[0]; strings.EqualFold(q.Name, "upstream.example.") && q.Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(127, 0, 0, 53)}}
		} else if len(m.Answer) == 0 {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ActivateAndServe()
	}()
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
	return conn.LocalAddr().String()
}

// TestIntegrationServiceByName is the thin end-to-end path: a Deployment's
// pods reached from another pod through their Service by name, cluster
// DNS for services and forwarding to the (lab's own) upstream resolver.
func TestIntegrationServiceByName(t *testing.T) {
	l := theLab
	const p = "e2e-svc"
	up := upstreamResolver(t)
	l.startProfile(t, p, "--dns-upstream="+up)
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	k("create", "deployment", "web", "--image="+busyboxRef, "--replicas=2", "--port=8080", "--", "httpd", "-f", "-p", "8080", "-h", "/www")
	k("expose", "deployment", "web", "--port=80", "--target-port=8080")
	k("rollout", "status", "deploy/web", "--timeout=90s")
	if ep := k("get", "endpoints", "web", "-o", "jsonpath={.subsets[0].addresses[*].ip}"); len(strings.Fields(ep)) != 2 {
		t.Fatalf("endpoints of web = %q, want the 2 pod IPs", ep)
	}
	k("create", "service", "clusterip", "nobody", "--tcp=80:8080")
	script := strings.Join([]string{
		"wget -qO- http://web/",
		"wget -qO- http://web.default.svc.cluster.local/",
		"nc -w 3 nobody 80 </dev/null 2>&1; echo nobody rc=$?",
		"nslookup kubernetes",
		"nslookup kubernetes.default.svc.cluster.local",
		"nslookup upstream.example",
		"nslookup kube-dns.kube-system.svc.cluster.local",
	}, "; ")
	k("run", "client", "--image="+busyboxRef, "--restart=Never", "--", "sh", "-c", script)
	k("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/client", "--timeout=60s")
	out := k("logs", "client")
	svcIP := k("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
	for _, want := range []string{
		"hello from nanokube\nhello from nanokube\n",
		"Name:\tkubernetes.default.svc.cluster.local\nAddress: 10.96.0.1",
		"nobody rc=1",
		"Name:\tupstream.example\nAddress: 127.0.0.53",
		"Name:\tkube-dns.kube-system.svc.cluster.local\nAddress: 10.96.0.10",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("client output lacks %q:\n%s", want, out)
		}
	}
	// From the node: the ClusterIP is served by the node's proxy.
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	r := l.run(ctx, nil, "nsenter", "--net=/run/nanokube/"+p+"/netns/"+p, "--", "busybox", "wget", "-qO-", "http://"+svcIP+"/")
	if r.code != 0 || r.stdout != "hello from nanokube\n" {
		t.Errorf("GET the ClusterIP from the node: %s", r)
	}
}
