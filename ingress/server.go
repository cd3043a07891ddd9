package ingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
)

// ServeConfig is one node's pair of listeners.
type ServeConfig struct {
	HTTP, HTTPS net.Listener
	Handler     http.Handler
	Table       func() *Table // for the TLS certificates
	Log         *slog.Logger
}

// shutdownGrace is how long requests in flight may finish on stop.
const shutdownGrace = 5 * time.Second

// Serve serves plain HTTP and TLS until ctx ends, then shuts both down
// gracefully. The listeners never restart: routing changes arrive through
// the Table.
func Serve(ctx context.Context, cfg ServeConfig) error {
	errLog := slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug)
	plain := &http.Server{Handler: cfg.Handler, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 75 * time.Second, ErrorLog: errLog}
	secure := &http.Server{Handler: cfg.Handler, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 75 * time.Second, ErrorLog: errLog,
		TLSConfig: TLSConfig(cfg.Table)}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := plain.Serve(cfg.HTTP); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve ingress on %s: %w", cfg.HTTP.Addr(), err)
		}
		return nil
	})
	g.Go(func() error {
		if err := secure.ServeTLS(cfg.HTTPS, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve ingress TLS on %s: %w", cfg.HTTPS.Addr(), err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := errors.Join(plain.Shutdown(sctx), secure.Shutdown(sctx)); err != nil {
			cfg.Log.Info("ingress: requests still running at shutdown, closing them", "err", err)
			plain.Close()
			secure.Close()
		}
		return nil
	})
	return g.Wait()
}
