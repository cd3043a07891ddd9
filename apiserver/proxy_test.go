package apiserver

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/nanokube/nanokube/apiserver/registry"
	"github.com/nanokube/nanokube/store"
)

// httpNode forwards a pod's port 8080 to an HTTP server that echoes what
// it was asked.
type httpNode struct{ addr string }

func (httpNode) Exec(context.Context, *corev1.Pod, string, []string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan remotecommand.TerminalSize) error {
	return nil
}

func (httpNode) Attach(context.Context, *corev1.Pod, string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan remotecommand.TerminalSize) error {
	return nil
}

func (n httpNode) PortForward(ctx context.Context, pod *corev1.Pod, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	if port != 8080 {
		return fmt.Errorf("connection refused on port %d", port)
	}
	c, err := net.Dial("tcp", n.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); io.Copy(c, stream); c.(*net.TCPConn).CloseWrite() }()
	io.Copy(stream, c)
	stream.Close()
	wg.Wait()
	return nil
}

func TestPodAndServiceProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s host=%s auth=%q", r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("Authorization"))
	}))
	defer backend.Close()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "store.db"), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Resources: registry.Resources(), PodStreams: httpNode{backend.Listener.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Handler().ServeHTTP(w, r.WithContext(withUser(r.Context(), loopbackUser)))
	}))
	t.Cleanup(func() { hs.Close(); cancel(); <-done; st.Close() })
	<-s.Ready()
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n1",
		Containers: []corev1.Container{{Name: "web", Image: "x", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
	pod, err = cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.PodIP = "10.244.0.7"
	if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.244.0.7", TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1"}}},
		Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080}}}}}
	if _, err := cs.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "empty", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/api/v1/namespaces/default/pods/web-1:8080/proxy/healthz?x=1", 200, `GET /healthz?x=1 host=10.244.0.7:8080 auth=""`},
		{"/api/v1/namespaces/default/pods/http:web-1:http/proxy/a/b/", 200, `GET /a/b/ host=10.244.0.7:8080`},
		{"/api/v1/namespaces/default/services/web:http/proxy/", 200, `GET / host=10.244.0.7:8080`},
		{"/api/v1/namespaces/default/services/web:80/proxy", 200, `GET / host=10.244.0.7:8080`}, // redirected to .../proxy/
		{"/api/v1/namespaces/default/services/web:81/proxy/", 503, `no service port \"81\" found for service \"web\"`},
		{"/api/v1/namespaces/default/services/empty/proxy/", 503, `no endpoints available for service \"empty\"`},
		{"/api/v1/namespaces/default/pods/web-1:9090/proxy/", 503, "error trying to reach service"},
		{"/api/v1/namespaces/default/pods/nope/proxy/", 404, `pods \"nope\" not found`},
	} {
		code, body := get(c.path)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("GET %s = %d %s, want %d with %q", c.path, code, body, c.code, c.want)
		}
	}
	if err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/n1/proxy/metrics").Do(ctx).Error(); !apierrors.IsNotFound(err) {
		t.Errorf("nodes/proxy = %v, want 404 (not served)", err)
	}
}
