package ingress

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serviceAt adds Service name whose ready endpoints are the given
// "ip:port" addresses (one EndpointSlice per address).
func (f *fakeSource) serviceAt(name string, addrs ...string) {
	f.svcs["default/"+name] = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	f.slices["default/"+name] = nil
	ready := true
	for _, a := range addrs {
		host, ps, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(ps)
		portName, port := "http", int32(p)
		f.slices["default/"+name] = append(f.slices["default/"+name], &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4,
			Ports:     []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}})
	}
}

// echo is a backend that answers with its name, the Host it saw, the
// forwarding headers and the request body.
func echo(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s host=%s xff=%s proto=%s xhost=%s body=%s", name, r.Host, r.Header.Get("X-Forwarded-For"),
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"), body)
	}))
	t.Cleanup(s.Close)
	return s
}

// refusedAddr is a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

type testProxy struct {
	table atomic.Pointer[Table]
	srv   *httptest.Server
}

func newTestProxy(t testing.TB, tbl *Table) *testProxy {
	tp := &testProxy{}
	tp.table.Store(tbl)
	var d net.Dialer
	tp.srv = httptest.NewServer(NewProxy(tp.table.Load, d.DialContext, nil))
	t.Cleanup(tp.srv.Close)
	return tp
}

// get sends a request for host+path to the proxy and returns the status
// and body.
func (tp *testProxy) do(t *testing.T, c *http.Client, method, host, path, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, tp.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestProxy(t *testing.T) {
	a, b := echo(t, "a"), echo(t, "b")
	src := newSource()
	src.serviceAt("ab", a.Listener.Addr().String(), b.Listener.Addr().String())
	src.serviceAt("flaky", refusedAddr(t), a.Listener.Addr().String(), refusedAddr(t))
	src.service("empty") // only a not-ready endpoint
	rules := ing("web", 1, map[string][]pathSpec{
		"app.test":    {{"/", "Prefix", "ab"}, {"/flaky", "Prefix", "flaky"}, {"/empty", "Exact", "empty"}, {"/missing", "Prefix", "nosuch"}},
		"secure.test": {{"/", "Prefix", "ab"}},
	})
	rules.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"secure.test"}, SecretName: "nosuch"}}
	tp := newTestProxy(t, Build(ingsOf(rules), src, nil))
	c := noRedirects()

	// Round robin over both endpoints.
	var seen []string
	for range 4 {
		resp, body := tp.do(t, c, "GET", "app.test", "/x", "")
		if resp.StatusCode != 200 {
			t.Fatalf("GET app.test/x = %d %s", resp.StatusCode, body)
		}
		seen = append(seen, body[:1])
	}
	if got := strings.Join(seen, ""); got != "abab" && got != "baba" {
		t.Errorf("backends in turn = %s, want alternating", got)
	}

	// Forwarding headers, the original Host.
	_, body := tp.do(t, c, "GET", "app.test", "/", "")
	if want := " host=app.test xff=127.0.0.1 proto=http xhost=app.test body="; !strings.HasSuffix(body, want) {
		t.Errorf("forwarded request = %q, want suffix %q", body, want)
	}

	// A refused connect is retried on the next endpoint, body and all.
	for i := range 6 {
		resp, body := tp.do(t, c, "POST", "app.test", "/flaky", "payload")
		if resp.StatusCode != 200 || !strings.HasPrefix(body, "a ") || !strings.HasSuffix(body, "body=payload") {
			t.Errorf("POST /flaky #%d = %d %q, want a's answer with the body", i, resp.StatusCode, body)
		}
	}

	// No ready endpoints, or no Service at all: 503.
	for _, path := range []string{"/empty", "/missing/x"} {
		if resp, body := tp.do(t, c, "GET", "app.test", path, ""); resp.StatusCode != 503 || body != "503 Service Temporarily Unavailable\n" {
			t.Errorf("GET %s = %d %q, want 503", path, resp.StatusCode, body)
		}
	}

	// Nothing matches and no default backend: 404 from the default backend.
	if resp, body := tp.do(t, c, "GET", "other.test", "/", ""); resp.StatusCode != 404 || body != "default backend - 404\n" {
		t.Errorf("GET other.test = %d %q, want 404", resp.StatusCode, body)
	}

	// A TLS host over plain HTTP: 308 to https, path and query kept.
	resp, _ := tp.do(t, c, "POST", "secure.test:80", "/a/b?c=d", "x")
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://secure.test/a/b?c=d" {
		t.Errorf("plain HTTP to a TLS host = %d Location %q, want 308 to https://secure.test/a/b?c=d", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestProxyReload: a new Table applies to the next request on a kept-alive
// client connection; the connection is not dropped.
func TestProxyReload(t *testing.T) {
	a, b := echo(t, "a"), echo(t, "b")
	src := newSource()
	src.serviceAt("svc", a.Listener.Addr().String())
	rules := ingsOf(ing("web", 1, map[string][]pathSpec{"app.test": {{"/", "Prefix", "svc"}}}))
	tp := newTestProxy(t, Build(rules, src, nil))
	c := tp.srv.Client()
	var conns, reused atomic.Int32
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		conns.Add(1)
		if info.Reused {
			reused.Add(1)
		}
	}}
	get := func() string {
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", tp.srv.URL+"/", nil)
		req.Host = "app.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body[:1])
	}
	if got := get(); got != "a" {
		t.Fatalf("before the reload: %s", got)
	}
	src.serviceAt("svc", b.Listener.Addr().String())
	tp.table.Store(Build(rules, src, nil))
	if got := get(); got != "b" {
		t.Errorf("after the reload: %s, want b", got)
	}
	if conns.Load() != 2 || reused.Load() != 1 {
		t.Errorf("connections: %d requests, %d on a reused connection; want the second on the first's connection", conns.Load(), reused.Load())
	}
}

// TestProxyReloadUnderLoad: requests in flight and on kept-alive
// connections all succeed while the table is swapped over and over.
func TestProxyReloadUnderLoad(t *testing.T) {
	a, b := echo(t, "a"), echo(t, "b")
	src := newSource()
	rules := ingsOf(ing("web", 1, map[string][]pathSpec{"app.test": {{"/", "Prefix", "svc"}}}))
	src.serviceAt("svc", a.Listener.Addr().String())
	tp := newTestProxy(t, Build(rules, src, nil))
	c := tp.srv.Client()
	stop := make(chan struct{})
	errs := make(chan error, 8)
	var served atomic.Int64
	progress := make(chan struct{}, 1)
	for range 8 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				req, _ := http.NewRequest("GET", tp.srv.URL+"/", nil)
				req.Host = "app.test"
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
					return
				}
				served.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	pending := 8 // workers that have not reported on errs yet
reload:
	for i := range 200 {
		// Swap only after a request completed on the previous table.
		select {
		case <-progress:
		case err := <-errs:
			t.Errorf("request during reloads: %v", err)
			pending--
			break reload
		}
		addr := a.Listener.Addr().String()
		if i%2 == 1 {
			addr = b.Listener.Addr().String()
		}
		src.serviceAt("svc", addr)
		tp.table.Store(Build(rules, src, nil))
	}
	close(stop)
	for range pending {
		if err := <-errs; err != nil {
			t.Errorf("request during reloads: %v", err)
		}
	}
	if served.Load() < 200 {
		t.Errorf("%d requests during 200 reloads, want at least one per table", served.Load())
	}
}
