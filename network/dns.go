package network

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
)

// DNSConfig builds the cluster DNS server.
type DNSConfig struct {
	Domain    string // cluster.local
	Informers informers.SharedInformerFactory
	Upstream  []string // host:port of resolvers for names outside the cluster
	// ReverseCIDRs are the ranges whose in-addr.arpa names the server
	// answers itself (service and pod ranges); other PTR queries go upstream.
	ReverseCIDRs []*net.IPNet
	Log          *slog.Logger
}

// DNS is the cluster DNS, answering like CoreDNS's kubernetes plugin
// straight from the informers' caches:
//
//	SVC.NS.svc.DOMAIN                 A of the ClusterIP; headless: one A per ready endpoint
//	                                  ExternalName: CNAME (and the target's records)
//	HOST.SVC.NS.svc.DOMAIN            A of a headless service's endpoint (hostname, or a-b-c-d)
//	_PORT._PROTO.SVC.NS.svc.DOMAIN    SRV per port (headless: per endpoint), targets' A as additional
//	A-B-C-D.NS.pod.DOMAIN             A of the pod address
//	D.C.B.A.in-addr.arpa              PTR of service, endpoint and pod addresses
//
// A name that exists without records of the asked type is NODATA, one
// that does not exist NXDOMAIN, both with the zone's SOA. Every other name
// is forwarded to the upstream resolvers.
type DNS struct {
	cfg    DNSConfig
	zone   string // "cluster.local."
	svcs   corelisters.ServiceLister
	slices discoverylisters.EndpointSliceLister
	pods   corelisters.PodLister
	nss    corelisters.NamespaceLister
}

// NewDNS builds the server; Serve runs it on listeners.
func NewDNS(cfg DNSConfig) *DNS {
	f := cfg.Informers
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &DNS{cfg: cfg, zone: dns.Fqdn(strings.ToLower(cfg.Domain)), svcs: f.Core().V1().Services().Lister(),
		slices: f.Discovery().V1().EndpointSlices().Lister(), pods: f.Core().V1().Pods().Lister(), nss: f.Core().V1().Namespaces().Lister()}
}

const (
	dnsTTL      = 5
	reverseZone = "in-addr.arpa."
)

// ServeDNS answers one query.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		if req.Opcode != dns.OpcodeQuery {
			m.Rcode = dns.RcodeNotImplemented
		}
		w.WriteMsg(m)
		return
	}
	network := "udp"
	if w.RemoteAddr() != nil {
		network = w.RemoteAddr().Network()
	}
	m := d.Answer(req, network)
	if network == "udp" {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// Answer computes the reply to req, forwarding over network ("udp"/"tcp")
// what is not the cluster's.
func (d *DNS) Answer(req *dns.Msg, network string) *dns.Msg {
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	var zone, rel string
	switch {
	case name == d.zone:
		zone = d.zone
	case strings.HasSuffix(name, "."+d.zone):
		zone, rel = d.zone, strings.TrimSuffix(name, "."+d.zone)
	case strings.HasSuffix(name, "."+reverseZone) && d.ownsReverse(name):
		zone, rel = reverseZone, strings.TrimSuffix(name, "."+reverseZone)
	default:
		return d.forward(req, network)
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative, m.RecursionAvailable = true, true
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	var ans answer
	if zone == reverseZone {
		ans = d.reverse(rel, q)
	} else {
		ans = d.lookup(rel, q, 0, network)
	}
	m.Answer, m.Extra = ans.rrs, append(ans.extra, m.Extra...)
	if !ans.found {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{d.soa(zone)}
	}
	return m
}

type answer struct {
	rrs, extra []dns.RR
	found      bool // false: NXDOMAIN; true without rrs: NODATA
}

func (d *DNS) soa(zone string) dns.RR {
	return &dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: dnsTTL},
		Ns: "ns.dns." + d.zone, Mbox: "hostmaster." + d.zone, Serial: uint32(time.Now().Unix()), Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: dnsTTL}
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: dnsTTL}
}

// addresses answers an A/AAAA (or ANY) question with ips: records of the
// asked family, NODATA when there are none of it.
func addresses(name string, qtype uint16, ips []string) []dns.RR {
	var out []dns.RR
	for _, s := range ips {
		ip := net.ParseIP(s)
		switch {
		case ip == nil:
		case ip.To4() != nil && (qtype == dns.TypeA || qtype == dns.TypeANY):
			out = append(out, &dns.A{Hdr: hdr(name, dns.TypeA), A: ip.To4()})
		case ip.To4() == nil && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
			out = append(out, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: ip})
		}
	}
	return out
}

// lookup resolves a name relative to the cluster domain.
func (d *DNS) lookup(rel string, q dns.Question, depth int, network string) answer {
	if rel == "" {
		switch q.Qtype {
		case dns.TypeSOA:
			return answer{rrs: []dns.RR{d.soa(d.zone)}, found: true}
		case dns.TypeNS:
			return answer{rrs: []dns.RR{&dns.NS{Hdr: hdr(q.Name, dns.TypeNS), Ns: "ns.dns." + d.zone}}, found: true}
		}
		return answer{found: true}
	}
	l := strings.Split(rel, ".")
	n := len(l)
	switch l[n-1] {
	case "svc":
		return d.lookupService(l[:n-1], q, depth, network)
	case "pod":
		return d.lookupPod(l[:n-1], q)
	}
	return answer{}
}

func (d *DNS) namespaceExists(ns string) bool {
	_, err := d.nss.Get(ns)
	return err == nil
}

// lookupPod answers a-b-c-d.NS.pod names (CoreDNS's "pods insecure": the
// address is taken from the name).
func (d *DNS) lookupPod(l []string, q dns.Question) answer {
	switch len(l) {
	case 0:
		return answer{found: true}
	case 1:
		return answer{found: d.namespaceExists(l[0])}
	case 2:
		ip := net.ParseIP(strings.ReplaceAll(l[0], "-", "."))
		if ip == nil || ip.To4() == nil || !d.namespaceExists(l[1]) {
			return answer{}
		}
		return answer{rrs: addresses(q.Name, q.Qtype, []string{ip.String()}), found: true}
	}
	return answer{}
}

// lookupService answers names under svc: l is the labels before "svc".
func (d *DNS) lookupService(l []string, q dns.Question, depth int, network string) answer {
	n := len(l)
	switch n {
	case 0:
		return answer{found: true}
	case 1:
		return answer{found: d.namespaceExists(l[0])}
	}
	svc, err := d.svcs.Services(l[n-1]).Get(l[n-2])
	if err != nil {
		return answer{}
	}
	prefix := l[:n-2]
	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
	svcName := dns.Fqdn(svc.Name + "." + svc.Namespace + ".svc." + strings.TrimSuffix(d.zone, "."))
	switch {
	case len(prefix) == 0 && svc.Spec.Type == corev1.ServiceTypeExternalName:
		return d.externalName(svc, q, depth, network)
	case len(prefix) == 0:
		switch q.Qtype {
		case dns.TypeSRV:
			return d.srv(svc, q, "", "", svcName)
		case dns.TypeA, dns.TypeAAAA, dns.TypeANY:
			if headless {
				var ips []string
				for _, e := range d.endpoints(svc) {
					ips = append(ips, e.ip)
				}
				return answer{rrs: addresses(q.Name, q.Qtype, ips), found: true}
			}
			return answer{rrs: addresses(q.Name, q.Qtype, clusterIPs(svc)), found: true}
		}
		return answer{found: true}
	case len(prefix) == 1 && headless && !strings.HasPrefix(prefix[0], "_"):
		var ips []string
		for _, e := range d.endpoints(svc) {
			if e.host == prefix[0] {
				ips = append(ips, e.ip)
			}
		}
		if len(ips) == 0 {
			return answer{}
		}
		return answer{rrs: addresses(q.Name, q.Qtype, ips), found: true}
	case len(prefix) == 2 && strings.HasPrefix(prefix[0], "_") && strings.HasPrefix(prefix[1], "_"):
		port, proto := prefix[0][1:], prefix[1][1:]
		ans := d.srv(svc, q, port, proto, svcName)
		if !ans.found || q.Qtype == dns.TypeSRV {
			return ans
		}
		return answer{found: true}
	}
	return answer{}
}

func clusterIPs(svc *corev1.Service) []string {
	if len(svc.Spec.ClusterIPs) > 0 {
		return svc.Spec.ClusterIPs
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	return []string{svc.Spec.ClusterIP}
}

// externalName answers with a CNAME to the external name and, for other
// types than CNAME, the target's own records (from the cluster, or from
// upstream), like CoreDNS does.
func (d *DNS) externalName(svc *corev1.Service, q dns.Question, depth int, network string) answer {
	target := dns.Fqdn(strings.ToLower(svc.Spec.ExternalName))
	ans := answer{rrs: []dns.RR{&dns.CNAME{Hdr: hdr(q.Name, dns.TypeCNAME), Target: target}}, found: true}
	if q.Qtype == dns.TypeCNAME || depth > 4 {
		return ans
	}
	next := dns.Question{Name: target, Qtype: q.Qtype, Qclass: q.Qclass}
	switch {
	case target == d.zone || strings.HasSuffix(target, "."+d.zone):
		ans.rrs = append(ans.rrs, d.lookup(strings.TrimSuffix(strings.TrimSuffix(target, d.zone), "."), next, depth+1, network).rrs...)
	default:
		m := new(dns.Msg)
		m.SetQuestion(target, q.Qtype)
		m.RecursionDesired = true
		if r := d.forward(m, network); r != nil && r.Rcode == dns.RcodeSuccess {
			ans.rrs = append(ans.rrs, r.Answer...)
		}
	}
	return ans
}

// srv answers SRV questions: for port "" every port of the service,
// otherwise the named port with the protocol. A ClusterIP service's
// records point at its name, a headless one's at each endpoint's name.
func (d *DNS) srv(svc *corev1.Service, q dns.Question, port, proto, svcName string) answer {
	var ports []corev1.ServicePort
	for _, p := range svc.Spec.Ports {
		if port == "" || (strings.EqualFold(p.Name, port) && strings.EqualFold(string(p.Protocol), proto)) {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		if port == "" {
			return answer{found: true}
		}
		return answer{}
	}
	if q.Qtype != dns.TypeSRV {
		return answer{found: true}
	}
	var ans answer
	ans.found = true
	srv := func(target string, p int32) {
		ans.rrs = append(ans.rrs, &dns.SRV{Hdr: hdr(q.Name, dns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(p), Target: target})
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		for _, p := range ports {
			srv(svcName, p.Port)
		}
		ans.extra = addresses(svcName, dns.TypeA, clusterIPs(svc))
		return ans
	}
	seen := map[string]bool{}
	for _, e := range d.endpoints(svc) {
		target := e.host + "." + svcName
		for _, p := range ports {
			if ep, ok := e.ports[p.Name]; ok {
				srv(target, ep)
			}
		}
		if !seen[target] {
			seen[target] = true
			ans.extra = append(ans.extra, addresses(target, dns.TypeA, []string{e.ip})...)
		}
	}
	return ans
}

type dnsEndpoint struct {
	ip    string
	host  string // hostname, or the address with dashes
	ports map[string]int32
	pod   string // namespace/name of the target pod
}

// endpoints are a headless service's published endpoints: ready ones, or
// every one with publishNotReadyAddresses.
func (d *DNS) endpoints(svc *corev1.Service) []dnsEndpoint {
	slices, err := d.slices.EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name}))
	if err != nil {
		return nil
	}
	sort.Slice(slices, func(i, j int) bool { return slices[i].Name < slices[j].Name })
	var out []dnsEndpoint
	for _, sl := range slices {
		ports := map[string]int32{}
		for _, p := range sl.Ports {
			if p.Port != nil {
				name := ""
				if p.Name != nil {
					name = *p.Name
				}
				ports[name] = *p.Port
			}
		}
		for _, e := range sl.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready && !svc.Spec.PublishNotReadyAddresses {
				continue
			}
			for _, a := range e.Addresses {
				host := strings.ReplaceAll(a, ".", "-")
				if e.Hostname != nil && *e.Hostname != "" {
					host = *e.Hostname
				}
				ep := dnsEndpoint{ip: a, host: host, ports: ports}
				if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
					ep.pod = e.TargetRef.Namespace + "/" + e.TargetRef.Name
				}
				out = append(out, ep)
			}
		}
	}
	return out
}

// ownsReverse reports whether a reverse name lies in a range this server
// is authoritative for.
func (d *DNS) ownsReverse(name string) bool {
	ip := reverseIP(strings.TrimSuffix(name, "."+reverseZone))
	for _, c := range d.cfg.ReverseCIDRs {
		if ip != nil && c.Contains(ip) {
			return true
		}
	}
	return false
}

// reverseIP turns "d.c.b.a" into a.b.c.d; nil unless all four labels are there.
func reverseIP(rel string) net.IP {
	l := strings.Split(rel, ".")
	if len(l) != 4 {
		return nil
	}
	for i, j := 0, 3; i < j; i, j = i+1, j-1 {
		l[i], l[j] = l[j], l[i]
	}
	for _, x := range l {
		if v, err := strconv.Atoi(x); err != nil || v < 0 || v > 255 || strconv.Itoa(v) != x {
			return nil
		}
	}
	return net.ParseIP(strings.Join(l, ".")).To4()
}

// reverse answers PTR names of the cluster's ranges: a Service's
// ClusterIP, a headless service's endpoint, or a pod.
func (d *DNS) reverse(rel string, q dns.Question) answer {
	ip := reverseIP(rel)
	if ip == nil {
		return answer{found: true} // a partial name inside the zone: NODATA
	}
	names := d.namesOf(ip.String())
	if len(names) == 0 {
		return answer{}
	}
	if q.Qtype != dns.TypePTR && q.Qtype != dns.TypeANY {
		return answer{found: true}
	}
	var ans answer
	ans.found = true
	for _, n := range names {
		ans.rrs = append(ans.rrs, &dns.PTR{Hdr: hdr(q.Name, dns.TypePTR), Ptr: n})
	}
	return ans
}

// namesOf finds the names that own ip.
func (d *DNS) namesOf(ip string) []string {
	domain := strings.TrimSuffix(d.zone, ".")
	svcs, _ := d.svcs.List(labels.Everything())
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Namespace+"/"+svcs[i].Name < svcs[j].Namespace+"/"+svcs[j].Name })
	var names []string
	for _, s := range svcs {
		for _, c := range clusterIPs(s) {
			if c == ip {
				names = append(names, fmt.Sprintf("%s.%s.svc.%s.", s.Name, s.Namespace, domain))
			}
		}
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			for _, e := range d.endpoints(s) {
				if e.ip == ip {
					names = append(names, fmt.Sprintf("%s.%s.%s.svc.%s.", e.host, s.Name, s.Namespace, domain))
				}
			}
		}
	}
	if len(names) > 0 {
		return names
	}
	pods, _ := d.pods.List(labels.Everything())
	for _, p := range pods {
		if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, pip := range p.Status.PodIPs {
			if pip.IP == ip {
				return []string{fmt.Sprintf("%s.%s.pod.%s.", strings.ReplaceAll(ip, ".", "-"), p.Namespace, domain)}
			}
		}
		if p.Status.PodIP == ip {
			return []string{fmt.Sprintf("%s.%s.pod.%s.", strings.ReplaceAll(ip, ".", "-"), p.Namespace, domain)}
		}
	}
	return nil
}

// forward asks the upstream resolvers in turn over network; SERVFAIL
// when none answers.
func (d *DNS) forward(req *dns.Msg, network string) *dns.Msg {
	if network != "tcp" {
		network = "udp"
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	for _, up := range d.cfg.Upstream {
		resp, _, err := c.Exchange(req, up)
		if err == nil {
			return resp
		}
		d.cfg.Log.Debug("upstream DNS failed", "upstream", up, "err", err)
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}

// Serve answers on a UDP socket and a TCP listener until ctx ends.
func (d *DNS) Serve(ctx context.Context, udp net.PacketConn, tcp net.Listener) error {
	us := &dns.Server{PacketConn: udp, Handler: d}
	ts := &dns.Server{Listener: tcp, Handler: d}
	errc := make(chan error, 2)
	go func() { errc <- us.ActivateAndServe() }()
	go func() { errc <- ts.ActivateAndServe() }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	us.Shutdown()
	ts.Shutdown()
	return err
}

// ResolvConfPaths are where the host's resolver configuration is read
// from: systemd-resolved's list of real upstream servers first (its
// /etc/resolv.conf names only the 127.0.0.53 stub), then /etc/resolv.conf.
var ResolvConfPaths = []string{"/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"}

// HostResolvers reads the host's nameservers (systemd-resolved's real
// list when present) as host:port.
func HostResolvers(readFile func(string) ([]byte, error)) []string {
	conf, _ := HostResolvConf(readFile)
	var out []string
	for _, s := range conf.Nameservers {
		out = append(out, net.JoinHostPort(s, "53"))
	}
	return out
}

// ResolvConf is the content of a resolv.conf.
type ResolvConf struct {
	Nameservers []string
	Searches    []string
	Options     []string
}

// HostResolvConf reads the first resolver configuration of
// ResolvConfPaths that names a nameserver, and the path it came from.
func HostResolvConf(readFile func(string) ([]byte, error)) (ResolvConf, string) {
	for _, path := range ResolvConfPaths {
		b, err := readFile(path)
		if err != nil {
			continue
		}
		if c := ParseResolvConf(string(b)); len(c.Nameservers) > 0 {
			return c, path
		}
	}
	return ResolvConf{}, ""
}

// ParseResolvConf reads nameserver, search/domain and options lines.
func ParseResolvConf(s string) ResolvConf {
	var c ResolvConf
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			c.Nameservers = append(c.Nameservers, f[1])
		case "search", "domain": // the last of them wins, like glibc
			c.Searches = append([]string(nil), f[1:]...)
		case "options":
			c.Options = append(c.Options, f[1:]...)
		}
	}
	return c
}

// String renders the file the way containerd's CRI plugin writes a pod's
// resolv.conf.
func (c ResolvConf) String() string {
	var b strings.Builder
	if len(c.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(c.Searches, " "))
	}
	for _, s := range c.Nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(c.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(c.Options, " "))
	}
	return b.String()
}
