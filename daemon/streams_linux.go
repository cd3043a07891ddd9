//go:build linux

package daemon

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/nanokube/nanokube/agent"
)

// nodeStreams routes the API server's exec, attach and port-forward to
// the agent of the pod's node (all in this process for now; an agent on
// another host would be reached through a streaming endpoint instead).
type nodeStreams struct{ s *System }

func (n nodeStreams) agent(pod *corev1.Pod) (*agent.Agent, error) {
	if a := n.s.agentOf(pod.Spec.NodeName); a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("node %q of pod %s is not part of this cluster", pod.Spec.NodeName, pod.Name)
}

func (n nodeStreams) Exec(ctx context.Context, pod *corev1.Pod, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	a, err := n.agent(pod)
	if err != nil {
		return err
	}
	return a.Exec(ctx, pod, container, cmd, in, out, errOut, tty, resize)
}

func (n nodeStreams) Attach(ctx context.Context, pod *corev1.Pod, container string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	a, err := n.agent(pod)
	if err != nil {
		return err
	}
	return a.Attach(ctx, pod, container, in, out, errOut, tty, resize)
}

func (n nodeStreams) PortForward(ctx context.Context, pod *corev1.Pod, port int32, stream io.ReadWriteCloser) error {
	a, err := n.agent(pod)
	if err != nil {
		stream.Close()
		return err
	}
	return a.PortForward(ctx, pod, port, stream)
}
