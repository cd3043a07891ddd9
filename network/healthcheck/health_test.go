package healthcheck

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDesiredCountsLocalReadyEndpoints(t *testing.T) {
	svc := func(name string, typ corev1.ServiceType, policy corev1.ServiceExternalTrafficPolicy, hc int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.ServiceSpec{Type: typ, ExternalTrafficPolicy: policy, HealthCheckNodePort: hc}}
	}
	yes, no := true, false
	ep := func(node, ip string, ready, terminating *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, NodeName: &node, Conditions: discoveryv1.EndpointConditions{Ready: ready, Terminating: terminating}}
	}
	slice := func(svc string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: svc + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svc}}, Endpoints: eps}
	}
	svcs := []*corev1.Service{
		svc("web", corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal, 31001),
		svc("empty", corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal, 31002),
		svc("cluster", corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyCluster, 0),
		svc("np", corev1.ServiceTypeNodePort, corev1.ServiceExternalTrafficPolicyLocal, 0),
	}
	slices := []*discoveryv1.EndpointSlice{
		slice("web", ep("n1", "10.244.0.2", &yes, nil), ep("n1", "10.244.0.3", nil, nil), ep("n1", "10.244.0.4", &no, nil),
			ep("n1", "10.244.0.5", &yes, &yes), ep("n2", "10.244.1.2", &yes, nil)),
		slice("web", ep("n1", "10.244.0.2", &yes, nil)), // the same endpoint in a second slice
		slice("empty", ep("n2", "10.244.1.3", &yes, nil)),
		slice("cluster", ep("n1", "10.244.0.9", &yes, nil)),
	}
	got := Desired("n1", svcs, slices)
	want := map[int32]Service{
		31001: {Namespace: "default", Name: "web", LocalEndpoints: 2},
		31002: {Namespace: "default", Name: "empty"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Desired = %+v, want %+v", got, want)
	}
}

func TestServeHTTPLikeKubeProxy(t *testing.T) {
	for _, c := range []struct {
		n    int
		code int
		body string
	}{
		{2, http.StatusOK, "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 2,\n\t\"serviceProxyHealthy\": true\n}"},
		{0, http.StatusServiceUnavailable, "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 0,\n\t\"serviceProxyHealthy\": true\n}"},
	} {
		rec := httptest.NewRecorder()
		Service{Namespace: "default", Name: "web", LocalEndpoints: c.n}.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		if rec.Code != c.code || rec.Body.String() != c.body || rec.Header().Get("Content-Type") != "application/json" ||
			rec.Header().Get("X-Load-Balancing-Endpoint-Weight") != map[int]string{2: "2", 0: "0"}[c.n] {
			t.Errorf("%d local endpoints: %d %v\n%s", c.n, rec.Code, rec.Header(), rec.Body)
		}
	}
}
