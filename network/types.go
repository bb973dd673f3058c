// Package network gives containers their networking: bridges with an IPAM
// each, a network namespace per container joined to them by veth pairs,
// NAT and published ports in one nftables table of berth's own, and an
// embedded DNS server on user-defined networks.
package network

import (
	"net"
	"net/netip"
	"time"
)

// Network is one bridge network, persisted in <data-root>/network/networks.json.
type Network struct {
	ID       string
	Name     string
	Created  time.Time
	Bridge   string       // the Linux bridge's name
	Subnet   netip.Prefix // e.g. 172.29.0.0/16
	Gateway  netip.Addr   // the bridge's own address
	IPRange  netip.Prefix // where container addresses are picked (defaults to Subnet)
	Internal bool
	// Default marks the default bridge: no embedded DNS, not removable.
	Default bool
	// UserSubnet records whether the subnet was given (Docker shows Config
	// either way; kept for inspect fidelity).
	UserSubnet bool
	Labels     map[string]string
	Options    map[string]string
	EnableIPv6 bool
}

// Endpoint is one container's attachment to one network.
type Endpoint struct {
	NetworkID  string
	EndpointID string
	HostVeth   string
	IfName     string // inside the container: eth0, eth1...
	Addr       netip.Addr
	MAC        net.HardwareAddr
	Aliases    []string
	// DNSNames are the names the embedded DNS answers with Addr.
	DNSNames []string
	// StaticIP records a user-requested address.
	StaticIP bool
}

// PortMapping is one published port, resolved to a concrete host port.
type PortMapping struct {
	Proto    string     // tcp or udp
	HostIP   netip.Addr // unspecified: all host addresses
	HostPort uint16
	CtrPort  uint16
	CtrIP    netip.Addr
}

// Sandbox is a container's network namespace and what is attached to it,
// persisted in <exec-root>/network/sandboxes/<container-id>.json so that a
// restarted daemon keeps it and a crashed one's leftovers can be removed.
type Sandbox struct {
	ContainerID string
	Name        string // container name, without the leading slash
	Hostname    string
	NetnsPath   string
	Endpoints   []*Endpoint
	Ports       []PortMapping
}

// Endpoint returns the sandbox's endpoint on network id, or nil.
func (s *Sandbox) Endpoint(networkID string) *Endpoint {
	for _, ep := range s.Endpoints {
		if ep.NetworkID == networkID {
			return ep
		}
	}
	return nil
}
