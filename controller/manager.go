// Package controller holds the controllers of the cluster, one per file,
// each built from a Config (New) and run until its context ends (Run). They
// talk to the API only through client-go, like kube-controller-manager.
package controller

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"
)

// ManagerConfig is what every controller is built from.
type ManagerConfig struct {
	Client   kubernetes.Interface
	Metadata metadata.Interface
	Log      *slog.Logger
	// RootCA is the cluster CA published as kube-root-ca.crt.
	RootCA []byte
	// Metrics is the resource metrics API the HorizontalPodAutoscaler
	// reads (nil: HPAs report that metrics are unavailable).
	Metrics metricsclient.PodMetricsesGetter
	// NodeMonitorGracePeriod: a node silent this long becomes Unknown
	// (0: upstream's 40s).
	NodeMonitorGracePeriod time.Duration
	// HPASyncPeriod: how often HPAs are evaluated (0: upstream's 15s).
	HPASyncPeriod time.Duration
	// HPADownscaleStabilization: the scale-down window of HPAs without a
	// behavior (0: upstream's 5m).
	HPADownscaleStabilization time.Duration
	// Extra runs beside the controllers.
	Extra []func(context.Context) error
	// CACert and CAKey, when set, sign approved CertificateSigningRequests.
	CACert *x509.Certificate
	CAKey  crypto.Signer
	// VolumeDir holds the directories the provisioner of the default
	// StorageClass makes ("": no provisioner, no default class).
	VolumeDir string
}

// Manager runs every controller over one shared informer factory.
type Manager struct {
	cfg       ManagerConfig
	informers informers.SharedInformerFactory
	runners   []func(context.Context) error
	bcast     record.EventBroadcaster
	recorder  record.EventRecorder
	running   atomic.Bool
}

// Healthy reports whether the controllers run and their caches have
// synced (what componentstatuses shows for the controller manager).
func (m *Manager) Healthy(context.Context) error {
	if !m.running.Load() {
		return errors.New("controllers are not running")
	}
	for typ, ok := range m.informers.WaitForCacheSync(closedChan) {
		if !ok {
			return fmt.Errorf("cache of %v not synced", typ)
		}
	}
	return nil
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Informers is the shared informer factory, for parts outside this
// package (the scheduler) that should share its caches.
func (m *Manager) Informers() informers.SharedInformerFactory { return m.informers }

// Recorder is an event recorder for a part built outside this package
// (its events go out with the controllers').
func (m *Manager) Recorder(component string) record.EventRecorder {
	return m.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
}

// AddRunner adds a part that runs with the controllers.
func (m *Manager) AddRunner(run func(context.Context) error) { m.runners = append(m.runners, run) }

// NewManager builds the controllers.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, informers: informers.NewSharedInformerFactory(cfg.Client, 0)}
	ns, err := NewNamespace(NamespaceConfig{Client: cfg.Client, Metadata: cfg.Metadata, Informers: m.informers, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("namespace controller: %w", err)
	}
	sa, err := NewServiceAccount(ServiceAccountConfig{Client: cfg.Client, Informers: m.informers, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("serviceaccount controller: %w", err)
	}
	ca, err := NewRootCAPublisher(RootCAConfig{Client: cfg.Client, Informers: m.informers, CA: cfg.RootCA, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("root CA publisher: %w", err)
	}
	m.bcast = record.NewBroadcaster()
	m.recorder = m.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "controller-manager"})
	rs, err := NewReplicaSet(ReplicaSetConfig{Client: cfg.Client, Informers: m.informers, Recorder: m.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "replicaset-controller"}), Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("replicaset controller: %w", err)
	}
	rc, err := NewReplicationController(ReplicaSetConfig{Client: cfg.Client, Informers: m.informers, Recorder: m.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "replication-controller"}), Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("replicationcontroller controller: %w", err)
	}
	dep, err := NewDeployment(DeploymentConfig{Client: cfg.Client, Informers: m.informers, Recorder: m.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "deployment-controller"}), Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("deployment controller: %w", err)
	}
	job, err := NewJob(JobConfig{Client: cfg.Client, Informers: m.informers, Recorder: m.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "job-controller"}), Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("job controller: %w", err)
	}
	cron, err := NewCronJob(CronJobConfig{Client: cfg.Client, Informers: m.informers, Recorder: m.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "cronjob-controller"}), Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("cronjob controller: %w", err)
	}
	ds, err := NewDaemonSet(DaemonSetConfig{Client: cfg.Client, Informers: m.informers, Recorder: m.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "daemonset-controller"}), Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("daemonset controller: %w", err)
	}
	sts, err := NewStatefulSet(StatefulSetConfig{Client: cfg.Client, Informers: m.informers, Recorder: m.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "statefulset-controller"}), Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("statefulset controller: %w", err)
	}
	pv, err := NewPersistentVolume(PersistentVolumeConfig{Client: cfg.Client, Informers: m.informers, Recorder: m.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "persistentvolume-controller"}), Log: cfg.Log, VolumeDir: cfg.VolumeDir})
	if err != nil {
		return nil, fmt.Errorf("persistentvolume controller: %w", err)
	}
	ep, err := NewEndpoints(EndpointsConfig{Client: cfg.Client, Informers: m.informers, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("endpoints controller: %w", err)
	}
	gc, err := NewGarbageCollector(GarbageCollectorConfig{Metadata: cfg.Metadata, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("garbage collector: %w", err)
	}
	m.runners = []func(context.Context) error{ns.Run, sa.Run, ca.Run, rs.Run, rc.Run, dep.Run, job.Run, cron.Run, ds.Run, sts.Run, pv.Run, ep.Run, gc.Run}
	ops, err := m.opsControllers(gc)
	if err != nil {
		return nil, err
	}
	m.runners = append(m.runners, ops...)
	m.runners = append(m.runners, cfg.Extra...)
	if cfg.CACert != nil {
		csr, err := NewCSRSigning(CSRSigningConfig{Client: cfg.Client, Informers: m.informers, CACert: cfg.CACert, CAKey: cfg.CAKey, Log: cfg.Log})
		if err != nil {
			return nil, fmt.Errorf("csrsigning controller: %w", err)
		}
		m.runners = append(m.runners, csr.Run)
	}
	return m, nil
}

// opsControllers builds the controllers of cluster operations: autoscaling,
// disruption budgets, node health and taint eviction, pod and job
// clean-up, event expiry and quota usage.
func (m *Manager) opsControllers(gc *GarbageCollector) ([]func(context.Context) error, error) {
	cfg := m.cfg
	rec := func(component string) record.EventRecorder {
		return m.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
	}
	hpa, err := NewHorizontalPodAutoscaler(HorizontalPodAutoscalerConfig{Client: cfg.Client, Metrics: cfg.Metrics, Informers: m.informers,
		Recorder: rec("horizontal-pod-autoscaler"), Log: cfg.Log, SyncPeriod: cfg.HPASyncPeriod, DownscaleStabilization: cfg.HPADownscaleStabilization})
	if err != nil {
		return nil, fmt.Errorf("horizontal pod autoscaler: %w", err)
	}
	pdb, err := NewDisruption(DisruptionConfig{Client: cfg.Client, Informers: m.informers, Recorder: rec("controllermanager"), Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("disruption controller: %w", err)
	}
	nl, err := NewNodeLifecycle(NodeLifecycleConfig{Client: cfg.Client, Informers: m.informers, Recorder: rec("node-controller"), Log: cfg.Log, GracePeriod: cfg.NodeMonitorGracePeriod})
	if err != nil {
		return nil, fmt.Errorf("node lifecycle controller: %w", err)
	}
	te, err := NewTaintEviction(TaintEvictionConfig{Client: cfg.Client, Informers: m.informers, Recorder: rec("taint-eviction-controller"), Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("taint eviction controller: %w", err)
	}
	ttl, err := NewTTLAfterFinished(TTLAfterFinishedConfig{Client: cfg.Client, Informers: m.informers, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("ttl-after-finished controller: %w", err)
	}
	podgc, err := NewPodGC(PodGCConfig{Client: cfg.Client, Informers: m.informers, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("pod garbage collector: %w", err)
	}
	evttl, err := NewEventTTL(EventTTLConfig{Client: cfg.Client, Informers: m.informers, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("event ttl: %w", err)
	}
	quota, err := NewResourceQuota(ResourceQuotaConfig{Client: cfg.Client, Metadata: cfg.Metadata, Informers: m.informers, Counted: gc.Informer, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("resource quota controller: %w", err)
	}
	return []func(context.Context) error{hpa.Run, pdb.Run, nl.Run, te.Run, ttl.Run, podgc.Run, evttl.Run, quota.Run}, nil
}

// Run starts the informers and every controller; it returns when ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	m.bcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: m.cfg.Client.CoreV1().Events("")})
	defer m.bcast.Shutdown()
	g, ctx := errgroup.WithContext(ctx)
	m.running.Store(true)
	defer m.running.Store(false)
	for _, run := range m.runners {
		g.Go(func() error { return run(ctx) })
	}
	m.informers.Start(ctx.Done())
	err := g.Wait()
	m.informers.Shutdown()
	return err
}

// retryDelay is how long a failed work item waits before its next try.
const retryDelay = time.Second
