//go:build linux

package dockerapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	ctd "github.com/containerd/containerd/v2/client"
	"github.com/moby/buildkit/cache/remotecache"
	inlineremotecache "github.com/moby/buildkit/cache/remotecache/inline"
	localremotecache "github.com/moby/buildkit/cache/remotecache/local"
	registryremotecache "github.com/moby/buildkit/cache/remotecache/registry"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/executor"
	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/frontend"
	dockerfile "github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/gateway"
	"github.com/moby/buildkit/frontend/gateway/forwarder"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/bboltcachestorage"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/db/boltutil"
	"github.com/moby/buildkit/util/network/netproviders"
	bkversion "github.com/moby/buildkit/version"
	"github.com/moby/buildkit/worker"
	"github.com/moby/buildkit/worker/base"
	bkcontainerd "github.com/moby/buildkit/worker/containerd"
	"google.golang.org/grpc"

	"github.com/nanokube/nanokube/runtime"
)

// BuilderConfig places the embedded BuildKit on the cluster's containerd.
type BuilderConfig struct {
	Address     string // containerd socket
	Namespace   string // the cluster's namespace: built images are the pods' images
	Snapshotter string // the pods' snapshotter: built images are unpacked into it
	Root        string // BuildKit's own state: cache and history databases
	// InsecureRegistries (host:port) are reached over plain HTTP or
	// unverified TLS by FROM, cache import/export and push, as pulls do
	// (nanokube start --insecure-registry).
	InsecureRegistries []string
	Log                *slog.Logger
}

// Builder is BuildKit, started on first use (the idle daemon pays only for
// the linked code) and stopped by Close.
type Builder struct {
	cfg    BuilderConfig
	mu     sync.Mutex
	bk     *buildkit
	closed bool
}

// buildkit is a running BuildKit: its controller served over gRPC on an
// in-memory listener (for our own client) and on hijacked /grpc requests.
type buildkit struct {
	controller *control.Controller
	sessions   *session.Manager
	grpc       *grpc.Server
	pipe       *pipeListener
	served     chan struct{}
	client     *bkclient.Client
	stop       chan struct{}
	cancel     context.CancelFunc // ends what BuildKit runs in the background
}

// NewBuilder returns a builder that starts BuildKit on its first use.
func NewBuilder(cfg BuilderConfig) *Builder {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Builder{cfg: cfg}
}

// Started reports whether BuildKit runs (for tests and benchmarks).
func (b *Builder) Started() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bk != nil
}

// get returns the running BuildKit, starting it on the first call. A
// failed start is reported and tried again on the next call.
func (b *Builder) get(ctx context.Context) (*buildkit, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("the builder is shutting down")
	}
	if b.bk != nil {
		return b.bk, nil
	}
	begin := time.Now()
	// BuildKit outlives the request that starts it: it runs until Close.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	bk, err := startBuildKit(bctx, b.cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start BuildKit: %w", err)
	}
	bk.cancel = cancel
	b.cfg.Log.Info("BuildKit started", "version", buildkitVersion(), "took", time.Since(begin).Round(time.Millisecond))
	b.bk = bk
	return bk, nil
}

// Close stops BuildKit if it runs: running builds are cancelled.
func (b *Builder) Close() error {
	b.mu.Lock()
	b.closed = true
	bk := b.bk
	b.bk = nil
	b.mu.Unlock()
	if bk == nil {
		return nil
	}
	close(bk.stop)
	bk.client.Close()
	bk.grpc.Stop()
	<-bk.served
	err := bk.controller.Close()
	bk.cancel()
	return err
}

func startBuildKit(ctx context.Context, cfg BuilderConfig) (_ *buildkit, err error) {
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Root, err)
	}
	sm, err := session.NewManager()
	if err != nil {
		return nil, err
	}
	hosts := runtime.RegistryHosts(cfg.InsecureRegistries)
	wopt, err := bkcontainerd.NewWorkerOpt(bkcontainerd.WorkerOptions{
		Root:            cfg.Root,
		Address:         cfg.Address,
		SnapshotterName: cfg.Snapshotter,
		Namespace:       cfg.Namespace,
		// Build steps share the daemon's network namespace, like
		// buildkitd without CNI.
		NetworkOpt: netproviders.Opt{Mode: "host"},
	}, ctd.WithTimeout(60*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd worker: %w", err)
	}
	wopt.GCPolicy = gcPolicy()
	wopt.BuildkitVersion = bkclient.BuildkitVersion{Package: bkversion.Package, Version: buildkitVersion()}
	wopt.RegistryHosts = hosts
	w, err := base.NewWorker(ctx, wopt)
	if err != nil {
		wopt.MetadataStore.Close()
		return nil, fmt.Errorf("containerd worker: %w", err)
	}
	wc := &worker.Controller{}
	if err := wc.Add(storeWorker{w}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			wc.Close()
		}
	}()
	gwfe, err := gateway.NewGatewayFrontend(wc.Infos(), nil)
	if err != nil {
		return nil, err
	}
	builtin := localFirst{forwarder.NewGatewayForwarder(wc.Infos(), dockerfile.Build)}
	frontends := map[string]frontend.Frontend{
		"dockerfile.v0": builtin,
		"gateway.v0":    embeddedSyntax{gateway: localFirst{gwfe}, builtin: builtin},
	}
	cacheStorage, err := bboltcachestorage.NewStore(filepath.Join(cfg.Root, "cache.db"))
	if err != nil {
		return nil, fmt.Errorf("open build cache: %w", err)
	}
	historyDB, err := boltutil.SafeOpen(filepath.Join(cfg.Root, "history.db"), 0o600, nil)
	if err != nil {
		cacheStorage.Close()
		return nil, fmt.Errorf("open build history: %w", err)
	}
	stop := make(chan struct{})
	ctrl, err := control.NewController(control.Opt{
		SessionManager:   sm,
		WorkerController: wc,
		Frontends:        frontends,
		ResolveCacheExporterFuncs: map[string]remotecache.ResolveCacheExporterFunc{
			"registry": registryremotecache.ResolveCacheExporterFunc(sm, hosts),
			"local":    localremotecache.ResolveCacheExporterFunc(sm),
			"inline":   inlineremotecache.ResolveCacheExporterFunc(),
		},
		ResolveCacheImporterFuncs: map[string]remotecache.ResolveCacheImporterFunc{
			"registry": registryremotecache.ResolveCacheImporterFunc(sm, w.ContentStore(), hosts),
			"local":    localremotecache.ResolveCacheImporterFunc(sm),
		},
		CacheManager:   solver.NewCacheManager(ctx, "local", cacheStorage, worker.NewCacheResultStorage(wc)),
		HistoryDB:      historyDB,
		CacheStore:     cacheStorage,
		LeaseManager:   w.LeaseManager(),
		ContentStore:   w.ContentStore(),
		GarbageCollect: w.GarbageCollect,
		GracefulStop:   stop,
	})
	if err != nil {
		historyDB.Close()
		cacheStorage.Close()
		return nil, fmt.Errorf("build controller: %w", err)
	}
	bk := &buildkit{controller: ctrl, sessions: sm, grpc: grpc.NewServer(), pipe: newPipeListener(), served: make(chan struct{}), stop: stop}
	ctrl.Register(bk.grpc)
	go func() {
		defer close(bk.served)
		bk.grpc.Serve(bk.pipe)
	}()
	bk.client, err = bkclient.New(ctx, "", bkclient.WithContextDialer(bk.pipe.dial))
	if err != nil {
		bk.grpc.Stop()
		<-bk.served
		ctrl.Close()
		return nil, fmt.Errorf("connect to BuildKit: %w", err)
	}
	return bk, nil
}

// localFirst makes a frontend look base images up in the cluster's store
// before any registry, like docker's own builder: `FROM app:dev` finds an
// image built or loaded here without a registry round trip. `--pull`
// (image-resolve-mode=pull) still goes to the registry.
type localFirst struct{ frontend.Frontend }

func (f localFirst) Solve(ctx context.Context, llb frontend.FrontendLLBBridge, exec executor.Executor, opts map[string]string,
	inputs map[string]*pb.Definition, sid string, sm *session.Manager) (*frontend.Result, error) {
	if m := opts["image-resolve-mode"]; m == "" || m == pb.AttrImageResolveModeDefault {
		opts = maps.Clone(opts)
		if opts == nil {
			opts = map[string]string{}
		}
		opts["image-resolve-mode"] = pb.AttrImageResolveModePreferLocal
	}
	return f.Frontend.Solve(ctx, llb, exec, opts, inputs, sid, sm)
}

// storeWorker is the containerd worker with dockerd's exporter names: an
// image export lands in the cluster's store unpacked for the pods'
// snapshotter, and "moby" (what buildx's docker driver asks for instead of
// "image") is the same exporter.
type storeWorker struct{ *base.Worker }

func (w storeWorker) Exporter(name string, sm *session.Manager) (exporter.Exporter, error) {
	if name == "moby" {
		name = bkclient.ExporterImage
	}
	e, err := w.Worker.Exporter(name, sm)
	if err != nil || name != bkclient.ExporterImage {
		return e, err
	}
	return unpackByDefault{e}, nil
}

type unpackByDefault struct{ exporter.Exporter }

func (e unpackByDefault) Resolve(ctx context.Context, id int, opt map[string]string) (exporter.ExporterInstance, error) {
	if _, ok := opt[string(exptypes.OptKeyUnpack)]; !ok {
		opt = maps.Clone(opt)
		if opt == nil {
			opt = map[string]string{}
		}
		opt[string(exptypes.OptKeyUnpack)] = "true"
	}
	return e.Exporter.Resolve(ctx, id, opt)
}

// officialFrontend matches `# syntax=docker/dockerfile:1…` directives
// (not pinned by digest): the embedded Dockerfile frontend is that one.
var officialFrontend = regexp.MustCompile(`^(docker\.io/)?docker/dockerfile(:1(\.[0-9]+)*(-labs)?)?$`)

// embeddedSyntax runs the official Dockerfile frontend that a `# syntax=`
// line asks for from the embedded copy instead of pulling its image, so
// such Dockerfiles build offline; other frontend images go to the gateway.
type embeddedSyntax struct {
	gateway, builtin frontend.Frontend
}

func (f embeddedSyntax) Solve(ctx context.Context, llb frontend.FrontendLLBBridge, exec executor.Executor, opts map[string]string,
	inputs map[string]*pb.Definition, sid string, sm *session.Manager) (*frontend.Result, error) {
	if officialFrontend.MatchString(opts["source"]) {
		// "cmdline" is set, so the builtin does not forward again.
		return f.builtin.Solve(ctx, llb, exec, opts, inputs, sid, sm)
	}
	return f.gateway.Solve(ctx, llb, exec, opts, inputs, sid, sm)
}

// gcPolicy bounds the build cache: context uploads and cache mounts go
// after two days, everything beyond 2 GB oldest first.
func gcPolicy() []bkclient.PruneInfo {
	const gb = 1 << 30
	return []bkclient.PruneInfo{
		{Filter: []string{"type==source.local,type==exec.cachemount,type==source.git.checkout"}, KeepDuration: 48 * time.Hour, MaxUsedSpace: gb / 2},
		{All: true, MaxUsedSpace: 2 * gb},
	}
}

// pipeListener is an in-memory net.Listener for our own BuildKit client.
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

func (l *pipeListener) dial(ctx context.Context, _ string) (net.Conn, error) {
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
func (pipeAddr) String() string  { return "buildkit" }
