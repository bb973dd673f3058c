package network

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/network/portspec"
	"github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"
)

// A published port is held by a socket bound (not listening) on the host
// port: nothing else on the host can take it meanwhile, and binding is the
// test that it is free, whoever holds it. Traffic never reaches the socket:
// it is DNATed before local delivery.

type portKey struct {
	proto string
	ip    netip.Addr
	port  uint16
}

type reservation struct{ fd int }

func (r reservation) Close() error { return unix.Close(r.fd) }

// reservePort binds proto on ip:port (port 0: a kernel-chosen free port)
// and returns the reservation and the port.
func reservePort(proto string, ip netip.Addr, port uint16) (io.Closer, uint16, error) {
	typ, p := unix.SOCK_STREAM, unix.IPPROTO_TCP
	switch proto {
	case "udp":
		typ, p = unix.SOCK_DGRAM, unix.IPPROTO_UDP
	case "sctp":
		typ, p = unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, p)
	if err != nil {
		return nil, 0, err
	}
	sa := &unix.SockaddrInet4{Port: int(port)}
	if ip.IsValid() {
		sa.Addr = ip.As4()
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, 0, err
	}
	if port == 0 {
		got, err := unix.Getsockname(fd)
		if err != nil {
			unix.Close(fd)
			return nil, 0, err
		}
		port = uint16(got.(*unix.SockaddrInet4).Port)
	}
	return reservation{fd}, port, nil
}

// resolvePorts turns the requested bindings into concrete mappings to
// ctrIP, reserving each host port. On error nothing stays reserved.
func (m *Manager) resolvePorts(req network.PortMap, ctrIP netip.Addr) ([]PortMapping, []portKey, error) {
	var keys []portKey
	var out []PortMapping
	fail := func(err error) ([]PortMapping, []portKey, error) {
		m.unreserve(keys)
		return nil, nil, err
	}
	ports := make([]network.Port, 0, len(req))
	for p := range req {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].Num() < ports[j].Num() })
	for _, p := range ports {
		for _, b := range req[p] {
			proto := string(p.Proto())
			hostIP := b.HostIP
			if hostIP.IsValid() && hostIP.IsUnspecified() {
				hostIP = netip.Addr{}
			}
			if hostIP.IsValid() && !hostIP.Unmap().Is4() {
				continue // IPv6 host addresses are not published (IPv4 NAT only)
			}
			hostIP = hostIP.Unmap()
			lo, hi, err := portspec.HostPorts(b.HostPort)
			if err != nil {
				return fail(errdefs.InvalidParameterf("invalid port specification: %q", b.HostPort))
			}
			var got uint16
			var lastErr error
			for port := lo; ; port++ {
				key, c, n, err := m.reserve(proto, hostIP, port)
				if err == nil {
					keys = append(keys, key)
					m.reserved[key] = c
					got = n
					break
				}
				lastErr = err
				if port >= hi {
					break
				}
			}
			if got == 0 {
				return fail(lastErr)
			}
			out = append(out, PortMapping{Proto: proto, HostIP: hostIP, HostPort: got, CtrPort: p.Num(), CtrIP: ctrIP})
		}
	}
	return out, keys, nil
}

// reserve checks berth's own mappings, then binds. Caller holds m.mu.
func (m *Manager) reserve(proto string, ip netip.Addr, port uint16) (portKey, io.Closer, uint16, error) {
	if port != 0 {
		for k := range m.reserved {
			if k.proto == proto && k.port == port && (!k.ip.IsValid() || !ip.IsValid() || k.ip == ip) {
				return portKey{}, nil, 0, errdefs.Conflictf("Bind for %s:%d failed: port is already allocated", displayIP(ip), port)
			}
		}
	}
	c, n, err := reservePort(proto, ip, port)
	if err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return portKey{}, nil, 0, errdefs.Conflictf("failed to bind host port for %s:%d/%s: address already in use", displayIP(ip), port, proto)
		}
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return portKey{}, nil, 0, errdefs.InvalidParameterf("failed to bind host port for %s:%d/%s: cannot assign requested address", displayIP(ip), port, proto)
		}
		return portKey{}, nil, 0, fmt.Errorf("bind host port %s:%d/%s: %w", displayIP(ip), port, proto, os.NewSyscallError("bind", err))
	}
	return portKey{proto, ip, n}, c, n, nil
}

func (m *Manager) unreserve(keys []portKey) {
	for _, k := range keys {
		if c := m.reserved[k]; c != nil {
			c.Close()
		}
		delete(m.reserved, k)
	}
}

func displayIP(ip netip.Addr) string {
	if !ip.IsValid() {
		return "0.0.0.0"
	}
	return ip.String()
}

func keysOf(ps []PortMapping) []portKey {
	out := make([]portKey, len(ps))
	for i, p := range ps {
		out[i] = portKey{p.Proto, p.HostIP, p.HostPort}
	}
	return out
}
