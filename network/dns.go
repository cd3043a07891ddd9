package network

import (
	"context"
	"log/slog"
	"net"
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
	Log       *slog.Logger
}

// DNS answers for Services (A, SRV, CNAME for ExternalName, one A per
// endpoint for headless ones) and pods (a-b-c-d.ns.pod), straight from the
// informers' caches, and forwards every other name upstream.
type DNS struct {
	cfg    DNSConfig
	svcs   corelisters.ServiceLister
	slices discoverylisters.EndpointSliceLister
}

// NewDNS builds the server; Serve runs it on listeners.
func NewDNS(cfg DNSConfig) *DNS {
	return &DNS{cfg: cfg, svcs: cfg.Informers.Core().V1().Services().Lister(),
		slices: cfg.Informers.Discovery().V1().EndpointSlices().Lister()}
}

const dnsTTL = 5

// ServeDNS answers one query.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	zone := dns.Fqdn(d.cfg.Domain)
	if !strings.HasSuffix(name, "."+zone) && name != zone {
		w.WriteMsg(d.forward(req))
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	answers, found := d.lookup(strings.TrimSuffix(name, "."+zone), q)
	m.Answer = answers
	if !found {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: dnsTTL},
			Ns: "ns.dns." + zone, Mbox: "hostmaster." + zone, Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: dnsTTL}}
	}
	w.WriteMsg(m)
}

// lookup resolves a name relative to the cluster domain; found is false
// for NXDOMAIN (found with no answers is NODATA).
func (d *DNS) lookup(rel string, q dns.Question) ([]dns.RR, bool) {
	labelsOf := strings.Split(rel, ".")
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: dnsTTL}
	}
	n := len(labelsOf)
	switch {
	case n >= 3 && labelsOf[n-1] == "pod":
		ip := net.ParseIP(strings.ReplaceAll(labelsOf[0], "-", "."))
		if ip == nil || ip.To4() == nil {
			return nil, false
		}
		if q.Qtype == dns.TypeA {
			return []dns.RR{&dns.A{Hdr: hdr(dns.TypeA), A: ip.To4()}}, true
		}
		return nil, true
	case n >= 3 && labelsOf[n-1] == "svc":
		ns, svcName := labelsOf[n-2], labelsOf[n-3]
		svc, err := d.svcs.Services(ns).Get(svcName)
		if err != nil {
			return nil, false
		}
		prefix := labelsOf[:n-3]
		if len(prefix) == 2 && strings.HasPrefix(prefix[0], "_") && strings.HasPrefix(prefix[1], "_") {
			return d.srv(svc, strings.TrimPrefix(prefix[0], "_"), strings.TrimPrefix(prefix[1], "_"), q), true
		}
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			return []dns.RR{&dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: dns.Fqdn(svc.Spec.ExternalName)}}, true
		}
		ips := []string{svc.Spec.ClusterIP}
		if svc.Spec.ClusterIP == corev1.ClusterIPNone {
			ips = d.endpointIPs(svc, strings.Join(prefix, "."))
			if len(prefix) == 1 && len(ips) == 0 {
				return nil, false
			}
		} else if len(prefix) > 0 {
			return nil, false
		}
		if q.Qtype != dns.TypeA && q.Qtype != dns.TypeANY {
			return nil, true
		}
		var out []dns.RR
		for _, ip := range ips {
			if p := net.ParseIP(ip).To4(); p != nil {
				out = append(out, &dns.A{Hdr: hdr(dns.TypeA), A: p})
			}
		}
		return out, true
	case n == 1 && labelsOf[0] == "svc", n == 2 && labelsOf[1] == "svc":
		return nil, true // the zones themselves exist
	}
	return nil, false
}

// endpointIPs are a headless service's ready endpoint addresses; host
// selects one endpoint by its hostname (StatefulSet pods).
func (d *DNS) endpointIPs(svc *corev1.Service, host string) []string {
	slices, err := d.slices.EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name}))
	if err != nil {
		return nil
	}
	var ips []string
	for _, sl := range slices {
		for _, e := range sl.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready && !svc.Spec.PublishNotReadyAddresses {
				continue
			}
			if host != "" && (e.Hostname == nil || *e.Hostname != host) && (e.TargetRef == nil || e.TargetRef.Name != host) {
				continue
			}
			ips = append(ips, e.Addresses...)
		}
	}
	return ips
}

func (d *DNS) srv(svc *corev1.Service, port, proto string, q dns.Question) []dns.RR {
	if q.Qtype != dns.TypeSRV {
		return nil
	}
	target := dns.Fqdn(svc.Name + "." + svc.Namespace + ".svc." + d.cfg.Domain)
	var out []dns.RR
	for _, p := range svc.Spec.Ports {
		if p.Name == port && strings.EqualFold(string(p.Protocol), proto) {
			out = append(out, &dns.SRV{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: dnsTTL},
				Priority: 0, Weight: 100, Port: uint16(p.Port), Target: target})
		}
	}
	return out
}

// forward asks the upstream resolvers.
func (d *DNS) forward(req *dns.Msg) *dns.Msg {
	c := &dns.Client{Timeout: 2 * time.Second}
	for _, up := range d.cfg.Upstream {
		if resp, _, err := c.Exchange(req, up); err == nil {
			return resp
		}
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
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

// HostResolvers reads the host's nameservers (systemd-resolved's real
// list when present).
func HostResolvers(readFile func(string) ([]byte, error)) []string {
	for _, path := range []string{"/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"} {
		b, err := readFile(path)
		if err != nil {
			continue
		}
		var out []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "nameserver" {
				out = append(out, net.JoinHostPort(f[1], "53"))
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}
