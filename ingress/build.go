package ingress

import (
	"crypto/tls"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Source looks up what Ingresses refer to; nil when missing.
type Source interface {
	Service(namespace, name string) *corev1.Service
	EndpointSlices(namespace, service string) []*discoveryv1.EndpointSlice
	Secret(namespace, name string) *corev1.Secret
}

// Build makes the routing snapshot for ingresses (all of this
// controller's class). Where Ingresses disagree (the same host and path,
// two default backends, two certificates for a host) the oldest wins.
func Build(ingresses []*networkingv1.Ingress, src Source, fallback *tls.Certificate) *Table {
	ings := append([]*networkingv1.Ingress(nil), ingresses...)
	sort.SliceStable(ings, func(i, j int) bool { return older(ings[i], ings[j]) })
	b := &builder{src: src, backends: map[string]*Backend{}, t: &Table{
		exact: map[string]*hostRules{}, wild: map[string]*hostRules{}, certs: map[string]*tls.Certificate{},
		wildCerts: map[string]*tls.Certificate{}, tlsHosts: map[string]bool{}, fallback: fallback,
	}}
	type key struct {
		host, path string
		exact      bool
	}
	seen := map[key]bool{}
	hosts := map[string][]route{}
	for _, ing := range ings {
		if d := ing.Spec.DefaultBackend; d != nil && b.t.def == nil {
			b.t.def = b.backend(ing, d)
		}
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			host := normalizeHost(rule.Host)
			for _, p := range rule.HTTP.Paths {
				r := route{path: p.Path}
				if p.PathType != nil && *p.PathType == networkingv1.PathTypeExact {
					r.exact = true
				} else {
					r.path = strings.TrimRight(r.path, "/")
				}
				k := key{host, r.path, r.exact}
				if seen[k] {
					continue
				}
				seen[k] = true
				r.backend = b.backend(ing, &p.Backend)
				hosts[host] = append(hosts[host], r)
			}
		}
		b.addTLS(ing)
	}
	for host, routes := range hosts {
		// Longest path first, Exact before Prefix on the same length;
		// otherwise the order of age (stable sort).
		sort.SliceStable(routes, func(i, j int) bool {
			if len(routes[i].path) != len(routes[j].path) {
				return len(routes[i].path) > len(routes[j].path)
			}
			return routes[i].exact && !routes[j].exact
		})
		hr := &hostRules{routes: routes}
		switch {
		case host == "":
			b.t.any = hr
		case strings.HasPrefix(host, "*."):
			b.t.wild[host[2:]] = hr
		default:
			b.t.exact[host] = hr
		}
	}
	return b.t
}

func older(a, b *networkingv1.Ingress) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

type builder struct {
	src      Source
	t        *Table
	backends map[string]*Backend
}

func (b *builder) problem(format string, args ...any) {
	b.t.Problems = append(b.t.Problems, fmt.Sprintf(format, args...))
}

// backend resolves an Ingress backend to its Service port's ready
// endpoints; one Backend per Service port, shared by every route to it.
func (b *builder) backend(ing *networkingv1.Ingress, ib *networkingv1.IngressBackend) *Backend {
	if ib.Service == nil {
		name := ing.Namespace + "/" + ing.Name + ": resource backend"
		b.problem("ingress %s/%s: resource backends are not supported", ing.Namespace, ing.Name)
		return &Backend{Name: name}
	}
	port := ib.Service.Port.Name
	if port == "" {
		port = strconv.Itoa(int(ib.Service.Port.Number))
	}
	name := ing.Namespace + "/" + ib.Service.Name + ":" + port
	if be := b.backends[name]; be != nil {
		return be
	}
	be := &Backend{Name: name}
	b.backends[name] = be
	svc := b.src.Service(ing.Namespace, ib.Service.Name)
	if svc == nil {
		b.problem("ingress %s/%s: service %s not found", ing.Namespace, ing.Name, ib.Service.Name)
		return be
	}
	var sp *corev1.ServicePort
	for i, p := range svc.Spec.Ports {
		if (ib.Service.Port.Name != "" && p.Name == ib.Service.Port.Name) || (ib.Service.Port.Name == "" && p.Port == ib.Service.Port.Number) {
			sp = &svc.Spec.Ports[i]
			break
		}
	}
	if sp == nil {
		b.problem("ingress %s/%s: service %s has no port %s", ing.Namespace, ing.Name, ib.Service.Name, port)
		return be
	}
	seen := map[string]bool{}
	for _, sl := range b.src.EndpointSlices(ing.Namespace, ib.Service.Name) {
		if sl.AddressType != discoveryv1.AddressTypeIPv4 && sl.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var target int32
		for _, p := range sl.Ports {
			if p.Port != nil && ptrString(p.Name) == sp.Name && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) {
				target = *p.Port
			}
		}
		if target == 0 {
			continue
		}
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, ip := range ep.Addresses {
				addr := net.JoinHostPort(ip, strconv.Itoa(int(target)))
				if !seen[addr] {
					seen[addr] = true
					be.Endpoints = append(be.Endpoints, addr)
				}
			}
		}
	}
	sort.Strings(be.Endpoints)
	return be
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// addTLS records an Ingress's TLS hosts and loads their certificates from
// kubernetes.io/tls Secrets in its namespace.
func (b *builder) addTLS(ing *networkingv1.Ingress) {
	for _, it := range ing.Spec.TLS {
		var cert *tls.Certificate
		if it.SecretName != "" {
			cert = b.loadSecret(ing, it.SecretName)
		}
		for _, h := range it.Hosts {
			h = normalizeHost(h)
			b.t.tlsHosts[h] = true
			if cert == nil {
				continue
			}
			if parent, ok := strings.CutPrefix(h, "*."); ok {
				if b.t.wildCerts[parent] == nil {
					b.t.wildCerts[parent] = cert
				}
			} else if b.t.certs[h] == nil {
				b.t.certs[h] = cert
			}
		}
	}
}

func (b *builder) loadSecret(ing *networkingv1.Ingress, name string) *tls.Certificate {
	sec := b.src.Secret(ing.Namespace, name)
	if sec == nil {
		b.problem("ingress %s/%s: TLS secret %s not found", ing.Namespace, ing.Name, name)
		return nil
	}
	crt, key := sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]
	if sec.Type != corev1.SecretTypeTLS && (len(crt) == 0 || len(key) == 0) {
		b.problem("ingress %s/%s: secret %s is of type %s, not %s", ing.Namespace, ing.Name, name, sec.Type, corev1.SecretTypeTLS)
		return nil
	}
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		b.problem("ingress %s/%s: TLS secret %s: %v", ing.Namespace, ing.Name, name, err)
		return nil
	}
	return &cert
}
