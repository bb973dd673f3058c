// Package portspec parses docker's -p/--expose port specifications.
package portspec

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/network"
)

// Spec is one container port of a -p flag with the host side asked for.
type Spec struct {
	Port    network.Port
	Binding network.PortBinding
}

// Parse parses a -p value the way docker does:
// [ip:][hostPort[-hostEnd]:]containerPort[-containerEnd][/proto]. A host
// range with a single container port keeps the range as the binding's
// HostPort (the engine picks a free port in it); equal-length ranges map
// port to port.
func Parse(s string) ([]Spec, error) {
	bad := func(why string) error {
		return errdefs.InvalidParameterf("invalid port specification: %q: %s", s, why)
	}
	rest, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, bad("invalid proto")
	}
	var ip, host, ctr string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 || len(rest) < end+2 || rest[end+1] != ':' {
			return nil, bad("invalid IP address")
		}
		ip, rest = rest[1:end], rest[end+2:]
		var ok bool
		host, ctr, ok = strings.Cut(rest, ":")
		if !ok {
			return nil, bad("missing container port")
		}
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctr = parts[0]
		case 2:
			host, ctr = parts[0], parts[1]
		case 3:
			ip, host, ctr = parts[0], parts[1], parts[2]
		default:
			return nil, bad("too many colons")
		}
	}
	var addr netip.Addr
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			return nil, bad("invalid IP address")
		}
		addr = a.Unmap()
	}
	if host == "0" {
		host = "" // any free port, as docker takes it
	}
	if ctr == "" {
		return nil, bad("no port specified")
	}
	cs, ce, err := parseRange(ctr)
	if err != nil {
		return nil, bad("invalid containerPort: " + ctr)
	}
	var hs, he uint16
	if host != "" {
		if hs, he, err = parseRange(host); err != nil {
			return nil, bad("invalid hostPort: " + host)
		}
	}
	n := int(ce - cs)
	if host != "" && n > 0 && int(he-hs) != n {
		return nil, bad("port ranges don't match in size")
	}
	out := make([]Spec, 0, n+1)
	for i := 0; i <= n; i++ {
		p, ok := network.PortFrom(cs+uint16(i), network.IPProtocol(proto))
		if !ok {
			return nil, bad("invalid port")
		}
		b := network.PortBinding{HostIP: addr}
		switch {
		case host == "":
		case n == 0 && he != hs:
			b.HostPort = fmt.Sprintf("%d-%d", hs, he)
		default:
			b.HostPort = strconv.Itoa(int(hs) + i)
		}
		out = append(out, Spec{Port: p, Binding: b})
	}
	return out, nil
}

// parseRange parses "N" or "N-M" with 0 < N <= M <= 65535.
func parseRange(s string) (uint16, uint16, error) {
	a, b, isRange := strings.Cut(s, "-")
	start, err := parsePort(a)
	if err != nil {
		return 0, 0, err
	}
	end := start
	if isRange {
		if end, err = parsePort(b); err != nil {
			return 0, 0, err
		}
		if end < start {
			return 0, 0, fmt.Errorf("invalid range %s", s)
		}
	}
	return start, end, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	return uint16(n), nil
}

// HostPorts parses a binding's HostPort: "" (any), "N" or "N-M".
func HostPorts(s string) (uint16, uint16, error) {
	if s == "" || s == "0" {
		return 0, 0, nil
	}
	return parseRange(s)
}
