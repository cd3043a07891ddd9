package agent

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
)

// TestGRPCProbe asks a real grpc.health.v1 server, as kubelet does: the
// overall and a named service's status, kubelet's messages on failure.
func TestGRPCProbe(t *testing.T) {
	a, _, _ := testAgentWithFakeRuntime(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)

	st := &podState{ip: "127.0.0.1"}
	port := int32(lis.Addr().(*net.TCPAddr).Port)
	probe := func(service *string) error {
		return a.probe(t.Context(), st, &corev1.Container{Name: "app"}, &corev1.Probe{TimeoutSeconds: 1,
			ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: port, Service: service}}})
	}
	if err := probe(nil); err != nil {
		t.Errorf("overall health: %v", err)
	}
	db := "db"
	if err := probe(&db); err == nil || err.Error() != `service unhealthy (responded with "NOT_SERVING")` {
		t.Errorf("NOT_SERVING service: %v", err)
	}
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_SERVING)
	if err := probe(&db); err != nil {
		t.Errorf("SERVING service: %v", err)
	}
	// A server without the health service.
	bare, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other := grpc.NewServer()
	otherDone := make(chan error, 1)
	go func() { otherDone <- other.Serve(bare) }()
	t.Cleanup(func() { other.Stop(); <-otherDone })
	if err := a.probe(t.Context(), st, &corev1.Container{Name: "app"}, &corev1.Probe{TimeoutSeconds: 1,
		ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(bare.Addr().(*net.TCPAddr).Port)}}}); err == nil ||
		!strings.HasPrefix(err.Error(), "this server does not implement the grpc health protocol (grpc.health.v1.Health): ") {
		t.Errorf("server without health service: %v", err)
	}
	srv.Stop()
	start := time.Now()
	if err := probe(nil); err == nil || !strings.Contains(err.Error(), "health rpc") {
		t.Errorf("stopped server: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a probe of a stopped server took %v, want about its 1s timeout", d)
	}
}
