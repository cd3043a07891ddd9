//go:build linux

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/nanokube/nanokube/cluster"
)

// serveControl serves the control socket (cluster.Profile.ControlSocket):
// HTTP over a unix socket that only root can open, for what the CLI asks
// of the running daemon. Each answer is a stream of cluster.Progress
// lines, like the start report:
//
//	POST   /nodes?count=N   add N worker nodes
//	DELETE /nodes/NAME      drain and remove a worker node
func (s *System) serveControl(ctx context.Context, g *errgroup.Group) error {
	path := s.cfg.Profile.ControlSocket()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale control socket: %w", err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on the control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		lis.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /nodes", func(w http.ResponseWriter, r *http.Request) {
		count := 1
		if c := r.URL.Query().Get("count"); c != "" {
			n, err := strconv.Atoi(c)
			if err != nil || n < 1 {
				http.Error(w, fmt.Sprintf("invalid count %q: give a number of nodes of at least 1", c), http.StatusBadRequest)
				return
			}
			count = n
		}
		s.stream(w, func(step func(string, ...any)) ([]string, error) { return s.addNodes(ctx, count, step) })
	})
	mux.HandleFunc("DELETE /nodes/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		s.stream(w, func(step func(string, ...any)) ([]string, error) {
			return []string{name}, s.deleteNode(ctx, name, step)
		})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() error {
		err := srv.Serve(lis)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve the control socket: %w", err)
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		os.Remove(path)
		return err
	})
	return nil
}

// stream runs op and reports its steps and outcome as Progress lines. The
// operation runs to its end under the daemon's context even when the
// client goes away: a node is never left half added or half removed.
func (s *System) stream(w http.ResponseWriter, op func(step func(string, ...any)) ([]string, error)) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(p cluster.Progress) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(p)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	nodes, err := op(func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		s.log.Info(msg)
		send(cluster.Progress{Step: msg})
	})
	if err != nil {
		s.log.Error("node operation failed", "err", err)
		send(cluster.Progress{Error: err.Error(), Nodes: nodes})
		return
	}
	send(cluster.Progress{Ready: true, Nodes: nodes})
}
