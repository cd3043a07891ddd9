//go:build linux

package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nanokube/nanokube/internal/syncloop"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/nanokube/nanokube/network"
)

// Config places one node's health server.
type Config struct {
	Node      string
	NodeNetns string // the node's netns ("" for the current one)
	Addr      string // the IP to listen on; "" for all of the netns
	Informers informers.SharedInformerFactory
	Log       *slog.Logger
}

// Server keeps one listener per health check port, in step with the
// Services and EndpointSlices.
type Server struct {
	cfg    Config
	svcs   corelisters.ServiceLister
	slices discoverylisters.EndpointSliceLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	state   map[int32]Service // what each port answers
	servers map[int32]*http.Server
	serving sync.WaitGroup
}

// New builds the server; Run serves.
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	svcInf := cfg.Informers.Core().V1().Services()
	sliceInf := cfg.Informers.Discovery().V1().EndpointSlices()
	s := &Server{cfg: cfg, svcs: svcInf.Lister(), slices: sliceInf.Lister(), state: map[int32]Service{}, servers: map[int32]*http.Server{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "healthcheck-" + cfg.Node})}
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { s.queue.Add(syncloop.Key) }, UpdateFunc: func(any, any) { s.queue.Add(syncloop.Key) }, DeleteFunc: func(any) { s.queue.Add(syncloop.Key) },
	}
	for _, inf := range []cache.SharedIndexInformer{svcInf.Informer(), sliceInf.Informer()} {
		if _, err := inf.AddEventHandler(kick); err != nil {
			return nil, fmt.Errorf("node %s health checks: %w", cfg.Node, err)
		}
		s.synced = append(s.synced, inf.HasSynced)
	}
	return s, nil
}

// Run syncs the listeners on every change until ctx ends, then closes them.
func (s *Server) Run(ctx context.Context) error {
	defer s.closeAll()
	return syncloop.Run(ctx, s.queue, s.synced, s.sync, func(err error) {
		s.cfg.Log.Info("service health check sync failed", "node", s.cfg.Node, "err", err)
	})
}

// Ports are the health check ports served now (for tests).
func (s *Server) Ports() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int32
	for p := range s.servers {
		out = append(out, p)
	}
	return out
}

// sync opens the listeners of new ports, closes those of gone ones and
// updates what each answers.
func (s *Server) sync() error {
	svcs, err := s.svcs.List(labels.Everything())
	if err != nil {
		return err
	}
	slices, err := s.slices.List(labels.Everything())
	if err != nil {
		return err
	}
	want := Desired(s.cfg.Node, svcs, slices)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = want
	for port, srv := range s.servers {
		if _, ok := want[port]; !ok {
			srv.Close()
			delete(s.servers, port)
		}
	}
	var errs []error
	for port := range want {
		if s.servers[port] != nil {
			continue
		}
		addr := net.JoinHostPort(s.cfg.Addr, strconv.Itoa(int(port)))
		ln, err := network.ListenTCP(s.cfg.NodeNetns, addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("listen on %s: %w", addr, err))
			continue
		}
		srv := &http.Server{Handler: s.handler(port), ReadHeaderTimeout: 5 * time.Second}
		s.servers[port] = srv
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.cfg.Log.Info("service health check server failed", "node", s.cfg.Node, "addr", addr, "err", err)
			}
		}()
	}
	return errors.Join(errs...)
}

// handler answers for whatever Service holds port now.
func (s *Server) handler(port int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		hs := s.state[port]
		s.mu.Unlock()
		hs.ServeHTTP(w, r)
	})
}

func (s *Server) closeAll() {
	s.mu.Lock()
	for port, srv := range s.servers {
		srv.Close()
		delete(s.servers, port)
	}
	s.mu.Unlock()
	s.serving.Wait()
}
