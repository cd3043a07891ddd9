//go:build linux

package dockerapi

import (
	"bufio"
	"context"
	"net"
	"net/http"

	"golang.org/x/net/http2"
)

// grpc is POST /grpc: BuildKit's control API over the hijacked
// connection (HTTP/2 without TLS), what buildx's docker driver dials.
func (s *Server) grpc(w http.ResponseWriter, r *http.Request) {
	if proto := r.Header.Get("Upgrade"); proto != "h2c" {
		fail(w, errBadRequest("POST /grpc needs Upgrade: h2c, not %q", proto))
		return
	}
	bk, err := s.builder.get(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		fail(w, errNotImplemented("connection cannot be hijacked"))
		return
	}
	raw, brw, err := hj.Hijack()
	if err != nil {
		s.log.Info("hijack /grpc", "err", err)
		return
	}
	defer raw.Close()
	conn := net.Conn(raw)
	if brw.Reader.Buffered() > 0 {
		conn = &bufferedConn{Conn: raw, r: brw.Reader}
	}
	resp := &http.Response{StatusCode: http.StatusSwitchingProtocols, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}}
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", "h2c")
	if err := resp.Write(conn); err != nil {
		return
	}
	// The connection is ours now: close it when the daemon stops.
	stop := context.AfterFunc(r.Context(), func() { conn.Close() })
	defer stop()
	(&http2.Server{}).ServeConn(conn, &http2.ServeConnOpts{Context: r.Context(), Handler: bk.grpc})
}

// session is POST /session: a BuildKit session (local files, secrets,
// auth) that a buildx build attaches to, served by BuildKit's manager.
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	bk, err := s.builder.get(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	if err := bk.sessions.HandleHTTPRequest(r.Context(), w, r); err != nil {
		s.log.Info("BuildKit session", "err", err)
	}
}

// bufferedConn reads what the HTTP server already buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
