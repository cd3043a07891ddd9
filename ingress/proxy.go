package ingress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"
)

// DialFunc opens a connection to an endpoint ("ip:port").
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dialTimeout bounds one connect to an endpoint before the next is tried.
const dialTimeout = 3 * time.Second

// Proxy is the HTTP handler of one node's listeners: it routes with the
// current Table and forwards to the backend's endpoints through dial.
type Proxy struct {
	table func() *Table
	rp    *httputil.ReverseProxy
	log   *slog.Logger
}

// NewProxy builds a handler; table returns the current snapshot and dial
// connects to endpoints (from the node's network namespace).
func NewProxy(table func() *Table, dial DialFunc, log *slog.Logger) *Proxy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			return dial(ctx, network, addr)
		},
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0,
		DisableCompression:    true,
	}
	p := &Proxy{table: table, log: log}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "backend" // the balancer sets the endpoint
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
				pr.Out.Header.Set("X-Real-Ip", ip)
			}
		},
		Transport:  &balancer{base: tr},
		BufferPool: bufferPool{},
		ErrorLog:   slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			p.log.Debug("ingress upstream failed", "host", r.Host, "path", r.URL.Path, "err", err)
			writeStatus(w, http.StatusBadGateway)
		},
	}
	return p
}

type backendKey struct{}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := p.table()
	host := normalizeHost(r.Host)
	if r.TLS == nil && t.TLSHost(host) {
		http.Redirect(w, r, "https://"+hostForURL(host)+r.URL.RequestURI(), http.StatusPermanentRedirect)
		return
	}
	be := t.Match(host, r.URL.Path)
	switch {
	case be == nil:
		// ingress-nginx's default backend.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "default backend - 404\n")
		return
	case len(be.Endpoints) == 0:
		writeStatus(w, http.StatusServiceUnavailable)
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), backendKey{}, be)))
}

func hostForURL(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return "[" + host + "]"
	}
	return host
}

// writeStatus answers like nginx: "503 Service Temporarily Unavailable".
func writeStatus(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	text := http.StatusText(code)
	if code == http.StatusServiceUnavailable {
		text = "Service Temporarily Unavailable"
	}
	fmt.Fprintf(w, "%d %s\n", code, text)
}

// balancer sends each request to the backend's next endpoint, trying the
// following ones while connecting fails.
type balancer struct{ base http.RoundTripper }

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	be, _ := req.Context().Value(backendKey{}).(*Backend)
	if be == nil {
		return nil, errors.New("no backend for the request")
	}
	var body *retryBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &retryBody{rc: req.Body}
		defer body.rc.Close()
	}
	err := errors.New("no ready endpoints")
	for _, ep := range be.pick() {
		out := req.Clone(req.Context())
		out.URL.Host = ep
		if body != nil {
			out.Body = body
		}
		var resp *http.Response
		resp, err = b.base.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		if !isDialError(err) || (body != nil && body.read.Load()) {
			break
		}
	}
	return nil, err
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryBody lets a request body survive a failed connect: the transport
// closes the body it was given on errors, before reading it.
type retryBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (b *retryBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.rc.Read(p)
}

func (b *retryBody) Close() error { return nil }

// bufferPool shares copy buffers among requests.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
