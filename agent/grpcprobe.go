package agent

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
)

// grpcProbe asks the pod's gRPC health service (grpc.health.v1) like
// kubelet, with kubelet's messages.
func (a *Agent) grpcProbe(ctx context.Context, st *podState, g *corev1.GRPCAction, timeout time.Duration) error {
	addr := net.JoinHostPort(st.ip, strconv.Itoa(int(g.Port)))
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("kube-probe/1.37"),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return a.dialPod(ctx, addr) }))
	if err != nil {
		return fmt.Errorf("failed to connect service %q within %v: %w", addr, timeout, err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		switch {
		case ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded:
			return fmt.Errorf("timeout: health rpc did not complete within %v", timeout)
		case status.Code(err) == codes.Unimplemented:
			return fmt.Errorf("this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", status.Convert(err).Message())
		}
		return fmt.Errorf("error: health rpc probe failed: %w", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("service unhealthy (responded with %q)", resp.GetStatus().String())
	}
	return nil
}
