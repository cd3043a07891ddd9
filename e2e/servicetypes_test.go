//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// whoServer answers /cgi-bin/ip with the client address it sees and
// /cgi-bin/name with its own pod name.
const whoServer = `mkdir -p /tmp/w/cgi-bin && printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho "$REMOTE_ADDR"\n' > /tmp/w/cgi-bin/ip && printf '#!/bin/sh\necho Content-Type: text/plain\necho\nhostname\n' > /tmp/w/cgi-bin/name && chmod +x /tmp/w/cgi-bin/* && exec httpd -f -p 8080 -h /tmp/w`

// flipPod serves while /tmp/ready exists (its readiness probe).
func flipPod(node string) *corev1.Pod {
	pod := netnodePod("flip", node, map[string]string{"role": "flip"}, true)
	pod.Spec.Containers[0].Command = []string{"sh", "-c", "touch /tmp/ready && " + whoServer}
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}},
		PeriodSeconds: 1, FailureThreshold: 1}
	return pod
}

func svcOf(name string, typ corev1.ServiceType, sel map[string]string, mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: typ, Selector: sel,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}}}
	if mut != nil {
		mut(s)
	}
	return s
}

// TestIntegrationServiceTypes: NodePort on every node IP and
// LoadBalancer from the host side, externalTrafficPolicy Local,
// ClientIP affinity, reject without endpoints, no masquerade inside the
// cluster, readiness changes in the rules within a second, `nanokube service --url`, `service list` and `tunnel`.
func TestIntegrationServiceTypes(t *testing.T) {
	l := theLab
	const p = "svctypes"
	l.startProfile(t, p, "--nodes=2")
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	m02 := p + "-m02"
	ip1 := strings.TrimSpace(l.nanokube(t, "ip", "-p", p).stdout)
	ip2 := strings.TrimSpace(l.nanokube(t, "ip", "-p", p, "--node", m02).stdout)
	base := ip1[:strings.LastIndexByte(ip1, '.')+1]

	server := func(name, node, role string) *corev1.Pod {
		pod := netnodePod(name, node, map[string]string{"app": "who", "role": role}, true)
		pod.Spec.Containers[0].Command = []string{"sh", "-c", whoServer}
		return pod
	}
	l.apply(t, p,
		server("who1", p, "one"), server("who2", m02, "two"),
		netnodePod("client", p, map[string]string{"role": "client"}, false),
		flipPod(p),
		svcOf("flip", corev1.ServiceTypeClusterIP, map[string]string{"role": "flip"}, nil),
		svcOf("np", corev1.ServiceTypeNodePort, map[string]string{"app": "who"}, nil),
		svcOf("lb", corev1.ServiceTypeLoadBalancer, map[string]string{"role": "two"}, func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}),
		svcOf("spread", corev1.ServiceTypeClusterIP, map[string]string{"app": "who"}, nil),
		svcOf("sticky", corev1.ServiceTypeClusterIP, map[string]string{"app": "who"}, func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		}),
		svcOf("far", corev1.ServiceTypeClusterIP, map[string]string{"role": "two"}, nil),
		svcOf("nobody", corev1.ServiceTypeNodePort, map[string]string{"app": "nothing"}, nil),
	)
	if r := l.kubectlResult(t, p, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=90s"); r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(l.Home, "profiles", p, "daemon.log"))
		t.Fatalf("pods not Ready: %s\n%s\ndaemon log:\n%s", r, k("get", "pods", "-o", "wide"), log)
	}
	jp := func(obj, path string) string { t.Helper(); return k("get", obj, "-o", "jsonpath="+path) }
	clientIP, clientUID := jp("pod/client", "{.status.podIP}"), jp("pod/client", "{.metadata.uid}")
	// curl from the lab netns, the host side of the profile bridge.
	curl := func(url string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		return l.run(ctx, nil, "curl", "-sS", "--max-time", "3", url)
	}
	// fromClient fetches a URL inside the client pod's netns.
	fromClient := func(url string) result {
		t.Helper()
		return l.inNetns(t, "/run/nanokube/"+p+"/pods/"+clientUID, "timeout", "3", "busybox", "wget", "-qO-", url)
	}
	unmap := func(s string) string {
		return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "[::ffff:"), "]")
	}

	// NodePort from the host side on every node IP; both pods answer.
	np := jp("svc/np", "{.spec.ports[0].nodePort}")
	for _, ip := range []string{ip1, ip2} {
		seen := map[string]bool{}
		eventually(t, "NodePort "+ip+":"+np+" reaches both pods", 30*time.Second, func() (bool, string) {
			r := curl("http://" + ip + ":" + np + "/cgi-bin/name")
			if r.code == 0 {
				seen[strings.TrimSpace(r.stdout)] = true
			}
			return seen["who1"] && seen["who2"], r.String()
		})
	}

	// LoadBalancer: an address from the top of the profile /24, reachable
	// from the host; externalTrafficPolicy Local answers only on m02.
	var lbIP string
	eventually(t, "LoadBalancer address", 30*time.Second, func() (bool, string) {
		lbIP = jp("svc/lb", "{.status.loadBalancer.ingress[0].ip}")
		return strings.HasPrefix(lbIP, base) && lbIP >= base+"200", lbIP
	})
	eventually(t, "GET the LoadBalancer address "+lbIP, 30*time.Second, func() (bool, string) {
		r := curl("http://" + lbIP + "/cgi-bin/name")
		return r.code == 0 && strings.TrimSpace(r.stdout) == "who2", r.String()
	})
	lbPort := jp("svc/lb", "{.spec.ports[0].nodePort}")
	if r := curl("http://" + ip2 + ":" + lbPort + "/cgi-bin/ip"); r.code != 0 || unmap(r.stdout) != base+"1" {
		t.Errorf("externalTrafficPolicy Local on the pod's node: want the client's own address %s1 (no SNAT): %s", base, r)
	}
	if r := curl("http://" + ip1 + ":" + lbPort + "/cgi-bin/name"); r.code == 0 {
		t.Errorf("externalTrafficPolicy Local answered on %s, a node without the pod: %s", ip1, r)
	}
	// kube-proxy's health check on the Service's healthCheckNodePort:
	// 200 with the local endpoint count on m02, 503 on the other node.
	hc := jp("svc/lb", "{.spec.healthCheckNodePort}")
	if hc == "" || hc == "0" || hc == lbPort {
		t.Fatalf("svc/lb healthCheckNodePort = %q (nodePort %s)", hc, lbPort)
	}
	health := func(ip string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		return l.run(ctx, nil, "curl", "-sS", "--max-time", "3", "-w", "\n%{http_code}", "http://"+ip+":"+hc+"/healthz")
	}
	eventually(t, "health check of svc/lb on "+ip2, 10*time.Second, func() (bool, string) {
		r := health(ip2)
		return r.code == 0 && strings.Contains(r.stdout, `"localEndpoints": 1,`) && strings.HasSuffix(r.stdout, "\n200"), r.String()
	})
	if r := health(ip1); r.code != 0 || !strings.Contains(r.stdout, `"localEndpoints": 0,`) || !strings.HasSuffix(r.stdout, "\n503") {
		t.Errorf("health check of svc/lb on %s, a node without the pod: want 503 and 0 local endpoints: %s", ip1, r)
	}

	// Inside the cluster: no masquerade, random spread, ClientIP affinity.
	farIP, spreadIP, stickyIP := jp("svc/far", "{.spec.clusterIP}"), jp("svc/spread", "{.spec.clusterIP}"), jp("svc/sticky", "{.spec.clusterIP}")
	if r := fromClient("http://" + farIP + "/cgi-bin/ip"); r.code != 0 || unmap(r.stdout) != clientIP {
		t.Errorf("pod → ClusterIP → pod on the other node: server saw %q, want the client pod's %s: %s", unmap(r.stdout), clientIP, r)
	}
	names := func(ip string) map[string]int {
		got := map[string]int{}
		for range 20 {
			r := fromClient("http://" + ip + "/cgi-bin/name")
			got[strings.TrimSpace(r.stdout)]++
		}
		return got
	}
	if got := names(spreadIP); got["who1"] == 0 || got["who2"] == 0 {
		t.Errorf("20 requests to a ClusterIP without affinity: %v, want both pods", got)
	}
	if got := names(stickyIP); len(got) != 1 || (got["who1"] != 20 && got["who2"] != 20) {
		t.Errorf("20 requests to a ClientIP-affinity service: %v, want one pod every time", got)
	}

	// No endpoints: refused at once, not a timeout; from the host on the
	// NodePort and from a pod on the ClusterIP.
	nobodyPort, nobodyIP := jp("svc/nobody", "{.spec.ports[0].nodePort}"), jp("svc/nobody", "{.spec.clusterIP}")
	start := time.Now()
	if r := curl("http://" + ip2 + ":" + nobodyPort + "/"); r.code != 7 || time.Since(start) > time.Second {
		t.Errorf("NodePort without endpoints: want curl exit 7 (connection refused) at once, took %s: %s", time.Since(start), r)
	}
	start = time.Now()
	if r := fromClient("http://" + nobodyIP + "/"); r.code == 0 || !strings.Contains(r.stderr, "refused") || time.Since(start) > time.Second {
		t.Errorf("ClusterIP without endpoints from a pod: want connection refused at once, took %s: %s", time.Since(start), r)
	}

	// Readiness: the endpoint leaves the node's rules within a second of
	// the pod turning unready (the service then refuses), and comes back.
	flipIP := jp("pod/flip", "{.status.podIP}")
	inRules := func() (bool, string) {
		r := l.inNetns(t, "/run/nanokube/"+p+"/netns/"+p, "nft", "list", "table", "ip", "nanokube")
		return strings.Contains(r.stdout, flipIP+":8080") || strings.Contains(r.stdout, flipIP+" . 8080"), r.stderr
	}
	if ok, _ := inRules(); !ok {
		t.Errorf("ready pod %s is not in the service rules", flipIP)
	}
	k("exec", "flip", "--", "rm", "/tmp/ready")
	k("wait", "--for=condition=Ready=false", "pod/flip", "--timeout=30s")
	eventually(t, "unready endpoint leaves the rules", time.Second, func() (bool, string) { ok, e := inRules(); return !ok, e })
	if r := fromClient("http://" + jp("svc/flip", "{.spec.clusterIP}") + "/"); r.code == 0 || !strings.Contains(r.stderr, "refused") {
		t.Errorf("service of an unready pod: want connection refused: %s", r)
	}
	k("exec", "flip", "--", "touch", "/tmp/ready")
	k("wait", "--for=condition=Ready", "pod/flip", "--timeout=30s")
	eventually(t, "ready endpoint back in the rules", time.Second, inRules)

	// nanokube service --url and service list.
	out := l.nanokube(t, "service", "np", "--url", "-p", p).stdout
	url := strings.Split(strings.TrimSpace(out), "\n")[0]
	if url != "http://"+ip1+":"+np {
		t.Errorf("service np --url = %q, want http://%s:%s", out, ip1, np)
	}
	if r := curl(url + "/cgi-bin/name"); r.code != 0 || !strings.HasPrefix(r.stdout, "who") {
		t.Errorf("curl the URL of service --url: %s", r)
	}
	if out := l.nanokube(t, "service", "lb", "--url", "-p", p).stdout; !strings.Contains(out, "http://"+lbIP+":80") {
		t.Errorf("service lb --url lacks the LoadBalancer address %s: %q", lbIP, out)
	}
	list := l.nanokube(t, "service", "list", "-p", p).stdout
	for _, want := range []string{"| NAMESPACE ", "| default     | np ", "http://" + ip1 + ":" + np, "| default     | spread ", "No node port"} {
		if !strings.Contains(list, want) {
			t.Errorf("service list lacks %q:\n%s", want, list)
		}
	}
	if r := l.nanokubeResult(t, "service", "missing", "-p", p); r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 ||
		!strings.Contains(r.stderr, "kubectl get svc -n default") {
		t.Errorf("service missing: want one line pointing at kubectl get svc: %s", r)
	}

	// tunnel: the ClusterIP is reachable from the host side while it runs,
	// and its route is gone after Ctrl-C.
	if r := curl("http://" + spreadIP + "/cgi-bin/name"); r.code == 0 {
		t.Fatalf("ClusterIP reachable from the host before the tunnel: %s", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	tun := l.Command(ctx, l.binary, "tunnel", "-p", p)
	stdout, err := tun.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tun.Start(); err != nil {
		t.Fatalf("start nanokube tunnel: %v", err)
	}
	lines := bufio.NewScanner(stdout)
	var head []string
	for lines.Scan() {
		head = append(head, lines.Text())
		if strings.Contains(lines.Text(), "Ctrl-C") {
			break
		}
	}
	if r := curl("http://" + spreadIP + "/cgi-bin/name"); r.code != 0 || !strings.HasPrefix(r.stdout, "who") {
		t.Errorf("ClusterIP from the host through the tunnel (%s): %s", strings.Join(head, " / "), r)
	}
	if err := tun.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		head = append(head, lines.Text())
	}
	if err := tun.Wait(); err != nil {
		t.Errorf("nanokube tunnel after SIGINT: %v\n%s", err, strings.Join(head, "\n"))
	}
	if r := l.run(ctx, nil, "ip", "route", "show", "10.96.0.0/12"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("route of the tunnel left behind: %s", r)
	}
}
