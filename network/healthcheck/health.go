// Package healthcheck is kube-proxy's service health server: for every
// LoadBalancer Service with externalTrafficPolicy Local, each node answers
// HTTP on the Service's healthCheckNodePort with how many ready endpoints
// of the Service run on that node (200 when some do, 503 when none), so a
// load balancer sends traffic only to nodes that serve it locally.
package healthcheck

import (
	"fmt"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Service is what one health check port reports.
type Service struct {
	Namespace, Name string
	LocalEndpoints  int
}

// Desired is the health check ports a node serves: one per LoadBalancer
// Service with externalTrafficPolicy Local and a healthCheckNodePort,
// counting the ready, not terminating endpoints on node (kube-proxy's
// local ready endpoints).
func Desired(node string, svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice) map[int32]Service {
	out := map[int32]Service{}
	byName := map[string]int32{}
	for _, s := range svcs {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer || s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal || s.Spec.HealthCheckNodePort == 0 {
			continue
		}
		out[s.Spec.HealthCheckNodePort] = Service{Namespace: s.Namespace, Name: s.Name}
		byName[s.Namespace+"/"+s.Name] = s.Spec.HealthCheckNodePort
	}
	// An endpoint counts once even when two slices list it (as during a
	// slice update); kube-proxy uses its first address too.
	seen := map[int32]map[string]bool{}
	for _, sl := range slices {
		port, ok := byName[sl.Namespace+"/"+sl.Labels[discoveryv1.LabelServiceName]]
		if !ok {
			continue
		}
		if seen[port] == nil {
			seen[port] = map[string]bool{}
		}
		for _, e := range sl.Endpoints {
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready
			terminating := e.Conditions.Terminating != nil && *e.Conditions.Terminating
			if e.NodeName != nil && *e.NodeName == node && ready && !terminating && len(e.Addresses) > 0 {
				seen[port][e.Addresses[0]] = true
			}
		}
	}
	for port, addrs := range seen {
		hs := out[port]
		hs.LocalEndpoints = len(addrs)
		out[port] = hs
	}
	return out
}

// ServeHTTP answers like kube-proxy: 200 with local endpoints, else 503;
// the JSON names the Service and the count, any path.
func (s Service) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(s.LocalEndpoints))
	if s.LocalEndpoints > 0 {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintf(w, "{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": true\n}",
		s.Namespace, s.Name, s.LocalEndpoints)
}
