package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func e2eBridge() string { return fmt.Sprintf("be2e%d", os.Getpid()%100000) }

func e2eBIP() string {
	return fmt.Sprintf("10.%d.%d.1/24", 150+os.Getpid()%50, (os.Getpid()/50)%256)
}

// hostAddr is an address of the host other than loopback and the suite's
// bridges: where "other hosts" reach it.
func hostAddr(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "-4", "route", "get", "192.0.2.123").Output()
	if err == nil {
		f := strings.Fields(string(out))
		for i := range f {
			if f[i] == "src" && i+1 < len(f) {
				return f[i+1]
			}
		}
	}
	t.Skip("no default route: cannot find the host's own address")
	return ""
}

// httpGet fetches url from the host with a short retry while the server starts.
func httpGet(addr string) string {
	for i := 0; i < 40; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprintf(c, "GET / HTTP/1.0\r\n\r\n")
			b := make([]byte, 4096)
			var all []byte
			for {
				n, err := c.Read(b)
				all = append(all, b[:n]...)
				if err != nil {
					break
				}
			}
			c.Close()
			if len(all) > 0 {
				return string(all)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ""
}

func webRoot(t *testing.T, body string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestNetworkUserDefinedByNameAndPublished(t *testing.T) {
	e := need(t)
	net1 := "e2enet" + fmt.Sprint(os.Getpid())
	e.ok(t, "network", "create", net1)
	defer e.docker(t, "", "network", "rm", net1)
	www := webRoot(t, "hello-berth\n")
	srv := strings.TrimSpace(e.ok(t, "run", "-d", "--name", "web1", "--network", net1, "--network-alias", "webalias",
		"-p", "127.0.0.1::80", "-p", "80", "-v", www+":/www", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"))
	defer e.docker(t, "", "rm", "-f", srv)

	// Container to container by name and by alias (embedded DNS).
	out := e.ok(t, "run", "--rm", "--network", net1, "busybox", "sh", "-c",
		"for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://web1/ && break; sleep 0.2; done; wget -qO- http://webalias/")
	if strings.Count(out, "hello-berth") != 2 {
		t.Fatalf("by name and alias: %q", out)
	}
	// The default bridge does no name resolution.
	if r := e.docker(t, "", "run", "--rm", "busybox", "nslookup", "web1"); r.code == 0 && strings.Contains(r.stdout, "Address: 1") && !strings.Contains(r.stdout, "NXDOMAIN") {
		t.Fatalf("default bridge resolved a container name: %s", r)
	}

	// docker port shows both mappings.
	ports := e.ok(t, "port", srv)
	var loPort, anyPort string
	for _, line := range strings.Split(strings.TrimSpace(ports), "\n") {
		_, hp, _ := strings.Cut(line, " -> ")
		if strings.HasPrefix(hp, "127.0.0.1:") {
			loPort = strings.TrimPrefix(hp, "127.0.0.1:")
		} else if strings.HasPrefix(hp, "0.0.0.0:") {
			anyPort = strings.TrimPrefix(hp, "0.0.0.0:")
		}
	}
	if loPort == "" || anyPort == "" {
		t.Fatalf("docker port: %q", ports)
	}
	// Host to published ports: 127.0.0.1 and the host's own address.
	if got := httpGet("127.0.0.1:" + loPort); !strings.Contains(got, "hello-berth") {
		t.Fatalf("127.0.0.1:%s: %q", loPort, got)
	}
	haddr := hostAddr(t)
	if got := httpGet(net.JoinHostPort(haddr, anyPort)); !strings.Contains(got, "hello-berth") {
		t.Fatalf("%s:%s: %q", haddr, anyPort, got)
	}
	// Hairpin: a container on the default bridge through the host's address.
	out = e.ok(t, "run", "--rm", "busybox", "wget", "-qO-", "http://"+net.JoinHostPort(haddr, anyPort)+"/")
	if !strings.Contains(out, "hello-berth") {
		t.Fatalf("container to published port via host address: %q", out)
	}
	// ps shows the mappings.
	if ps := e.ok(t, "ps", "--filter", "id="+srv, "--format", "{{.Ports}}"); !strings.Contains(ps, "->80/tcp") {
		t.Fatalf("ps ports: %q", ps)
	}

	// Container to host: a listener on the host reached by the container.
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("from-host\n"))
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	out = e.ok(t, "run", "--rm", "busybox", "nc", haddr, fmt.Sprint(port))
	if !strings.Contains(out, "from-host") {
		t.Fatalf("container to host: %q", out)
	}

	// A remote client: a namespace with a veth posing as another host.
	remoteReachesPublishedPort(t, anyPort, haddr)
}

func remoteReachesPublishedPort(t *testing.T, port, haddr string) {
	ns := fmt.Sprintf("berthe2e%d", os.Getpid())
	hv, rv := fmt.Sprintf("bre%d", os.Getpid()%100000), fmt.Sprintf("brr%d", os.Getpid()%100000)
	subnet := fmt.Sprintf("10.%d.%d", 200+os.Getpid()%50, (os.Getpid()/50)%256)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	run("ip", "netns", "add", ns)
	defer exec.Command("ip", "netns", "del", ns).Run()
	run("ip", "link", "add", hv, "type", "veth", "peer", "name", rv)
	defer exec.Command("ip", "link", "del", hv).Run()
	run("ip", "link", "set", rv, "netns", ns)
	run("ip", "addr", "add", subnet+".1/30", "dev", hv)
	run("ip", "link", "set", hv, "up")
	run("ip", "netns", "exec", ns, "ip", "addr", "add", subnet+".2/30", "dev", rv)
	run("ip", "netns", "exec", ns, "ip", "link", "set", rv, "up")
	run("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", subnet+".1")
	for _, target := range []string{subnet + ".1", haddr} {
		out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c",
			fmt.Sprintf("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 %s %s", target, port)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "hello-berth") {
			t.Fatalf("remote host to %s:%s: %v: %q", target, port, err, out)
		}
	}
}

func TestNetworkFiftyParallel(t *testing.T) {
	e := need(t)
	n := "e2epar" + fmt.Sprint(os.Getpid())
	e.ok(t, "network", "create", n)
	defer e.docker(t, "", "network", "rm", n)
	const count = 50
	ids := make([]string, count)
	var wg sync.WaitGroup
	errs := make(chan string, count)
	for i := 0; i < count; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := e.docker(t, "", "run", "-d", "--name", fmt.Sprintf("par%d", i), "--network", n, "busybox", "sleep", "120")
			if r.code != 0 {
				errs <- r.String()
				return
			}
			ids[i] = strings.TrimSpace(r.stdout)
		}(i)
	}
	wg.Wait()
	close(errs)
	defer func() {
		var all []string
		for _, id := range ids {
			if id != "" {
				all = append(all, id)
			}
		}
		e.docker(t, "", append([]string{"rm", "-f"}, all...)...)
	}()
	for err := range errs {
		t.Fatalf("parallel run: %s", err)
	}
	tmpl := "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
	out := e.ok(t, append([]string{"inspect", "-f", tmpl}, ids...)...)
	seen := map[string]bool{}
	for _, ip := range strings.Fields(out) {
		if seen[ip] {
			t.Fatalf("address %s given twice:\n%s", ip, out)
		}
		seen[ip] = true
	}
	if len(seen) != count {
		t.Fatalf("%d distinct addresses, want %d:\n%s", len(seen), count, out)
	}
	// Every container resolves the others: one lookup of each name from
	// the first, and one lookup of the first from each of a few others.
	script := ""
	for i := 0; i < count; i++ {
		script += fmt.Sprintf("nslookup par%d >/dev/null || echo FAIL par%d; ", i, i)
	}
	if r := e.docker(t, "", "run", "--rm", "--network", n, "busybox", "sh", "-c", script); r.code != 0 || strings.Contains(r.stdout, "FAIL") {
		t.Fatalf("resolution: %s", r)
	}
	// And they reach each other by name.
	for _, i := range []int{7, 49} {
		if r := e.docker(t, "", "run", "--rm", "--network", n, "busybox", "ping", "-c1", "-W2", fmt.Sprintf("par%d", i)); r.code != 0 {
			t.Fatalf("ping par%d: %s", i, r)
		}
	}
}

func TestNetworkBadInputAndCleanup(t *testing.T) {
	e := need(t)
	n := "e2ebad" + fmt.Sprint(os.Getpid())
	subnet := fmt.Sprintf("10.%d.%d.0/24", 100+os.Getpid()%50, (os.Getpid()/50)%256)
	e.ok(t, "network", "create", "--subnet", subnet, n)
	defer e.docker(t, "", "network", "rm", n)
	if r := e.docker(t, "", "network", "create", "--subnet", subnet, n+"b"); r.code == 0 || !strings.Contains(r.stderr, "overlaps") {
		t.Fatalf("overlapping subnet: %s", r)
	}
	if r := e.docker(t, "", "network", "create", n); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("duplicate name: %s", r)
	}
	// A host port taken by something else.
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	if r := e.docker(t, "", "run", "--rm", "-p", fmt.Sprintf("%d:80", taken), "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("taken port: %s", r)
	}
	// A host port taken by another container.
	c1 := strings.TrimSpace(e.ok(t, "run", "-d", "--network", n, "-p", "0:80", "busybox", "sleep", "60"))
	defer e.docker(t, "", "rm", "-f", c1)
	hp := strings.TrimSpace(e.ok(t, "inspect", "-f", `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`, c1))
	if r := e.docker(t, "", "run", "--rm", "-p", hp+":80", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "already allocated") {
		t.Fatalf("port taken by a container: %s", r)
	}
	if r := e.docker(t, "", "run", "--rm", "-p", "99999:80", "busybox", "true"); r.code == 0 {
		t.Fatalf("invalid port spec accepted: %s", r)
	}
	if r := e.docker(t, "", "run", "--rm", "--network", n, "--ip", "192.0.2.99", "busybox", "true"); r.code == 0 {
		t.Fatalf("static address outside the subnet accepted: %s", r)
	}
	if r := e.docker(t, "", "network", "rm", n); r.code == 0 || !strings.Contains(r.stderr, "active endpoints") {
		t.Fatalf("removing a network in use: %s", r)
	}
	// Static address and connect/disconnect.
	static := strings.TrimSuffix(subnet, "0/24") + "77"
	c2 := strings.TrimSpace(e.ok(t, "run", "-d", "--network", n, "--ip", static, "busybox", "sleep", "60"))
	defer e.docker(t, "", "rm", "-f", c2)
	if ip := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c2)); ip != static {
		t.Fatalf("static address: %q, want %s", ip, static)
	}
	e.ok(t, "network", "connect", "bridge", c2)
	tmpl := `{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}`
	if out := e.ok(t, "inspect", "-f", tmpl, c2); !strings.Contains(out, "bridge=172.") && !strings.Contains(out, "bridge=10.") {
		t.Fatalf("after connect: %q", out)
	}
	e.ok(t, "network", "disconnect", "bridge", c2)
	if out := e.ok(t, "inspect", "-f", tmpl, c2); strings.Contains(out, "bridge=") {
		t.Fatalf("after disconnect: %q", out)
	}
	// Removing the containers leaves no namespace, sandbox or veth.
	e.ok(t, "rm", "-f", c1, c2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(e.dir, "exec", "network", "netns", "*"))
		sbs, _ := filepath.Glob(filepath.Join(e.dir, "exec", "network", "sandboxes", "*"))
		if len(left)+len(sbs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left after removal: %v %v", left, sbs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
