package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/nanokube/nanokube/internal/crilog"
	"github.com/nanokube/nanokube/internal/lines"
)

// Logs writes a container's output for `kubectl logs` like kubelet reads
// its CRI log files: tailLines, sinceSeconds/sinceTime, timestamps,
// limitBytes and follow. Lines of a log written raw (by an older nanokube,
// or the fake runtime) have no time: since keeps them and timestamps
// shows them bare.
func (a *Agent) Logs(ctx context.Context, pod *corev1.Pod, container string, opts *corev1.PodLogOptions, w io.Writer) error {
	if container == "" {
		if len(pod.Spec.Containers) != 1 {
			var names []string
			for _, c := range pod.Spec.Containers {
				names = append(names, c.Name)
			}
			return apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", pod.Name, names))
		}
		container = pod.Spec.Containers[0].Name
	}
	if opts.Previous {
		// Like kubelet: the run in lastState, which is the latest one
		// while the container waits for its restart.
		notFound := apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", container, pod.Name))
		cs := containerStatus(pod, container)
		if cs == nil || cs.LastTerminationState.Terminated == nil {
			return notFound
		}
		path := a.previousLogPath(string(pod.UID), container)
		if cs.State.Waiting != nil {
			path = a.LogPath(string(pod.UID), container)
		}
		f, err := os.Open(path)
		if err != nil {
			return notFound
		}
		defer f.Close()
		_, err = writeLog(f, opts, w, true)
		return err
	}
	f, err := os.Open(a.LogPath(string(pod.UID), container))
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", container, pod.Name))
	}
	defer f.Close()
	cw, err := writeLog(f, opts, w, !opts.Follow)
	if err != nil || cw == nil || !opts.Follow {
		return err
	}
	flush := func() {
		if fl, ok := w.(interface{ Flush() }); ok {
			fl.Flush()
		}
	}
	flush()
	exit, err := a.cfg.Runtime.Wait(ctx, containerID(string(pod.UID), container))
	if err != nil {
		return nil // not running: nothing more will come
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	r := bufio.NewReader(f)
	for {
		if _, err := io.Copy(cw, r); err != nil {
			return nil // the client went away, or limitBytes were written
		}
		flush()
		select {
		case <-ctx.Done():
			return nil
		case <-exit:
			if _, err := io.Copy(cw, r); err == nil {
				cw.Close()
			}
			return nil
		case <-t.C:
		}
	}
}

// containerStatus finds the status of a container (app, init or
// ephemeral) in the pod's status.
func containerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// writeLog writes what is in f now, cut by tailLines, and returns the
// writer to go on with for follow (nil: limitBytes were reached). With
// last, an unfinished last line is written too.
func writeLog(f *os.File, opts *corev1.PodLogOptions, w io.Writer, last bool) (*crilog.Writer, error) {
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	if opts.TailLines != nil && *opts.TailLines >= 0 {
		data = lines.Last(data, int(*opts.TailLines))
	}
	cw := crilog.NewWriter(w, logOptions(opts, time.Now()))
	if _, err := cw.Write(data); err != nil {
		if errors.Is(err, crilog.ErrLimit) {
			return nil, nil
		}
		return nil, err
	}
	if last {
		if err := cw.Close(); err != nil && !errors.Is(err, crilog.ErrLimit) {
			return nil, err
		}
	}
	return cw, nil
}

// logOptions are the PodLogOptions that select and shape log entries;
// sinceSeconds counts back from now.
func logOptions(opts *corev1.PodLogOptions, now time.Time) crilog.Options {
	o := crilog.Options{Timestamps: opts.Timestamps}
	if opts.LimitBytes != nil {
		o.LimitBytes = *opts.LimitBytes
	}
	switch {
	case opts.SinceSeconds != nil:
		o.Since = now.Add(-time.Duration(*opts.SinceSeconds) * time.Second)
	case opts.SinceTime != nil:
		o.Since = opts.SinceTime.Time
	}
	return o
}

// previousLogPath is where the output of a container's run before the
// current one is kept, for `kubectl logs --previous`.
func (a *Agent) previousLogPath(uid, container string) string {
	return filepath.Join(a.podDir(uid), "logs", container+".previous.log")
}

// rotateLog keeps the output of the container's last run as its previous
// log before a new run starts, so that `kubectl logs` shows the current
// run only and `--previous` the one before, like kubelet's per-restart
// log files.
func (a *Agent) rotateLog(uid, container string) error {
	err := os.Rename(a.LogPath(uid, container), a.previousLogPath(uid, container))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keep the previous log of container %s: %w", container, err)
	}
	return nil
}

// PodFor returns the pod if this agent runs it.
func (a *Agent) PodFor(ns, name string) (*corev1.Pod, bool) {
	p, err := a.pods.Pods(ns).Get(name)
	return p, err == nil
}
