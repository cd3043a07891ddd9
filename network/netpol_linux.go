//go:build linux

package network

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/nanokube/nanokube/internal/syncloop"
	"golang.org/x/sys/unix"
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

// PolicyEnforcer keeps the node's `table ip nanokube-netpol` in line with
// Pods, Namespaces and NetworkPolicies. Each sync renders the rules and
// sends the difference with the table (the last sync's, or after a
// restart the kernel's) in one netlink batch; nothing when it matches.
type PolicyEnforcer struct {
	cfg    PolicyConfig
	pods   corelisters.PodLister
	ns     corelisters.NamespaceLister
	pols   networkinglisters.NetworkPolicyLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	nft    *nftSync
}

func policyTable() *nftables.Table {
	return &nftables.Table{Name: NetpolTable, Family: nftables.TableFamilyIPv4}
}

// legacyPolicyTable is where nanokube before the netlink backend kept
// the rules (loaded with nft -f); the first sync removes it.
func legacyPolicyTable() *nftables.Table {
	return &nftables.Table{Name: NetpolTable, Family: nftables.TableFamilyINet}
}

// policyBase is the fixed part of the policy table: replies pass, then
// packets of isolated local pods go to their chains.
func policyBase() []baseChain {
	accept := nftables.ChainPolicyAccept
	state := []expr.Any{&expr.Ct{Register: reg1, Key: expr.CtKeySTATE}}
	state = append(state, maskCmp(u32(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), expr.CmpOpNeq, u32(0))...)
	vmap := func(load expr.Any, m string) []expr.Any {
		return []expr.Any{load, &expr.Lookup{SourceRegister: reg1, DestRegister: unix.NFT_REG_VERDICT, IsDestRegSet: true, SetName: m}}
	}
	return []baseChain{{
		chain: &nftables.Chain{Name: "forward", Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward,
			Priority: nftables.ChainPriorityFilter, Policy: &accept},
		rules: []baseRule{
			{"ct state established,related accept", append(state, verdict(expr.VerdictAccept, ""))},
			{"ip saddr vmap @" + mapPolicyEgress, vmap(ipSaddr(reg1), mapPolicyEgress)},
			{"ip daddr vmap @" + mapPolicyIngress, vmap(ipDaddr(reg1), mapPolicyIngress)},
		},
	}}
}

var policyMaps = []string{mapPolicyIngress, mapPolicyEgress}

// desiredPolicies is the whole policy table r stands for.
func desiredPolicies(r *PolicyRules) *tableState {
	return desiredState(policyBase(), policyMaps, r.Chains, r.Elems)
}

// NewPolicyEnforcer builds the enforcer of one node.
func NewPolicyEnforcer(cfg PolicyConfig) (*PolicyEnforcer, error) {
	podInf := cfg.Informers.Core().V1().Pods()
	nsInf := cfg.Informers.Core().V1().Namespaces()
	polInf := cfg.Informers.Networking().V1().NetworkPolicies()
	e := &PolicyEnforcer{cfg: cfg, pods: podInf.Lister(), ns: nsInf.Lister(), pols: polInf.Lister(),
		nft:   &nftSync{nsPath: cfg.NodeNetns, table: policyTable()},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "netpol-" + cfg.Node})}
	// Events wait syncDelay in the queue's one key, so a burst (a
	// rollout's pods getting their IPs) costs one render.
	kick := func() { e.queue.AddAfter(syncloop.Key, syncDelay) }
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
	defer e.nft.Close()
	if err := e.Ensure(); err != nil {
		return fmt.Errorf("node %s network policy: %w", e.cfg.Node, err)
	}
	if err := removeTable(e.cfg.NodeNetns, legacyPolicyTable()); err != nil {
		return fmt.Errorf("node %s network policy: remove the nft -f table: %w", e.cfg.Node, err)
	}
	return syncloop.Run(ctx, e.queue, e.synced, e.sync, func(err error) {
		e.cfg.Log.Info("network policy sync failed", "node", e.cfg.Node, "err", err)
	})
}

// Rules renders the node's policy rules from the informers' caches.
func (e *PolicyEnforcer) Rules() (*PolicyRules, error) {
	pods, err := e.pods.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	nss, err := e.ns.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	pols, err := e.pols.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	return RenderPolicies(PolicyInput{Node: e.cfg.Node, Pods: pods, Namespaces: nss, Policies: pols}), nil
}

func (e *PolicyEnforcer) sync() error {
	rules, err := e.Rules()
	if err != nil {
		return err
	}
	full := !e.nft.Known()
	sent, err := e.nft.sync(desiredPolicies(rules))
	if err != nil {
		return fmt.Errorf("table %s: %w", tableName(policyTable()), err)
	}
	if full {
		// 0: a restart found the table in place.
		e.cfg.Log.Info("network policy table synced", "node", e.cfg.Node, "messages", sent, "chains", len(rules.Chains))
	}
	return nil
}

// RemovePolicies deletes the node's policy table (host driver: it lives
// in the host netns), and the one of an older nanokube; none is fine.
func RemovePolicies(nodeNetns string) error {
	if err := removeTable(nodeNetns, legacyPolicyTable()); err != nil {
		return err
	}
	return removeTable(nodeNetns, policyTable())
}
