package ingress

import (
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
)

// Table is one immutable routing snapshot. Only Backend's round-robin
// counter changes after Build.
type Table struct {
	exact map[string]*hostRules // by host name
	wild  map[string]*hostRules // by the parent domain of "*.parent"
	any   *hostRules            // rules without a host
	def   *Backend              // the oldest Ingress's defaultBackend

	certs     map[string]*tls.Certificate // by TLS host name
	wildCerts map[string]*tls.Certificate // by the parent domain of "*.parent"
	tlsHosts  map[string]bool             // TLS host names; "*.parent" kept as is
	fallback  *tls.Certificate

	// Problems says what could not be served (missing Services, bad
	// Secrets), for the controller's log.
	Problems []string
}

type hostRules struct {
	routes []route // in precedence order: the first match wins
}

type route struct {
	path    string // Prefix paths without their trailing "/"
	exact   bool
	backend *Backend
}

// Backend is one Service port and its ready endpoints ("ip:port").
type Backend struct {
	Name      string // namespace/service:port
	Endpoints []string
	next      atomic.Uint64
}

// pick returns the endpoints in the order to try them: round robin.
func (b *Backend) pick() []string {
	n := uint64(len(b.Endpoints))
	if n == 0 {
		return nil
	}
	start := (b.next.Add(1) - 1) % n
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, b.Endpoints[(start+i)%n])
	}
	return out
}

func (r route) matches(path string) bool {
	if r.exact {
		return path == r.path
	}
	return r.path == "" || path == r.path || strings.HasPrefix(path, r.path+"/")
}

// Match is the backend for a request to host and path, or nil when
// nothing (not even a default backend) matches.
func (t *Table) Match(host, path string) *Backend {
	if hr := t.rulesFor(normalizeHost(host)); hr != nil {
		for _, r := range hr.routes {
			if r.matches(path) {
				return r.backend
			}
		}
	}
	return t.def
}

func (t *Table) rulesFor(host string) *hostRules {
	if hr := t.exact[host]; hr != nil {
		return hr
	}
	if _, parent, ok := strings.Cut(host, "."); ok {
		if hr := t.wild[parent]; hr != nil {
			return hr
		}
	}
	return t.any
}

// TLSHost reports whether host is listed under some Ingress's tls.
func (t *Table) TLSHost(host string) bool {
	host = normalizeHost(host)
	if t.tlsHosts[host] {
		return true
	}
	_, parent, ok := strings.Cut(host, ".")
	return ok && t.tlsHosts["*."+parent]
}

// Certificate is the certificate for a TLS server name: the one for the
// exact host, then a wildcard one, then the self-signed fallback.
func (t *Table) Certificate(serverName string) *tls.Certificate {
	host := normalizeHost(serverName)
	if c := t.certs[host]; c != nil {
		return c
	}
	if _, parent, ok := strings.Cut(host, "."); ok {
		if c := t.wildCerts[parent]; c != nil {
			return c
		}
	}
	return t.fallback
}

// normalizeHost drops the port and a trailing dot and lowercases.
func normalizeHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
