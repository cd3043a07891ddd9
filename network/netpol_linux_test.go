//go:build linux

package network

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"
)

// TestPolicyNetlink programs the policy table through netlink in a fresh
// netns and checks it with the nft CLI (the inspection tool, not the
// product path): every rule reads back as the model's, a second sync and
// a sync after a "restart" send nothing, a new peer pod touches only
// the chains it appears in, and RemovePolicies leaves no table (nor the
// inet table of the nft -f era).
func TestPolicyNetlink(t *testing.T) {
	nsPath, tb := nftLab(t, policyTable())
	rules := RenderPolicies(policyFixture())
	want := desiredPolicies(rules)
	if n, err := tb.apply(want, nil); err != nil || n == 0 {
		t.Fatalf("first apply: %d messages, %v", n, err)
	}
	listing := nftListTable(t, nsPath, policyTable())
	got := nftChains(listing)
	expect := chainTexts(rules)
	for _, b := range policyBase() {
		var texts []string
		for _, r := range b.rules {
			texts = append(texts, r.text)
		}
		expect[b.chain.Name] = texts
	}
	for name, rs := range expect {
		if g := got[name]; strings.Join(g, "\n") != strings.Join(rs, "\n") {
			t.Errorf("chain %s:\n nft: %q\nwant: %q", name, g, rs)
		}
	}
	if len(got) != len(expect) {
		t.Errorf("nft shows %d chains, want %d", len(got), len(expect))
	}
	for _, elem := range []string{
		"10.244.0.5 : jump " + chainName("ingress", "default/web"),
		"10.244.0.7 : jump " + chainName("egress", "default/other"),
		"type filter hook forward priority filter; policy accept;",
	} {
		if !strings.Contains(listing, elem) {
			t.Errorf("nft listing has no %q", elem)
		}
	}
	if t.Failed() {
		t.Log(listing)
	}

	// Read back: nothing to do, as after a daemon restart.
	back, err := tb.read()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := tb.apply(want, back); err != nil || n != 0 {
		t.Fatalf("apply over the table read back: %d messages, %v; want 0", n, err)
	}
	if n, err := tb.apply(desiredPolicies(RenderPolicies(policyFixture())), want); err != nil || n != 0 {
		t.Fatalf("same state again: %d messages, %v; want 0", n, err)
	}

	// A second client pod: web's ingress chain is flushed and refilled
	// (4 rules → 5); nothing else changes.
	in := policyFixture()
	in.Pods = append(in.Pods, policyPodObj("default", "client2", "n2", "10.244.1.7", map[string]string{"role": "client"}))
	next := desiredPolicies(RenderPolicies(in))
	if n, err := tb.apply(next, want); err != nil || n != 6 {
		t.Fatalf("new peer: %d messages, %v; want 6 (flush, 5 rules)", n, err)
	}
	if back, err = tb.read(); err != nil {
		t.Fatal(err)
	}
	if n, err := tb.apply(next, back); err != nil || n != 0 {
		t.Fatalf("after the update the kernel differs: %d messages, %v", n, err)
	}

	// The web pod goes away: its chains and map entries with it.
	in.Pods = in.Pods[1:]
	last := desiredPolicies(RenderPolicies(in))
	if n, err := tb.apply(last, next); err != nil || n == 0 {
		t.Fatalf("remove web: %d messages, %v", n, err)
	}
	if back, err = tb.read(); err != nil {
		t.Fatal(err)
	}
	if n, err := tb.apply(last, back); err != nil || n != 0 {
		t.Fatalf("after removing web the kernel differs: %d messages, %v", n, err)
	}
	if l := nftListTable(t, nsPath, policyTable()); strings.Contains(l, "default/web") || strings.Contains(l, "10.244.0.5") {
		t.Errorf("web is still in the table:\n%s", l)
	}

	// Through the enforcer's syncer, and a packet of the old inet table
	// to be cleaned up.
	s := &nftSync{nsPath: nsPath, table: policyTable()}
	defer s.Close()
	if n, err := s.sync(last); err != nil || n != 0 {
		t.Fatalf("fresh syncer over the table: %d messages, %v; want 0", n, err)
	}
	cmd := exec.Command("nsenter", "--net="+nsPath, "--", "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf("table inet %s {\n chain forward {\n  type filter hook forward priority filter; policy accept;\n  drop\n }\n}\n", NetpolTable))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("legacy table: %v: %s", err, out)
	}
	if err := RemovePolicies(nsPath); err != nil {
		t.Fatal(err)
	}
	for _, tb := range []*nftables.Table{policyTable(), legacyPolicyTable()} {
		nt, err := openTable(nsPath, tb)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := nt.exists(); err != nil || ok {
			t.Errorf("table %s after RemovePolicies: exists=%v, %v", tableName(tb), ok, err)
		}
		nt.Close()
	}
	if err := RemovePolicies(nsPath); err != nil {
		t.Fatalf("RemovePolicies without tables: %v", err)
	}
}

// TestPolicyRuleExprs: every rule shape of the policy renderer has
// expressions (no error), including ranges, excepts and bare verdicts.
func TestPolicyRuleExprs(t *testing.T) {
	for _, r := range []Rule{
		{Saddr: "10.244.1.6", L4Proto: "tcp", Dport: "8080", Verdict: "return"},
		{Saddr: "192.168.0.0/16", Except: "192.168.49.0/24, 192.168.50.0/24", L4Proto: "udp", Dport: "9000-9100", Verdict: "return"},
		{Daddr: "10.0.0.0/8", Except: "10.1.0.0/16", Verdict: "return"},
		{L4Proto: "sctp", Verdict: "return"},
		{Verdict: "drop"},
	} {
		if _, err := ruleExprs(r); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	for _, r := range []Rule{{Dport: "80", Verdict: "return"}, {Saddr: "fd00::/8", Verdict: "return"}, {Saddr: "10.0.0.1"}} {
		if _, err := ruleExprs(r); err == nil {
			t.Errorf("%s: no error", r)
		}
	}
}
