package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/nanokube/nanokube/internal/lines"
)

// Logs writes a container's output for `kubectl logs` (tail, limit, follow).
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
	f, err := os.Open(a.LogPath(string(pod.UID), container))
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", container, pod.Name))
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	if opts.TailLines != nil {
		if *opts.TailLines >= 0 {
			data = lines.Last(data, int(*opts.TailLines))
		}
	}
	if opts.LimitBytes != nil && int64(len(data)) > *opts.LimitBytes {
		data = data[:*opts.LimitBytes]
	}
	if _, err := w.Write(data); err != nil || !opts.Follow {
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
		if _, err := io.Copy(w, r); err != nil {
			return nil
		}
		flush()
		select {
		case <-ctx.Done():
			return nil
		case <-exit:
			io.Copy(w, r)
			return nil
		case <-t.C:
		}
	}
}

// PodFor returns the pod if this agent runs it.
func (a *Agent) PodFor(ns, name string) (*corev1.Pod, bool) {
	p, err := a.pods.Pods(ns).Get(name)
	return p, err == nil
}
