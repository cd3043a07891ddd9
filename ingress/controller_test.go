package ingress

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

// TestController: the class is created as the default; Ingresses of it
// (by name, or without a class) get the node IPs in their status and are
// routed, those of another controller's class are left alone.
func TestController(t *testing.T) {
	node := func(name, ip string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}}}
	}
	src := newSource()
	src.service("web", "10.244.0.5")
	withClass := func(in *networkingv1.Ingress, class string) *networkingv1.Ingress {
		if class != "" {
			in.Spec.IngressClassName = &class
		}
		return in
	}
	other := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: networkingv1.IngressClassSpec{Controller: "example.com/other"}}
	cs := fake.NewClientset(node("n2", "192.168.49.3"), node("n1", "192.168.49.2"), other,
		src.svcs["default/web"], src.slices["default/web"][0],
		withClass(ing("mine", 1, map[string][]pathSpec{"mine.test": {{"/", "Prefix", "web"}}}), ClassName),
		withClass(ing("classless", 2, map[string][]pathSpec{"classless.test": {{"/", "Prefix", "web"}}}), ""),
		withClass(ing("theirs", 3, map[string][]pathSpec{"theirs.test": {{"/", "Prefix", "web"}}}), "other"),
	)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	f := informers.NewSharedInformerFactory(cs, 0)
	rec := record.NewFakeRecorder(10)
	c, err := New(Config{Client: cs, Informers: f, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureClass(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureClass(ctx); err != nil {
		t.Fatalf("EnsureClass again: %v", err)
	}
	ic, err := cs.NetworkingV1().IngressClasses().Get(ctx, ClassName, metav1.GetOptions{})
	if err != nil || ic.Spec.Controller != ControllerName || ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] != "true" {
		t.Fatalf("IngressClass %s = %+v, %v", ClassName, ic, err)
	}
	w, err := cs.NetworkingV1().Ingresses("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	f.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	status := map[string]string{}
	for len(status) < 2 {
		select {
		case ev := <-w.ResultChan():
			in, ok := ev.Object.(*networkingv1.Ingress)
			if ev.Type != watch.Modified || !ok {
				continue
			}
			var ips []string
			for _, lb := range in.Status.LoadBalancer.Ingress {
				ips = append(ips, lb.IP)
			}
			if len(ips) > 0 {
				status[in.Name] = ips[0] + " " + ips[len(ips)-1]
			}
		case <-ctx.Done():
			t.Fatalf("status after 30s: %v", status)
		}
	}
	want := "192.168.49.2 192.168.49.3"
	if status["mine"] != want || status["classless"] != want || status["theirs"] != "" {
		t.Errorf("status = %v, want the node IPs (sorted) on mine and classless only", status)
	}
	for range 2 {
		select {
		case ev := <-rec.Events:
			if ev != "Normal Sync Scheduled for sync" {
				t.Errorf("event = %q", ev)
			}
		case <-ctx.Done():
			t.Fatal("fewer than 2 Sync events")
		}
	}
	select {
	case ev := <-rec.Events:
		t.Errorf("unexpected event %q", ev)
	default:
	}
	tbl := c.Table()
	for host, want := range map[string]string{"mine.test": "web", "classless.test": "web", "theirs.test": "<404>"} {
		b := tbl.Match(host, "/")
		if got := backendName(b); got != want {
			t.Errorf("%s routes to %s, want %s", host, got, want)
		}
		if b != nil && (len(b.Endpoints) != 1 || b.Endpoints[0] != "10.244.0.5:8080") {
			t.Errorf("%s: endpoints %v, want the ready one", host, b.Endpoints)
		}
	}
}
