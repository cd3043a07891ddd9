package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/nanokube/nanokube/network"
	"github.com/nanokube/nanokube/runtime"
)

// The streaming methods below have the shape of kubelet's Executor,
// Attacher and PortForwarder (with the pod object), so a kubelet-like
// streaming endpoint can serve them the same way for an agent on another
// host.

// Exec runs cmd in a running container of the pod: `kubectl exec`, `cp`.
// A non-zero exit is returned as a k8s.io/utils/exec.CodeExitError.
func (a *Agent) Exec(ctx context.Context, pod *corev1.Pod, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	if err := a.owns(pod); err != nil {
		return err
	}
	sizes, stop := terminalSizes(resize)
	defer stop()
	spec := runtime.ExecSpec{Cmd: cmd, TTY: tty, Stdin: in, Resize: sizes, IODir: a.ioDir(string(pod.UID))}
	if out != nil {
		spec.Stdout = out
	}
	if errOut != nil {
		spec.Stderr = errOut
	}
	code, err := a.cfg.Runtime.Exec(ctx, containerID(string(pod.UID), container), spec)
	if errors.Is(err, runtime.ErrNotRunning) {
		return fmt.Errorf("container %s in pod %s is not running", container, pod.Name)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command '%s' exited with %d", strings.Join(cmd, " "), code), Code: code}
	}
	return nil
}

// Attach connects to a container's stdio: `kubectl attach`, `run -it`,
// `debug -it`. A container made without stdin or a terminal has no input
// to attach to; its new output is streamed from its log.
func (a *Agent) Attach(ctx context.Context, pod *corev1.Pod, container string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	if err := a.owns(pod); err != nil {
		return err
	}
	sizes, stop := terminalSizes(resize)
	defer stop()
	aio := runtime.AttachIO{Stdin: in, Resize: sizes}
	if out != nil {
		aio.Stdout = out
	}
	if errOut != nil {
		aio.Stderr = errOut
	}
	id := containerID(string(pod.UID), container)
	err := a.cfg.Runtime.Attach(ctx, id, aio)
	if errors.Is(err, runtime.ErrNotRunning) {
		return fmt.Errorf("container %s in pod %s is not running", container, pod.Name)
	}
	if !errors.Is(err, runtime.ErrNoStdio) {
		return err
	}
	st, err := a.cfg.Runtime.Inspect(ctx, id)
	if err != nil || !st.Running {
		return fmt.Errorf("container %s in pod %s is not running", container, pod.Name)
	}
	if out == nil {
		<-ctx.Done()
		return nil
	}
	none := int64(0)
	return a.Logs(ctx, pod, container, &corev1.PodLogOptions{Follow: true, TailLines: &none}, out)
}

// PortForward connects stream to a TCP port of the pod: it dials
// localhost inside the pod's network namespace, like kubelet's runtime.
func (a *Agent) PortForward(ctx context.Context, pod *corev1.Pod, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	if err := a.owns(pod); err != nil {
		return err
	}
	ns := a.cfg.Sandboxes.PodNetnsPath(string(pod.UID))
	conn, err4 := network.DialContext(ctx, ns, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err4 != nil {
		var err6 error
		if conn, err6 = network.DialContext(ctx, ns, "tcp6", net.JoinHostPort("::1", strconv.Itoa(int(port)))); err6 != nil {
			return fmt.Errorf("failed to connect to localhost:%d inside namespace %q, IPv4: %v IPv6 %v ", port, pod.Name, err4, err6)
		}
	}
	defer conn.Close()
	// The caller's end (a finished proxy request, a closed port-forward)
	// ends the connection even when the pod's side stays open.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(conn, stream)
		// The client is done sending: let the server see the end.
		if tc, ok := conn.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
		}
	}()
	_, err := io.Copy(stream, conn)
	// The pod's side ended: end the client's side too.
	stream.Close()
	conn.Close()
	wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("copy from pod %s port %d: %w", pod.Name, port, err)
	}
	return nil
}

// owns checks that the pod runs on this node.
func (a *Agent) owns(pod *corev1.Pod) error {
	p, ok := a.PodFor(pod.Namespace, pod.Name)
	if !ok || p.UID != pod.UID {
		return fmt.Errorf("pod %s/%s is not running on node %s", pod.Namespace, pod.Name, a.cfg.NodeName)
	}
	return nil
}

// ioDir is where the fifos of a pod's attachable containers and execs are.
func (a *Agent) ioDir(uid string) string { return filepath.Join(a.podDir(uid), "io") }

// terminalSizes turns the protocol's resize events into the runtime's;
// stop ends the conversion.
func terminalSizes(in <-chan remotecommand.TerminalSize) (<-chan runtime.TerminalSize, func()) {
	if in == nil {
		return nil, func() {}
	}
	out := make(chan runtime.TerminalSize)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(out)
		for {
			select {
			case s, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- runtime.TerminalSize{Width: s.Width, Height: s.Height}:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return out, func() {
		close(done)
		wg.Wait()
	}
}
