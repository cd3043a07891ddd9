//go:build linux

package network

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
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
// finds the rules in place sends nothing.
type Proxy struct {
	cfg    ProxyConfig
	svcs   corelisters.ServiceLister
	slices discoverylisters.EndpointSliceLister
	nodes  corelisters.NodeLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	nft    *ProxyNft
}

// NewProxy builds the proxy.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	svcInf := cfg.Informers.Core().V1().Services()
	sliceInf := cfg.Informers.Discovery().V1().EndpointSlices()
	nodeInf := cfg.Informers.Core().V1().Nodes()
	p := &Proxy{cfg: cfg, nft: NewProxyNft(cfg.NodeNetns), svcs: svcInf.Lister(), slices: sliceInf.Lister(), nodes: nodeInf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "proxy-" + cfg.Node})}
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { p.queue.Add("sync") }, UpdateFunc: func(any, any) { p.queue.Add("sync") }, DeleteFunc: func(any) { p.queue.Add("sync") },
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
	in, err := p.Input()
	if err != nil {
		return err
	}
	start := time.Now()
	rules := RenderProxy(in)
	full := !p.nft.Known()
	sent, err := p.nft.Sync(rules)
	if err != nil {
		return fmt.Errorf("node %s service rules: %w", p.cfg.Node, err)
	}
	if full {
		// After a start: 0 messages means the kernel's table already
		// matched and nothing was touched.
		p.cfg.Log.Info("service proxy: first sync", "node", p.cfg.Node, "messages", sent, "took", time.Since(start))
	}
	if p.cfg.Observe != nil && (sent > 0 || full) {
		p.cfg.Observe(full, len(rules.Chains), time.Since(start))
	}
	return p.announce(in)
}

// announce puts the LoadBalancer addresses this node serves on its
// underlay device and takes away the ones it no longer serves.
func (p *Proxy) announce(in ProxyInput) error {
	if p.cfg.LBPool == nil || p.cfg.NodeNetns == "" {
		return nil
	}
	nodes, err := p.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range in.Services {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		if AnnouncingNode(s, in.Slices[s.Namespace+"/"+s.Name], nodes) != p.cfg.Node {
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
