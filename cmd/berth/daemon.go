package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/daemon"
	"github.com/berth-dev/berth/runtime/cgroups"
	"github.com/spf13/cobra"
)

type daemonFlags struct {
	hosts        []string
	dataRoot     string
	execRoot     string
	logLevel     string
	pidfile      string
	runtime      string
	cgroupParent string
	favorDynMods bool
	insecureRegs []string
	mirrors      []string
	group        string
	tlsVerify    bool
	tlsCACert    string
	tlsCert      string
	tlsKey       string
	sec          daemon.SecConfig
	addRuntimes  []string
	bridge       string
	bip          string
}

func newDaemonCommand(version string) *cobra.Command {
	f := &daemonFlags{}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the berth daemon (Docker Engine API server)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDaemon(cmd.Context(), f, version)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.hosts, "host", "H", nil, "Daemon socket(s) to listen on (unix:///path, tcp://addr:port)")
	fl.StringVar(&f.dataRoot, "data-root", "/var/lib/berth", "Root directory of persistent state")
	fl.StringVar(&f.execRoot, "exec-root", "/run/berth", "Root directory of execution state")
	fl.StringVarP(&f.logLevel, "log-level", "l", "info", `Log level ("debug", "info", "warn", "error")`)
	fl.StringVarP(&f.pidfile, "pidfile", "p", "", "Path of the daemon's PID file (default <exec-root>/berth.pid)")
	fl.StringVar(&f.runtime, "runtime", "", "OCI runtime binary for containers (default: the built-in runtime)")
	fl.BoolVar(&f.sec.Init, "init", false, "Run an init in the containers to forward signals and reap processes")
	fl.StringArrayVar(&f.addRuntimes, "add-runtime", nil, "Register an additional OCI compatible runtime (name=path)")
	fl.StringVar(&f.cgroupParent, "cgroup-parent", "/berth", "Parent cgroup of containers")
	fl.StringArrayVar(&f.insecureRegs, "insecure-registry", nil, "Registry reached over plain HTTP (host:port or CIDR); loopback registries always are")
	fl.StringArrayVar(&f.mirrors, "registry-mirror", nil, "Preferred Docker Hub mirror (URL)")
	fl.BoolVar(&f.favorDynMods, "cgroup-favordynmods", true, "Turn on the cgroup hierarchy's favordynmods option (Linux 6.0+): moving a container into its cgroup then takes microseconds instead of an RCU grace period")
	fl.StringVarP(&f.group, "group", "G", "docker", "Group owning the unix socket (if it exists)")
	fl.BoolVar(&f.tlsVerify, "tlsverify", false, "Require and verify client certificates (mutual TLS) on TCP")
	fl.StringVar(&f.tlsCACert, "tlscacert", "", "CA certificate that client certificates must chain to")
	fl.StringVar(&f.tlsCert, "tlscert", "", "Server TLS certificate")
	fl.StringVar(&f.tlsKey, "tlskey", "", "Server TLS key")
	fl.StringVarP(&f.bridge, "bridge", "b", "berth0", "Name of the default bridge network's Linux bridge")
	fl.StringVar(&f.bip, "bip", "172.29.0.1/16", "Default bridge's gateway address and subnet (CIDR)")
	return cmd
}

func runDaemon(ctx context.Context, f *daemonFlags, version string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if len(f.hosts) == 0 {
		f.hosts = []string{"unix://" + filepath.Join(f.execRoot, "berth.sock")}
		if f.execRoot == "/run/berth" {
			f.hosts = []string{"unix:///run/berth/berth.sock"}
		}
	}
	if f.pidfile == "" {
		f.pidfile = filepath.Join(f.execRoot, "berth.pid")
	}
	for _, dir := range []string{f.dataRoot, f.execRoot} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return fmt.Errorf("daemon: %w", err)
		}
	}
	releasePid, err := writePidfile(f.pidfile)
	if err != nil {
		return err
	}
	defer releasePid()

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if f.favorDynMods {
		// A host-wide setting: it speeds up runc's cgroup moves as much as
		// ours, and it stays when the daemon leaves.
		if changed, err := cgroups.FavorDynMods(); err != nil {
			log.Info("cgroup favordynmods unavailable: each container start waits for an RCU grace period", "err", err)
		} else if changed {
			log.Info("turned on the cgroup hierarchy's favordynmods option")
		}
	}

	d, err := daemon.New(ctx, daemon.Config{
		DataRoot:           f.dataRoot,
		ExecRoot:           f.execRoot,
		Runtime:            f.runtime,
		CgroupParent:       f.cgroupParent,
		Version:            version,
		GitCommit:          gitCommit,
		InsecureRegistries: f.insecureRegs,
		RegistryMirrors:    f.mirrors,
		BuildTime:          buildTime,
		Log:                log,
		Sec:                f.secConfig(),
		Bridge:             f.bridge,
		BridgeIP:           f.bip,
	})
	if err != nil {
		return err
	}
	defer d.Close()

	srv := api.New(d, log.With("component", "api"))
	var listeners []net.Listener
	for _, h := range f.hosts {
		l, err := listen(h, f)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, l)
	}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		log.Info("API listening", "addr", l.Addr().String())
		go func(l net.Listener) { errc <- srv.Serve(ctx, l) }(l)
	}
	log.Info("daemon ready", "version", version, "data-root", f.dataRoot)
	// Start-up (restore, network and store setup) leaves garbage behind:
	// hand the freed heap back to the system instead of keeping it.
	time.AfterFunc(time.Second, func() {
		debug.FreeOSMemory()
		releaseCodePages()
	})
	select {
	case <-ctx.Done():
		log.Info("shutting down; containers keep running")
	case err := <-errc:
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return nil
}

// listen opens one -H address: unix:///path (mode 0660, group f.group if
// it exists) or tcp://host:port (TLS when certificates are given).
func listen(addr string, f *daemonFlags) (net.Listener, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("invalid -H %q: want unix:///path or tcp://host:port", addr)
	}
	switch u.Scheme {
	case "unix":
		path := u.Path
		if path == "" {
			path = u.Opaque
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		// A stale socket from a killed daemon blocks bind; a live one means
		// another daemon owns it.
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another daemon is listening there", addr)
		}
		os.Remove(path)
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		gid := 0
		if g, err := user.LookupGroup(f.group); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		}
		os.Chown(path, 0, gid)
		if err := os.Chmod(path, 0o660); err != nil {
			l.Close()
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		return l, nil
	case "tcp":
		l, err := net.Listen("tcp", u.Host)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		if f.tlsCert == "" {
			if f.tlsVerify {
				l.Close()
				return nil, fmt.Errorf("listen %s: --tlsverify needs --tlscert and --tlskey", addr)
			}
			return l, nil
		}
		cfg, err := serverTLS(f)
		if err != nil {
			l.Close()
			return nil, err
		}
		return tls.NewListener(l, cfg), nil
	}
	return nil, fmt.Errorf("invalid -H %q: unsupported scheme %q", addr, u.Scheme)
}

func serverTLS(f *daemonFlags) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.tlsVerify {
		if f.tlsCACert == "" {
			return nil, errors.New("tls: --tlsverify needs --tlscacert")
		}
		pem, err := os.ReadFile(f.tlsCACert)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: no certificates in %s", f.tlsCACert)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// writePidfile refuses to start when the pidfile names a live process.
func writePidfile(path string) (func(), error) {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() {
			if syscall.Kill(pid, 0) == nil {
				if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.Contains(string(comm), "berth") {
					return nil, fmt.Errorf("pid file found, ensure berth is not running or delete %s", path)
				}
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("write pidfile: %w", err)
	}
	return func() { os.Remove(path) }, nil
}

// secConfig adds the --add-runtime name=path entries to the security config.
func (f *daemonFlags) secConfig() daemon.SecConfig {
	c := f.sec
	c.Runtimes = map[string]string{}
	for _, r := range f.addRuntimes {
		if name, path, ok := strings.Cut(r, "="); ok && name != "" && path != "" {
			c.Runtimes[name] = path
		}
	}
	return c
}
