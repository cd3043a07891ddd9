package dashboard

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// upstream is a stand-in API server that records what reached it.
type upstream struct {
	srv  *httptest.Server
	seen chan *http.Request
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{seen: make(chan *http.Request, 16)}
	u.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.seen <- r.Clone(context.Background())
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"kind":"Table","apiVersion":"meta.k8s.io/v1","path":"`+r.URL.Path+`","query":"`+r.URL.RawQuery+`"}`)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func newServer(t *testing.T, u *upstream) *Server {
	s, err := New(Config{Upstream: u.srv.URL, Transport: u.srv.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func do(s *Server, method, target, host string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(`{}`))
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestServesThePage(t *testing.T) {
	s := newServer(t, newUpstream(t))
	for path, want := range map[string]string{
		"/":        "<title>nanokube dashboard</title>",
		"/app.js":  "as=Table;v=v1;g=meta.k8s.io",
		"/app.css": "grid-template-columns",
	} {
		rec := do(s, http.MethodGet, path, "127.0.0.1:43000", nil)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, rec.Code, want)
		}
		if rec.Header().Get("X-Frame-Options") != "DENY" || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: missing framing/CSP headers: %v", path, rec.Header())
		}
	}
}

func TestProxiesTablesWithoutBrowserCredentials(t *testing.T) {
	u := newUpstream(t)
	s := newServer(t, u)
	rec := do(s, http.MethodGet, "/api/v1/namespaces/default/pods?watch=1&resourceVersion=7", "localhost:43000", map[string]string{
		"Accept":           "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
		"Cookie":           "session=1",
		"Impersonate-User": "someone",
	})
	if rec.Code != http.StatusOK {
		t.Fatalf("proxied GET: %d %s", rec.Code, rec.Body)
	}
	got := <-u.seen
	if got.URL.Path != "/api/v1/namespaces/default/pods" || got.URL.RawQuery != "watch=1&resourceVersion=7" {
		t.Errorf("upstream saw %s?%s", got.URL.Path, got.URL.RawQuery)
	}
	if !strings.Contains(got.Header.Get("Accept"), "as=Table") {
		t.Errorf("Accept not passed on: %q", got.Header.Get("Accept"))
	}
	if got.Header.Get("Cookie") != "" || got.Header.Get("Impersonate-User") != "" {
		t.Errorf("browser credentials reached the API server: %v", got.Header)
	}
	if rec := do(s, http.MethodGet, "/version", "[::1]:43000", nil); rec.Code != http.StatusOK {
		t.Errorf("GET /version over ::1: %d", rec.Code)
	}
}

func TestRefusesWhatAnAdminProxyMustNot(t *testing.T) {
	u := newUpstream(t)
	s := newServer(t, u)
	for _, c := range []struct {
		name, method, path, host string
		hdr                      map[string]string
		want                     int
	}{
		{"rebound name", http.MethodGet, "/api/v1/secrets", "evil.example:43000", nil, http.StatusForbidden},
		{"rebound name, page", http.MethodGet, "/", "evil.example", nil, http.StatusForbidden},
		{"cross-site fetch", http.MethodGet, "/api/v1/secrets", "127.0.0.1:43000", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"delete without header", http.MethodDelete, "/api/v1/namespaces/default/pods/a", "127.0.0.1:43000", nil, http.StatusForbidden},
		{"preflight", http.MethodOptions, "/api/v1/namespaces/default/pods/a", "127.0.0.1:43000", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"foreign origin", http.MethodPatch, "/apis/apps/v1/namespaces/default/deployments/a/scale", "127.0.0.1:43000",
			map[string]string{Header: "1", "Origin": "http://evil.example"}, http.StatusForbidden},
		{"exec upgrade", http.MethodGet, "/api/v1/namespaces/default/pods/a/exec?command=sh", "127.0.0.1:43000",
			map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, http.StatusBadRequest},
		{"post to the page", http.MethodPost, "/", "127.0.0.1:43000", nil, http.StatusMethodNotAllowed},
	} {
		if rec := do(s, c.method, c.path, c.host, c.hdr); rec.Code != c.want {
			t.Errorf("%s: %d, want %d (%s)", c.name, rec.Code, c.want, strings.TrimSpace(rec.Body.String()))
		}
	}
	select {
	case r := <-u.seen:
		t.Errorf("a refused request reached the API server: %s %s", r.Method, r.URL)
	default:
	}
	rec := do(s, http.MethodPatch, "/apis/apps/v1/namespaces/default/deployments/a/scale", "127.0.0.1:43000",
		map[string]string{Header: "1", "Origin": "http://127.0.0.1:43000", "Content-Type": "application/merge-patch+json"})
	if rec.Code != http.StatusOK {
		t.Fatalf("PATCH from the dashboard: %d %s", rec.Code, rec.Body)
	}
	if got := <-u.seen; got.Method != http.MethodPatch || got.Header.Get(Header) != "" || got.Header.Get("Origin") != "" {
		t.Errorf("upstream saw %s with headers %v", got.Method, got.Header)
	}
}

func TestBadUpstream(t *testing.T) {
	if _, err := New(Config{Upstream: "192.168.49.2:8443", Transport: http.DefaultTransport}); err == nil {
		t.Error("a relative upstream was accepted")
	}
	s, err := New(Config{Upstream: "https://127.0.0.1:1", Transport: http.DefaultTransport})
	if err != nil {
		t.Fatal(err)
	}
	if rec := do(s, http.MethodGet, "/version", "127.0.0.1:43000", nil); rec.Code != http.StatusBadGateway {
		t.Errorf("unreachable API server: %d, want 502", rec.Code)
	}
}

func TestServeStopsWithContext(t *testing.T) {
	s := newServer(t, newUpstream(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s", resp.Status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
}
