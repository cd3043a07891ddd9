// Package agent is the node agent (kubelet) of one node: it registers the
// Node, renews its Lease and runs the pods bound to it under containerd,
// reporting their status like kubelet. It uses the API only through
// client-go, so it can later run on another host with another transport.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/nanokube/nanokube/network"
	"github.com/nanokube/nanokube/runtime"
)

// Config builds one node's agent.
type Config struct {
	NodeName       string
	NodeIP         net.IP
	ControlPlane   bool
	Client         kubernetes.Interface
	Runtime        runtime.Runtime
	RuntimeVersion string // "containerd://1.6.20"
	PodNet         network.PodNet
	// Sandboxes make and remove the pods' network namespaces; nil: PodNet
	// (a netns with a veth on the node's pod bridge). The fake runtime
	// uses addresses without namespaces.
	Sandboxes Sandboxes
	// MaxPods is the node's pod capacity (0: kubelet's 110).
	MaxPods       int
	RootDir       string // per-node files: pod dirs, volumes, logs
	ClusterDNS    net.IP
	ClusterDomain string
	// CgroupRoot is the node's cgroup (pods go below CgroupRoot/kubepods);
	// empty: containers get containerd's default cgroups, no pod limits.
	CgroupRoot string
	// Annotations are set on the Node at registration (the overlay's
	// flannel annotations).
	Annotations map[string]string
	// InsecureRegistries are reached over plain HTTP or unverified TLS
	// (nanokube start --insecure-registry).
	InsecureRegistries []string
	// ImageFS is the directory whose filesystem holds the images (the
	// containerd root); image GC watches its usage. Empty: no image GC.
	ImageFS string
	// ImageGC is the image GC policy (zero: kubelet's defaults).
	ImageGC ImageGCPolicy
	// Discarding reports, when the agent stops, that the node is being
	// deleted: pods are then killed without their grace periods, as
	// nothing of them is kept (nil: always graceful).
	Discarding func() bool
	Log        *slog.Logger
}

// Sandboxes give pods their network namespace and address.
type Sandboxes interface {
	// Setup makes uid's netns (keeping its address across restarts) and
	// returns its path and address.
	Setup(uid string) (netns string, ip net.IP, err error)
	// Teardown removes the netns and frees the address.
	Teardown(uid string) error
	// RemoveNetns removes the netns and keeps the address reserved.
	RemoveNetns(uid string) error
	// PodNetnsPath is where uid's netns is (it may not exist).
	PodNetnsPath(uid string) string
}

// podWorkers is how many pods are started or stopped at once.
const podWorkers = 32

// Agent runs one node.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	pods     corelisters.PodLister
	informer cache.SharedIndexInformer
	factory  informers.SharedInformerFactory
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	bcast    record.EventBroadcaster

	objects     *objectWatches // ConfigMaps, Secrets and claims the pods' volumes read
	tokens      *tokenCache
	allocatable corev1.ResourceList

	mu      sync.Mutex
	state   map[string]*podState // by pod uid
	waiters sync.WaitGroup

	usage       *usageCache
	memCapacity int64

	pullBackoffs pullBackoffs
}

// New builds the agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Sandboxes == nil {
		cfg.Sandboxes = cfg.PodNet
	}
	if cfg.MaxPods == 0 {
		cfg.MaxPods = 110
	}
	a := &Agent{cfg: cfg, log: cfg.Log.With("node", cfg.NodeName), state: map[string]*podState{}, usage: newUsageCache(), memCapacity: memTotal()}
	a.factory = informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
	}))
	inf := a.factory.Core().V1().Pods()
	a.pods, a.informer = inf.Lister(), inf.Informer()
	a.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "agent-" + cfg.NodeName})
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			a.queue.Add(key)
		}
	}
	if _, err := a.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue}); err != nil {
		return nil, err
	}
	a.objects = newObjectWatches(cfg.Client, func(podKey string) { a.queue.Add(podKey) })
	a.tokens = newTokenCache(cfg.Client)
	a.allocatable = a.nodeObject().Status.Allocatable
	a.bcast = record.NewBroadcaster()
	a.recorder = a.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.NodeName})
	return a, nil
}

// Run registers the node and runs its pods until ctx ends; then it stops
// every pod gracefully (a clean `nanokube stop`).
func (a *Agent) Run(ctx context.Context) error {
	if err := a.cfg.PodNet.Ensure(); err != nil {
		return fmt.Errorf("node %s pod network: %w", a.cfg.NodeName, err)
	}
	if err := a.ensureNodeCgroups(); err != nil {
		return fmt.Errorf("node %s cgroups: %w", a.cfg.NodeName, err)
	}
	if a.cgroups() != nil {
		if s, _, err := a.nodeReading(); err == nil {
			a.usage.record(nodeKey, s)
		}
	}
	if err := a.register(ctx); err != nil {
		return err
	}
	a.bcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.cfg.Client.CoreV1().Events("")})
	defer a.bcast.Shutdown()
	a.nodeStartedEvents()
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	a.factory.Start(workCtx.Done())
	defer a.factory.Shutdown()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.heartbeat(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.imageStatus(ctx)
	}()
	if a.cfg.ImageFS != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.runImageGC(ctx)
		}()
	}
	if cache.WaitForCacheSync(ctx.Done(), a.informer.HasSynced) {
		// Pod workers: the queue never hands one pod to two workers.
		for range podWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for a.processNext(workCtx) {
				}
			}()
		}
		a.adopt(workCtx)
	}
	<-ctx.Done()
	// Stop: first the workers, so nothing starts a container any more, then
	// every pod gets its grace period (pod terminations in flight finish
	// through the waiters).
	a.queue.ShutDown()
	wg.Wait()
	a.stopAll(workCtx)
	a.objects.close()
	cancelWork()
	a.waiters.Wait()
	return nil
}

func (a *Agent) processNext(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	if err := a.syncPod(ctx, key); err != nil {
		if ctx.Err() == nil {
			a.log.Info("pod sync failed, retrying", "pod", key, "err", err)
		}
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// stopAll stops the containers of every pod this agent runs.
func (a *Agent) stopAll(ctx context.Context) {
	a.mu.Lock()
	states := make([]*podState, 0, len(a.state))
	for _, st := range a.state {
		states = append(states, st)
	}
	a.mu.Unlock()
	discard := a.cfg.Discarding != nil && a.cfg.Discarding()
	var wg sync.WaitGroup
	for _, st := range states {
		wg.Add(1)
		go func() {
			defer wg.Done()
			grace := time.Duration(st.grace) * time.Second
			if discard {
				grace = 0
			}
			a.killPod(ctx, st, grace)
			// Memory-backed volumes go like on a node shutdown; the disk
			// ones stay for the pod's return after start.
			if err := a.unmountPod(st.uid); err != nil {
				a.log.Info("unmount pod volumes", "pod", st.key, "err", err)
			}
			// The address stays reserved for the pod's return after start.
			if err := a.cfg.Sandboxes.RemoveNetns(st.uid); err != nil {
				a.log.Info("remove pod netns", "pod", st.key, "err", err)
			}
		}()
	}
	wg.Wait()
}
