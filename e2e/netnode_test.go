//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nanokube/nanokube/network"
)

// ipServer is a busybox httpd whose /cgi-bin/ip answers with the client's
// address as the server sees it.
const ipServer = `mkdir -p /tmp/w/cgi-bin && printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho "$REMOTE_ADDR"\n' > /tmp/w/cgi-bin/ip && chmod +x /tmp/w/cgi-bin/ip && exec httpd -f -p 8080 -h /tmp/w`

func netnodePod(name, node string, labels map[string]string, server bool) *corev1.Pod {
	grace := int64(0)
	c := corev1.Container{Name: "main", Image: busyboxRef, ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"}}
	if server {
		c.Command = []string{"sh", "-c", ipServer}
		c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1}
	}
	return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{c}}}
}

// apply writes objects as a stream of JSON documents and applies it
// with kubectl.
func (l *lab) apply(t *testing.T, profile string, objs ...any) {
	t.Helper()
	var docs []string
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	path := filepath.Join(t.TempDir(), "objects.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(docs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.kubectl(t, profile, "apply", "-f", path)
}

// inNetns runs a host command inside a network namespace of the cluster.
func (l *lab) inNetns(t *testing.T, nsPath string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return l.run(ctx, nil, "nsenter", append([]string{"--net=" + nsPath, "--"}, args...)...)
}

// eventually retries check until it holds or the deadline passes.
func eventually(t *testing.T, what string, timeout time.Duration, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after %s; last: %s", what, timeout, last)
		}
		<-tick.C
	}
}

// TestIntegrationNetNode: a cluster grows from 2 to 3 nodes, survives
// stop/start, connects pods across nodes over VXLAN without NAT, enforces
// NetworkPolicies, answers DNS like CoreDNS, and loses a node without a
// trace.
func TestIntegrationNetNode(t *testing.T) {
	l := theLab
	const p = "netnode"
	up := upstreamResolver(t)
	l.startProfile(t, p, "--nodes=2", "--dns-upstream="+up)
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	nodeNS := func(node string) string { return "/run/nanokube/" + p + "/netns/" + node }
	m02, m03 := p+"-m02", p+"-m03"

	// node add, node list; the added node survives stop/start.
	if out := l.nanokube(t, "node", "add", "-p", p).stdout; !strings.Contains(out, "🏄  Successfully added m03 to "+p+"!") || !strings.Contains(out, "Node "+m03+" is Ready") {
		t.Fatalf("node add:\n%s", out)
	}
	if r := l.nanokubeResult(t, "node", "add", "--count=0", "-p", p); r.code == 0 || !strings.Contains(r.stderr, "--count=0") {
		t.Errorf("node add --count=0: %s", r)
	}
	ip1 := strings.TrimSpace(l.nanokube(t, "ip", "-p", p).stdout)
	base := ip1[:strings.LastIndexByte(ip1, '.')+1]
	wantList := fmt.Sprintf("%s\t%s2\n%s\t%s3\n%s\t%s4\n", p, base, m02, base, m03, base)
	if got := l.nanokube(t, "node", "list", "-p", p).stdout; got != wantList {
		t.Errorf("node list = %q, want %q", got, wantList)
	}
	l.nanokube(t, "stop", "-p", p)
	if out := l.nanokube(t, "start", "-p", p).stdout; !strings.Contains(out, "3 node(s)") {
		t.Errorf("restart did not bring back 3 nodes:\n%s", out)
	}
	k("wait", "--for=condition=Ready", "node", "--all", "--timeout=90s")
	if got := k("get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"); got != p+" "+m02+" "+m03 {
		t.Fatalf("nodes after restart = %q", got)
	}
	if got := k("get", "nodes", "-o", "jsonpath={.items[*].spec.podCIDR}"); got != "10.244.0.0/24 10.244.1.0/24 10.244.2.0/24" {
		t.Errorf("pod CIDRs = %q", got)
	}

	// Every node has flannel's VXLAN device, one ARP + FDB entry and one
	// onlink route per other node, and publishes its VTEP MAC.
	nodes := []string{p, m02, m03}
	for i, n := range nodes {
		ns := nodeNS(n)
		if r := l.inNetns(t, ns, "ip", "-d", "link", "show", "vxlan.1"); r.code != 0 || !strings.Contains(r.stdout, "vxlan id 1 ") ||
			!strings.Contains(r.stdout, "dstport 8472") || !strings.Contains(r.stdout, "mtu 1450") || !strings.Contains(r.stdout, "local "+base+fmt.Sprint(i+2)) {
			t.Errorf("node %s vxlan device: %s", n, r)
		}
		data := k("get", "node", n, "-o", `jsonpath={.metadata.annotations.flannel\.alpha\.coreos\.com/backend-data}`)
		var bd struct{ VtepMAC string }
		if err := json.Unmarshal([]byte(data), &bd); err != nil || bd.VtepMAC == "" {
			t.Errorf("node %s backend-data = %q", n, data)
		}
		if r := l.inNetns(t, ns, "bridge", "fdb", "show", "dev", "vxlan.1"); strings.Count(r.stdout, " dst ") != 2 {
			t.Errorf("node %s FDB: %s", n, r)
		}
		if r := l.inNetns(t, ns, "ip", "neigh", "show", "dev", "vxlan.1"); strings.Count(r.stdout, "PERMANENT") != 2 {
			t.Errorf("node %s ARP entries: %s", n, r)
		}
		for j := range nodes {
			if j == i {
				continue
			}
			want := fmt.Sprintf("10.244.%d.0/24 via 10.244.%d.0 dev vxlan.1 onlink", j, j)
			if r := l.inNetns(t, ns, "ip", "route"); !strings.Contains(r.stdout, want) {
				t.Errorf("node %s routes lack %q: %s", n, want, r)
			}
		}
	}

	// Pods: servers on every node, clients on node 1 and m02.
	l.apply(t, p,
		netnodePod("web1", p, map[string]string{"app": "web"}, true),
		netnodePod("web2", m02, map[string]string{"app": "web"}, true),
		netnodePod("echo2", m02, map[string]string{"app": "echo"}, true),
		netnodePod("echo3", m03, map[string]string{"app": "echo"}, true),
		netnodePod("client", p, map[string]string{"role": "client"}, false),
		netnodePod("client2", m02, map[string]string{"role": "client"}, false),
		netnodePod("other", p, map[string]string{"role": "other"}, false),
	)
	if r := l.kubectlResult(t, p, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=90s"); r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(l.Home, "profiles", p, "daemon.log"))
		t.Fatalf("pods not Ready: %s\n%s\n%s\ndaemon log:\n%s", r, k("get", "pods", "-o", "wide"), k("describe", "pods"), log)
	}
	ipOf := map[string]string{}
	uidOf := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(k("get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.podIP} {.metadata.uid}{"\n"}{end}`)), "\n") {
		f := strings.Fields(line)
		ipOf[f[0]], uidOf[f[0]] = f[1], f[2]
	}
	// fetch asks server's /cgi-bin/ip from inside pod's network namespace.
	fetch := func(pod, server string) (string, bool) {
		// (busybox 1.35's wget -T crashes: timeout(1) bounds the try.)
		r := l.inNetns(t, "/run/nanokube/"+p+"/pods/"+uidOf[pod], "timeout", "2", "busybox", "wget", "-qO-", "http://"+ipOf[server]+":8080/cgi-bin/ip")
		// httpd listens on IPv6 too and shows IPv4 clients as [::ffff:a.b.c.d].
		seen := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(r.stdout), "[::ffff:"), "]")
		return seen, r.code == 0
	}
	for _, c := range []struct{ from, to string }{{"client", "echo2"}, {"client", "echo3"}, {"client2", "echo3"}, {"client", "web1"}, {"client", "web2"}} {
		if got, ok := fetch(c.from, c.to); !ok || got != ipOf[c.from] {
			t.Errorf("%s → %s: server saw %q (ok %v), want the client's own address %s (no NAT)", c.from, c.to, got, ok, ipOf[c.from])
		}
	}

	// NetworkPolicy: deny all ingress to app=web, then allow role=client on
	// the named port; egress of role=other limited to an ipBlock with an
	// exception.
	web := metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	netpol := func(name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"}, ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	}
	blocked := func(from, to string) func() (bool, string) {
		return func() (bool, string) { got, ok := fetch(from, to); return !ok, got }
	}
	open := func(from, to string) func() (bool, string) {
		return func() (bool, string) { got, ok := fetch(from, to); return ok && got == ipOf[from], got }
	}
	l.apply(t, p, netpol("deny-web", networkingv1.NetworkPolicySpec{PodSelector: web, PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}))
	if got := k("get", "networkpolicy"); !regexp.MustCompile(`NAME\s+POD-SELECTOR\s+AGE\ndeny-web\s+app=web\s+`).MatchString(got) {
		t.Errorf("kubectl get networkpolicy:\n%s", got)
	}
	eventually(t, "deny-web blocks client → web2 (across nodes)", 20*time.Second, blocked("client", "web2"))
	for _, c := range [][2]string{{"client", "web1"}, {"client2", "web2"}, {"other", "web1"}} {
		if got, ok := fetch(c[0], c[1]); ok {
			t.Errorf("deny-web: %s → %s is open (%q)", c[0], c[1], got)
		}
	}
	if _, ok := fetch("client", "echo2"); !ok {
		t.Errorf("deny-web blocked client → echo2, which no policy selects")
	}
	http := intstr.FromString("http")
	l.apply(t, p,
		netpol("allow-clients", networkingv1.NetworkPolicySpec{PodSelector: web, Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: &http}},
		}}}),
		netpol("other-egress", networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "other"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{
				CIDR: "10.244.0.0/16", Except: []string{ipOf["echo2"] + "/32"}}}}}},
		}),
	)
	eventually(t, "allow-clients opens client → web2", 20*time.Second, open("client", "web2"))
	eventually(t, "other-egress blocks other → echo2", 20*time.Second, blocked("other", "echo2"))
	for _, c := range [][2]string{{"client", "web1"}, {"client2", "web2"}, {"client2", "web1"}, {"other", "echo3"}} {
		if got, ok := fetch(c[0], c[1]); !ok || got != ipOf[c[0]] {
			t.Errorf("after allow: %s → %s = %q (ok %v)", c[0], c[1], got, ok)
		}
	}
	if got, ok := fetch("other", "web2"); ok {
		t.Errorf("allow-clients let other → web2 through (%q)", got)
	}

	// DNS from a pod: SRV, PTR, ExternalName, headless/StatefulSet-style
	// names, pod names, NXDOMAIN and a forwarded name from the lab's own
	// upstream.
	dbHost := netnodePod("db-0", m03, map[string]string{"app": "db"}, true)
	dbHost.Spec.Hostname, dbHost.Spec.Subdomain = "db-0", "db"
	k("create", "service", "externalname", "ext", "--external-name=upstream.example")
	l.apply(t, p, dbHost, &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: "websvc"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}},
		&corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}})
	k("wait", "--for=condition=Ready", "pod/db-0", "--timeout=60s")
	svcIP := k("get", "svc", "websvc", "-o", "jsonpath={.spec.clusterIP}")
	dbIP := k("get", "pod", "db-0", "-o", "jsonpath={.status.podIP}")
	dashed := strings.ReplaceAll(ipOf["echo3"], ".", "-")
	script := strings.Join([]string{
		"cat /etc/resolv.conf",
		"hostname",
		"nslookup -type=SRV _http._tcp.websvc.default.svc.cluster.local",
		"nslookup " + svcIP,
		"nslookup " + ipOf["echo3"],
		"nslookup ext.default.svc.cluster.local",
		"nslookup db-0.db.default.svc.cluster.local",
		"nslookup -type=SRV _http._tcp.db.default.svc.cluster.local",
		"nslookup " + dashed + ".default.pod.cluster.local",
		"nslookup nope.default.svc.cluster.local",
		"nslookup upstream.example",
		"nslookup websvc",
	}, "; echo ---; ") + "; true" // busybox nslookup fails when any search candidate is NXDOMAIN
	dnsPod := netnodePod("dnscheck", m02, nil, false)
	dnsPod.Spec.RestartPolicy = corev1.RestartPolicyNever
	dnsPod.Spec.Containers[0].Command = []string{"sh", "-c", script}
	custom := netnodePod("customdns", p, nil, false)
	custom.Spec.RestartPolicy = corev1.RestartPolicyNever
	custom.Spec.DNSPolicy = corev1.DNSNone
	ndots := "2"
	custom.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local", "corp.example"},
		Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &ndots}, {Name: "edns0"}}}
	custom.Spec.Containers[0].Command = []string{"sh", "-c", "cat /etc/resolv.conf; nslookup websvc; true"}
	l.apply(t, p, dnsPod, custom)
	if r := l.kubectlResult(t, p, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/dnscheck", "pod/customdns", "--timeout=60s"); r.code != 0 {
		t.Fatalf("DNS check pods: %s\n%s\ndnscheck:\n%s\ncustomdns:\n%s", r, k("get", "pods", "-o", "wide"), k("logs", "dnscheck"), k("logs", "customdns"))
	}
	out := k("logs", "dnscheck")
	for _, want := range []string{
		"search default.svc.cluster.local svc.cluster.local cluster.local",
		"nameserver 10.96.0.10\noptions ndots:5",
		"\ndnscheck\n",
		"service = 0 100 80 websvc.default.svc.cluster.local",
		"name = websvc.default.svc.cluster.local",
		"name = " + dashed + ".default.pod.cluster.local",
		"canonical name = upstream.example",
		"Address: 127.0.0.53",
		"Name:\tdb-0.db.default.svc.cluster.local\nAddress: " + dbIP,
		"service = 0 100 8080 db-0.db.default.svc.cluster.local",
		"Name:\t" + dashed + ".default.pod.cluster.local\nAddress: " + ipOf["echo3"],
		"server can't find nope.default.svc.cluster.local: NXDOMAIN",
		"Name:\tupstream.example\nAddress: 127.0.0.53",
		"Name:\twebsvc.default.svc.cluster.local\nAddress: " + svcIP,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dnscheck output lacks %q:\n%s", want, out)
		}
	}
	if out := k("logs", "customdns"); !strings.HasPrefix(out, "search default.svc.cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:2 edns0\n") ||
		!strings.Contains(out, "Address: "+svcIP) {
		t.Errorf("dnsPolicy None with dnsConfig:\n%s", out)
	}
	// Negative answers, precisely: NXDOMAIN and NODATA both carry the SOA.
	for _, c := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"nope.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError},
		{"websvc.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess},
		{"_http._udp.websvc.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeNameError},
	} {
		var resp *dns.Msg
		err := network.Do(nodeNS(p), func() error {
			c2, err := net.DialTimeout("udp", "10.96.0.10:53", 2*time.Second)
			if err != nil {
				return err
			}
			defer c2.Close()
			co := &dns.Conn{Conn: c2}
			m := new(dns.Msg)
			m.SetQuestion(c.name, c.qtype)
			co.SetDeadline(time.Now().Add(3 * time.Second))
			if err := co.WriteMsg(m); err != nil {
				return err
			}
			resp, err = co.ReadMsg()
			return err
		})
		if err != nil {
			t.Errorf("query %s from node 1: %v", c.name, err)
			continue
		}
		if resp.Rcode != c.rcode || len(resp.Answer) != 0 || len(resp.Ns) != 1 || resp.Ns[0].Header().Rrtype != dns.TypeSOA || !resp.Authoritative {
			t.Errorf("%s %s: %v", c.name, dns.TypeToString[c.qtype], resp)
		}
	}

	// node delete: drained, gone from the API and the other nodes' overlay,
	// its namespace, links and address allocations removed.
	if r := l.nanokubeResult(t, "node", "delete", p, "-p", p); r.code == 0 || !strings.Contains(r.stderr, "control plane") {
		t.Errorf("deleting the control-plane node: %s", r)
	}
	if out := l.nanokube(t, "node", "delete", "m03", "-p", p).stdout; !strings.Contains(out, "💀  Node m03 was successfully deleted.") {
		t.Errorf("node delete:\n%s", out)
	}
	if got := k("get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"); got != p+" "+m02 {
		t.Errorf("nodes after delete = %q", got)
	}
	if got := l.nanokube(t, "node", "list", "-p", p).stdout; got != fmt.Sprintf("%s\t%s2\n%s\t%s3\n", p, base, m02, base) {
		t.Errorf("node list after delete = %q", got)
	}
	if got := k("get", "pods", "--field-selector=spec.nodeName="+m03, "-o", "name"); got != "" {
		t.Errorf("pods left on %s: %s", m03, got)
	}
	if got := k("get", "lease", "-n", "kube-node-lease", "-o", "jsonpath={.items[*].metadata.name}"); strings.Contains(got, m03) {
		t.Errorf("lease of %s left: %s", m03, got)
	}
	for _, path := range []string{nodeNS(m03), "/run/nanokube/" + p + "/ipam/" + m03, filepath.Join(l.Home, "profiles", p, "nodes", m03)} {
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s is left after node delete", path)
		}
	}
	if r := l.run(context.Background(), nil, "ip", "-o", "link", "show", "master", network.BridgeName(p)); strings.Count(strings.TrimSpace(r.stdout), "\n") != 1 {
		t.Errorf("profile bridge ports after delete (want 2): %s", r)
	}
	for _, n := range []string{p, m02} {
		ns := nodeNS(n)
		if r := l.inNetns(t, ns, "bridge", "fdb", "show", "dev", "vxlan.1"); strings.Count(r.stdout, " dst ") != 1 {
			t.Errorf("node %s FDB after delete: %s", n, r)
		}
		if r := l.inNetns(t, ns, "ip", "neigh", "show", "dev", "vxlan.1"); strings.Count(r.stdout, "PERMANENT") != 1 {
			t.Errorf("node %s ARP entries after delete: %s", n, r)
		}
		if r := l.inNetns(t, ns, "ip", "route"); strings.Contains(r.stdout, "10.244.2.0/24") {
			t.Errorf("node %s keeps a route to the deleted node's pods: %s", n, r)
		}
	}
	if _, ok := fetch("client", "web2"); !ok {
		t.Errorf("client → web2 broke after deleting another node")
	}
}
