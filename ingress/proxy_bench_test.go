package ingress

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkProxy is requests through the proxy to one loopback backend,
// with keep-alive connections on both sides.
func BenchmarkProxy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	defer backend.Close()
	src := newSource()
	src.serviceAt("svc", backend.Listener.Addr().String())
	tp := newTestProxy(b, Build(ingsOf(ing("web", 1, map[string][]pathSpec{"app.test": {{"/", "Prefix", "svc"}}})), src, nil))
	for _, c := range []struct{ name, url, host string }{{"direct", backend.URL, ""}, {"ingress", tp.srv.URL, "app.test"}} {
		b.Run(c.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", c.url+"/", nil)
					req.Host = c.host
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
