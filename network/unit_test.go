package network

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/google/nftables/expr"
)

func TestPoolAllocate(t *testing.T) {
	p := newPool(netip.MustParsePrefix("10.9.0.0/29"), netip.Prefix{}, netip.MustParseAddr("10.9.0.1"))
	var got []string
	for {
		a, err := p.allocate(netip.Addr{})
		if err != nil {
			if !errdefs.IsUnavailable(err) {
				t.Fatalf("exhausted pool: want Unavailable, got %v", err)
			}
			break
		}
		got = append(got, a.String())
	}
	// .0 network, .1 gateway and .7 broadcast are never handed out.
	want := []string{"10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	// Round robin: a released address is not the next one handed out
	// while others are free.
	p.release(netip.MustParseAddr("10.9.0.3"))
	p.release(netip.MustParseAddr("10.9.0.5"))
	if a, _ := p.allocate(netip.Addr{}); a.String() != "10.9.0.3" {
		t.Fatalf("after wrap: got %s, want 10.9.0.3", a)
	}
	if a, _ := p.allocate(netip.Addr{}); a.String() != "10.9.0.5" {
		t.Fatalf("next: got %s, want 10.9.0.5", a)
	}
}

func TestPoolStaticAndRange(t *testing.T) {
	p := newPool(netip.MustParsePrefix("10.9.0.0/24"), netip.MustParsePrefix("10.9.0.128/25"), netip.MustParseAddr("10.9.0.1"))
	if a, _ := p.allocate(netip.Addr{}); a.String() != "10.9.0.129" {
		t.Fatalf("ip-range: first address %s, want 10.9.0.129", a)
	}
	tests := []struct {
		want  string
		check func(error) bool
	}{
		{"10.9.0.10", func(err error) bool { return err == nil }},
		{"10.9.0.10", errdefs.IsConflict},
		{"10.9.0.1", errdefs.IsConflict},
		{"10.9.1.10", errdefs.IsInvalidParameter},
		{"10.9.0.255", errdefs.IsConflict},
	}
	for _, tt := range tests {
		_, err := p.allocate(netip.MustParseAddr(tt.want))
		if !tt.check(err) {
			t.Errorf("static %s: unexpected result %v", tt.want, err)
		}
	}
}

func TestBroadcast(t *testing.T) {
	for in, want := range map[string]string{"10.0.0.0/8": "10.255.255.255", "172.29.0.0/16": "172.29.255.255", "192.168.1.4/30": "192.168.1.7"} {
		if got := broadcast(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("broadcast(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestRuleset(t *testing.T) {
	nets := []*Network{
		{Bridge: "berth0", Subnet: netip.MustParsePrefix("172.29.0.0/16")},
		{Bridge: "bn-1", Subnet: netip.MustParsePrefix("10.5.0.0/24"), Internal: true},
	}
	ports := []PortMapping{
		{Proto: "udp", HostPort: 53, CtrPort: 5353, CtrIP: netip.MustParseAddr("172.29.0.3")},
		{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, CtrPort: 80, CtrIP: netip.MustParseAddr("172.29.0.2")},
		{Proto: "tcp", HostIP: netip.MustParseAddr("::1"), HostPort: 9090, CtrPort: 80, CtrIP: netip.MustParseAddr("172.29.0.2")},
	}
	rs := ruleset(nets, ports)
	count := map[string]int{}
	for _, r := range rs {
		count[r.chain]++
	}
	// 2 jumps; 2 IPv4 port rules (the IPv6 host address is skipped);
	// masquerade for the non-internal network + 2 per bridge; 2 internal
	// drops + 2 isolation drops.
	want := map[string]int{chainPrerouting: 1, chainOutput: 1, chainPorts: 2, chainPostrouting: 5, chainForward: 5}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("chain %s: %d rules, want %d", k, count[k], v)
		}
	}
	var portRules []rule
	for _, r := range rs {
		if r.chain == chainPorts {
			portRules = append(portRules, r)
		}
	}
	// Sorted by host port: 53/udp first, to 172.29.0.3:5353.
	first := portRules[0].exprs
	if imm := first[len(first)-3].(*expr.Immediate); !bytes.Equal(imm.Data, []byte{172, 29, 0, 3}) {
		t.Errorf("first DNAT to %v, want 172.29.0.3", imm.Data)
	}
	if cmp := first[1].(*expr.Cmp); cmp.Data[0] != 17 {
		t.Errorf("first rule proto %d, want udp", cmp.Data[0])
	}
	// The 127.0.0.1 binding matches its daddr.
	second := portRules[1].exprs
	if cmp := second[2].(*expr.Cmp); !bytes.Equal(cmp.Data, []byte{127, 0, 0, 1}) {
		t.Errorf("second rule daddr %v, want 127.0.0.1", cmp.Data)
	}
	if nat := second[len(second)-1].(*expr.NAT); nat.Type != expr.NATTypeDestNAT {
		t.Errorf("second rule ends with %v, want dnat", nat)
	}
}
