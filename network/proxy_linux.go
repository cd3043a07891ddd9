//go:build linux

package network

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// ProxyConfig builds one node's service proxy.
type ProxyConfig struct {
	Profile     string
	Node        string
	NodeNetns   string // "" = the current netns (host driver)
	ClusterCIDR *net.IPNet
	Informers   informers.SharedInformerFactory
	// DNS is the node-local DNS listener that the cluster DNS address
	// (10.96.0.10:53) is sent to.
	DNS        net.IP
	ClusterDNS net.IP
	// LBPool holds the LoadBalancer addresses; the node that serves a
	// service's address puts it on Underlay (so it answers ARP on the
	// profile bridge). Nil: no announcement (host driver).
	LBPool   *net.IPNet
	Underlay string
	Log      *slog.Logger
	// Observe, when set, is told how long each applied sync took.
	Observe func(full bool, rules int, d time.Duration)
}

// Proxy programs the node's nftables table from Services and
// EndpointSlices like kube-proxy's nftables mode: one chain per service
// port (and per endpoint with ClientIP affinity), verdict maps keyed by
// daddr . proto . port. Each sync renders the desired state, diffs it
// with what it applied last and sends the difference as one netlink
// batch (google/nftables, one transaction); the first sync after a start
// diffs with the table read back from the kernel, so a restart that
// finds the rules in place sends nothing. After the first sync, a sync
// renders only the services whose Service or EndpointSlices changed
// (the event handlers record them in dirty) and diffs only their part
// of the table (ProxyCache).
type Proxy struct {
	cfg     ProxyConfig
	svcs    corelisters.ServiceLister
	slices  discoverylisters.EndpointSliceLister
	byOwner cache.Indexer // EndpointSlices by "namespace/service"
	nodes   corelisters.NodeLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	nft     *ProxyNft
	// cache is the rules of each service as last applied; nil: the next
	// sync renders everything.
	cache *ProxyCache
	mu    sync.Mutex
	dirty map[string]bool // services changed since the last sync
}

// sliceService is the index of EndpointSlices by their service.
const sliceService = "nanokube-proxy-service"

// NewProxy builds the proxy.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	svcInf := cfg.Informers.Core().V1().Services()
	sliceInf := cfg.Informers.Discovery().V1().EndpointSlices()
	nodeInf := cfg.Informers.Core().V1().Nodes()
	p := &Proxy{cfg: cfg, nft: NewProxyNft(cfg.NodeNetns), svcs: svcInf.Lister(), slices: sliceInf.Lister(), nodes: nodeInf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "proxy-" + cfg.Node})}
	// The nodes of every proxy share the informers: the first adds the index.
	if err := sliceInf.Informer().AddIndexers(cache.Indexers{sliceService: sliceServiceIndex}); err != nil {
		if _, ok := sliceInf.Informer().GetIndexer().GetIndexers()[sliceService]; !ok {
			return nil, fmt.Errorf("index EndpointSlices by service: %w", err)
		}
	}
	p.byOwner = sliceInf.Informer().GetIndexer()
	// mark records the services an event changes and queues a sync.
	mark := func(objs ...any) {
		p.mu.Lock()
		for _, obj := range objs {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			switch o := obj.(type) {
			case *corev1.Service:
				p.dirty[o.Namespace+"/"+o.Name] = true
			case *discoveryv1.EndpointSlice:
				if name := o.Labels[discoveryv1.LabelServiceName]; name != "" {
					p.dirty[o.Namespace+"/"+name] = true
				}
			}
		}
		p.mu.Unlock()
		p.queue.Add("sync")
	}
	p.dirty = map[string]bool{}
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { mark(o) }, UpdateFunc: func(o, n any) { mark(o, n) }, DeleteFunc: func(o any) { mark(o) },
	}
	infs := []cache.SharedIndexInformer{svcInf.Informer(), sliceInf.Informer()}
	if cfg.LBPool != nil {
		infs = append(infs, nodeInf.Informer())
	}
	for _, inf := range infs {
		if _, err := inf.AddEventHandler(kick); err != nil {
			return nil, err
		}
		p.synced = append(p.synced, inf.HasSynced)
	}
	return p, nil
}

func sliceServiceIndex(obj any) ([]string, error) {
	sl, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := sl.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{sl.Namespace + "/" + name}, nil
}

// Run syncs on every change until ctx ends.
func (p *Proxy) Run(ctx context.Context) error {
	defer p.queue.ShutDown()
	defer p.nft.Close()
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return nil
	}
	stop := context.AfterFunc(ctx, p.queue.ShutDown)
	defer stop()
	p.queue.Add("sync")
	for {
		key, quit := p.queue.Get()
		if quit {
			return nil
		}
		if err := p.sync(); err != nil {
			p.cfg.Log.Info("service proxy sync failed", "node", p.cfg.Node, "err", err)
			p.queue.AddRateLimited(key)
		} else {
			p.queue.Forget(key)
		}
		p.queue.Done(key)
	}
}

// Input collects the render input from the informers' caches.
func (p *Proxy) Input() (ProxyInput, error) {
	svcs, err := p.svcs.List(labels.Everything())
	if err != nil {
		return ProxyInput{}, err
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Namespace+"/"+svcs[i].Name < svcs[j].Namespace+"/"+svcs[j].Name })
	slices, err := p.slices.List(labels.Everything())
	if err != nil {
		return ProxyInput{}, err
	}
	by := map[string][]*discoveryv1.EndpointSlice{}
	for _, sl := range slices {
		if name := sl.Labels[discoveryv1.LabelServiceName]; name != "" {
			by[sl.Namespace+"/"+name] = append(by[sl.Namespace+"/"+name], sl)
		}
	}
	for _, l := range by {
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	}
	return ProxyInput{Node: p.cfg.Node, ClusterCIDR: p.cfg.ClusterCIDR, DNS: p.cfg.DNS, ClusterDNS: p.cfg.ClusterDNS, Services: svcs, Slices: by}, nil
}

func (p *Proxy) sync() error {
	p.mu.Lock()
	dirty := p.dirty
	p.dirty = map[string]bool{}
	p.mu.Unlock()
	if p.cache == nil || !p.nft.Known() {
		return p.fullSync()
	}
	changed := make([]string, 0, len(dirty))
	for key := range dirty {
		changed = append(changed, key)
	}
	sort.Strings(changed)
	in, err := p.serviceInput(changed)
	if err != nil {
		p.cache = nil // the changed keys are gone: render everything next
		return err
	}
	start := time.Now()
	d := p.cache.Update(in, changed)
	sent, err := p.nft.SyncDelta(d)
	if err != nil {
		p.cache = nil // a full render and a read of the kernel's table next
		return fmt.Errorf("node %s service rules: %w", p.cfg.Node, err)
	}
	if p.cfg.Observe != nil && sent > 0 {
		p.cfg.Observe(false, p.cache.Chains(), time.Since(start))
	}
	return p.announce()
}

// fullSync renders every service: the first sync and the one after a
// failed sync.
func (p *Proxy) fullSync() error {
	in, err := p.Input()
	if err != nil {
		return err
	}
	start := time.Now()
	c, rules := NewProxyCache(in)
	p.cache = nil
	sent, err := p.nft.Sync(rules)
	if err != nil {
		return fmt.Errorf("node %s service rules: %w", p.cfg.Node, err)
	}
	p.cache = c
	// 0 messages means the kernel's table already matched and nothing
	// was touched.
	p.cfg.Log.Info("service proxy: full sync", "node", p.cfg.Node, "messages", sent, "took", time.Since(start))
	if p.cfg.Observe != nil {
		p.cfg.Observe(true, len(rules.Chains), time.Since(start))
	}
	return p.announce()
}

// serviceInput is the render input of the services named by keys
// (those that exist) and their EndpointSlices.
func (p *Proxy) serviceInput(keys []string) (ProxyInput, error) {
	in := ProxyInput{Node: p.cfg.Node, ClusterCIDR: p.cfg.ClusterCIDR, DNS: p.cfg.DNS, ClusterDNS: p.cfg.ClusterDNS,
		Slices: map[string][]*discoveryv1.EndpointSlice{}}
	for _, key := range keys {
		ns, name, err := cache.SplitMetaNamespaceKey(key)
		if err != nil {
			return ProxyInput{}, err
		}
		s, err := p.svcs.Services(ns).Get(name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return ProxyInput{}, err
		}
		in.Services = append(in.Services, s)
		slices, err := p.servicesSlices(key)
		if err != nil {
			return ProxyInput{}, err
		}
		in.Slices[key] = slices
	}
	return in, nil
}

// servicesSlices are the EndpointSlices of a service, by name.
func (p *Proxy) servicesSlices(key string) ([]*discoveryv1.EndpointSlice, error) {
	objs, err := p.byOwner.ByIndex(sliceService, key)
	if err != nil {
		return nil, fmt.Errorf("EndpointSlices of %s: %w", key, err)
	}
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
			out = append(out, sl)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// announce puts the LoadBalancer addresses this node serves on its
// underlay device and takes away the ones it no longer serves.
func (p *Proxy) announce() error {
	if p.cfg.LBPool == nil || p.cfg.NodeNetns == "" {
		return nil
	}
	nodes, err := p.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	svcs, err := p.svcs.List(labels.Everything())
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range svcs {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		slices, err := p.servicesSlices(s.Namespace + "/" + s.Name)
		if err != nil {
			return err
		}
		if AnnouncingNode(s, slices, nodes) != p.cfg.Node {
			continue
		}
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if ip := net.ParseIP(ing.IP); ip != nil && p.cfg.LBPool.Contains(ip) {
				want[ip.To4().String()] = true
			}
		}
	}
	return Do(p.cfg.NodeNetns, func() error {
		link, err := netlink.LinkByName(p.cfg.Underlay)
		if err != nil {
			return fmt.Errorf("look up %s: %w", p.cfg.Underlay, err)
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("list addresses of %s: %w", p.cfg.Underlay, err)
		}
		have := map[string]bool{}
		for _, a := range addrs {
			ones, _ := a.Mask.Size()
			if ones != 32 || !p.cfg.LBPool.Contains(a.IP) {
				continue
			}
			have[a.IP.String()] = true
			if !want[a.IP.String()] {
				if err := netlink.AddrDel(link, &a); err != nil {
					return fmt.Errorf("withdraw %s: %w", a.IP, err)
				}
			}
		}
		for ip := range want {
			if have[ip] {
				continue
			}
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(ip).To4(), Mask: net.CIDRMask(32, 32)}}
			if err := netlink.AddrAdd(link, addr); err != nil {
				return fmt.Errorf("announce %s on %s: %w", ip, p.cfg.Underlay, err)
			}
			// The address may have been served by another node a moment
			// ago: tell the segment it moved. The address itself is in
			// place, so a lost announcement costs only the time until
			// the neighbours re-resolve; it does not fail the sync.
			if err := gratuitousARP(link.Attrs().Index, link.Attrs().HardwareAddr, addr.IP); err != nil {
				p.cfg.Log.Warn("announce load balancer address", "ip", ip, "err", err)
			}
		}
		return nil
	})
}

// AnnouncingNode is the node that answers for a LoadBalancer service's
// addresses: the first (by name) node with a ready endpoint, else the
// first node. Every node computes the same answer.
func AnnouncingNode(s *corev1.Service, slices []*discoveryv1.EndpointSlice, nodes []*corev1.Node) string {
	var withEP []string
	for _, sp := range s.Spec.Ports {
		for _, e := range proxyEndpoints(slices, sp.Name, sp.Protocol) {
			if e.node != "" {
				withEP = append(withEP, e.node)
			}
		}
	}
	if len(withEP) > 0 {
		sort.Strings(withEP)
		return withEP[0]
	}
	if s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		return ""
	}
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// RemoveProxy deletes the table (host driver: the table lives in the
// host netns); no table is fine.
func RemoveProxy(nodeNetns string) error { return removeTable(nodeNetns, proxyTable()) }
