package network

import (
	"fmt"
	"sort"
	"strings"
)

// Rule is one rule of a rendered chain (service proxy or NetworkPolicy),
// as data: optional matches and one action. String renders it in nft
// syntax as `nft list` prints it (tests, fingerprints); the netlink
// backend turns it into expressions. Rule is comparable, so a chain's
// rules diff with ==.
type Rule struct {
	// Match, in this order (each optional).
	Saddr    string // ip saddr is this address or in this CIDR …
	SaddrNot bool   // … or not
	Daddr    string // ip daddr is this address or in this CIDR
	// Except: ", "-separated CIDRs the Saddr (else the Daddr) match
	// leaves out (an ipBlock's except): one != match each.
	Except      string
	FibSaddrLoc bool   // fib saddr type local
	SaddrInSet  string // ip saddr @set
	Random      int    // numgen random mod Random 0
	L4Proto     string // meta l4proto tcp|udp|sctp
	Dport       string // th dport N or N-M (needs L4Proto)
	// Action: exactly one.
	Jump, Goto string
	Update     string // update @set { ip saddr }
	DNAT       string // dnat to ip:port
	DNATMap    string // dnat to numgen random mod MapMod map @DNATMap
	MapMod     int
	Verdict    string // accept, drop or return
}

// exceptDir is the address the Except CIDRs apply to.
func (r Rule) exceptDir() string {
	if r.Saddr != "" {
		return "saddr"
	}
	return "daddr"
}

func (r Rule) String() string {
	var b strings.Builder
	if r.Saddr != "" {
		b.WriteString("ip saddr ")
		if r.SaddrNot {
			b.WriteString("!= ")
		}
		b.WriteString(r.Saddr + " ")
	}
	if r.Daddr != "" {
		b.WriteString("ip daddr " + r.Daddr + " ")
	}
	if r.Except != "" {
		for _, c := range strings.Split(r.Except, ", ") {
			fmt.Fprintf(&b, "ip %s != %s ", r.exceptDir(), c)
		}
	}
	if r.FibSaddrLoc {
		b.WriteString("fib saddr type local ")
	}
	if r.SaddrInSet != "" {
		b.WriteString("ip saddr @" + r.SaddrInSet + " ")
	}
	if r.Random > 0 {
		fmt.Fprintf(&b, "numgen random mod %d 0 ", r.Random)
	}
	switch {
	case r.L4Proto != "" && r.Dport != "":
		// nft folds the protocol match into the port's.
		fmt.Fprintf(&b, "%s dport %s ", r.L4Proto, r.Dport)
	case r.L4Proto != "":
		b.WriteString("meta l4proto " + r.L4Proto + " ")
	}
	switch {
	case r.Jump != "":
		b.WriteString("jump " + r.Jump)
	case r.Goto != "":
		b.WriteString("goto " + r.Goto)
	case r.Update != "":
		b.WriteString("update @" + r.Update + " { ip saddr }")
	case r.DNAT != "":
		b.WriteString("dnat to " + r.DNAT)
	case r.DNATMap != "":
		fmt.Fprintf(&b, "dnat to numgen random mod %d map @%s", r.MapMod, r.DNATMap)
	case r.Verdict != "":
		b.WriteString(r.Verdict)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func equalRules(a, b []Rule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
