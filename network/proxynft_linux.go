//go:build linux

package network

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The netlink backend of the service proxy and the NetworkPolicy
// enforcer: it turns a table's desired state (fixed base chains, chains
// of Rules, sets and map elements) into google/nftables messages and
// sends one sync as one batch (one atomic nftables transaction). Every
// rule carries a fingerprint of its nft text as its comment, so the
// state a previous daemon left in the kernel can be read back and diffed
// like the state of the last sync.

// nftBuffer is the socket send and receive buffer of the netlink socket:
// a full proxy sync of thousands of services is one sendmsg of several
// MB, and the kernel queues one ack per message before we read them.
const nftBuffer = 64 << 20

// nftTable programs one table of one netns.
type nftTable struct {
	conn  *nftables.Conn
	table *nftables.Table
	// dump is a second socket for the one table-wide rule dump of read.
	dump *netlink.Conn
}

func proxyTable() *nftables.Table {
	return &nftables.Table{Name: ProxyTable, Family: nftables.TableFamilyIPv4}
}

// tableName is the table as nft names it: "ip nanokube".
func tableName(tb *nftables.Table) string {
	fam := "ip"
	if tb.Family == nftables.TableFamilyINet {
		fam = "inet"
	}
	return fam + " " + tb.Name
}

// openTable opens a netlink socket for table tb in the netns at nsPath
// ("": the current one).
func openTable(nsPath string, tb *nftables.Table) (*nftTable, error) {
	bufs := func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = errors.Join(unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, nftBuffer),
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, nftBuffer))
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("netlink socket buffers: %w", serr)
		}
		return nil
	}
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(bufs)}
	nsFd := 0
	if nsPath != "" {
		f, err := os.Open(nsPath)
		if err != nil {
			return nil, fmt.Errorf("open netns %s: %w", nsPath, err)
		}
		defer f.Close() // the sockets are made below; they keep the netns
		nsFd = int(f.Fd())
		opts = append(opts, nftables.WithNetNSFd(nsFd))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("netlink socket for nftables in %q: %w", nsPath, err)
	}
	dump, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		conn.CloseLasting()
		return nil, fmt.Errorf("netlink socket for nftables dumps in %q: %w", nsPath, err)
	}
	if err := bufs(dump); err != nil {
		conn.CloseLasting()
		dump.Close()
		return nil, err
	}
	return &nftTable{conn: conn, dump: dump, table: tb}, nil
}

func (t *nftTable) Close() error { return errors.Join(t.conn.CloseLasting(), t.dump.Close()) }

// rulePrints dumps every rule of the table in one request and returns
// the fingerprints (comments) per chain, in rule order. google/nftables
// v0.3.0 dumps one chain per request and decodes every expression;
// the diff needs only the chain and the comment of each rule.
func (t *nftTable) rulePrints() (map[string][]string, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_RULE_TABLE, Data: []byte(t.table.Name + "\x00")}})
	if err != nil {
		return nil, err
	}
	req := netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE), Flags: netlink.Request | netlink.Dump},
		// nfgenmsg: family, version, resource id
		Data: append([]byte{byte(t.table.Family), unix.NFNETLINK_V0, 0, 0}, attrs...),
	}
	msgs, err := t.dump.Execute(req)
	if err != nil {
		return nil, fmt.Errorf("dump rules: %w", err)
	}
	out := map[string][]string{}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		var chain, print string
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_CHAIN:
				chain = ad.String()
			case unix.NFTA_RULE_USERDATA:
				print, _ = userdata.GetString(ad.Bytes(), userdata.TypeComment)
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("dump rules: %w", err)
		}
		out[chain] = append(out[chain], print)
	}
	return out, nil
}

// nftSync keeps one table of one netns at a desired state.
type nftSync struct {
	nsPath string
	table  *nftables.Table
	t      *nftTable   // nil until the first sync and after an error
	last   *tableState // what the last sync applied; nil: read the kernel
}

// sync sends, in one netlink batch, what turns the table into want: the
// difference with the last sync or, for the first one (and after an
// error or Forget), with the table read back from the kernel. It
// returns how many messages it sent (0: the table already matched).
func (s *nftSync) sync(want *tableState) (int, error) {
	if s.t == nil {
		t, err := openTable(s.nsPath, s.table)
		if err != nil {
			return 0, err
		}
		s.t = t
	}
	have := s.last
	if have == nil {
		var err error
		if have, err = s.t.read(); err != nil {
			s.Close()
			return 0, fmt.Errorf("read table %s: %w", tableName(s.table), err)
		}
	}
	n, err := s.t.apply(want, have)
	if err != nil {
		s.Close() // a fresh socket and a fresh read next time
		return n, err
	}
	s.last = want
	return n, nil
}

// Known reports whether the next sync diffs with the last one (false:
// with the kernel's table).
func (s *nftSync) Known() bool { return s.last != nil }

// Forget makes the next sync read the kernel's table, as after a restart.
func (s *nftSync) Forget() { s.last = nil }

// Close drops the socket and what was applied.
func (s *nftSync) Close() error {
	var err error
	if s.t != nil {
		err = s.t.Close()
	}
	s.t, s.last = nil, nil
	return err
}

// removeTable deletes table tb of the netns at nsPath; no table is fine.
func removeTable(nsPath string, tb *nftables.Table) error {
	t, err := openTable(nsPath, tb)
	if err != nil {
		return err
	}
	defer t.Close()
	if ok, err := t.exists(); err != nil || !ok {
		return err
	}
	t.conn.DelTable(t.table)
	if err := t.conn.Flush(); err != nil {
		return fmt.Errorf("delete table %s: %w", tableName(tb), err)
	}
	return nil
}

// ProxyNft applies rendered proxy rules to the table of one netns. The
// Proxy uses one per node; the benchmarks use it directly.
type ProxyNft struct{ nftSync }

// NewProxyNft is the table of the netns at nsPath ("": the current one).
func NewProxyNft(nsPath string) *ProxyNft {
	return &ProxyNft{nftSync{nsPath: nsPath, table: proxyTable()}}
}

// Sync applies r in one batch (see nftSync.sync).
func (s *ProxyNft) Sync(r *ProxyRules) (int, error) { return s.sync(desired(r)) }

// tableState is a table as applied: what the last sync sent, or what
// was read back from the kernel.
type tableState struct {
	chains map[string]appliedChain
	sets   map[string]string            // set → signature (flags, timeout)
	elems  map[string]map[string]string // map → key → value (not the affinity sets)
	// Desired states only: the fixed base chains and sets of the table.
	base  []baseChain
	fixed []string
}

func emptyState() *tableState {
	return &tableState{chains: map[string]appliedChain{}, sets: map[string]string{}, elems: map[string]map[string]string{}}
}

type appliedChain struct {
	hook string // base chains: type, hook, priority, policy
	// rules as rendered (after a sync of ours), or fingerprints (read
	// from the kernel, and the fixed base chains).
	rules      []Rule
	prints     []string
	printsOnly bool
}

func (c appliedChain) fingerprints() []string {
	if c.printsOnly {
		return c.prints
	}
	out := make([]string, len(c.rules))
	for i, r := range c.rules {
		out[i] = fingerprint(r.String())
	}
	return out
}

func sameChain(want, have appliedChain) bool {
	if want.hook != have.hook {
		return false
	}
	if want.printsOnly || have.printsOnly {
		a, b := want.fingerprints(), have.fingerprints()
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
	return equalRules(want.rules, have.rules)
}

// fingerprint is a rule's comment: a hash of its nft text.
func fingerprint(text string) string {
	h := fnv.New64a()
	h.Write([]byte(text))
	return fmt.Sprintf("nk:%016x", h.Sum64())
}

// desiredState is a whole table: its fixed base chains and sets (maps),
// and the chains and map elements rendered from the cluster.
func desiredState(base []baseChain, fixed []string, chains map[string][]Rule, elems map[string]map[string]string) *tableState {
	s := emptyState()
	s.base, s.fixed = base, fixed
	for _, b := range base {
		c := appliedChain{printsOnly: true}
		if b.chain.Hooknum != nil {
			c.hook = hookSignature(b.chain)
		}
		for _, rule := range b.rules {
			c.prints = append(c.prints, fingerprint(rule.text))
		}
		s.chains[b.chain.Name] = c
	}
	for name, rules := range chains {
		s.chains[name] = appliedChain{rules: rules}
	}
	for _, name := range fixed {
		s.sets[name] = setSignature(setSpec(nil, name, 0))
		s.elems[name] = map[string]string{}
	}
	for name, e := range elems {
		s.elems[name] = e
	}
	return s
}

// SyncDelta applies an incremental change (ProxyCache.Update) on top of
// what the last sync applied, in one batch. Without a last sync (see
// Known) it fails; so does a change of a set's shape, which a full sync
// rebuilds. On an error the next sync reads the kernel's table.
func (s *ProxyNft) SyncDelta(d ProxyDelta) (int, error) {
	if s.t == nil || s.last == nil {
		return 0, errors.New("incremental proxy sync without an applied table")
	}
	want, have := proxyState(d.Want, nil, nil), proxyState(d.Have, nil, nil)
	if needsRebuild(want, have) {
		s.Close()
		return 0, errors.New("incremental proxy sync changes the shape of a set")
	}
	n, err := s.t.apply(want, have)
	if err != nil {
		s.Close()
		return n, err
	}
	s.last.patch(want, have)
	return n, nil
}

// patch updates an applied state by an applied incremental change: have
// is the part replaced, want what replaced it.
func (s *tableState) patch(want, have *tableState) {
	for name := range have.chains {
		if _, ok := want.chains[name]; !ok {
			delete(s.chains, name)
		}
	}
	for name, c := range want.chains {
		s.chains[name] = c
	}
	for name := range have.sets {
		if _, ok := want.sets[name]; !ok {
			delete(s.sets, name)
		}
	}
	for name, sig := range want.sets {
		s.sets[name] = sig
	}
	for name := range have.elems {
		if _, ok := want.elems[name]; !ok {
			delete(s.elems, name)
		}
	}
	for name, w := range want.elems {
		if !isSharedMap(name) {
			s.elems[name] = w
			continue
		}
		m := s.elems[name]
		if m == nil {
			m = map[string]string{}
			s.elems[name] = m
		}
		for k := range have.elems[name] {
			if _, ok := w[k]; !ok {
				delete(m, k)
			}
		}
		for k, v := range w {
			m[k] = v
		}
	}
}

// desired is the whole proxy table r stands for: the fixed part and r.
func desired(r *ProxyRules) *tableState {
	return proxyState(r, baseChains(r.PodCIDR), fixedMaps)
}

// proxyState is the table state of r with the given fixed part (none:
// a part of the table, for an incremental sync).
func proxyState(r *ProxyRules, base []baseChain, fixed []string) *tableState {
	s := desiredState(base, fixed, r.Chains, r.Elems)
	for name, timeout := range r.Sets {
		s.sets[name] = setSignature(setSpec(nil, name, timeout))
	}
	for name := range r.Elems {
		if strings.HasPrefix(name, epMapPrefix) {
			s.sets[name] = setSignature(setSpec(nil, name, 0))
		}
	}
	return s
}

var fixedMaps = []string{mapServiceIPs, mapNodePorts, mapNoEndpoints, mapNoEndpointPort, setHairpin, setMasqIPs, setMasqNodePorts}

// setSpec is the declaration of a set or map of a table by its name
// (the names of the proxy's and the policy table's sets differ).
func setSpec(t *nftables.Table, name string, timeout int32) *nftables.Set {
	s := &nftables.Set{Table: t, Name: name}
	switch {
	case name == mapServiceIPs || name == mapNoEndpoints:
		s.IsMap, s.KeyType, s.DataType = true, nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService), nftables.TypeVerdict
	case name == mapNodePorts || name == mapNoEndpointPort:
		s.IsMap, s.KeyType, s.DataType = true, nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService), nftables.TypeVerdict
	case name == mapPolicyIngress || name == mapPolicyEgress:
		s.IsMap, s.KeyType, s.DataType = true, nftables.TypeIPAddr, nftables.TypeVerdict
	case name == setHairpin:
		s.KeyType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeIPAddr)
	case name == setMasqIPs:
		s.KeyType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	case name == setMasqNodePorts:
		s.KeyType = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	case strings.HasPrefix(name, epMapPrefix):
		s.IsMap, s.KeyType, s.DataType = true, nftables.TypeInteger, nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
		s.KeyByteOrder = binaryutil.NativeEndian
	default: // affinity set
		s.KeyType, s.HasTimeout, s.Dynamic, s.Timeout = nftables.TypeIPAddr, true, true, time.Duration(timeout)*time.Second
	}
	return s
}

// setSignature is what is compared of a set read back from the kernel.
// Key and data types are given by the name (google/nftables v0.3.0 does
// not read a verdict map's key type back).
func setSignature(s *nftables.Set) string {
	return fmt.Sprintf("map=%v timeout=%v/%s dynamic=%v", s.IsMap, s.HasTimeout, s.Timeout, s.Dynamic)
}

func hookSignature(c *nftables.Chain) string {
	var hook, prio, policy int64
	if c.Hooknum != nil {
		hook = int64(*c.Hooknum)
	}
	if c.Priority != nil {
		prio = int64(*c.Priority)
	}
	if c.Policy != nil {
		policy = int64(*c.Policy)
	}
	return fmt.Sprintf("%s/%d/%d/%d", c.Type, hook, prio, policy)
}

func (t *nftTable) exists() (bool, error) {
	tables, err := t.conn.ListTablesOfFamily(t.table.Family)
	if err != nil {
		return false, fmt.Errorf("list tables: %w", err)
	}
	for _, tb := range tables {
		if tb.Name == t.table.Name {
			return true, nil
		}
	}
	return false, nil
}

// read loads the table's state from the kernel; nil when there is no table.
func (t *nftTable) read() (*tableState, error) {
	if ok, err := t.exists(); err != nil || !ok {
		return nil, err
	}
	s := emptyState()
	chains, err := t.conn.ListChainsOfTableFamily(t.table.Family)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	prints, err := t.rulePrints()
	if err != nil {
		return nil, err
	}
	for _, c := range chains {
		if c.Table.Name != t.table.Name {
			continue
		}
		ac := appliedChain{printsOnly: true, prints: prints[c.Name]}
		if ac.prints == nil {
			ac.prints = []string{}
		}
		if c.Hooknum != nil {
			ac.hook = hookSignature(c)
		}
		s.chains[c.Name] = ac
	}
	sets, err := t.conn.GetSets(t.table)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	for _, set := range sets {
		s.sets[set.Name] = setSignature(set)
		if strings.HasPrefix(set.Name, "aff") {
			continue // affinity sets: the kernel owns their elements
		}
		elems, err := t.conn.GetSetElements(set)
		if err != nil {
			return nil, fmt.Errorf("list elements of %s: %w", set.Name, err)
		}
		m := make(map[string]string, len(elems))
		for _, e := range elems {
			k, v, err := decodeElem(set.Name, e)
			if err != nil {
				// Not ours: delete it by its raw key.
				k, v = "raw:"+string(e.Key), "?"
			}
			m[k] = v
		}
		s.elems[set.Name] = m
	}
	return s, nil
}

// needsRebuild reports whether have has a set or base chain of another
// shape than want: the table is deleted and built again.
func needsRebuild(want, have *tableState) bool {
	for _, name := range want.fixed {
		if sig, ok := have.sets[name]; ok && sig != want.sets[name] {
			return true
		}
	}
	for name, w := range want.chains {
		if h, ok := have.chains[name]; ok && h.hook != w.hook {
			return true
		}
	}
	for name, sig := range have.sets {
		if w, ok := want.sets[name]; ok && w != sig {
			return true
		}
	}
	return false
}

// apply sends the batch that turns have (nil: no table) into want and
// returns how many messages it sent (0: nothing to do).
func (t *nftTable) apply(want, have *tableState) (int, error) {
	c, tb := t.conn, t.table
	n := 0
	if have == nil || needsRebuild(want, have) {
		if have != nil {
			c.DelTable(tb)
			n++
		}
		c.AddTable(tb)
		n++
		have = emptyState()
	}
	for name := range want.sets {
		if _, ok := have.sets[name]; ok {
			continue
		}
		if err := c.AddSet(setSpec(tb, name, affinityTimeout(name)), nil); err != nil {
			return 0, fmt.Errorf("add set %s: %w", name, err)
		}
		n++
	}
	// New chains first, so any rule may jump to any of them.
	chainRef := func(name string) *nftables.Chain { return &nftables.Chain{Name: name, Table: tb} }
	base := map[string]baseChain{}
	for _, b := range want.base {
		base[b.chain.Name] = b
	}
	for _, name := range sortedKeys(want.chains) {
		if _, ok := have.chains[name]; ok {
			continue
		}
		if b, ok := base[name]; ok {
			ch := *b.chain
			ch.Table = tb
			c.AddChain(&ch)
		} else {
			c.AddChain(chainRef(name))
		}
		n++
	}
	for _, name := range sortedKeys(want.chains) {
		w := want.chains[name]
		h, existed := have.chains[name]
		if existed && sameChain(w, h) {
			continue
		}
		ch := chainRef(name)
		if existed {
			c.FlushChain(ch)
			n++
		}
		if b, ok := base[name]; ok {
			for _, r := range b.rules {
				c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: r.exprs, UserData: userdata.AppendString(nil, userdata.TypeComment, fingerprint(r.text))})
				n++
			}
			continue
		}
		for _, r := range w.rules {
			exprs, err := ruleExprs(r)
			if err != nil {
				return 0, fmt.Errorf("chain %s: rule %q: %w", name, r, err)
			}
			c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: exprs, UserData: userdata.AppendString(nil, userdata.TypeComment, fingerprint(r.String()))})
			n++
		}
	}
	// Elements: one delete and one add message per map.
	for _, name := range sortedKeys(want.elems) {
		w, h := want.elems[name], have.elems[name]
		var del, add []nftables.SetElement
		for k, v := range h {
			if wv, ok := w[k]; !ok || wv != v {
				e, err := encodeElem(name, k, "")
				if raw, ok := strings.CutPrefix(k, "raw:"); ok {
					e, err = nftables.SetElement{Key: []byte(raw)}, nil
				}
				if err != nil {
					return 0, fmt.Errorf("map %s: delete %q: %w", name, k, err)
				}
				del = append(del, e)
			}
		}
		for k, v := range w {
			if hv, ok := h[k]; !ok || hv != v {
				e, err := encodeElem(name, k, v)
				if err != nil {
					return 0, fmt.Errorf("map %s: add %q: %w", name, k, err)
				}
				add = append(add, e)
			}
		}
		set := setSpec(tb, name, 0)
		for _, part := range elemChunks(del) {
			if err := c.SetDeleteElements(set, part); err != nil {
				return 0, fmt.Errorf("map %s: delete elements: %w", name, err)
			}
			n++
		}
		for _, part := range elemChunks(add) {
			if err := c.SetAddElements(set, part); err != nil {
				return 0, fmt.Errorf("map %s: add elements: %w", name, err)
			}
			n++
		}
	}
	// Chains and sets nothing refers to any more go last.
	var gone []string
	for name := range have.chains {
		if _, ok := want.chains[name]; !ok {
			gone = append(gone, name)
		}
	}
	for _, name := range gone {
		c.FlushChain(chainRef(name))
		n++
	}
	for _, name := range gone {
		c.DelChain(chainRef(name))
		n++
	}
	for name := range have.sets {
		if _, ok := want.sets[name]; !ok {
			c.DelSet(&nftables.Set{Table: tb, Name: name})
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	if err := c.Flush(); err != nil {
		return n, fmt.Errorf("nftables transaction of %d messages: %w", n, err)
	}
	return n, nil
}

// elemChunks splits elements so that each message's element list stays
// below 64 KiB: its length is a 16-bit attribute length, and a longer
// list is cut off silently (nft splits its element lists the same way).
func elemChunks(elems []nftables.SetElement) [][]nftables.SetElement {
	const limit = 48 << 10
	var out [][]nftables.SetElement
	start, size := 0, 0
	for i, e := range elems {
		es := 64 + len(e.Key) + len(e.Val) // attribute headers and padding
		if e.VerdictData != nil {
			es += len(e.VerdictData.Chain)
		}
		if size+es > limit && i > start {
			out = append(out, elems[start:i])
			start, size = i, 0
		}
		size += es
	}
	if start < len(elems) {
		out = append(out, elems[start:])
	}
	return out
}

// affinityTimeout reads the timeout back from an affinity set's name
// (aff<seconds>-…); 0 for other sets.
func affinityTimeout(name string) int32 {
	if !strings.HasPrefix(name, "aff") {
		return 0
	}
	i := strings.IndexByte(name, '-')
	if i < 0 {
		return 0
	}
	v, _ := strconv.Atoi(name[3:i])
	return int32(v)
}
