// Package apiserver serves the Kubernetes API over the store: discovery,
// OpenAPI, CRUD with patches and watches, tables, and the errors real
// clients expect. Per-kind knowledge comes from package registry.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/version"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/nanokube/nanokube/apiserver/rbac"
	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/internal/satoken"
	"github.com/nanokube/nanokube/store"
)

// Config is everything the API server is built from.
type Config struct {
	Store *store.Store
	// RevisionWait bounds how long a watch from a resourceVersion the
	// store has not reached waits for it (0: kube-apiserver's 3 s).
	RevisionWait time.Duration
	Resources    []*registry.Resource
	OpenAPI      http.Handler // serves /openapi/v2 and /openapi/v3; nil: 404
	Version      version.Info
	// AdvertiseAddress and AdvertisePort are what the kubernetes service's
	// endpoints point at.
	AdvertiseAddress net.IP
	AdvertisePort    int
	Logger           *slog.Logger
	// PodLogs streams a container's log (pods/log); nil: not served.
	PodLogs func(ctx context.Context, pod *corev1.Pod, container string, opts *corev1.PodLogOptions, w io.Writer) error
	// PodStreams serves pods/exec, pods/attach and pods/portforward; nil:
	// not served.
	PodStreams PodStreams
	// APIServices are groups served by other handlers (metrics.k8s.io).
	APIServices []APIService
	// VerifyServiceAccountToken checks ServiceAccount bearer tokens; nil:
	// bearer tokens are refused (401).
	VerifyServiceAccountToken VerifyTokenFunc
	// TokenAudiences are the audiences a bearer token must be meant for
	// (kube-apiserver's --api-audiences); empty: any.
	TokenAudiences []string
	// AlwaysAllow turns RBAC off (every authenticated request is allowed).
	AlwaysAllow bool
	// TokenSigner signs ServiceAccount tokens (serviceaccounts/token); nil:
	// not served.
	TokenSigner *satoken.Signer
	// Components are the parts besides the store that componentstatuses
	// reports (scheduler, controller-manager).
	Components []ComponentCheck
}

// Server is the API server.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     *store.Store
	scheme    *runtime.Scheme
	codecs    serializer.CodecFactory
	strict    serializer.CodecFactory // decoding that reports unknown and duplicate fields
	params    runtime.ParameterCodec
	catalog   *catalog
	rbac      *rbac.Cache
	handler   http.Handler
	loopback  *pipeListener
	ready     chan struct{}
	readyOnce sync.Once
	fm        fieldManagers
	decoded   *decodeCache
	events    *encodeCache // watch events' objects
	items     *encodeCache // LIST items (JSON, protobuf)
	started   metav1.Time  // creationTimestamp of generated objects (apiservices)
}

// New builds the server; Run starts its background work.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("apiserver: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		store:    cfg.Store,
		loopback: newPipeListener(),
		ready:    make(chan struct{}),
		decoded:  newDecodeCache(decodeCacheSize),
		events:   newEncodeCache(eventCacheBytes),
		items:    newEncodeCache(itemCacheBytes),
		started:  metav1.Now().Rfc3339Copy(),
	}
	s.scheme = runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, apiregistrationv1.AddToScheme, metav1.AddMetaToScheme} {
		if err := add(s.scheme); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	metav1.AddToGroupVersion(s.scheme, metav1.SchemeGroupVersion)
	s.codecs = serializer.NewCodecFactory(s.scheme)
	s.strict = serializer.NewCodecFactory(s.scheme, serializer.EnableStrict)
	s.params = runtime.NewParameterCodec(s.scheme)
	s.catalog = newCatalog(cfg.Resources)
	s.rbac = rbac.NewCache()
	s.handler = s.routes()
	return s, nil
}

// Handler serves the API; authentication comes from the TLS connection or
// the in-process listener.
func (s *Server) Handler() http.Handler { return s.handler }

// Ready is closed once the bootstrap objects exist.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run bootstraps the built-in objects, serves the stored CRDs and the
// in-process listener until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:     s.handler,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context { return withUser(ctx, loopbackUser) },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(s.loopback); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve loopback: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
		srv.Close()
		return nil
	})
	crds := newCRDController(s)
	from, err := crds.sync()
	if err == nil {
		err = s.bootstrap(gctx)
	}
	var rbacFrom int64
	if err == nil {
		rbacFrom, err = s.syncRBAC()
	}
	if err != nil {
		cancel()
		g.Wait()
		return fmt.Errorf("bootstrap: %w", err)
	}
	g.Go(func() error { return crds.run(gctx, from) })
	g.Go(func() error { return s.runRBAC(gctx, rbacFrom) })
	s.readyOnce.Do(func() { close(s.ready) })
	return g.Wait()
}

// LoopbackConfig is a client config for in-process clients (controllers,
// scheduler, agent): an in-memory connection to the same handler with the
// system:masters identity.
func (s *Server) LoopbackConfig() *rest.Config {
	return &rest.Config{
		Host:          "http://nanokube-loopback",
		Dial:          s.loopback.DialContext,
		QPS:           -1,
		UserAgent:     "nanokube-loopback",
		ContentConfig: rest.ContentConfig{ContentType: "application/vnd.kubernetes.protobuf"},
		// The in-process parts use what kube-apiserver warns about (v1
		// Endpoints) on purpose; the warnings would only fill the log.
		WarningHandler: rest.NoWarnings{},
	}
}

// pipeListener is an in-memory net.Listener: Dial hands one end of a
// net.Pipe to Accept.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "nanokube-loopback" }

func lowerASCII(s string) string { return strings.ToLower(s) }
