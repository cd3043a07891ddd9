package network

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// TestLBAllocator: LoadBalancer Services get distinct pool addresses
// (the asked loadBalancerIP when free), others and foreign classes none.
func TestLBAllocator(t *testing.T) {
	lb := func(name, want string, class *string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: want, LoadBalancerClass: class}}
	}
	other := "example.com/lb"
	cs := fake.NewSimpleClientset(lb("a", "", nil), lb("b", "192.168.49.210", nil), lb("c", "", &other),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "d"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}})
	inf := informers.NewSharedInformerFactory(cs, 0)
	_, subnet, _ := net.ParseCIDR("192.168.49.0/24")
	first, last := LBPoolOf(subnet)
	a, err := NewLBAllocator(LBConfig{Client: cs, Informers: inf, First: first, Last: last, Log: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inf.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	want := map[string]string{"a": "192.168.49.200", "b": "192.168.49.210", "c": "", "d": ""}
	for {
		got := map[string]string{}
		for name := range want {
			s, err := cs.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got[name] = ""
			if len(s.Status.LoadBalancer.Ingress) > 0 {
				got[name] = s.Status.LoadBalancer.Ingress[0].IP
			}
		}
		if got["a"] == want["a"] && got["b"] == want["b"] && got["c"] == "" && got["d"] == "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("addresses = %v, want %v", got, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
