package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/nanokube/nanokube/agent/volume"
	"github.com/nanokube/nanokube/network"
	"github.com/nanokube/nanokube/runtime"
)

// Labels on every container, to find a pod's containers again after a
// daemon restart.
const (
	labelPodUID       = "io.kubernetes.pod.uid"
	labelPodName      = "io.kubernetes.pod.name"
	labelPodNamespace = "io.kubernetes.pod.namespace"
	labelContainer    = "io.kubernetes.container.name"
)

// podState is what the agent remembers of a pod between syncs.
type podState struct {
	uid         string
	key         string
	pod         *corev1.Pod // the latest spec seen (guarded by Agent.mu)
	terminating bool
	netns       string
	ip          string
	grace       int64
	started     time.Time
	restarts    map[string]int32
	last        map[string]*corev1.ContainerStateTerminated // the latest exit
	prior       map[string]*corev1.ContainerStateTerminated // the exit before it: lastState while the latest is shown
	backoff     map[string]time.Time                        // container → not before
	waiting     map[string]*corev1.ContainerStateWaiting
	watching    map[string]bool
	startedAt   map[string]time.Time
	probes      map[string]*probeState
	initDone    map[string]bool
	initFailed  bool
	cgroup      string                    // the pod's cgroup, once made
	vols        map[string]volume.Mounted // set up before containers start
	mountErrors map[string]lastEvent      // last FailedMount per volume
	setUp       map[string]bool           // volumes whose one-time setup (fsGroup) is done
}

// lastEvent is an event and when it was recorded.
type lastEvent struct {
	msg string
	at  time.Time
}

func containerID(uid, name string) string { return uid + "-" + name }

func (a *Agent) stateOf(pod *corev1.Pod) *podState {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.state[string(pod.UID)]
	if st == nil {
		st = &podState{uid: string(pod.UID), key: pod.Namespace + "/" + pod.Name, restarts: map[string]int32{},
			last: map[string]*corev1.ContainerStateTerminated{}, prior: map[string]*corev1.ContainerStateTerminated{}, backoff: map[string]time.Time{}, waiting: map[string]*corev1.ContainerStateWaiting{},
			watching: map[string]bool{}, startedAt: map[string]time.Time{}, probes: map[string]*probeState{}, initDone: map[string]bool{},
			mountErrors: map[string]lastEvent{}, setUp: map[string]bool{}}
		a.state[string(pod.UID)] = st
	}
	st.pod = pod
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		st.grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if pod.DeletionGracePeriodSeconds != nil {
		st.grace = *pod.DeletionGracePeriodSeconds
	}
	return st
}

func (a *Agent) syncPod(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	pod, err := a.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		a.forgetByKey(ctx, key)
		return nil
	}
	if err != nil {
		return err
	}
	st := a.stateOf(pod)
	if pod.DeletionTimestamp != nil {
		// Each pod terminates on its own, in parallel, like kubelet's pod
		// workers: one pod's grace period does not hold up the others.
		a.mu.Lock()
		already := st.terminating
		st.terminating = true
		a.mu.Unlock()
		if already {
			return nil
		}
		a.recorderKill(pod)
		a.waiters.Add(1)
		go func() {
			defer a.waiters.Done()
			a.killPod(ctx, st, time.Duration(st.grace)*time.Second)
			// Like kubelet, the pod object goes only once its volumes are
			// unmounted and removed.
			a.removePodFiles(st.uid)
			zero := int64(0)
			uid := pod.UID
			err := a.cfg.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				a.log.Info("confirm pod deletion", "pod", key, "err", err)
			}
			a.forget(st.uid)
		}()
		return nil
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	if st.netns == "" {
		path, ip, err := a.cfg.Sandboxes.Setup(st.uid)
		if err != nil {
			return fmt.Errorf("pod %s sandbox: %w", key, err)
		}
		st.netns, st.ip, st.started = path, ip.String(), time.Now()
		if err := a.writePodFiles(pod, st); err != nil {
			return err
		}
	}
	if cg := a.cgroups(); cg != nil && st.cgroup == "" {
		p := a.podCgroup(pod)
		if err := cg.Ensure(p, podResources(pod)); err != nil {
			return fmt.Errorf("pod %s cgroup: %w", key, err)
		}
		st.cgroup = p
	}
	var errs []error
	vols, err := a.setupVolumes(ctx, pod, st)
	if err == nil {
		st.vols = vols
		initDone, initFailed, err := a.runInit(ctx, pod, st)
		errs = append(errs, err)
		st.initFailed = initFailed
		if initDone {
			for _, c := range pod.Spec.Containers {
				errs = append(errs, a.ensureContainer(ctx, pod, st, c))
			}
		}
		for _, ec := range pod.Spec.EphemeralContainers {
			errs = append(errs, a.ensureEphemeral(ctx, pod, st, ec))
		}
	}
	errs = append(errs, err, a.updateStatus(ctx, pod, st))
	return errors.Join(errs...)
}

func (a *Agent) recorderKill(pod *corev1.Pod) {
	for _, c := range pod.Spec.Containers {
		if st, err := a.cfg.Runtime.Inspect(context.Background(), containerID(string(pod.UID), c.Name)); err == nil && st.Running {
			a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "Killing", "Stopping container %s", c.Name)
		}
	}
}

// ensureContainer starts a container that should run, restarting it per
// the pod's restartPolicy with kubelet's back-off.
func (a *Agent) ensureContainer(ctx context.Context, pod *corev1.Pod, st *podState, c corev1.Container) error {
	id := containerID(st.uid, c.Name)
	cur, err := a.cfg.Runtime.Inspect(ctx, id)
	exists := err == nil
	if exists && cur.Running {
		if err := a.cfg.Runtime.Reattach(ctx, id, a.LogPath(st.uid, c.Name)); err != nil {
			a.log.Info("reattach container stdio", "pod", st.key, "container", c.Name, "err", err)
		}
		a.watch(pod, st, c.Name)
		a.mu.Lock()
		probing := st.probes[c.Name] != nil
		a.mu.Unlock()
		if !probing {
			a.startProbes(pod, st, c) // adopted after a restart of the daemon
		}
		return nil
	}
	a.stopProbes(st, c.Name)
	if exists && !cur.Created {
		// It exited: remember how, then decide about a restart.
		code := int32(cur.ExitCode)
		reason := "Completed"
		if code != 0 {
			reason = "Error"
			if code == 137 && cur.OOMKilled {
				reason = "OOMKilled"
			}
		}
		if prev := st.last[c.Name]; prev == nil || !prev.FinishedAt.Time.Equal(cur.FinishedAt) {
			st.prior[c.Name] = prev
			st.last[c.Name] = &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, StartedAt: metav1.NewTime(st.startedAt[c.Name]),
				FinishedAt: metav1.NewTime(cur.FinishedAt), ContainerID: "containerd://" + id}
		}
		restart := pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || (pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && code != 0)
		if !restart {
			return nil
		}
		delay := backoffDelay(st.restarts[c.Name])
		if until := cur.FinishedAt.Add(delay); time.Now().Before(until) {
			st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.Name, pod.Name, pod.Namespace, pod.UID)}
			a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)
			a.queue.AddAfter(st.key, time.Until(until))
			return nil
		}
		st.restarts[c.Name]++
	}
	return a.startContainer(ctx, pod, st, c)
}

// startContainer pulls the image as the policy says and starts c.
func (a *Agent) startContainer(ctx context.Context, pod *corev1.Pod, st *podState, c corev1.Container) error {
	if err := a.ensureImage(ctx, pod, st, c); err != nil {
		return nil // reported as a waiting reason; retried by the queue
	}
	spec, err := a.containerSpec(ctx, pod, st, c)
	if err != nil {
		st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}
		a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return nil
	}
	if err := a.rotateLog(st.uid, c.Name); err != nil {
		return fmt.Errorf("start %s/%s: %w", st.key, c.Name, err)
	}
	if err := a.cfg.Runtime.Run(ctx, spec); err != nil {
		st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "RunContainerError", Message: err.Error()}
		a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return fmt.Errorf("run %s/%s: %w", st.key, c.Name, err)
	}
	delete(st.waiting, c.Name)
	st.startedAt[c.Name] = time.Now()
	a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	if !a.postStart(ctx, pod, st, &c) {
		st.watching[c.Name] = false
		a.watch(pod, st, c.Name)
		return nil
	}
	st.watching[c.Name] = false
	a.watch(pod, st, c.Name)
	a.startProbes(pod, st, c)
	return nil
}

// backoffDelay is kubelet's crash loop back-off: the first restart is at
// once, then 10s doubling to 5m.
func backoffDelay(restarts int32) time.Duration {
	if restarts == 0 {
		return 0
	}
	d := 10 * time.Second
	for i := int32(1); i < restarts && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// watch waits for a running container to exit and then syncs its pod.
func (a *Agent) watch(pod *corev1.Pod, st *podState, name string) {
	a.mu.Lock()
	if st.watching[name] {
		a.mu.Unlock()
		return
	}
	st.watching[name] = true
	a.mu.Unlock()
	ctx := context.Background()
	exit, err := a.cfg.Runtime.Wait(ctx, containerID(st.uid, name))
	if err != nil {
		return
	}
	a.waiters.Add(1)
	go func() {
		defer a.waiters.Done()
		<-exit
		a.mu.Lock()
		st.watching[name] = false
		a.mu.Unlock()
		a.queue.Add(st.key)
	}()
}

func (a *Agent) podDir(uid string) string { return filepath.Join(a.cfg.RootDir, "pods", uid) }

// LogPath is where a container's output is written.
func (a *Agent) LogPath(uid, container string) string {
	return filepath.Join(a.podDir(uid), "logs", container+".log")
}

// writePodFiles writes /etc/hosts, /etc/hostname and /etc/resolv.conf
// like kubelet.
func (a *Agent) writePodFiles(pod *corev1.Pod, st *podState) error {
	dir := filepath.Join(a.podDir(st.uid), "etc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	domain := a.cfg.ClusterDomain
	host, _ := network.HostResolvConf(os.ReadFile)
	dnsIP := ""
	if a.cfg.ClusterDNS != nil {
		dnsIP = a.cfg.ClusterDNS.String()
	}
	hosts := podHosts(pod, st.ip, domain)
	resolv := podResolvConf(pod, host, dnsIP, domain).String()
	for name, data := range map[string]string{"hosts": hosts, "resolv.conf": resolv, "hostname": podHostname(pod, domain) + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return fmt.Errorf("write pod %s file %s: %w", st.key, name, err)
		}
	}
	return nil
}

func (a *Agent) containerSpec(ctx context.Context, pod *corev1.Pod, st *podState, c corev1.Container) (runtime.ContainerSpec, error) {
	etc := filepath.Join(a.podDir(st.uid), "etc")
	mounts := []specs.Mount{
		{Destination: "/etc/hosts", Type: "bind", Source: filepath.Join(etc, "hosts"), Options: []string{"rbind", "rw"}},
		{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(etc, "resolv.conf"), Options: []string{"rbind", "rw"}},
		{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(etc, "hostname"), Options: []string{"rbind", "rw"}},
	}
	env, err := a.env(pod, st, c)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	vmounts, err := volume.ContainerMounts(&c, st.vols, envMap(env))
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	mounts = append(mounts, vmounts...)
	security, err := a.securitySpec(ctx, pod, &c)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	spec := runtime.ContainerSpec{
		ID: containerID(st.uid, c.Name), Image: c.Image, Command: c.Command, Args: c.Args, Env: env, WorkingDir: c.WorkingDir,
		NetNS: st.netns, Hostname: podHostname(pod, a.cfg.ClusterDomain), Mounts: mounts, LogPath: a.LogPath(st.uid, c.Name),
		Stdin: c.Stdin, StdinOnce: c.StdinOnce, TTY: c.TTY, IODir: a.ioDir(st.uid),
		Labels:    map[string]string{labelPodUID: st.uid, labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelContainer: c.Name},
		ShimGroup: st.uid,
		Security:  security,
	}
	containerResources(&spec, pod, c, a.memCapacity)
	spec.CgroupParent = st.cgroup
	return spec, nil
}

// forget drops what the agent knows of a pod and frees its network.
func (a *Agent) forget(uid string) {
	a.mu.Lock()
	var cgroup string
	if st := a.state[uid]; st != nil {
		cgroup = st.cgroup
		a.objects.untrack(st.key)
	}
	delete(a.state, uid)
	a.mu.Unlock()
	a.tokens.forget(uid)
	if cg := a.cgroups(); cg != nil && cgroup != "" {
		if err := cg.Remove(cgroup); err != nil {
			a.log.Info("remove pod cgroup", "uid", uid, "err", err)
		}
	}
	a.usage.forget(uid)
	if err := a.cfg.Sandboxes.Teardown(uid); err != nil {
		a.log.Info("tear down pod network", "uid", uid, "err", err)
	}
	a.removePodFiles(uid)
}

// removePodFiles removes the pod's directory (volumes, logs, etc files);
// nothing mounted may stay below it when it goes.
func (a *Agent) removePodFiles(uid string) {
	if err := a.unmountPod(uid); err != nil {
		a.log.Info("unmount pod volumes, keeping its directory", "uid", uid, "err", err)
		return
	}
	if err := os.RemoveAll(a.podDir(uid)); err != nil {
		a.log.Info("remove pod directory", "uid", uid, "err", err)
	}
}

func (a *Agent) forgetByKey(ctx context.Context, key string) {
	a.mu.Lock()
	var st *podState
	for _, s := range a.state {
		if s.key == key {
			st = s
		}
	}
	a.mu.Unlock()
	if st != nil {
		a.killPod(ctx, st, 0)
		a.forget(st.uid)
	}
}

// killPod stops and removes every container of the pod.
func (a *Agent) killPod(ctx context.Context, st *podState, grace time.Duration) {
	a.mu.Lock()
	for name, ps := range st.probes {
		ps.cancel()
		delete(st.probes, name)
	}
	pod := st.pod
	a.mu.Unlock()
	list, err := a.cfg.Runtime.List(ctx, map[string]string{labelPodUID: st.uid})
	if err != nil {
		a.log.Info("list pod containers", "pod", st.key, "err", err)
		return
	}
	// The containers stop in parallel, each with its preStop hook and the
	// whole grace period, like kubelet.
	var wg sync.WaitGroup
	for _, c := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.stopContainer(ctx, pod, st, specContainer(pod, c.Labels[labelContainer]), c.ID, grace); err != nil {
				a.log.Info("stop container", "id", c.ID, "err", err)
			}
			if err := a.cfg.Runtime.Remove(ctx, c.ID); err != nil {
				a.log.Info("remove container", "id", c.ID, "err", err)
			}
		}()
	}
	wg.Wait()
}

// adopt finds containers left running by an earlier daemon (kill -9) and
// queues their pods, so they are adopted instead of restarted; containers
// of pods that no longer exist are removed.
func (a *Agent) adopt(ctx context.Context) {
	list, err := a.cfg.Runtime.List(ctx, nil)
	if err != nil {
		return
	}
	for _, c := range list {
		ns, name, uid := c.Labels[labelPodNamespace], c.Labels[labelPodName], c.Labels[labelPodUID]
		if uid == "" {
			continue
		}
		pod, err := a.pods.Pods(ns).Get(name)
		if err != nil || string(pod.UID) != uid {
			if !a.ownsUID(types.UID(uid)) {
				continue
			}
			a.cfg.Runtime.Stop(ctx, c.ID, 0)
			a.cfg.Runtime.Remove(ctx, c.ID)
			continue
		}
		st := a.stateOf(pod)
		if st.netns == "" {
			st.netns = a.cfg.Sandboxes.PodNetnsPath(uid)
			st.ip = pod.Status.PodIP
			st.started = time.Now()
			if pod.Status.StartTime != nil {
				st.started = pod.Status.StartTime.Time
			}
			for _, cs := range pod.Status.ContainerStatuses {
				st.restarts[cs.Name] = cs.RestartCount
				if cs.State.Running != nil {
					st.startedAt[cs.Name] = cs.State.Running.StartedAt.Time
				}
			}
		}
		a.queue.Add(ns + "/" + name)
	}
	a.cleanupOrphans()
}

// ownsUID reports whether a container label belongs to this node's pods:
// the pod network of this node allocated its address.
func (a *Agent) ownsUID(uid types.UID) bool {
	_, err := os.Stat(a.cfg.Sandboxes.PodNetnsPath(string(uid)))
	return err == nil
}

func (a *Agent) updateStatus(ctx context.Context, pod *corev1.Pod, st *podState) error {
	status := a.podStatus(ctx, pod, st)
	if reflect.DeepEqual(stripTimes(pod.Status), stripTimes(status)) {
		return nil
	}
	next := pod.DeepCopy()
	next.Status = status
	_, err := a.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version is coming through the informer
	}
	return err
}
