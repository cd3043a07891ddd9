//go:build linux

package daemon

import (
	"context"
	"fmt"
	"net"

	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/ingress"
	"github.com/nanokube/nanokube/network"
)

// setupIngress builds the ingress controller; it runs with the
// controllers and every node serves its table (nodeIngress).
func (s *System) setupIngress() error {
	c, err := ingress.New(ingress.Config{Client: s.cs, Informers: s.ctrl.Informers(),
		Recorder: s.ctrl.Recorder("nanokube-ingress"), Log: s.log})
	if err != nil {
		return fmt.Errorf("build ingress controller: %w", err)
	}
	s.ing = c
	s.ctrl.AddRunner(c.Run)
	return nil
}

// nodeIngress serves the ingress on ports 80 and 443 of the node's IP,
// with sockets opened inside the node's netns (like the API server's),
// and connects to endpoints from there too. The host driver's node is
// 127.0.0.1 of the host: when those ports are taken it goes without. The
// fake runtime's pods have no network, so it serves nothing.
func (s *System) nodeIngress(n cluster.NodeState) func(context.Context) error {
	nsPath := s.net.nodeNetns(n.Name)
	return func(ctx context.Context) error {
		if s.fake != nil {
			return nil
		}
		httpAddr, httpsAddr := net.JoinHostPort(n.IP, "80"), net.JoinHostPort(n.IP, "443")
		plain, err := network.ListenTCP(nsPath, httpAddr)
		if err != nil {
			return s.ingressListenFailed(n, httpAddr, err)
		}
		secure, err := network.ListenTCP(nsPath, httpsAddr)
		if err != nil {
			plain.Close()
			return s.ingressListenFailed(n, httpsAddr, err)
		}
		dial := func(ctx context.Context, proto, addr string) (net.Conn, error) {
			return network.DialContext(ctx, nsPath, proto, addr)
		}
		return ingress.Serve(ctx, ingress.ServeConfig{HTTP: plain, HTTPS: secure, Handler: s.ing.Handler(dial), Table: s.ing.Table, Log: s.log})
	}
}

func (s *System) ingressListenFailed(n cluster.NodeState, addr string, err error) error {
	if s.net.driver == "host" {
		s.log.Warn("ingress disabled: cannot listen on the host", "addr", addr, "err", err)
		return nil
	}
	return fmt.Errorf("node %s: ingress: listen on %s: %w", n.Name, addr, err)
}
