//go:build linux

package network

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/nftables"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// proxyLab is a fresh netns with the proxy's netlink socket in it.
func proxyLab(t *testing.T) (string, *nftTable) {
	return nftLab(t, proxyTable())
}

// nftLab is a fresh netns with a netlink socket for table tb in it.
func nftLab(t *testing.T, tb *nftables.Table) (string, *nftTable) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, nftables)")
	}
	path := filepath.Join(t.TempDir(), "lab")
	if err := createNetns(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetns(path) })
	nt, err := openTable(path, tb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nt.Close() })
	return path, nt
}

// richInput has one service of every shape the renderer knows.
func richInput(unready bool) ProxyInput {
	svc := func(name, vip string, mut func(*corev1.Service)) *corev1.Service {
		return testService(name, func(s *corev1.Service) {
			s.Spec.ClusterIP = vip
			if mut != nil {
				mut(s)
			}
		})
	}
	slice := func(name string, eps ...testEP) []*discoveryv1.EndpointSlice {
		return []*discoveryv1.EndpointSlice{testSlice(name, 8080, eps...)}
	}
	var many []testEP
	for i := range maxCascade + 4 {
		many = append(many, testEP{ip: fmt.Sprintf("10.244.2.%d", 10+i), node: "n2", ready: true})
	}
	in := ProxyInput{Node: "n1", ClusterCIDR: testCIDR, Slices: map[string][]*discoveryv1.EndpointSlice{
		"default/web":   slice("web", testEP{"10.244.0.5", "n1", true, false}, testEP{"10.244.1.5", "n2", !unready, false}),
		"default/aff":   slice("aff", testEP{"10.244.0.6", "n1", true, false}, testEP{"10.244.1.6", "n2", true, false}),
		"default/lb":    slice("lb", testEP{"10.244.0.7", "n1", true, false}, testEP{"10.244.1.7", "n2", true, false}),
		"default/far":   slice("far", testEP{"10.244.1.8", "n2", true, false}),
		"default/itp":   slice("itp", testEP{"10.244.1.9", "n2", true, false}),
		"default/big":   slice("big", many...),
		"default/empty": slice("empty"),
	}}
	in.Services = []*corev1.Service{
		svc("web", "10.96.0.20", func(s *corev1.Service) { s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeNodePort, 30080 }),
		svc("aff", "10.96.0.21", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.Ports[0].Protocol = corev1.ProtocolTCP
		}),
		svc("lb", "10.96.0.22", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeLoadBalancer, 30081
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.168.49.200"}}
			s.Spec.ExternalIPs = []string{"192.0.2.7"}
		}),
		svc("far", "10.96.0.23", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeNodePort, 30082
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}),
		svc("itp", "10.96.0.24", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeNodePort, 30083
			s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
		}),
		svc("big", "10.96.0.25", nil),
		svc("empty", "10.96.0.26", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeNodePort, 30084
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53})
		}),
	}
	return in
}

func nftList(t *testing.T, nsPath string) string { return nftListTable(t, nsPath, proxyTable()) }

// nftListTable is `nft list table` of tb in the netns at nsPath.
func nftListTable(t *testing.T, nsPath string, tb *nftables.Table) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + nsPath, "--", "nft", "list", "table"}, strings.Fields(tableName(tb))...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	return string(out)
}

var nftComment = regexp.MustCompile(` comment "nk:[0-9a-f]{16}"$`)

// nftChains parses `nft list table` into chain → rule lines (without
// the comments).
func nftChains(listing string) map[string][]string {
	out := map[string][]string{}
	chain := ""
	for _, line := range strings.Split(listing, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "chain "):
			chain = strings.TrimSuffix(strings.TrimPrefix(line, "chain "), " {")
			out[chain] = []string{}
		case line == "}":
			chain = ""
		case chain != "" && line != "" && !strings.HasPrefix(line, "type "):
			out[chain] = append(out[chain], nftComment.ReplaceAllString(line, ""))
		}
	}
	return out
}

// nftSpelling is how nft prints a few of our rules back.
func nftSpelling(rule string) string {
	r := strings.NewReplacer("dnat to numgen", "dnat ip to numgen", // nft 1.0.6 prints its own addr . port map so too
		"meta l4proto tcp reject", "reject", // the dependency nft itself adds
		"meta mark & 0x4000 == 0 return", "meta mark & 0x00004000 == 0x00000000 return",
		"meta mark set meta mark | 0x4000", "meta mark set meta mark | 0x00004000",
		"meta mark set meta mark ^ 0x4000", "meta mark set meta mark ^ 0x00004000")
	return r.Replace(rule)
}

// TestProxyNetlink programs the table through netlink in a fresh netns
// and checks it with the nft CLI (the inspection tool, not the product
// path): every rule reads back as the rule it was meant to be, a second
// sync and a sync after a "restart" send nothing, an update sends only
// the changed chain and elements.
func TestProxyNetlink(t *testing.T) {
	nsPath, tb := proxyLab(t)
	rules := RenderProxy(richInput(false))
	want := desired(rules)
	have, err := tb.read()
	if err != nil || have != nil {
		t.Fatalf("read of an empty netns = %v, %v; want no table", have, err)
	}
	if n, err := tb.apply(want, nil); err != nil || n == 0 {
		t.Fatalf("first apply: %d messages, %v", n, err)
	}

	// What nft sees is what was rendered.
	listing := nftList(t, nsPath)
	got := nftChains(listing)
	check := func(chain string, wantRules []string) {
		t.Helper()
		g := got[chain]
		if len(g) != len(wantRules) {
			t.Errorf("chain %s: nft shows %d rules %q, want %d %q", chain, len(g), g, len(wantRules), wantRules)
			return
		}
		for i := range g {
			if g[i] != nftSpelling(wantRules[i]) {
				t.Errorf("chain %s rule %d:\n nft: %s\nwant: %s", chain, i, g[i], nftSpelling(wantRules[i]))
			}
		}
	}
	for name, rs := range rules.Chains {
		var texts []string
		for _, r := range rs {
			texts = append(texts, r.String())
		}
		check(name, texts)
	}
	for _, b := range baseChains(testCIDR.String()) {
		var texts []string
		for _, r := range b.rules {
			texts = append(texts, r.text)
		}
		check(b.chain.Name, texts)
	}
	if len(got) != len(rules.Chains)+len(baseChains(testCIDR.String())) {
		t.Errorf("nft shows %d chains, want %d", len(got), len(rules.Chains)+len(baseChains(testCIDR.String())))
	}
	for _, elem := range []string{
		"10.96.0.20 . tcp . 80 : goto " + chainName("svc", "default/web/tcp/http"),
		"192.168.49.200 . tcp . 80 : goto " + chainName("ext", "default/lb/tcp/http"),
		"10.96.0.26 . udp . 53 : goto reject-chain",
		"tcp . 30082 : drop",
		"10.244.0.5 . 10.244.0.5",
		"19 : 10.244.2.29 . 8080",
	} {
		if !strings.Contains(listing, elem) {
			t.Errorf("nft listing has no element %q", elem)
		}
	}
	if t.Failed() {
		t.Log(listing)
	}

	// The kernel state read back equals what was sent: nothing to do,
	// as after a daemon restart that finds its rules in place.
	back, err := tb.read()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := tb.apply(want, back); err != nil || n != 0 {
		t.Fatalf("apply over the table read back: %d messages, %v; want 0", n, err)
	}
	if n, err := tb.apply(desired(RenderProxy(richInput(false))), want); err != nil || n != 0 {
		t.Fatalf("same state again: %d messages, %v; want 0", n, err)
	}

	// One endpoint goes unready: one chain flushed and refilled (1 rule)
	// and one hairpin element deleted.
	next := desired(RenderProxy(richInput(true)))
	if n, err := tb.apply(next, want); err != nil || n != 3 {
		t.Fatalf("update: %d messages, %v; want 3", n, err)
	}
	if back, err = tb.read(); err != nil {
		t.Fatal(err)
	}
	if n, err := tb.apply(next, back); err != nil || n != 0 {
		t.Fatalf("after the update the kernel differs: %d messages, %v", n, err)
	}

	// Someone removes a rule and adds an element: a restart repairs just that.
	svc := chainName("svc", "default/web/tcp/http")
	script := fmt.Sprintf("flush chain ip %[1]s %[2]s\nadd element ip %[1]s hairpin { 10.9.9.9 . 10.9.9.9 }\n", ProxyTable, svc)
	cmd := exec.Command("nsenter", "--net="+nsPath, "--", "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tamper: %v: %s", err, out)
	}
	if back, err = tb.read(); err != nil {
		t.Fatal(err)
	}
	if n, err := tb.apply(next, back); err != nil || n != 3 {
		t.Fatalf("repair: %d messages, %v; want 3 (flush, 1 rule, 1 element delete)", n, err)
	}
	if back, err = tb.read(); err != nil {
		t.Fatal(err)
	}
	if n, err := tb.apply(next, back); err != nil || n != 0 {
		t.Fatalf("after the repair the kernel differs: %d messages, %v", n, err)
	}

	// Every service goes away: back to the fixed part.
	if n, err := tb.apply(desired(RenderProxy(ProxyInput{Node: "n1", ClusterCIDR: testCIDR})), next); err != nil || n == 0 {
		t.Fatalf("remove all: %d messages, %v", n, err)
	}
	if got := nftChains(nftList(t, nsPath)); len(got) != len(baseChains(testCIDR.String())) {
		t.Errorf("after removing every service nft shows chains %v", got)
	}
	if err := RemoveProxy(nsPath); err != nil {
		t.Fatal(err)
	}
	if have, err := tb.read(); err != nil || have != nil {
		t.Fatalf("after RemoveProxy: %v, %v", have, err)
	}
	if err := RemoveProxy(nsPath); err != nil {
		t.Fatalf("RemoveProxy without a table: %v", err)
	}
}

// TestElemChunks: element lists are split below 64 KiB, in order, with
// nothing lost.
func TestElemChunks(t *testing.T) {
	var elems []nftables.SetElement
	for i := range 5000 {
		e, err := encodeElem(mapServiceIPs, fmt.Sprintf("10.96.%d.%d . tcp . 80", i/250, i%250), "goto "+chainName("svc", fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		elems = append(elems, e)
	}
	parts := elemChunks(elems)
	if len(parts) < 2 {
		t.Fatalf("%d elements in %d parts", len(elems), len(parts))
	}
	n := 0
	for _, p := range parts {
		size := 0
		for _, e := range p {
			if &e.Key[0] != &elems[n].Key[0] {
				t.Fatalf("element %d out of order", n)
			}
			size += 64 + len(e.Key) + len(e.VerdictData.Chain)
			n++
		}
		if size > 64<<10 {
			t.Errorf("part of %d bytes", size)
		}
	}
	if n != len(elems) {
		t.Errorf("%d of %d elements in the parts", n, len(elems))
	}
	if got := elemChunks(nil); len(got) != 0 {
		t.Errorf("no elements: %d parts", len(got))
	}
}

// TestProxyCacheRich: every shape of service, changed one at a time,
// gives the table of a full render.
func TestProxyCacheRich(t *testing.T) {
	for _, unready := range []bool{true, false} {
		c, full := NewProxyCache(richInput(!unready))
		next := richInput(unready)
		for _, s := range next.Services {
			key := s.Namespace + "/" + s.Name
			applyDelta(full, c.Update(only(next, key), []string{key}))
		}
		if got, want := dump(full), dump(RenderProxy(next)); got != want {
			t.Fatalf("after updating every service the table differs from a full render:\n%s\nwant:\n%s", got, want)
		}
	}
}

// TestProxyNetlinkIncremental: an incremental sync sends only the
// changed service's chain and elements, and leaves the kernel's table
// as a full sync would.
func TestProxyNetlinkIncremental(t *testing.T) {
	nsPath, _ := proxyLab(t)
	nft := NewProxyNft(nsPath)
	defer nft.Close()
	c, full := NewProxyCache(richInput(false))
	if _, err := nft.Sync(full); err != nil {
		t.Fatal(err)
	}
	next := richInput(true)
	if n, err := nft.SyncDelta(c.Update(only(next, "default/web"), []string{"default/web"})); err != nil || n != 3 {
		t.Fatalf("incremental update: %d messages, %v; want 3", n, err)
	}
	// The big and the affinity services go: their chains, endpoint map
	// and affinity sets.
	gone := only(next, "default/web", "default/lb", "default/far", "default/itp", "default/empty")
	if n, err := nft.SyncDelta(c.Update(only(next), []string{"default/big", "default/aff"})); err != nil || n == 0 {
		t.Fatalf("incremental delete: %d messages, %v", n, err)
	}
	// What the incremental syncs applied is what the kernel has and what
	// a full render wants.
	if n, err := nft.Sync(RenderProxy(gone)); err != nil || n != 0 {
		t.Fatalf("full sync after the incremental ones: %d messages, %v; want 0", n, err)
	}
	nft.Forget()
	if n, err := nft.Sync(RenderProxy(gone)); err != nil || n != 0 {
		t.Fatalf("sync over the table read back: %d messages, %v; want 0", n, err)
	}
	if listing := nftList(t, nsPath); strings.Contains(listing, "set aff") || strings.Contains(listing, "map "+epMapPrefix) {
		t.Errorf("affinity sets or endpoint maps left:\n%s", listing)
	}
}
