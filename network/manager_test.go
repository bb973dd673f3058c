package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates bridges, veths, network namespaces and nftables tables")
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("needs busybox (busybox-static) to run commands in namespaces")
	}
}

// testManager opens a manager with names of its own (bridge, table,
// subnet), removed at the end.
func testManager(t *testing.T, octet int) *Manager {
	t.Helper()
	suffix := fmt.Sprintf("%d%d", os.Getpid()%10000, octet)
	dir := t.TempDir()
	cfg := Config{
		DataDir:       filepath.Join(dir, "data"),
		ExecDir:       filepath.Join(dir, "run"),
		DefaultBridge: "bt" + suffix,
		DefaultCIDR:   netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.1/24", 200+octet%50, os.Getpid()%250)),
		Table:         "berthtest" + suffix,
	}
	m, err := Open(context.Background(), cfg, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, sb := range m.Sandboxes() {
			m.Release(sb.ContainerID)
		}
		nets := m.Networks()
		m.Close()
		for _, n := range nets {
			deleteLink(n.Bridge)
			disallowForward(n.Bridge)
		}
		dropTable(cfg.Table)
		exec.Command("umount", "-l", filepath.Join(cfg.ExecDir, "netns")).Run()
	})
	return m
}

func inNetns(path string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + path, "busybox"}, args...)...)
}

func TestSandboxReachesGatewayAndPublishedPort(t *testing.T) {
	needRoot(t)
	m := testManager(t, 1)
	id := fmt.Sprintf("%064x", time.Now().UnixNano())
	sb, err := m.Create(SandboxRequest{
		ContainerID: id, Name: "web", Hostname: "web",
		Endpoints: []EndpointRequest{{Network: "bridge"}},
		Ports:     network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: ""}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Plumb(id); err != nil {
		t.Fatal(err)
	}
	ep := sb.Endpoints[0]
	def := m.defaultNetwork()
	if !def.Subnet.Contains(ep.Addr) || ep.Addr == def.Gateway {
		t.Fatalf("address %s not a container address of %s", ep.Addr, def.Subnet)
	}
	if out, err := inNetns(sb.NetnsPath, "ping", "-c1", "-W2", def.Gateway.String()).CombinedOutput(); err != nil {
		t.Fatalf("ping gateway from the container: %v: %s", err, out)
	}
	// A server inside answers on the published port from 127.0.0.1 and
	// the bridge's address.
	srv := inNetns(sb.NetnsPath, "sh", "-c", "while true; do echo hello | busybox nc -l -p 80; done")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	if len(sb.Ports) != 1 || sb.Ports[0].HostPort == 0 {
		t.Fatalf("ports: %+v", sb.Ports)
	}
	hp := sb.Ports[0].HostPort
	for _, host := range []string{"127.0.0.1", def.Gateway.String()} {
		var got string
		for i := 0; i < 50 && got == ""; i++ {
			got = readFrom(net.JoinHostPort(host, fmt.Sprint(hp)))
			if got == "" {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if strings.TrimSpace(got) != "hello" {
			t.Fatalf("published port via %s: got %q", host, got)
		}
	}
	// The host port is taken: a second publication of it is refused.
	_, err = m.Create(SandboxRequest{ContainerID: id + "x", Name: "b", Endpoints: []EndpointRequest{{Network: "bridge"}},
		Ports: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: fmt.Sprint(hp)}}}})
	if err == nil || !strings.Contains(err.Error(), "already allocated") {
		t.Fatalf("second binding of port %d: %v", hp, err)
	}
	veth := ep.HostVeth
	m.Release(id)
	m.teardown.Wait()
	if _, err := netlink.LinkByName(veth); err == nil {
		t.Fatalf("veth %s left after release", veth)
	}
	if _, err := os.Stat(sb.NetnsPath); err == nil {
		t.Fatalf("netns %s left after release", sb.NetnsPath)
	}
	if out, _ := exec.Command("nft", "list", "table", "ip", m.cfg.Table).CombinedOutput(); strings.Contains(string(out), fmt.Sprintf("dport %d", hp)) {
		t.Fatalf("port rule left after release:\n%s", out)
	}
}

func readFrom(addr string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 64)
	n, _ := c.Read(b)
	return string(b[:n])
}
