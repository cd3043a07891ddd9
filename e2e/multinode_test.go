//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestIntegrationMultiNode: two nodes, pods on both, a pod on node 1
// reaches a pod on node 2 directly and through a Service.
func TestIntegrationMultiNode(t *testing.T) {
	l := theLab
	const p = "e2e-multi"
	l.startProfile(t, p, "--nodes=2")
	l.loadBusybox(t, p)
	k := func(args ...string) string { t.Helper(); return l.kubectl(t, p, args...) }
	nodes := k("get", "nodes", "-o", "jsonpath={.items[*].metadata.name}")
	if nodes != p+" "+p+"-m02" {
		t.Fatalf("nodes = %q", nodes)
	}
	k("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s")
	// One pod pinned to the second node, one client pinned to the first.
	k("run", "far", "--image="+busyboxRef, "--overrides", `{"spec":{"nodeName":"`+p+`-m02","terminationGracePeriodSeconds":1}}`, "--", "httpd", "-f", "-p", "8080", "-h", "/www")
	k("wait", "--for=condition=Ready", "pod/far", "--timeout=60s")
	k("expose", "pod", "far", "--port=80", "--target-port=8080")
	farIP := k("get", "pod", "far", "-o", "jsonpath={.status.podIP}")
	if !strings.HasPrefix(farIP, "10.244.1.") {
		t.Errorf("pod on node 2 has IP %s, want one of 10.244.1.0/24", farIP)
	}
	k("run", "near", "--image="+busyboxRef, "--restart=Never", "--overrides", `{"spec":{"nodeName":"`+p+`"}}`, "--",
		"sh", "-c", "wget -qO- http://"+farIP+":8080/ && wget -qO- http://far/")
	k("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/near", "--timeout=60s")
	if out := k("logs", "near"); out != "hello from nanokube\nhello from nanokube\n" {
		t.Errorf("cross-node fetches returned %q", out)
	}
}
