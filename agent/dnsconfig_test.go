package agent

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nanokube/nanokube/network"
)

func TestPodResolvConf(t *testing.T) {
	host := network.ResolvConf{Nameservers: []string{"192.0.2.53"}, Searches: []string{"corp.example"}, Options: []string{"edns0"}}
	two := "2"
	pod := func(policy corev1.DNSPolicy, hostNet bool, dc *corev1.PodDNSConfig) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "team"}, Spec: corev1.PodSpec{DNSPolicy: policy, HostNetwork: hostNet, DNSConfig: dc}}
	}
	cluster := "search team.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n"
	hostConf := "search corp.example\nnameserver 192.0.2.53\noptions edns0\n"
	cases := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"default policy is ClusterFirst", pod("", false, nil), cluster},
		{"ClusterFirst", pod(corev1.DNSClusterFirst, false, nil), cluster},
		{"ClusterFirst on the host network falls back to Default", pod(corev1.DNSClusterFirst, true, nil), hostConf},
		{"ClusterFirstWithHostNet", pod(corev1.DNSClusterFirstWithHostNet, true, nil), cluster},
		{"Default", pod(corev1.DNSDefault, false, nil), hostConf},
		{"None", pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"1.2.3.4"}, Searches: []string{"a.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}}}), "search a.example\nnameserver 1.2.3.4\noptions ndots:2\n"},
		{"dnsConfig appends and merges", pod(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{Nameservers: []string{"10.96.0.10", "1.1.1.1"},
			Searches: []string{"svc.cluster.local", "extra.example"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "single-request"}}}),
			"search team.svc.cluster.local svc.cluster.local cluster.local corp.example extra.example\nnameserver 10.96.0.10\nnameserver 1.1.1.1\noptions ndots:2 single-request\n"},
		{"at most 3 nameservers", pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"}}),
			"nameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\n"},
	}
	for _, c := range cases {
		if got := podResolvConf(c.pod, host, "10.96.0.10", "cluster.local").String(); got != c.want {
			t.Errorf("%s:\n%s\nwant:\n%s", c.name, got, c.want)
		}
	}
}

func TestPodHostsAndHostname(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default"},
		Spec: corev1.PodSpec{Hostname: "web-0", Subdomain: "nginx", HostAliases: []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}}}}}
	hosts := podHosts(p, "10.244.0.5", "cluster.local")
	for _, want := range []string{"10.244.0.5\tweb-0.nginx.default.svc.cluster.local\tweb-0\n", "# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts lacks %q:\n%s", want, hosts)
		}
	}
	if h := podHostname(p, "cluster.local"); h != "web-0" {
		t.Errorf("hostname = %q", h)
	}
	yes := true
	p.Spec.SetHostnameAsFQDN = &yes
	if h := podHostname(p, "cluster.local"); h != "web-0.nginx.default.svc.cluster.local" {
		t.Errorf("FQDN hostname = %q", h)
	}
	plain := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a-very-long-pod-name-that-goes-on-and-on-beyond-sixty-three-chars-x", Namespace: "default"}}
	if h := podHostname(plain, "cluster.local"); len(h) > 63 || h[len(h)-1] == '-' {
		t.Errorf("long hostname = %q", h)
	}
}
