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
	// Version is berth's own version string.
	Version string
	Log     *slog.Logger
	// InsecureRegistries and RegistryMirrors configure the registry client
	// (--insecure-registry, --registry-mirror).
	InsecureRegistries []string
	RegistryMirrors    []string
}

func (c Config) containersDir() string { return filepath.Join(c.DataRoot, "containers") }
func (c Config) imageRoot() string     { return filepath.Join(c.DataRoot, "image") }
func (c Config) stateDir() string      { return filepath.Join(c.ExecRoot, "containers") }
func (c Config) runtimeStateDir() string {
	return filepath.Join(c.ExecRoot, "runtime")
}
