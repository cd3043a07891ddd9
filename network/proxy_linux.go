//go:build linux

package network

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"sort"
	"strings"

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
	Profile   string
	NodeNetns string // "" = the current netns (host driver)
	Informers informers.SharedInformerFactory
	// DNS is the node-local DNS listener that the cluster DNS address
	// (10.96.0.10:53) is sent to.
	DNS        net.IP
	ClusterDNS net.IP
	Log        *slog.Logger
}

// Proxy programs the node's nftables table from Services and
// EndpointSlices: ClusterIP and NodePort with random balancing over ready
// endpoints, reject when there are none. The whole table is replaced in one
// nft transaction per sync, so rules never pile up and a restart converges.
type Proxy struct {
	cfg    ProxyConfig
	svcs   corelisters.ServiceLister
	slices discoverylisters.EndpointSliceLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	last   string
}

// NewProxy builds the proxy.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	svcInf := cfg.Informers.Core().V1().Services()
	sliceInf := cfg.Informers.Discovery().V1().EndpointSlices()
	p := &Proxy{cfg: cfg, svcs: svcInf.Lister(), slices: sliceInf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "proxy"})}
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { p.queue.Add("sync") }, UpdateFunc: func(any, any) { p.queue.Add("sync") }, DeleteFunc: func(any) { p.queue.Add("sync") },
	}
	for _, inf := range []cache.SharedIndexInformer{svcInf.Informer(), sliceInf.Informer()} {
		if _, err := inf.AddEventHandler(kick); err != nil {
			return nil, err
		}
		p.synced = append(p.synced, inf.HasSynced)
	}
	return p, nil
}

// Run syncs on every change until ctx ends, then removes the table.
func (p *Proxy) Run(ctx context.Context) error {
	defer p.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return nil
	}
	go func() {
		<-ctx.Done()
		p.queue.ShutDown()
	}()
	p.queue.Add("sync")
	for {
		key, quit := p.queue.Get()
		if quit {
			return nil
		}
		if err := p.sync(); err != nil {
			p.cfg.Log.Info("service proxy sync failed", "err", err)
			p.queue.AddRateLimited(key)
		} else {
			p.queue.Forget(key)
		}
		p.queue.Done(key)
	}
}

// Ruleset renders the nftables table for the current services.
func (p *Proxy) Ruleset() (string, error) {
	svcs, err := p.svcs.List(labels.Everything())
	if err != nil {
		return "", err
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Namespace+"/"+svcs[i].Name < svcs[j].Namespace+"/"+svcs[j].Name })
	var b strings.Builder
	table := "nanokube"
	fmt.Fprintf(&b, "table ip %s {}\ndelete table ip %s\ntable ip %s {\n", table, table, table)
	b.WriteString("  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n    jump services\n  }\n")
	b.WriteString("  chain output {\n    type nat hook output priority -100; policy accept;\n    jump services\n  }\n")
	b.WriteString("  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n    meta mark & 0x4000 == 0x4000 masquerade\n  }\n")
	var services, chains, rejects strings.Builder
	n := 0
	for _, s := range svcs {
		if s.Spec.Type == corev1.ServiceTypeExternalName || s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		eps, err := p.endpoints(s)
		if err != nil {
			return "", err
		}
		for _, sp := range s.Spec.Ports {
			proto := strings.ToLower(string(sp.Protocol))
			if proto != "tcp" && proto != "udp" {
				continue
			}
			chain := fmt.Sprintf("svc_%d", n)
			n++
			var targets []string
			if s.Spec.ClusterIP == p.cfg.ClusterDNS.String() && p.cfg.DNS != nil {
				targets = []string{net.JoinHostPort(p.cfg.DNS.String(), "53")}
			} else {
				for _, e := range eps {
					if port, ok := e.ports[sp.Name]; ok {
						targets = append(targets, net.JoinHostPort(e.ip, fmt.Sprint(port)))
					}
				}
			}
			match := fmt.Sprintf("%s dport %d", proto, sp.Port)
			if len(targets) == 0 {
				fmt.Fprintf(&rejects, "    ip daddr %s %s reject\n", s.Spec.ClusterIP, match)
				continue
			}
			fmt.Fprintf(&services, "    ip daddr %s %s jump %s\n", s.Spec.ClusterIP, match, chain)
			if sp.NodePort != 0 {
				fmt.Fprintf(&services, "    fib daddr type local %s dport %d jump %s\n", proto, sp.NodePort, chain)
			}
			fmt.Fprintf(&chains, "  chain %s {\n    meta mark set meta mark | 0x4000\n", chain)
			if len(targets) == 1 {
				fmt.Fprintf(&chains, "    meta l4proto %s dnat to %s\n  }\n", proto, targets[0])
				continue
			}
			vm := make([]string, len(targets))
			for i := range targets {
				vm[i] = fmt.Sprintf("%d : jump %s_%d", i, chain, i)
			}
			fmt.Fprintf(&chains, "    numgen random mod %d vmap { %s }\n  }\n", len(targets), strings.Join(vm, ", "))
			for i, t := range targets {
				fmt.Fprintf(&chains, "  chain %s_%d {\n    meta l4proto %s dnat to %s\n  }\n", chain, i, proto, t)
			}
		}
	}
	fmt.Fprintf(&b, "  chain services {\n%s  }\n", services.String())
	b.WriteString(chains.String())
	fmt.Fprintf(&b, "  chain reject_noep {\n    type filter hook output priority 0; policy accept;\n%s  }\n", rejects.String())
	fmt.Fprintf(&b, "  chain reject_noep_fwd {\n    type filter hook forward priority 0; policy accept;\n%s  }\n", rejects.String())
	b.WriteString("}\n")
	return b.String(), nil
}

type proxyEndpoint struct {
	ip    string
	ports map[string]int32
}

// endpoints are the ready endpoints of s from its EndpointSlices.
func (p *Proxy) endpoints(s *corev1.Service) ([]proxyEndpoint, error) {
	slices, err := p.slices.EndpointSlices(s.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: s.Name}))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []proxyEndpoint
	for _, sl := range slices {
		ports := map[string]int32{}
		for _, pt := range sl.Ports {
			if pt.Port == nil {
				continue
			}
			name := ""
			if pt.Name != nil {
				name = *pt.Name
			}
			ports[name] = *pt.Port
		}
		for _, e := range sl.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				if !seen[a] {
					seen[a] = true
					out = append(out, proxyEndpoint{ip: a, ports: ports})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ip < out[j].ip })
	return out, nil
}

func (p *Proxy) sync() error {
	rules, err := p.Ruleset()
	if err != nil {
		return err
	}
	if rules == p.last {
		return nil
	}
	if err := p.apply(rules); err != nil {
		return err
	}
	p.last = rules
	return nil
}

// apply loads the ruleset into the node netns in one nft transaction.
func (p *Proxy) apply(rules string) error {
	args := []string{"-f", "-"}
	name := "nft"
	if p.cfg.NodeNetns != "" {
		name, args = "nsenter", append([]string{"--net=" + p.cfg.NodeNetns, "--", "nft"}, args...)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(rules)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft -f: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// RemoveProxy deletes the table (host driver: the table lives in the host netns).
func RemoveProxy(nodeNetns string) error {
	p := &Proxy{cfg: ProxyConfig{NodeNetns: nodeNetns}}
	return p.apply("table ip nanokube {}\ndelete table ip nanokube\n")
}
