package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nanokube/nanokube/version"
)

// leaseDuration and renewEvery are kubelet's node lease timings.
const (
	leaseDuration = 40
	renewEvery    = 10 * time.Second
)

// nodeObject is the Node this agent registers, with capacity read from the
// machine and kubelet's conditions.
func (a *Agent) nodeObject() *corev1.Node {
	now := metav1.Now()
	labels := map[string]string{
		corev1.LabelHostname: a.cfg.NodeName, corev1.LabelOSStable: "linux", corev1.LabelArchStable: goruntime.GOARCH,
		"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": goruntime.GOARCH,
	}
	if a.cfg.ControlPlane {
		labels["node-role.kubernetes.io/control-plane"] = ""
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(memTotal(), resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(a.cfg.MaxPods), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(diskTotal(a.cfg.RootDir), resource.BinarySI),
	}
	for name, q := range hugePages() {
		capacity[name] = q
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	var uts unix.Utsname
	unix.Uname(&uts)
	annotations := map[string]string{"node.alpha.kubernetes.io/ttl": "0"}
	for k, v := range a.cfg.Annotations {
		annotations[k] = v
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: labels, Annotations: annotations},
		Spec:       corev1.NodeSpec{PodCIDR: a.cfg.PodNet.CIDR.String(), PodCIDRs: []string{a.cfg.PodNet.CIDR.String()}},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Conditions: []corev1.NodeCondition{
				cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
				cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
				cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
				cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
			},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP.String()}, {Type: corev1.NodeHostName, Address: a.cfg.NodeName}},
			NodeInfo: corev1.NodeSystemInfo{
				MachineID: readTrim("/etc/machine-id"), SystemUUID: strings.ToLower(readTrim("/sys/class/dmi/id/product_uuid")), BootID: readTrim("/proc/sys/kernel/random/boot_id"),
				KernelVersion: unix.ByteSliceToString(uts.Release[:]), OSImage: osImage(),
				ContainerRuntimeVersion: a.cfg.RuntimeVersion, KubeletVersion: version.Kubernetes(),
				OperatingSystem: "linux", Architecture: goruntime.GOARCH,
			},
		},
	}
}

// register creates the Node or brings an existing one up to date.
func (a *Agent) register(ctx context.Context) error {
	want := a.nodeObject()
	nodes := a.cfg.Client.CoreV1().Nodes()
	cur, err := nodes.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := nodes.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("register node %s: %w", want.Name, err)
		}
		cur, err = nodes.Get(ctx, want.Name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", want.Name, err)
	}
	next := cur.DeepCopy()
	for k, v := range want.Labels {
		if next.Labels == nil {
			next.Labels = map[string]string{}
		}
		next.Labels[k] = v
	}
	for k, v := range want.Annotations {
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		next.Annotations[k] = v
	}
	next.Spec.PodCIDR, next.Spec.PodCIDRs = want.Spec.PodCIDR, want.Spec.PodCIDRs
	if next, err = nodes.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update node %s: %w", want.Name, err)
	}
	next.Status = want.Status
	if _, err := nodes.UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update node %s status: %w", want.Name, err)
	}
	return nil
}

// reportReady puts the agent's own conditions back when they say otherwise.
func (a *Agent) reportReady(ctx context.Context) error {
	nodes := a.cfg.Client.CoreV1().Nodes()
	cur, err := nodes.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range cur.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return nil
		}
	}
	next := cur.DeepCopy()
	next.Status.Conditions = a.nodeObject().Status.Conditions
	_, err = nodes.UpdateStatus(ctx, next, metav1.UpdateOptions{})
	return err
}

// heartbeat renews the node's Lease every renewEvery, like kubelet: the
// only periodic write of an idle node.
func (a *Agent) heartbeat(ctx context.Context) error {
	leases := a.cfg.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	t := time.NewTicker(renewEvery)
	defer t.Stop()
	var lastRenew time.Time
	for {
		now := metav1.NewMicroTime(time.Now())
		l, err := leases.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			dur := int32(leaseDuration)
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &a.cfg.NodeName, LeaseDurationSeconds: &dur, RenewTime: &now},
			}, metav1.CreateOptions{})
		case err == nil:
			l.Spec.RenewTime = &now
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		}
		if err != nil && ctx.Err() == nil {
			a.log.Info("renew node lease", "node", a.cfg.NodeName, "err", err)
		}
		if err == nil {
			// After a gap the node lifecycle controller may have marked the
			// node Unknown: report it ready again, like kubelet's next
			// status update would.
			if !lastRenew.IsZero() && time.Since(lastRenew) > 2*renewEvery {
				if err := a.reportReady(ctx); err != nil && ctx.Err() == nil {
					a.log.Info("report node ready", "node", a.cfg.NodeName, "err", err)
				}
			}
			lastRenew = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func memTotal() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			var kb int64
			fmt.Sscan(f[1], &kb)
			return kb * 1024
		}
	}
	return 0
}

// diskTotal is the size of the filesystem that holds dir (or its nearest
// existing parent: the node's directory may not exist yet).
func diskTotal(dir string) int64 {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(dir, &st)
		if err == nil {
			return int64(st.Blocks) * st.Bsize
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return 0
		}
		dir = parent
	}
}

// hugePages are the huge page sizes the kernel offers, each with the
// bytes reserved in it, as kubelet reports them (hugepages-2Mi: 0).
func hugePages() corev1.ResourceList {
	out := corev1.ResourceList{}
	dirs, _ := os.ReadDir("/sys/kernel/mm/hugepages")
	for _, d := range dirs {
		kb, ok := strings.CutPrefix(d.Name(), "hugepages-")
		if !ok {
			continue
		}
		var size, n int64
		if _, err := fmt.Sscanf(kb, "%dkB", &size); err != nil {
			continue
		}
		fmt.Sscan(readTrim(filepath.Join("/sys/kernel/mm/hugepages", d.Name(), "nr_hugepages")), &n)
		name := corev1.ResourceName(corev1.ResourceHugePagesPrefix + resource.NewQuantity(size*1024, resource.BinarySI).String())
		out[name] = *resource.NewQuantity(n*size*1024, resource.BinarySI)
	}
	return out
}

// nodeStartedEvents are the events kubelet posts about its node when it
// starts; like kubelet, they name the node by name as its UID.
func (a *Agent) nodeStartedEvents() {
	ref := &corev1.ObjectReference{Kind: "Node", Name: a.cfg.NodeName, UID: types.UID(a.cfg.NodeName)}
	a.recorder.Event(ref, corev1.EventTypeNormal, "Starting", "Starting kubelet.")
	for _, reason := range []string{"NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID"} {
		a.recorder.Eventf(ref, corev1.EventTypeNormal, reason, "Node %s status is now: %s", a.cfg.NodeName, reason)
	}
	a.recorder.Event(ref, corev1.EventTypeNormal, "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods")
	a.recorder.Eventf(ref, corev1.EventTypeNormal, "NodeReady", "Node %s status is now: NodeReady", a.cfg.NodeName)
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func osImage() string {
	b, _ := os.ReadFile("/etc/os-release")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}
