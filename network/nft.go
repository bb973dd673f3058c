package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// All of berth's NAT and filtering lives in one table (ip <name>), rebuilt
// as a whole in one atomic batch from the networks and published ports:
// dropping it leaves the host's rule set as it was.

const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainForward     = "forward"
	chainPorts       = "ports"
)

type rule struct {
	chain string
	exprs []expr.Any
}

// ruleset computes the table's rules. Pure, so it is unit-tested.
func ruleset(nets []*Network, ports []PortMapping) []rule {
	var rs []rule
	add := func(chain string, e ...expr.Any) { rs = append(rs, rule{chain, e}) }
	// Traffic to any of the host's addresses (from outside, from the host
	// itself, 127.0.0.1 included, and from containers) goes by the ports chain.
	add(chainPrerouting, append(fibDaddrLocal(), jump(chainPorts))...)
	add(chainOutput, append(fibDaddrLocal(), jump(chainPorts))...)
	sorted := append([]PortMapping(nil), ports...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].HostPort != sorted[j].HostPort {
			return sorted[i].HostPort < sorted[j].HostPort
		}
		return sorted[i].Proto < sorted[j].Proto
	})
	for _, p := range sorted {
		var e []expr.Any
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			if !p.HostIP.Is4() {
				continue // IPv4 table; IPv6 host addresses are not published
			}
			e = append(e, matchAddr(16, netip.PrefixFrom(p.HostIP, 32))...)
		}
		e = append(e, matchL4(p.Proto, p.HostPort)...)
		e = append(e, dnat(p.CtrIP, p.CtrPort)...)
		add(chainPorts, e...)
	}
	// Published ports are reachable from every network (through the
	// host's address); isolation below applies to the rest.
	add(chainForward, append(ctDNAT(), &expr.Verdict{Kind: expr.VerdictAccept})...)
	bridges := make([]string, 0, len(nets))
	for _, n := range nets {
		bridges = append(bridges, n.Bridge)
		if !n.Internal {
			// Outbound masquerade.
			add(chainPostrouting, append(append(matchAddr(12, n.Subnet), matchIf(expr.MetaKeyOIFNAME, n.Bridge, false)...), &expr.Masq{})...)
		}
		// Host to a published port via 127.0.0.1: the container cannot
		// answer a loopback source.
		add(chainPostrouting, append(append(matchIf(expr.MetaKeyOIFNAME, n.Bridge, true), matchAddr(12, netip.MustParsePrefix("127.0.0.0/8"))...), &expr.Masq{})...)
		// Hairpin: a container reaching a published port of its own
		// network through the host's address must see the reply come back
		// through the host.
		add(chainPostrouting, append(append(append(matchIf(expr.MetaKeyIIFNAME, n.Bridge, true), matchIf(expr.MetaKeyOIFNAME, n.Bridge, true)...), ctDNAT()...), &expr.Masq{})...)
		if n.Internal {
			add(chainForward, append(append(matchIf(expr.MetaKeyIIFNAME, n.Bridge, true), matchIf(expr.MetaKeyOIFNAME, n.Bridge, false)...), drop())...)
			add(chainForward, append(append(matchIf(expr.MetaKeyOIFNAME, n.Bridge, true), matchIf(expr.MetaKeyIIFNAME, n.Bridge, false)...), drop())...)
		}
	}
	// Networks are isolated from each other.
	for _, a := range bridges {
		for _, b := range bridges {
			if a != b {
				add(chainForward, append(append(matchIf(expr.MetaKeyIIFNAME, a, true), matchIf(expr.MetaKeyOIFNAME, b, true)...), drop())...)
			}
		}
	}
	return rs
}

// applyRuleset replaces table name with the given rules in one transaction.
func applyRuleset(name string, rs []rule) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4}
	// add+delete+add: replaces the table whether or not it exists.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	chains := map[string]*nftables.Chain{
		chainPrerouting:  {Name: chainPrerouting, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
		chainOutput:      {Name: chainOutput, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest},
		chainPostrouting: {Name: chainPostrouting, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
		chainForward:     {Name: chainForward, Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept},
		chainPorts:       {Name: chainPorts, Table: t},
	}
	for _, n := range []string{chainPorts, chainPrerouting, chainOutput, chainPostrouting, chainForward} {
		c.AddChain(chains[n])
	}
	for _, r := range rs {
		c.AddRule(&nftables.Rule{Table: t, Chain: chains[r.chain], Exprs: r.exprs})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: apply table %s: %w", name, err)
	}
	return nil
}

// dropTable removes berth's table if present.
func dropTable(name string) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4}
	c.AddTable(t)
	c.DelTable(t)
	return c.Flush()
}

func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func matchIf(key expr.MetaKey, name string, eq bool) []expr.Any {
	op := expr.CmpOpEq
	if !eq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name)},
	}
}

// matchAddr matches the IPv4 source (offset 12) or destination (16) in p.
func matchAddr(offset uint32, p netip.Prefix) []expr.Any {
	mask := prefixIPNet(p).Mask
	net := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte(mask), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net[:]},
	}
}

func protoNum(proto string) byte {
	switch proto {
	case "udp":
		return unix.IPPROTO_UDP
	case "sctp":
		return unix.IPPROTO_SCTP
	}
	return unix.IPPROTO_TCP
}

func matchL4(proto string, dport uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNum(proto)}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(dport)},
	}
}

func dnat(ip netip.Addr, port uint16) []expr.Any {
	a := ip.As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

func fibDaddrLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

func ctDNAT() []expr.Any {
	const ipsDstNAT = 0x20
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func jump(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }
func drop() expr.Any             { return &expr.Verdict{Kind: expr.VerdictDrop} }

// A host where Docker ran has an iptables filter FORWARD chain with policy
// drop, which would drop our bridges' traffic whatever our own table says
// (a drop in any base chain is final). There, berth adds two accept rules
// for its bridge to that chain (through iptables, which owns it) and
// removes them when the bridge goes.

const iptablesComment = "berth"

func forwardDropsByDefault() bool {
	out, err := exec.Command("iptables", "-w", "-S", "FORWARD").Output()
	if err != nil {
		return false
	}
	return strings.Contains(string(out), "-P FORWARD DROP")
}

func iptablesRules(bridge string) [][]string {
	return [][]string{
		{"FORWARD", "-i", bridge, "-m", "comment", "--comment", iptablesComment, "-j", "ACCEPT"},
		{"FORWARD", "-o", bridge, "-m", "comment", "--comment", iptablesComment, "-j", "ACCEPT"},
	}
}

func allowForward(bridge string) error {
	if !forwardDropsByDefault() {
		return nil
	}
	var errs []error
	for _, r := range iptablesRules(bridge) {
		if exec.Command("iptables", append([]string{"-w", "-C"}, r...)...).Run() == nil {
			continue
		}
		if out, err := exec.Command("iptables", append([]string{"-w", "-I"}, r...)...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("iptables -I %s: %v: %s", strings.Join(r, " "), err, out))
		}
	}
	return errors.Join(errs...)
}

func disallowForward(bridge string) {
	if _, err := exec.LookPath("iptables"); err != nil {
		return
	}
	for _, r := range iptablesRules(bridge) {
		for exec.Command("iptables", append([]string{"-w", "-D"}, r...)...).Run() == nil {
		}
	}
}
