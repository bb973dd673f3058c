package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// writeBundle writes the container's network files and its OCI bundle
// (config.json) for the runtime. Caller holds c.mu.
func (d *Daemon) writeBundle(c *Container, rootfs string) error {
	if err := d.writeNetworkFiles(c); err != nil {
		return err
	}
	spec, err := d.generateSpec(c, rootfs)
	if err != nil {
		return err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	if err := os.MkdirAll(c.bundleDir(), 0o700); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.bundleDir(), "config.json"), data, 0o600); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return nil
}

func (c *Container) hostnamePath() string   { return filepath.Join(c.dir, "hostname") }
func (c *Container) hostsPath() string      { return filepath.Join(c.dir, "hosts") }
func (c *Container) resolvConfPath() string { return filepath.Join(c.dir, "resolv.conf") }

// writeNetworkFiles writes /etc/hostname, /etc/hosts and /etc/resolv.conf
// for the container. With the host network they mirror the host's.
func (d *Daemon) writeNetworkFiles(c *Container) error {
	hostname := c.Config.Hostname
	var hosts strings.Builder
	if c.HostConfig.NetworkMode == "host" {
		if h, err := os.Hostname(); err == nil && hostname == "" {
			hostname = h
		}
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts.Write(b)
		}
	} else {
		hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
		d.netHosts(c, &hosts)
	}
	for _, h := range c.HostConfig.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			name, ip, _ = strings.Cut(h, "=")
		}
		fmt.Fprintf(&hosts, "%s\t%s\n", ip, name)
	}
	files := map[string][]byte{
		c.hostnamePath():   []byte(hostname + "\n"),
		c.hostsPath():      []byte(hosts.String()),
		c.resolvConfPath(): resolvConf(d.netDNS(c), c.HostConfig.DNSSearch, c.HostConfig.DNSOptions),
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", filepath.Base(path), err)
		}
	}
	return nil
}

// resolvConf derives the container's resolv.conf from the host's, dropping
// loopback resolvers a container cannot reach (Docker's rule), with
// --dns/--dns-search/--dns-option overrides.
func resolvConf(dns []netip.Addr, search, options []string) []byte {
	host, _ := os.ReadFile("/etc/resolv.conf")
	var servers, searches, opts []string
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
				servers = append(servers, f[1])
			}
		case "search", "domain":
			searches = f[1:]
		case "options":
			opts = append(opts, f[1:]...)
		}
	}
	if len(dns) > 0 {
		servers = servers[:0]
		for _, a := range dns {
			servers = append(servers, a.String())
		}
	}
	if len(servers) == 0 {
		servers = []string{"8.8.8.8", "8.8.4.4"}
	}
	if len(search) > 0 {
		searches = search
	}
	if len(options) > 0 {
		opts = options
	}
	var b bytes.Buffer
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	}
	return b.Bytes()
}
