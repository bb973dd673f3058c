package network

import (
	"fmt"
	"net/netip"

	"github.com/berth-dev/berth/errdefs"
)

// pool hands out a network's addresses. Allocation goes round-robin from
// the last address given, so that an address just released (whose veth may
// still be going away) is not reused at once.
type pool struct {
	subnet  netip.Prefix
	rng     netip.Prefix
	gateway netip.Addr
	used    map[netip.Addr]bool
	last    netip.Addr
}

func newPool(subnet, rng netip.Prefix, gateway netip.Addr) *pool {
	if !rng.IsValid() {
		rng = subnet
	}
	return &pool{subnet: subnet.Masked(), rng: rng.Masked(), gateway: gateway, used: map[netip.Addr]bool{}}
}

// reserved reports addresses no container may have: the network and
// broadcast addresses and the gateway.
func (p *pool) reserved(a netip.Addr) bool {
	return a == p.subnet.Addr() || a == broadcast(p.subnet) || a == p.gateway
}

// allocate returns a free address: want if it is valid (static), else the
// next free one after the last allocated.
func (p *pool) allocate(want netip.Addr) (netip.Addr, error) {
	if want.IsValid() {
		if !p.subnet.Contains(want) {
			return netip.Addr{}, errdefs.InvalidParameterf("invalid address %s: it does not belong to the network's subnet %s", want, p.subnet)
		}
		if p.reserved(want) || p.used[want] {
			return netip.Addr{}, errdefs.Conflictf("Address already in use: %s", want)
		}
		p.used[want] = true
		return want, nil
	}
	first := p.rng.Addr().Next()
	end := broadcast(p.rng)
	start := first
	if p.last.IsValid() && p.rng.Contains(p.last) && p.last.Next().Compare(end) < 0 {
		start = p.last.Next()
	}
	for a, wrapped := start, false; ; {
		if a.Compare(end) >= 0 || !p.rng.Contains(a) {
			if wrapped {
				break
			}
			a, wrapped = first, true
			continue
		}
		if wrapped && a == start {
			break
		}
		if !p.reserved(a) && !p.used[a] {
			p.used[a] = true
			p.last = a
			return a, nil
		}
		a = a.Next()
	}
	return netip.Addr{}, errdefs.Unavailable(fmt.Errorf("no available IPv4 addresses on this network's address pools: %s", p.rng))
}

// mark records an address found in use (on restore).
func (p *pool) mark(a netip.Addr) { p.used[a] = true }

func (p *pool) release(a netip.Addr) { delete(p.used, a) }

// broadcast is the last address of a prefix.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		a[i/8] |= 1 << (7 - uint(i%8))
	}
	out := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		out = out.Unmap()
	}
	return out
}

// overlaps reports whether two prefixes share an address.
func overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }
