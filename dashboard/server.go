package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Header is the request header the dashboard's page sends with every
// mutating request; requests without it are refused.
const Header = "X-Nanokube-Dashboard"

//go:embed static
var static embed.FS

// Config is what a dashboard server needs.
type Config struct {
	// Upstream is the API server's base URL, e.g. https://192.168.49.2:8443.
	Upstream string
	// Transport authenticates to Upstream.
	Transport http.RoundTripper
}

// Server is the dashboard's HTTP handler.
type Server struct {
	upstream *url.URL
	proxy    *httputil.ReverseProxy
	files    http.Handler
}

// New checks the configuration and builds the handler.
func New(cfg Config) (*Server, error) {
	u, err := url.Parse(cfg.Upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("dashboard: upstream %q is not an absolute URL", cfg.Upstream)
	}
	if cfg.Transport == nil {
		return nil, errors.New("dashboard: no transport for the API server")
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("dashboard: embedded files: %w", err)
	}
	s := &Server{upstream: u, files: http.FileServer(http.FS(sub))}
	s.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = u.Host
			// The page's own credentials and origin mean nothing upstream;
			// the transport's client certificate is the identity.
			for _, h := range []string{"Cookie", "Authorization", "Origin", "Referer", Header} {
				pr.Out.Header.Del(h)
			}
			for h := range pr.Out.Header {
				if strings.HasPrefix(strings.ToLower(h), "impersonate-") {
					pr.Out.Header.Del(h)
				}
			}
		},
		Transport: cfg.Transport,
		// Watches and followed logs stream: pass bytes on at once.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "API server unreachable: "+err.Error(), http.StatusBadGateway)
		},
	}
	return s, nil
}

// ServeHTTP serves the page and proxies API requests, refusing what a
// local admin proxy must not do for a browser.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopbackHost(r.Host) {
		http.Error(w, "forbidden: the dashboard answers only on its loopback address", http.StatusForbidden)
		return
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		http.Error(w, "forbidden: cross-site request", http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if !isAPIPath(r.URL.Path) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		s.files.ServeHTTP(w, r)
		return
	}
	if r.Header.Get("Upgrade") != "" || httpguts.HeaderValuesContainsToken(r.Header.Values("Connection"), "upgrade") {
		http.Error(w, "streaming (exec, attach, port-forward) is not served by the dashboard: use kubectl", http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if r.Header.Get(Header) == "" {
			http.Error(w, "forbidden: mutating requests need the "+Header+" header", http.StatusForbidden)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
			http.Error(w, "forbidden: origin "+o+" is not the dashboard", http.StatusForbidden)
			return
		}
	}
	s.proxy.ServeHTTP(w, r)
}

func isAPIPath(p string) bool {
	return p == "/api" || p == "/apis" || p == "/version" ||
		strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/apis/")
}

// loopbackHost reports whether a Host header names a loopback address
// (an IP or "localhost"), which a rebinding attacker's name is not.
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Serve answers on ln until ctx ends, then lets requests in flight (open
// watches included) go within a second.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("dashboard: serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("dashboard: serve: %w", err)
	}
	return nil
}
