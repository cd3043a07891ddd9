//go:build linux

package network

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// PolicyConfig builds one node's NetworkPolicy enforcer.
type PolicyConfig struct {
	Node      string
	NodeNetns string // "" = the current netns (host driver)
	Informers informers.SharedInformerFactory
	Log       *slog.Logger
}

// PolicyEnforcer keeps the node's `table inet nanokube-netpol` in line with
// Pods, Namespaces and NetworkPolicies. Each sync renders the whole table
// and loads it in one nft transaction, only when it changed.
type PolicyEnforcer struct {
	cfg      PolicyConfig
	pods     corelisters.PodLister
	ns       corelisters.NamespaceLister
	pols     networkinglisters.NetworkPolicyLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	families []string
	last     string
}

// NewPolicyEnforcer builds the enforcer of one node.
func NewPolicyEnforcer(cfg PolicyConfig) (*PolicyEnforcer, error) {
	podInf := cfg.Informers.Core().V1().Pods()
	nsInf := cfg.Informers.Core().V1().Namespaces()
	polInf := cfg.Informers.Networking().V1().NetworkPolicies()
	e := &PolicyEnforcer{cfg: cfg, pods: podInf.Lister(), ns: nsInf.Lister(), pols: polInf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "netpol-" + cfg.Node})}
	// Events wait syncDelay in the queue's one key, so a burst (a
	// rollout's pods getting their IPs) costs one render.
	kick := func() { e.queue.AddAfter("sync", syncDelay) }
	all := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { kick() }, UpdateFunc: func(any, any) { kick() }, DeleteFunc: func(any) { kick() },
	}
	for _, inf := range []cache.SharedIndexInformer{nsInf.Informer(), polInf.Informer()} {
		if _, err := inf.AddEventHandler(all); err != nil {
			return nil, err
		}
		e.synced = append(e.synced, inf.HasSynced)
	}
	// A pod change that cannot change the rules (no IP yet, a status
	// update, a pod no policy selects) renders nothing.
	podChanged := func(old, new any) {
		o, _ := old.(*corev1.Pod)
		n, _ := new.(*corev1.Pod)
		pols, err := e.pols.List(labels.Everything())
		if err != nil || PodChangeMatters(cfg.Node, o, n, pols, e.nsLabels) {
			kick()
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { podChanged(nil, o) },
		UpdateFunc: podChanged,
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			podChanged(o, nil)
		},
	}); err != nil {
		return nil, err
	}
	e.synced = append(e.synced, podInf.Informer().HasSynced)
	return e, nil
}

// nsLabels is a namespace's labels from the informer; nil when unknown.
func (e *PolicyEnforcer) nsLabels(name string) labels.Set {
	ns, err := e.ns.Get(name)
	if err != nil {
		return nil
	}
	if ns.Labels == nil {
		return labels.Set{}
	}
	return ns.Labels
}

// syncDelay coalesces the events of a burst into one sync, like
// kube-proxy's minSyncPeriod (shorter: one node's rules are small).
const syncDelay = 100 * time.Millisecond

// Ensure makes bridged pod-to-pod traffic of the node pass the inet
// forward hook (br_netfilter's bridge-nf-call-iptables). Without
// br_netfilter only routed traffic (other nodes, Services) is policed.
func (e *PolicyEnforcer) Ensure() error {
	e.families = []string{"inet"}
	const key = "net/bridge/bridge-nf-call-iptables"
	if _, err := os.Stat("/proc/sys/" + key); err != nil {
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			e.cfg.Log.Warn("br_netfilter is not available: NetworkPolicy does not see traffic between pods of one node", "node", e.cfg.Node,
				"err", strings.TrimSpace(string(out)))
			return nil
		}
	}
	return Do(e.cfg.NodeNetns, func() error { return setSysctl(key, "1") })
}

// Run syncs on every change until ctx ends.
func (e *PolicyEnforcer) Run(ctx context.Context) error {
	defer e.queue.ShutDown()
	if err := e.Ensure(); err != nil {
		return fmt.Errorf("node %s network policy: %w", e.cfg.Node, err)
	}
	if !cache.WaitForCacheSync(ctx.Done(), e.synced...) {
		return nil
	}
	stop := context.AfterFunc(ctx, e.queue.ShutDown)
	defer stop()
	e.queue.Add("sync")
	for {
		key, quit := e.queue.Get()
		if quit {
			return nil
		}
		if err := e.sync(); err != nil {
			e.cfg.Log.Info("network policy sync failed", "node", e.cfg.Node, "err", err)
			e.queue.AddRateLimited(key)
		} else {
			e.queue.Forget(key)
		}
		e.queue.Done(key)
	}
}

// Ruleset renders the node's table from the informers' caches.
func (e *PolicyEnforcer) Ruleset() (string, error) {
	pods, err := e.pods.List(labels.Everything())
	if err != nil {
		return "", err
	}
	nss, err := e.ns.List(labels.Everything())
	if err != nil {
		return "", err
	}
	pols, err := e.pols.List(labels.Everything())
	if err != nil {
		return "", err
	}
	return RenderPolicies(PolicyInput{Node: e.cfg.Node, Pods: pods, Namespaces: nss, Policies: pols}, e.families), nil
}

func (e *PolicyEnforcer) sync() error {
	rules, err := e.Ruleset()
	if err != nil {
		return err
	}
	if rules == e.last {
		return nil
	}
	if err := nftApply(e.cfg.NodeNetns, rules); err != nil {
		return err
	}
	e.last = rules
	return nil
}

// RemovePolicies deletes the node's policy table (host driver: it lives
// in the host netns).
func RemovePolicies(nodeNetns string) error {
	return nftApply(nodeNetns, fmt.Sprintf("table inet %s {}\ndelete table inet %s\n", NetpolTable, NetpolTable))
}

// nftApply loads a ruleset in one nft transaction inside the netns.
func nftApply(nodeNetns, rules string) error {
	args := []string{"-f", "-"}
	name := "nft"
	if nodeNetns != "" {
		name, args = "nsenter", append([]string{"--net=" + nodeNetns, "--", "nft"}, args...)
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
