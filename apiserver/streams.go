package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/http/httpguts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"
)

// PodStreams connects the streaming subresources of a pod (pods/exec,
// pods/attach, pods/portforward) to the pod's node. The API server speaks
// every client protocol (WebSocket v5 and v4, SPDY v4..v1, port-forward
// over SPDY and over tunnelling WebSocket); an implementation only moves
// bytes, so it can be the in-process agent or, later, a proxy to an agent
// on another host. The methods mirror kubelet's Executor, Attacher and
// PortForwarder with the pod object in place of its name and uid.
type PodStreams interface {
	// Exec runs cmd in a container. A command that ran and exited non-zero
	// is returned as an error implementing k8s.io/utils/exec.ExitError.
	Exec(ctx context.Context, pod *corev1.Pod, container string, cmd []string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error
	// Attach connects the streams to a running container's stdio.
	Attach(ctx context.Context, pod *corev1.Pod, container string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error
	// PortForward copies between stream and a TCP port of the pod.
	PortForward(ctx context.Context, pod *corev1.Pod, port int32, stream io.ReadWriteCloser) error
}

// Timeouts of the streaming connections, kubelet's values.
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
)

// SPDY subprotocols spoken for exec and attach, newest first.
var remoteCommandProtocols = []string{remotecommand.StreamProtocolV4Name, remotecommand.StreamProtocolV3Name,
	remotecommand.StreamProtocolV2Name, remotecommand.StreamProtocolV1Name}

// serveStream answers pods/exec, pods/attach and pods/portforward: the
// checks kube-apiserver makes before it connects to the node, then the
// protocol upgrade.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	if info.verb != "get" && info.verb != "create" {
		return apierrors.NewMethodNotSupported(info.res.GroupVersionResource().GroupResource(), info.verb)
	}
	obj, _, err := s.getObject(info.res, info.namespace, info.name)
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	// The streaming libraries log through the request's logger; a client
	// that hangs up is an error to them, so their records go at debug level.
	r = r.WithContext(klog.NewContext(r.Context(), logr.FromSlogHandler(debugHandler{s.log.Handler()})))
	q := r.URL.Query()
	switch info.subresource {
	case "portforward":
		if pod.Spec.NodeName == "" {
			return badRequest("pod %s does not have a host assigned", pod.Name)
		}
		s.servePortForward(w, r, pod)
		return nil
	case "exec":
		opts := &corev1.PodExecOptions{Container: q.Get("container"), Command: q["command"],
			Stdin: queryBool(q, "stdin"), Stdout: queryBool(q, "stdout"), Stderr: queryBool(q, "stderr"), TTY: queryBool(q, "tty")}
		container, err := streamContainer(pod, opts.Container)
		if err != nil {
			return err
		}
		if len(opts.Command) == 0 {
			return badRequest("you must specify at least one command for the container")
		}
		ro, err := streamOptions(opts.Stdin, opts.Stdout, opts.Stderr, opts.TTY)
		if err != nil {
			return err
		}
		if isWebSocketV5(r) {
			s.serveRemoteCommandV5(w, r, ro, func(ctx context.Context, st *wsStreams) error {
				err := s.cfg.PodStreams.Exec(ctx, pod, container, opts.Command, st.stdin, st.stdout, st.stderr, ro.TTY, st.resize)
				return streamError(err, "error executing command in container")
			})
			return nil
		}
		remotecommand.ServeExec(w, r, executor{s.cfg.PodStreams, pod}, pod.Name, string(pod.UID), container, opts.Command, ro,
			streamIdleTimeout, streamCreationTimeout, remoteCommandProtocols)
		return nil
	default: // attach
		opts := &corev1.PodAttachOptions{Container: q.Get("container"),
			Stdin: queryBool(q, "stdin"), Stdout: queryBool(q, "stdout"), Stderr: queryBool(q, "stderr"), TTY: queryBool(q, "tty")}
		container, err := streamContainer(pod, opts.Container)
		if err != nil {
			return err
		}
		ro, err := streamOptions(opts.Stdin, opts.Stdout, opts.Stderr, opts.TTY)
		if err != nil {
			return err
		}
		if isWebSocketV5(r) {
			s.serveRemoteCommandV5(w, r, ro, func(ctx context.Context, st *wsStreams) error {
				err := s.cfg.PodStreams.Attach(ctx, pod, container, st.stdin, st.stdout, st.stderr, ro.TTY, st.resize)
				return streamError(err, "error attaching to container")
			})
			return nil
		}
		remotecommand.ServeAttach(w, r, executor{s.cfg.PodStreams, pod}, pod.Name, string(pod.UID), container, ro,
			streamIdleTimeout, streamCreationTimeout, remoteCommandProtocols)
		return nil
	}
}

// debugHandler logs every record at debug level.
type debugHandler struct{ slog.Handler }

func (h debugHandler) Enabled(ctx context.Context, _ slog.Level) bool {
	return h.Handler.Enabled(ctx, slog.LevelDebug)
}

func (h debugHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return h.Handler.Handle(ctx, r)
}

func (h debugHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return debugHandler{h.Handler.WithAttrs(a)}
}
func (h debugHandler) WithGroup(n string) slog.Handler { return debugHandler{h.Handler.WithGroup(n)} }

// queryBool reads a boolean query parameter the way the API's parameter
// conversion does.
func queryBool(q url.Values, name string) bool {
	v, err := strconv.ParseBool(q.Get(name))
	return err == nil && v
}

// streamContainer picks the container like kube-apiserver's
// streamLocation: the only one, or the one named, which must exist
// (containers, init containers and ephemeral containers count); the pod
// must be bound to a node.
func streamContainer(pod *corev1.Pod, name string) (string, error) {
	if name == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			name = pod.Spec.Containers[0].Name
		case 0:
			return "", badRequest("a container name must be specified for pod %s", pod.Name)
		default:
			msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", pod.Name, containerNames(pod.Spec.Containers))
			if len(pod.Spec.InitContainers) > 0 {
				msg += fmt.Sprintf(" or one of the init containers: %v", containerNames(pod.Spec.InitContainers))
			}
			return "", apierrors.NewBadRequest(msg)
		}
	} else if !podHasContainer(pod, name) {
		return "", badRequest("container %s is not valid for pod %s", name, pod.Name)
	}
	if pod.Spec.NodeName == "" {
		return "", badRequest("pod %s does not have a host assigned", pod.Name)
	}
	return name, nil
}

func containerNames(cs []corev1.Container) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func podHasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// streamOptions are the streams a request asks for; like kubelet, a
// terminal carries stdout only.
func streamOptions(stdin, stdout, stderr, tty bool) (*remotecommand.Options, error) {
	if tty {
		stderr = false
	}
	if !stdin && !stdout && !stderr {
		return nil, badRequest("you must specify at least 1 of stdin, stdout, stderr")
	}
	return &remotecommand.Options{Stdin: stdin, Stdout: stdout, Stderr: stderr, TTY: tty}, nil
}

// executor adapts PodStreams to kubelet's Executor and Attacher.
type executor struct {
	ps  PodStreams
	pod *corev1.Pod
}

func (e executor) ExecInContainer(ctx context.Context, _, _, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	return exitError(e.ps.Exec(ctx, e.pod, container, cmd, in, out, errOut, tty, resize))
}

func (e executor) AttachContainer(ctx context.Context, _, _, container string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return e.ps.Attach(ctx, e.pod, container, in, out, errOut, tty, resize)
}

func (e executor) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	return e.ps.PortForward(ctx, e.pod, port, stream)
}

// exitError makes sure an exit status reaches the protocol handlers, which
// look for it by type assertion, not through wrapping.
func exitError(err error) error {
	var ee utilexec.ExitError
	if errors.As(err, &ee) {
		return ee
	}
	return err
}

// streamError words a failure like kubelet's SPDY handlers do; an exit
// status stays as it is.
func streamError(err error, what string) error {
	var ee utilexec.ExitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// exitStatus is the error stream's report of a command's end, as
// kube-apiserver and kubelet write it (v4 and v5).
func exitStatus(err error) metav1.Status {
	var ee utilexec.ExitError
	switch {
	case err == nil:
		return metav1.Status{Status: metav1.StatusSuccess}
	case errors.As(err, &ee) && ee.Exited():
		return metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  remotecommand.NonZeroExitCodeReason,
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: remotecommand.ExitCodeCauseType, Message: fmt.Sprint(ee.ExitStatus())}}},
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", ee),
		}
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status()
	}
	return apierrors.NewInternalError(err).ErrStatus
}

// portForwardProtocols are the SPDY subprotocols of port-forward.
var portForwardProtocols = []string{portforward.ProtocolV1Name}

// servePortForward serves port-forward over SPDY, over the legacy
// channel WebSocket protocol, or over SPDY tunnelled in a WebSocket (what
// kubectl 1.31+ tries first).
func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request, pod *corev1.Pod) {
	fw := executor{s.cfg.PodStreams, pod}
	if isWebSocketTunnel(r) {
		s.serveTunneledPortForward(w, r, fw, pod)
		return
	}
	var opts *portforward.V4Options
	if isWebSocket(r) {
		var err error
		if opts, err = portforward.NewV4Options(r); err != nil {
			s.writeError(w, r, apierrors.NewBadRequest(err.Error()))
			return
		}
	}
	portforward.ServePortForward(w, r, fw, pod.Name, string(pod.UID), opts, streamIdleTimeout, streamCreationTimeout, portForwardProtocols)
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") && httpguts.HeaderValuesContainsToken(r.Header.Values("Connection"), "upgrade")
}

// requestedSubprotocols lists the WebSocket subprotocols a client offers.
func requestedSubprotocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func isWebSocketV5(r *http.Request) bool {
	if !isWebSocket(r) {
		return false
	}
	for _, p := range requestedSubprotocols(r) {
		if p == remotecommand.StreamProtocolV5Name {
			return true
		}
	}
	return false
}

func isWebSocketTunnel(r *http.Request) bool {
	if !isWebSocket(r) {
		return false
	}
	for _, p := range requestedSubprotocols(r) {
		if p == portforward.WebsocketsSPDYTunnelingPortForwardV1 {
			return true
		}
	}
	return false
}

// statusJSON encodes an error stream status.
func statusJSON(st metav1.Status) []byte {
	st.Kind, st.APIVersion = "Status", "v1"
	b, _ := json.Marshal(st)
	return b
}
