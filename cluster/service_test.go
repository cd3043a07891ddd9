package cluster

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServiceURLsAndTable(t *testing.T) {
	np := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort,
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}, {Port: 443, NodePort: 30443}}}}
	lb := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "lb"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
		Ports: []corev1.ServicePort{{Port: 80, NodePort: 31000}}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.168.49.200"}}}}}
	var got []string
	for _, s := range []*corev1.Service{np, lb} {
		for _, u := range serviceURLs(s, "192.168.49.2") {
			got = append(got, u.Target+" "+u.URL)
		}
	}
	want := []string{"http/80 http://192.168.49.2:30080", "443 http://192.168.49.2:30443", "80 http://192.168.49.2:31000", "80 http://192.168.49.200:80"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("urls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var b strings.Builder
	if err := printBoxTable(&b, [][]string{{"NAMESPACE", "NAME", "TARGET PORT", "URL"},
		{"default", "kubernetes", "No node port", ""},
		{"default", "web", "http/80\n443", "http://192.168.49.2:30080\nhttp://192.168.49.2:30443"}}); err != nil {
		t.Fatal(err)
	}
	wantTable := `|-----------|------------|--------------|---------------------------|
| NAMESPACE | NAME       | TARGET PORT  | URL                       |
|-----------|------------|--------------|---------------------------|
| default   | kubernetes | No node port |                           |
| default   | web        | http/80      | http://192.168.49.2:30080 |
|           |            | 443          | http://192.168.49.2:30443 |
|-----------|------------|--------------|---------------------------|
`
	if b.String() != wantTable {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), wantTable)
	}
}
