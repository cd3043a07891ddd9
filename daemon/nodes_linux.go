//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/nanokube/nanokube/agent"
	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/network"
	"github.com/nanokube/nanokube/runtime"
	"github.com/nanokube/nanokube/runtime/fake"
	"github.com/nanokube/nanokube/version"
)

// nodeRun is one node of the running cluster: its agent and the node-local
// network parts (service proxy, DNS listener, overlay, NetworkPolicy),
// run under one context that node delete cancels.
type nodeRun struct {
	state   cluster.NodeState
	agent   *agent.Agent
	runners []func(context.Context) error
	cancel  context.CancelFunc
	done    chan struct{}
}

// buildNode builds a node's parts; its netns must exist.
func (s *System) buildNode(n cluster.NodeState, controlPlane bool) (*nodeRun, error) {
	pn := s.net.podNet(n)
	runners, err := s.nodeServices(n, pn)
	if err != nil {
		return nil, err
	}
	var annotations map[string]string
	if s.net.driver != "host" {
		oc := s.net.overlayConfig(n)
		oc.Informers, oc.Log = s.ctrl.Informers(), s.log
		ov, err := network.NewOverlay(oc)
		if err != nil {
			return nil, fmt.Errorf("node %s overlay: %w", n.Name, err)
		}
		// The device exists before the node registers, so the node's
		// pods never start without their route to the other nodes.
		if err := ov.Ensure(); err != nil {
			return nil, fmt.Errorf("node %s overlay: %w", n.Name, err)
		}
		runners = append(runners, ov.Run)
		annotations = network.NodeAnnotations(oc.Backend, oc.PublicIP, oc.VtepMAC)
	}
	pol, err := network.NewPolicyEnforcer(network.PolicyConfig{Node: n.Name, NodeNetns: pn.NodeNetns, Informers: s.ctrl.Informers(), Log: s.log})
	if err != nil {
		return nil, fmt.Errorf("node %s network policy: %w", n.Name, err)
	}
	runners = append(runners, pol.Run, s.nodeIngress(n))
	acfg := agent.Config{
		NodeName: n.Name, NodeIP: net.ParseIP(n.IP), ControlPlane: controlPlane, Client: s.cs, Runtime: s.rt,
		RuntimeVersion: "containerd://" + s.cdVer, PodNet: pn, RootDir: s.nodeDir(n.Name),
		ClusterDNS: clusterDNSIP, ClusterDomain: "cluster.local", Annotations: annotations, Log: s.log,
		CgroupRoot:         path.Join("/", runtime.Namespace(s.cfg.Profile.Name), n.Name),
		InsecureRegistries: s.cfg.Cluster.InsecureRegistries, ImageFS: s.imageFS(controlPlane), ImageGC: imageGCPolicy(s.cfg.Cluster),
		Discarding: func() bool {
			_, err := os.Stat(s.cfg.Profile.DeletingFile())
			return err == nil
		},
	}
	if s.fake != nil {
		// Pods get addresses of the whole cluster range (the host driver
		// has one node) and no netns; the node takes as many as kwok's.
		acfg.Runtime, acfg.RuntimeVersion, acfg.CgroupRoot = s.fake, "fake://"+version.Version, ""
		acfg.Sandboxes = fake.NewSandboxes(filepath.Join(s.cfg.Profile.RunDir(), "fake-netns"), pn.ClusterCIDR)
		acfg.MaxPods = fakeMaxPods
	}
	a, err := agent.New(acfg)
	if err != nil {
		return nil, fmt.Errorf("build agent of node %s: %w", n.Name, err)
	}
	return &nodeRun{state: n, agent: a, runners: append(runners, a.Run), done: make(chan struct{})}, nil
}

// fakeMaxPods is the pod capacity of a node with the fake runtime.
const fakeMaxPods = 10000

func (s *System) nodeDir(name string) string { return filepath.Join(s.cfg.Profile.Dir, "nodes", name) }

// startNode runs a built node's parts in the system's group until the
// system stops or the node is deleted. The caller holds s.mu.
func (s *System) startNode(nr *nodeRun) {
	ctx, cancel := context.WithCancel(s.gctx)
	nr.cancel = cancel
	// Parts built after the controllers started need their informers started.
	s.ctrl.Informers().Start(s.gctx.Done())
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range nr.runners {
		g.Go(func() error { return run(gctx) })
	}
	s.group.Go(func() error {
		defer close(nr.done)
		defer cancel()
		if err := g.Wait(); err != nil {
			return fmt.Errorf("node %s: %w", nr.state.Name, err)
		}
		return nil
	})
}

// addNodes adds count worker nodes to the running cluster, reporting each
// step, and returns their names when all of them are Ready.
func (s *System) addNodes(ctx context.Context, count int, step func(string, ...any)) ([]string, error) {
	if s.net.driver == "host" {
		return nil, errors.New("the host driver runs one node: multi-node clusters need --driver=netns")
	}
	s.nodeOps.Lock()
	defer s.nodeOps.Unlock()
	var added []string
	for range count {
		s.mu.Lock()
		index := 0
		for i := 2; i <= maxNodes && index == 0; i++ {
			if s.nodes[NodeName(s.net.profile, i)] == nil {
				index = i
			}
		}
		s.mu.Unlock()
		if index == 0 {
			return added, fmt.Errorf("the cluster has %d nodes, the most a profile can have", maxNodes)
		}
		n := s.net.nodeState(index)
		if err := s.net.ensureNode(n); err != nil {
			return added, err
		}
		nr, err := s.buildNode(n, false)
		if err != nil {
			return added, err
		}
		s.mu.Lock()
		s.nodes[n.Name] = nr
		s.state.Nodes = append(s.state.Nodes, n)
		slices.SortFunc(s.state.Nodes, func(a, b cluster.NodeState) int {
			return nodeIndex(s.net.profile, a.Name) - nodeIndex(s.net.profile, b.Name)
		})
		s.startNode(nr)
		s.mu.Unlock()
		if err := s.saveState(); err != nil {
			return added, err
		}
		added = append(added, n.Name)
		step("Started node %s (%s, pods %s)", n.Name, n.IP, n.PodCIDR)
	}
	for _, name := range added {
		if err := s.waitNodeReady(ctx, name); err != nil {
			return added, err
		}
		step("Node %s is Ready", name)
	}
	return added, nil
}

// waitNodeReady watches the Node until its Ready condition is True.
func (s *System) waitNodeReady(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	lw := cache.NewListWatchFromClient(s.cs.CoreV1().RESTClient(), "nodes", "", fields.OneTermEqualSelector("metadata.name", name))
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, nil, func(ev watch.Event) (bool, error) {
		n, ok := ev.Object.(*corev1.Node)
		if !ok {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for node %s to be Ready: %w", name, err)
	}
	return nil
}

// deleteNode drains a worker node like `kubectl drain` (cordon, then its
// pods deleted with their grace periods), deletes its Node and Lease, stops
// its parts and removes its netns, links, routes and address allocations.
func (s *System) deleteNode(ctx context.Context, name string, step func(string, ...any)) error {
	s.nodeOps.Lock()
	defer s.nodeOps.Unlock()
	s.mu.Lock()
	nr := s.nodes[name]
	s.mu.Unlock()
	if nr == nil {
		return fmt.Errorf("node %q not found in profile %q: nanokube node list", name, s.net.profile)
	}
	if nodeIndex(s.net.profile, name) == 1 {
		return fmt.Errorf("node %q runs the control plane: nanokube delete -p %s removes the whole cluster", name, s.net.profile)
	}
	nodes := s.cs.CoreV1().Nodes()
	patch := []byte(`{"spec":{"unschedulable":true}}`)
	if _, err := nodes.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cordon node %s: %w", name, err)
	}
	step("Cordoned node %s", name)
	drained, err := s.evictPods(ctx, name, false)
	if err != nil {
		return err
	}
	step("Drained node %s (%d pod(s))", name, drained)
	// Without its Node the DaemonSet controller removes its daemon pods.
	if err := nodes.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	if _, err := s.evictPods(ctx, name, true); err != nil {
		return err
	}
	nr.cancel()
	select {
	case <-nr.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Whatever is still bound to the node is gone with it (the pod
	// garbage collector's forced delete of orphaned pods).
	if err := s.forceDeletePods(ctx, name); err != nil {
		return err
	}
	// No DeleteOptions body: the API server decodes a protobuf one only as
	// core/v1 so far, and a Lease delete needs no options.
	err = s.cs.CoordinationV1().RESTClient().Delete().Namespace(corev1.NamespaceNodeLease).Resource("leases").Name(name).Do(ctx).Error()
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete lease of node %s: %w", name, err)
	}
	step("Stopped node %s", name)
	if err := s.net.deleteNode(nr.state); err != nil {
		return err
	}
	if err := os.RemoveAll(s.nodeDir(name)); err != nil {
		return fmt.Errorf("remove node %s files: %w", name, err)
	}
	s.mu.Lock()
	delete(s.nodes, name)
	s.state.Nodes = slices.DeleteFunc(s.state.Nodes, func(n cluster.NodeState) bool { return n.Name == name })
	s.mu.Unlock()
	if err := s.saveState(); err != nil {
		return err
	}
	step("Removed node %s's network namespace, links and routes", name)
	return nil
}

// evictPods deletes the pods bound to node (all of them, or all but
// DaemonSet pods) with their grace periods and waits until they are gone;
// it returns how many it deleted.
func (s *System) evictPods(ctx context.Context, node string, daemonPods bool) (int, error) {
	pods := s.cs.CoreV1().Pods("")
	sel := fields.OneTermEqualSelector("spec.nodeName", node).String()
	list, err := pods.List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return 0, fmt.Errorf("list pods of node %s: %w", node, err)
	}
	deleted := map[types.UID]bool{}
	for _, p := range list.Items {
		if !daemonPods && isDaemonPod(&p) {
			continue
		}
		err := s.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return 0, fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		deleted[p.UID] = true
	}
	if len(list.Items) == 0 {
		return 0, nil
	}
	// Wait (with a deadline beyond the usual grace period) until none of
	// the pods is left on the node.
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	lw := cache.NewListWatchFromClient(s.cs.CoreV1().RESTClient(), "pods", "", fields.OneTermEqualSelector("spec.nodeName", node))
	var store cache.Store
	left := func() bool {
		for _, obj := range store.List() {
			p := obj.(*corev1.Pod)
			if deleted[p.UID] || (daemonPods && isDaemonPod(p)) {
				return true
			}
		}
		return false
	}
	_, err = watchtools.UntilWithSync(wctx, lw, &corev1.Pod{}, func(st cache.Store) (bool, error) {
		store = st
		return !left(), nil
	}, func(watch.Event) (bool, error) { return !left(), nil })
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, watchtools.ErrWatchClosed) {
		return 0, fmt.Errorf("wait for the pods of node %s to stop: %w", node, err)
	}
	return len(deleted), nil
}

func isDaemonPod(p *corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Controller != nil && *o.Controller && o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}

// forceDeletePods removes the pods still bound to node at once.
func (s *System) forceDeletePods(ctx context.Context, node string) error {
	list, err := s.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return fmt.Errorf("list pods of node %s: %w", node, err)
	}
	zero := int64(0)
	for _, p := range list.Items {
		err := s.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	return nil
}
