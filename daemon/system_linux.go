//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"

	"github.com/nanokube/nanokube/agent"
	"github.com/nanokube/nanokube/apiserver"
	"github.com/nanokube/nanokube/apiserver/openapi"
	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/controller"
	"github.com/nanokube/nanokube/dockerapi"
	"github.com/nanokube/nanokube/ingress"
	"github.com/nanokube/nanokube/internal/satoken"
	"github.com/nanokube/nanokube/metrics"
	"github.com/nanokube/nanokube/network"
	"github.com/nanokube/nanokube/runtime"
	"github.com/nanokube/nanokube/runtime/fake"
	"github.com/nanokube/nanokube/scheduler"
	"github.com/nanokube/nanokube/store"
	"github.com/nanokube/nanokube/version"
)

// Config is everything the daemon is built from.
type Config struct {
	Profile  cluster.Profile
	Cluster  cluster.Config
	Log      *slog.Logger
	Progress *cluster.ProgressWriter
}

// System holds every part of one running cluster.
type System struct {
	cfg       Config
	log       *slog.Logger
	store     *store.Store
	net       *clusterNet
	api       *apiserver.Server
	https     *http.Server
	lis       net.Listener
	ctrl      *controller.Manager
	cd        *runtime.Containerd
	docker    *dockerapi.Server
	dockerLis net.Listener

	cs    kubernetes.Interface
	rt    *runtime.ContainerdRuntime // nil with the fake runtime
	cdVer string
	// fake is the in-memory runtime of --runtime=fake (no containerd,
	// no pod netns).
	fake *fake.Runtime
	dns  *network.DNS
	ing  *ingress.Controller

	// nodes are the running nodes; mu guards them and state, nodeOps
	// serialises node add/delete.
	mu      sync.Mutex
	state   cluster.State
	nodes   map[string]*nodeRun
	nodeOps sync.Mutex
	group   *errgroup.Group
	gctx    context.Context
}

// New builds the parts that must exist before anything runs: the store, the
// network and the API server's listener. Each finished step is reported.
func New(ctx context.Context, cfg Config) (_ *System, err error) {
	s := &System{cfg: cfg, log: cfg.Log}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	p := cfg.Profile
	s.store, err = store.Open(store.Options{Path: p.StoreFile(), Ephemeral: cfg.Cluster.Ephemeral})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", p.StoreFile(), err)
	}
	cfg.Progress.Step("Opened the store (revision %d)", s.store.Rev())

	s.net, err = setupNetwork(p, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	initial := s.net.initialNodes(p, cfg.Cluster)
	for _, n := range initial {
		if err := s.net.ensureNode(n); err != nil {
			return nil, err
		}
	}
	s.state = s.net.state(initial)
	cfg.Progress.Step("Set up the network (%s)", s.net.summary(len(initial)))

	certs, err := cluster.EnsureCerts(cluster.CertOptions{Dir: p.CertsDir(), NodeIPs: []net.IP{net.ParseIP(initial[0].IP)}})
	if err != nil {
		return nil, fmt.Errorf("ensure certificates: %w", err)
	}
	tlsCfg, err := certs.TLSServerConfig()
	if err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}

	saKey, err := os.ReadFile(certs.SAKey)
	if err != nil {
		return nil, fmt.Errorf("read service account key: %w", err)
	}
	signer, err := satoken.NewSigner(saKey)
	if err != nil {
		return nil, err
	}

	resources := registry.Resources()
	oapi, err := openapi.NewHandler(resources, version.Kubernetes())
	if err != nil {
		return nil, fmt.Errorf("build openapi: %w", err)
	}
	s.api, err = apiserver.New(apiserver.Config{
		Store:            s.store,
		Resources:        resources,
		OpenAPI:          oapi,
		Version:          version.Info(),
		AdvertiseAddress: net.ParseIP(initial[0].IP),
		AdvertisePort:    cfg.Cluster.APIServerPort,
		Logger:           s.log,
		PodLogs:          s.podLogs,
		PodStreams:       nodeStreams{s},
		TokenSigner:      signer,
		// kube-apiserver's --api-audiences default to the issuer.
		VerifyServiceAccountToken: verifyServiceAccountTokens(signer.Verifier()),
		TokenAudiences:            []string{satoken.Issuer},
		Components: []apiserver.ComponentCheck{
			{Name: "controller-manager", Check: func(ctx context.Context) error { return s.ctrl.Healthy(ctx) }},
			{Name: "scheduler", Check: func(ctx context.Context) error { return s.ctrl.Healthy(ctx) }},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("build API server: %w", err)
	}
	addr := net.JoinHostPort(initial[0].IP, strconv.Itoa(cfg.Cluster.APIServerPort))
	s.lis, err = s.net.listenAPI(initial[0], addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	caPEM, err := os.ReadFile(certs.CACert)
	if err != nil {
		return nil, fmt.Errorf("read cluster CA: %w", err)
	}
	loop := s.api.LoopbackConfig()
	s.cs, err = kubernetes.NewForConfig(loop)
	if err != nil {
		return nil, fmt.Errorf("build loopback client: %w", err)
	}
	md, err := metadata.NewForConfig(loop)
	if err != nil {
		return nil, fmt.Errorf("build loopback metadata client: %w", err)
	}
	cs := s.cs
	mloop := rest.CopyConfig(loop)
	mloop.ContentType = "application/json"
	mc, err := metricsclient.NewForConfig(mloop)
	if err != nil {
		return nil, fmt.Errorf("build loopback metrics client: %w", err)
	}
	caCert, caKey, err := certs.LoadCA()
	if err != nil {
		return nil, err
	}
	s.ctrl, err = controller.NewManager(controller.ManagerConfig{Client: cs, Metadata: md, Metrics: mc, Log: s.log, RootCA: caPEM, CACert: caCert, CAKey: caKey,
		NodeMonitorGracePeriod: cfg.Cluster.ExtraDuration(cluster.NodeMonitorGracePeriod), HPASyncPeriod: cfg.Cluster.ExtraDuration(cluster.HPASyncPeriod),
		HPADownscaleStabilization: cfg.Cluster.ExtraDuration(cluster.HPADownscaleStabilization), VolumeDir: filepath.Join(p.Dir, "volumes")})
	if err != nil {
		return nil, fmt.Errorf("build controllers: %w", err)
	}
	s.serveMetrics()
	if err := s.setupIngress(); err != nil {
		return nil, err
	}
	if cfg.Cluster.Runtime == cluster.RuntimeFake {
		s.fake = fake.New()
		cfg.Progress.Step("Using the fake runtime (no containers run)")
		if err := s.startServices(ctx, cs); err != nil {
			return nil, err
		}
	} else if err := s.startContainerd(ctx, cs); err != nil {
		return nil, err
	}
	s.nodes = map[string]*nodeRun{}
	for i, n := range initial {
		nr, err := s.buildNode(n, i == 0)
		if err != nil {
			return nil, err
		}
		s.nodes[n.Name] = nr
	}
	sched, err := scheduler.New(scheduler.Config{Client: cs, Informers: s.ctrl.Informers(), Log: s.log})
	if err != nil {
		return nil, fmt.Errorf("build scheduler: %w", err)
	}
	s.ctrl.AddRunner(sched.Run)
	s.https = &http.Server{
		Handler:           s.api.Handler(),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// startContainerd starts the runtime, then the services and the Docker
// API that use it.
func (s *System) startContainerd(ctx context.Context, cs kubernetes.Interface) error {
	p := s.cfg.Profile
	// containerd writes to its own file, not through a pipe to us: it must
	// outlive a kill -9 of the daemon without dying of SIGPIPE.
	cdLog, err := os.OpenFile(filepath.Join(p.Dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open containerd log: %w", err)
	}
	defer cdLog.Close()
	s.cd, err = runtime.StartContainerd(ctx, containerdConfig(p, s.cfg.Cluster, cdLog))
	if err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	ver, err := s.cd.Client().Version(ctx)
	if err != nil {
		return fmt.Errorf("containerd version: %w", err)
	}
	s.cfg.Progress.Step("Started containerd %s", ver.Version)
	s.rt, s.cdVer = runtime.New(s.cd.Client(), runtime.Namespace(p.Name)), ver.Version
	if err := s.startServices(ctx, cs); err != nil {
		return err
	}
	if err := s.setupDocker(s.rt); err != nil {
		return err
	}
	return nil
}

// Run runs every part until ctx ends, then stops them in reverse order.
func (s *System) Run(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	s.mu.Lock()
	s.group, s.gctx = g, gctx
	s.mu.Unlock()
	g.Go(func() error { return s.api.Run(gctx) })
	g.Go(func() error {
		err := s.https.ServeTLS(s.lis, "", "")
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve API: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return s.https.Shutdown(shutdownCtx)
	})
	g.Go(func() error {
		select {
		case <-s.api.Ready():
		case <-gctx.Done():
			return nil
		}
		if err := s.saveState(); err != nil {
			return err
		}
		if err := s.ing.EnsureClass(gctx); err != nil {
			return err
		}
		s.cfg.Progress.Step("API server ready at %s", s.state.APIEndpoint)
		g.Go(func() error { return s.ctrl.Run(gctx) })
		g.Go(func() error { return s.serveDocker(gctx) })
		s.mu.Lock()
		for _, nr := range s.nodes {
			s.startNode(nr)
		}
		s.mu.Unlock()
		if err := s.serveControl(gctx, g); err != nil {
			return err
		}
		s.cfg.Progress.Send(cluster.Progress{Ready: true})
		s.log.Info("cluster ready", "endpoint", s.state.APIEndpoint)
		return nil
	})
	err := g.Wait()
	if ctx.Err() != nil {
		s.log.Info("stopping: signal received")
		return nil
	}
	return err
}

// close releases what New built, in reverse order; safe on partial builds.
func (s *System) close() {
	if s.lis != nil {
		s.lis.Close()
	}
	if s.dockerLis != nil {
		s.dockerLis.Close()
		os.Remove(s.cfg.Profile.DockerSocket())
	}
	if s.cd != nil {
		if err := s.cd.Stop(context.Background()); err != nil {
			s.log.Error("stop containerd", "err", err)
		}
	}
	if s.net != nil {
		if err := s.net.teardown(s.state.Nodes); err != nil {
			s.log.Error("tear down network", "err", err)
		}
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Error("close store", "err", err)
		}
	}
}

// serveMetrics serves metrics.k8s.io from the agents, like metrics-server
// behind its APIService.
func (s *System) serveMetrics() {
	inf := s.ctrl.Informers().Core().V1()
	// Nodes come and go (node add/delete): every name a node can have
	// asks whichever agent runs it at the time.
	sources := map[string]metrics.Source{}
	for i := 1; i <= maxNodes; i++ {
		name := NodeName(s.cfg.Profile.Name, i)
		sources[name] = nodeMetrics{s: s, name: name}
	}
	h := metrics.NewHandler(metrics.Config{
		Pods: inf.Pods().Lister(), Nodes: inf.Nodes().Lister(), Sources: sources,
		Synced: []cache.InformerSynced{inf.Pods().Informer().HasSynced, inf.Nodes().Informer().HasSynced},
	})
	s.api.AddAPIService(apiserver.APIService{GroupVersion: metrics.GroupVersion, Resources: metrics.Resources(), Handler: h})
}

// nodeMetrics is the metrics source of the named node while it runs.
type nodeMetrics struct {
	s    *System
	name string
}

func (n nodeMetrics) agent() (*agent.Agent, error) {
	if a := n.s.agentOf(n.name); a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("node %q is not running", n.name)
}

func (n nodeMetrics) NodeMetrics(ctx context.Context) (*metricsv1beta1.NodeMetrics, error) {
	a, err := n.agent()
	if err != nil {
		return nil, err
	}
	return a.NodeMetrics(ctx)
}

func (n nodeMetrics) PodMetrics(ctx context.Context, pods []*corev1.Pod) ([]metricsv1beta1.PodMetrics, error) {
	a, err := n.agent()
	if err != nil {
		return nil, err
	}
	return a.PodMetrics(ctx, pods)
}

// agentOf is the agent of a running node, or nil.
func (s *System) agentOf(node string) *agent.Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nr := s.nodes[node]; nr != nil {
		return nr.agent
	}
	return nil
}

// podLogs serves `kubectl logs` from the agent of the pod's node.
func (s *System) podLogs(ctx context.Context, pod *corev1.Pod, container string, opts *corev1.PodLogOptions, w io.Writer) error {
	a := s.agentOf(pod.Spec.NodeName)
	if a == nil {
		return fmt.Errorf("node %q of pod %s is not part of this cluster", pod.Spec.NodeName, pod.Name)
	}
	return a.Logs(ctx, pod, container, opts, w)
}

// saveState writes state.json from the current nodes.
func (s *System) saveState() error {
	s.mu.Lock()
	st := s.state
	st.Nodes = append([]cluster.NodeState(nil), s.state.Nodes...)
	s.mu.Unlock()
	if err := s.cfg.Profile.SaveState(st); err != nil {
		return fmt.Errorf("save cluster state: %w", err)
	}
	return nil
}
