package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	clientrc "k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// fakeStreams is a node that runs "commands" in Go: "echo" copies stdin to
// stdout upper-cased, "fail" writes to stderr and exits 3, "size" reports
// the terminal sizes it is sent; port-forward answers "port N: <input>".
type fakeStreams struct{}

func (fakeStreams) Exec(ctx context.Context, pod *corev1.Pod, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	switch cmd[0] {
	case "echo":
		b, err := io.ReadAll(in)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s/%s: %s", pod.Name, container, bytes.ToUpper(b))
		return nil
	case "fail":
		fmt.Fprint(errOut, "failing")
		return utilexec.CodeExitError{Err: errors.New("exit status 3"), Code: 3}
	case "size":
		size := <-resize
		fmt.Fprintf(out, "%dx%d tty=%v", size.Width, size.Height, tty)
		return nil
	}
	return fmt.Errorf("no such command %q", cmd[0])
}

func (fakeStreams) Attach(ctx context.Context, pod *corev1.Pod, container string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	fmt.Fprintf(out, "attached to %s", container)
	return nil
}

func (fakeStreams) PortForward(ctx context.Context, pod *corev1.Pod, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	buf := make([]byte, 64)
	n, err := stream.Read(buf)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stream, "port %d: %s", port, buf[:n])
	return err
}

// newStreamServer serves the API over plain HTTP on loopback with a fake
// node behind the streaming subresources, and creates pod "p" on node n1
// with containers a and b.
func newStreamServer(t *testing.T) (*rest.Config, kubernetes.Interface) {
	t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Resources: registry.Resources(), PodStreams: fakeStreams{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Handler().ServeHTTP(w, r.WithContext(withUser(r.Context(), loopbackUser)))
	}))
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
		st.Close()
	})
	<-s.Ready()
	cfg := &rest.Config{Host: hs.URL}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// What the ServiceAccount controller keeps in every namespace; pod
	// admission needs it.
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n1",
		Containers: []corev1.Container{{Name: "a", Image: "busybox"}, {Name: "b", Image: "busybox"}}}}
	if _, err := cs.CoreV1().Pods("default").Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cfg, cs
}

func execURL(cs kubernetes.Interface, sub string, opts any) *url.URL {
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("p").SubResource(sub)
	switch o := opts.(type) {
	case *corev1.PodExecOptions:
		req = req.VersionedParams(o, scheme.ParameterCodec)
	case *corev1.PodAttachOptions:
		req = req.VersionedParams(o, scheme.ParameterCodec)
	}
	return req.URL()
}

// executors are the client protocols kubectl speaks: WebSocket v5 first,
// then SPDY (v4) as the fallback.
func executors(t *testing.T, cfg *rest.Config, u *url.URL) map[string]clientrc.Executor {
	ws, err := clientrc.NewWebSocketExecutor(cfg, "GET", u.String())
	if err != nil {
		t.Fatal(err)
	}
	sp, err := clientrc.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]clientrc.Executor{"websocket-v5": ws, "spdy": sp}
}

func TestExecProtocols(t *testing.T) {
	cfg, cs := newStreamServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	echo := execURL(cs, "exec", &corev1.PodExecOptions{Container: "b", Command: []string{"echo"}, Stdin: true, Stdout: true, Stderr: true})
	for name, ex := range executors(t, cfg, echo) {
		var out, errOut bytes.Buffer
		if err := ex.StreamWithContext(ctx, clientrc.StreamOptions{Stdin: strings.NewReader("hello"), Stdout: &out, Stderr: &errOut}); err != nil {
			t.Fatalf("%s: exec echo: %v", name, err)
		}
		if out.String() != "p/b: HELLO" {
			t.Errorf("%s: stdout %q, want %q (stdin must reach the command and end)", name, out.String(), "p/b: HELLO")
		}
	}
	fail := execURL(cs, "exec", &corev1.PodExecOptions{Container: "a", Command: []string{"fail"}, Stdout: true, Stderr: true})
	for name, ex := range executors(t, cfg, fail) {
		var out, errOut bytes.Buffer
		err := ex.StreamWithContext(ctx, clientrc.StreamOptions{Stdout: &out, Stderr: &errOut})
		var ce exec.CodeExitError
		if !errors.As(err, &ce) || ce.Code != 3 {
			t.Errorf("%s: exec fail: %v (%T), want exit code 3", name, err, err)
		}
		if errOut.String() != "failing" {
			t.Errorf("%s: stderr %q", name, errOut.String())
		}
	}
	size := execURL(cs, "exec", &corev1.PodExecOptions{Container: "a", Command: []string{"size"}, Stdin: true, Stdout: true, TTY: true})
	for name, ex := range executors(t, cfg, size) {
		var out bytes.Buffer
		pr, pw := io.Pipe()
		err := ex.StreamWithContext(ctx, clientrc.StreamOptions{Stdin: pr, Stdout: &out, Tty: true, TerminalSizeQueue: newSizeQueue(clientrc.TerminalSize{Width: 120, Height: 40})})
		pw.Close()
		if err != nil {
			t.Fatalf("%s: exec size: %v", name, err)
		}
		if out.String() != "120x40 tty=true" {
			t.Errorf("%s: terminal size %q, want 120x40 tty=true", name, out.String())
		}
	}
	attach := execURL(cs, "attach", &corev1.PodAttachOptions{Container: "b", Stdout: true})
	for name, ex := range executors(t, cfg, attach) {
		var out bytes.Buffer
		if err := ex.StreamWithContext(ctx, clientrc.StreamOptions{Stdout: &out}); err != nil {
			t.Fatalf("%s: attach: %v", name, err)
		}
		if out.String() != "attached to b" {
			t.Errorf("%s: attach output %q", name, out.String())
		}
	}
}

// sizeQueue reports one terminal size, then ends.
type sizeQueue struct{ sizes chan *clientrc.TerminalSize }

func newSizeQueue(s clientrc.TerminalSize) sizeQueue {
	q := sizeQueue{make(chan *clientrc.TerminalSize, 1)}
	q.sizes <- &s
	close(q.sizes)
	return q
}

func (q sizeQueue) Next() *clientrc.TerminalSize { return <-q.sizes }

func TestExecChecksBeforeUpgrade(t *testing.T) {
	_, cs := newStreamServer(t)
	ctx := t.Context()
	for _, tc := range []struct {
		opts *corev1.PodExecOptions
		want string
	}{
		{&corev1.PodExecOptions{Command: []string{"echo"}, Stdout: true}, "a container name must be specified for pod p, choose one of: [a b]"},
		{&corev1.PodExecOptions{Container: "c", Command: []string{"echo"}, Stdout: true}, "container c is not valid for pod p"},
		{&corev1.PodExecOptions{Container: "a", Stdout: true}, "you must specify at least one command for the container"},
		{&corev1.PodExecOptions{Container: "a", Command: []string{"echo"}}, "you must specify at least 1 of stdin, stdout, stderr"},
	} {
		err := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("p").SubResource("exec").
			VersionedParams(tc.opts, scheme.ParameterCodec).Do(ctx).Error()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("exec %+v: %v, want %q", tc.opts, err, tc.want)
		}
	}
}

func TestPortForwardProtocols(t *testing.T) {
	cfg, cs := newStreamServer(t)
	u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("p").SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	tunnel, err := portforward.NewSPDYOverWebsocketDialer(u, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, dialer := range map[string]httpstream.Dialer{"spdy": spdyDialer, "websocket-tunnel": tunnel} {
		stop := make(chan struct{})
		ready := make(chan struct{})
		fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		errc := make(chan error, 1)
		go func() { errc <- fw.ForwardPorts() }()
		select {
		case <-ready:
		case err := <-errc:
			t.Fatalf("%s: forward: %v", name, err)
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: forwarder not ready", name)
		}
		ports, err := fw.GetPorts()
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprint(c, "ping")
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != "port 8080: ping" {
			t.Errorf("%s: forwarded answer %q, want %q", name, got, "port 8080: ping")
		}
		close(stop)
		if err := <-errc; err != nil {
			t.Errorf("%s: forward ended: %v", name, err)
		}
	}
}
