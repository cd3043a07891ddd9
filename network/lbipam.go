package network

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// LBPoolOf is the LoadBalancer address pool of a profile subnet: the top
// of the /24 (.200–.254), far from the node addresses at .2 upwards.
func LBPoolOf(subnet *net.IPNet) (first, last net.IP) {
	ip := subnet.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], 200).To4(), net.IPv4(ip[0], ip[1], ip[2], 254).To4()
}

// LBPoolNet is a prefix that holds the pool (for routes and the
// announcement check): .192/26 of the /24.
func LBPoolNet(subnet *net.IPNet) *net.IPNet {
	ip := subnet.IP.To4()
	return &net.IPNet{IP: net.IPv4(ip[0], ip[1], ip[2], 192).To4(), Mask: net.CIDRMask(26, 32)}
}

// LBConfig builds the LoadBalancer address allocator.
type LBConfig struct {
	Client      kubernetes.Interface
	Informers   informers.SharedInformerFactory
	First, Last net.IP
	Log         *slog.Logger
}

// LBAllocator gives every LoadBalancer Service without a
// loadBalancerClass an address from the pool (spec.loadBalancerIP when it
// is in the pool and free) and writes it to status.loadBalancer.ingress;
// a Service that stops being a LoadBalancer loses it.
type LBAllocator struct {
	cfg    LBConfig
	svcs   corelisters.ServiceLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	// assigned holds what this allocator wrote and the cache may not show
	// yet (address → service key), so two services never get one address.
	assigned map[uint32]string
}

// NewLBAllocator builds the allocator.
func NewLBAllocator(cfg LBConfig) (*LBAllocator, error) {
	inf := cfg.Informers.Core().V1().Services()
	a := &LBAllocator{cfg: cfg, svcs: inf.Lister(), synced: inf.Informer().HasSynced, assigned: map[uint32]string{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "lb-ipam"})}
	add := func(o any) {
		if k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(o); err == nil {
			a.queue.Add(k)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: add, UpdateFunc: func(_, o any) { add(o) }, DeleteFunc: add}); err != nil {
		return nil, err
	}
	return a, nil
}

// Run allocates until ctx ends.
func (a *LBAllocator) Run(ctx context.Context) error {
	defer a.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), a.synced) {
		return nil
	}
	stop := context.AfterFunc(ctx, a.queue.ShutDown)
	defer stop()
	for {
		key, quit := a.queue.Get()
		if quit {
			return nil
		}
		if err := a.sync(ctx, key); err != nil {
			a.cfg.Log.Info("LoadBalancer address allocation failed", "service", key, "err", err)
			a.queue.AddRateLimited(key)
		} else {
			a.queue.Forget(key)
		}
		a.queue.Done(key)
	}
}

func ip4u(ip net.IP) uint32 { return binary.BigEndian.Uint32(ip.To4()) }

func (a *LBAllocator) inPool(ip net.IP) bool {
	return ip != nil && ip.To4() != nil && ip4u(ip) >= ip4u(a.cfg.First) && ip4u(ip) <= ip4u(a.cfg.Last)
}

func (a *LBAllocator) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	s, err := a.svcs.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		a.release(key)
		return nil
	}
	if err != nil {
		return err
	}
	ours := s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.LoadBalancerClass == nil
	var have []string
	for _, ing := range s.Status.LoadBalancer.Ingress {
		if a.inPool(net.ParseIP(ing.IP)) {
			have = append(have, ing.IP)
		}
	}
	switch {
	case ours && len(have) > 0:
		return nil
	case !ours && len(have) == 0:
		return nil
	case !ours:
		a.release(key)
		s = s.DeepCopy()
		s.Status.LoadBalancer = corev1.LoadBalancerStatus{}
		_, err := a.cfg.Client.CoreV1().Services(ns).UpdateStatus(ctx, s, metav1.UpdateOptions{})
		return err
	}
	used := map[uint32]bool{}
	all, err := a.svcs.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, o := range all {
		for _, ing := range o.Status.LoadBalancer.Ingress {
			if ip := net.ParseIP(ing.IP); a.inPool(ip) {
				used[ip4u(ip)] = true
			}
		}
	}
	for u, k := range a.assigned {
		if k != key {
			used[u] = true
		}
	}
	var pick net.IP
	if want := net.ParseIP(s.Spec.LoadBalancerIP); want != nil && a.inPool(want) && !used[ip4u(want)] {
		pick = want.To4()
	}
	for u := ip4u(a.cfg.First); pick == nil && u <= ip4u(a.cfg.Last); u++ {
		if !used[u] {
			pick = make(net.IP, 4)
			binary.BigEndian.PutUint32(pick, u)
		}
	}
	if pick == nil {
		return fmt.Errorf("the LoadBalancer pool %s-%s is full", a.cfg.First, a.cfg.Last)
	}
	s = s.DeepCopy()
	mode := corev1.LoadBalancerIPModeVIP
	s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: pick.String(), IPMode: &mode}}
	if _, err := a.cfg.Client.CoreV1().Services(ns).UpdateStatus(ctx, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("write status.loadBalancer of %s: %w", key, err)
	}
	a.release(key)
	a.assigned[ip4u(pick)] = key
	return nil
}

func (a *LBAllocator) release(key string) {
	for u, k := range a.assigned {
		if k == key {
			delete(a.assigned, u)
		}
	}
}
