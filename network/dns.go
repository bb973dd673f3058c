package network

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// The embedded DNS of a user network listens on the network's gateway
// address (the containers' nameserver there), answers container names,
// aliases and short IDs of the network's endpoints, and forwards every
// other question to the host's resolvers. The daemon runs in the host's
// network namespace, so loopback resolvers (systemd-resolved) work too.

type dnsServer struct {
	udp, tcp *dns.Server
}

func (s *dnsServer) close() {
	s.udp.Shutdown()
	s.tcp.Shutdown()
}

func (m *Manager) startDNS(n *Network) (*dnsServer, error) {
	addr := net.JoinHostPort(n.Gateway.String(), "53")
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { m.answer(n.ID, w, r) })
	s := &dnsServer{udp: &dns.Server{PacketConn: pc, Handler: h}, tcp: &dns.Server{Listener: l, Handler: h}}
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	return s, nil
}

// lookup returns the addresses of the endpoints named name on network id.
func (m *Manager) lookup(networkID, name string) []netip.Addr {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []netip.Addr
	for _, sb := range m.sandboxes {
		ep := sb.Endpoint(networkID)
		if ep == nil {
			continue
		}
		for _, dn := range ep.DNSNames {
			if strings.ToLower(dn) == name {
				out = append(out, ep.Addr)
				break
			}
		}
	}
	return out
}

func (m *Manager) answer(networkID string, w dns.ResponseWriter, r *dns.Msg) {
	defer w.Close()
	if len(r.Question) == 1 {
		q := r.Question[0]
		if addrs := m.lookup(networkID, q.Name); len(addrs) > 0 {
			resp := new(dns.Msg)
			resp.SetReply(r)
			resp.Authoritative = true
			resp.RecursionAvailable = true
			if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
				for _, a := range addrs {
					resp.Answer = append(resp.Answer, &dns.A{
						Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 600},
						A:   a.AsSlice(),
					})
				}
			}
			w.WriteMsg(resp)
			return
		}
	}
	m.forward(w, r)
}

// forward relays a question to the host's resolvers in turn.
func (m *Manager) forward(w dns.ResponseWriter, r *dns.Msg) {
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	c := &dns.Client{Net: proto, Timeout: 4 * time.Second}
	for _, s := range hostResolvers() {
		resp, _, err := c.Exchange(r, net.JoinHostPort(s, "53"))
		if err == nil && resp != nil {
			w.WriteMsg(resp)
			return
		}
	}
	fail := new(dns.Msg)
	fail.SetRcode(r, dns.RcodeServerFailure)
	w.WriteMsg(fail)
}

// hostResolvers reads the host's nameservers.
func hostResolvers() []string {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}

// DNSServer returns the nameserver containers on network ref should use:
// the gateway of a user network (served by the embedded DNS), or nothing.
func (m *Manager) DNSServer(ref string) (netip.Addr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.find(ref)
	if err != nil || n.Default || m.dns[n.ID] == nil {
		return netip.Addr{}, false
	}
	return n.Gateway, true
}
