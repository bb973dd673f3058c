package daemon

import (
	"log/slog"
	"path/filepath"
)

// Config is what the daemon needs to know about its environment.
type Config struct {
	// DataRoot holds persistent state (images, containers). Default /var/lib/berth.
	DataRoot string
	// ExecRoot holds runtime state (shim sockets) on tmpfs. Default /run/berth.
	ExecRoot string
	// Runtime is "" for the built-in runtime, else an OCI runtime binary.
	Runtime string
	// CgroupParent is where container cgroups are made; default "/berth".
	CgroupParent string
	// Version is berth's own version string; GitCommit and BuildTime say
	// what it was built from, and when.
	Version   string
	GitCommit string
	BuildTime string

	// InsecureRegistries are reached over plain HTTP (loopback always is);
	// RegistryMirrors serve Docker Hub's images first.
	InsecureRegistries []string
	RegistryMirrors    []string

	// Sec configures --init and the runtimes (daemon/spec_sec.go).
	Sec SecConfig
	// Bridge and BridgeIP (--bridge, --bip) are the default bridge's name
	// and gateway address with prefix; NetworkTable is berth's nftables
	// table. Empty means the defaults (berth0, 172.29.0.1/16, berth).
	Bridge       string
	BridgeIP     string
	NetworkTable string
	Log          *slog.Logger
}

func (c Config) containersDir() string { return filepath.Join(c.DataRoot, "containers") }
func (c Config) imageRoot() string     { return filepath.Join(c.DataRoot, "image") }
func (c Config) stateDir() string      { return filepath.Join(c.ExecRoot, "containers") }
func (c Config) runtimeStateDir() string {
	return filepath.Join(c.ExecRoot, "runtime")
}
