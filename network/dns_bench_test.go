package network

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// benchDNS serves a cluster of 1,000 services on loopback UDP.
func benchDNS(b *testing.B) string {
	b.Helper()
	objs := []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}}
	for i := range 1000 {
		ip := fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)
		objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i), Namespace: "default"},
			Spec: corev1.ServiceSpec{ClusterIP: ip, ClusterIPs: []string{ip}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}})
	}
	f := informers.NewSharedInformerFactory(fake.NewClientset(objs...), 0)
	d := NewDNS(DNSConfig{Domain: "cluster.local", Informers: f})
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), f.Core().V1().Services().Informer().HasSynced, f.Discovery().V1().EndpointSlices().Informer().HasSynced,
		f.Core().V1().Namespaces().Informer().HasSynced, f.Core().V1().Pods().Informer().HasSynced) {
		b.Fatal("informers did not sync")
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, udp, tcp) }()
	b.Cleanup(func() { cancel(); <-done; f.Shutdown() })
	return udp.LocalAddr().String()
}

// benchQueries sends A queries for the services from GOMAXPROCS × factor
// UDP clients at once, each waiting for its answer, and reports queries
// per second.
func benchQueries(b *testing.B, factor int) {
	addr := benchDNS(b)
	b.ResetTimer()
	b.SetParallelism(factor)
	b.RunParallel(func(pb *testing.PB) {
		c, err := dns.Dial("udp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		i := 0
		m := new(dns.Msg)
		for pb.Next() {
			m.SetQuestion(fmt.Sprintf("svc-%d.default.svc.cluster.local.", i%1000), dns.TypeA)
			i++
			if err := c.WriteMsg(m); err != nil {
				b.Error(err)
				return
			}
			r, err := c.ReadMsg()
			if err != nil || len(r.Answer) != 1 {
				b.Errorf("answer %v, %v", r, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

func BenchmarkDNSQueries(b *testing.B)             { benchQueries(b, 1) }
func BenchmarkDNSQueriesEightPerCore(b *testing.B) { benchQueries(b, 8) }
