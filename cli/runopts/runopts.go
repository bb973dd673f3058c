// Package runopts turns the flags of `berth run` / `berth create` (docker's
// flag names and semantics) into the Engine API create request.
package runopts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/berth-dev/berth/network/portspec"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// Options holds the raw flag values of run/create.
type Options struct {
	Attach      []string
	Detach      bool
	Interactive bool
	TTY         bool
	AutoRemove  bool
	Name        string
	Env         []string
	EnvFiles    []string
	Entrypoint  string
	User        string
	Workdir     string
	Labels      []string
	Hostname    string
	Domainname  string
	Memory      string
	MemorySwap  string
	CPUs        string
	CPUShares   int64
	PidsLimit   int64
	Network     string
	LogDriver   string
	LogOpts     []string
	Restart     string
	StopSignal  string
	StopTimeout int
	ReadOnly    bool
	CapAdd      []string
	CapDrop     []string
	SecurityOpt []string
	Privileged  bool
	Ulimits     []string
	Init        bool
	Swappiness  int64
	ShmSize     string
	GroupAdd    []string
	OomKillDis  bool
	ExtraHosts  []string
	DNS         []string
	Tmpfs       []string
	Volumes     []string
	Mounts      []string
	VolumesFrom []string
	Publish     []string
	PublishAll  bool
	Expose      []string
	IP          string
	MacAddress  string
	Aliases     []string
	DNSSearch   []string
	DNSOptions  []string
	SigProxy    bool
	DetachKeys  string
	Platform    string
	Pull        string
	Quiet       bool
	CIDFile     string
	sec         secOptions
	flags       *pflag.FlagSet
	health      *healthFlags // health.go
}

// AddFlags registers docker's container flags on fs. detachable adds the
// run-only flags (-d, --sig-proxy, --detach-keys).
func AddFlags(fs *pflag.FlagSet, run bool) *Options {
	o := &Options{flags: fs}
	o.health = addHealthFlags(fs)
	fs.SetInterspersed(false) // everything after IMAGE belongs to the command
	// -h is --hostname here, as in docker; help keeps only its long form.
	fs.Bool("help", false, "Print usage")
	if run {
		fs.BoolVarP(&o.Detach, "detach", "d", false, "Run container in background and print container ID")
		fs.BoolVar(&o.SigProxy, "sig-proxy", true, "Proxy received signals to the process")
		fs.StringVar(&o.DetachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	}
	fs.StringSliceVarP(&o.Attach, "attach", "a", nil, "Attach to STDIN, STDOUT or STDERR")
	fs.BoolVarP(&o.Interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.TTY, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVar(&o.AutoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	fs.StringVar(&o.Name, "name", "", "Assign a name to the container")
	fs.StringArrayVarP(&o.Env, "env", "e", nil, "Set environment variables")
	fs.StringArrayVar(&o.EnvFiles, "env-file", nil, "Read in a file of environment variables")
	fs.StringVar(&o.Entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.StringVarP(&o.User, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&o.Workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringArrayVarP(&o.Labels, "label", "l", nil, "Set meta data on a container")
	fs.StringVarP(&o.Hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.Domainname, "domainname", "", "Container NIS domain name")
	fs.StringVarP(&o.Memory, "memory", "m", "", "Memory limit")
	fs.StringVar(&o.MemorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Int64Var(&o.Swappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fs.StringVar(&o.CPUs, "cpus", "", "Number of CPUs")
	fs.Int64VarP(&o.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Int64Var(&o.PidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.StringVar(&o.Network, "network", "default", "Connect a container to a network")
	fs.StringVar(&o.Network, "net", "default", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.StringVar(&o.LogDriver, "log-driver", "", "Logging driver for the container")
	fs.StringArrayVar(&o.LogOpts, "log-opt", nil, "Log driver options")
	fs.StringVar(&o.Restart, "restart", "no", "Restart policy to apply when a container exits")
	fs.StringVar(&o.StopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.StopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.BoolVar(&o.ReadOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.StringArrayVar(&o.CapAdd, "cap-add", nil, "Add Linux capabilities")
	fs.StringArrayVar(&o.CapDrop, "cap-drop", nil, "Drop Linux capabilities")
	fs.StringArrayVar(&o.SecurityOpt, "security-opt", nil, "Security Options")
	fs.BoolVar(&o.Privileged, "privileged", false, "Give extended privileges to this container")
	fs.StringArrayVar(&o.Ulimits, "ulimit", nil, "Ulimit options")
	fs.BoolVar(&o.Init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.StringVar(&o.ShmSize, "shm-size", "", "Size of /dev/shm")
	fs.StringArrayVar(&o.GroupAdd, "group-add", nil, "Add additional groups to join")
	fs.BoolVar(&o.OomKillDis, "oom-kill-disable", false, "Disable OOM Killer")
	fs.StringArrayVar(&o.ExtraHosts, "add-host", nil, "Add a custom host-to-IP mapping (host:ip)")
	fs.StringArrayVar(&o.DNS, "dns", nil, "Set custom DNS servers")
	fs.StringArrayVar(&o.Tmpfs, "tmpfs", nil, "Mount a tmpfs directory")
	fs.StringArrayVarP(&o.Volumes, "volume", "v", nil, "Bind mount a volume")
	fs.StringArrayVar(&o.Mounts, "mount", nil, "Attach a filesystem mount to the container")
	fs.StringArrayVar(&o.VolumesFrom, "volumes-from", nil, "Mount volumes from the specified container(s)")
	fs.StringArrayVarP(&o.Publish, "publish", "p", nil, "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.PublishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.StringArrayVar(&o.Expose, "expose", nil, "Expose a port or a range of ports")
	fs.StringVar(&o.IP, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fs.StringVar(&o.MacAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.StringArrayVar(&o.Aliases, "network-alias", nil, "Add network-scoped alias for the container")
	fs.StringArrayVar(&o.DNSSearch, "dns-search", nil, "Set custom DNS search domains")
	fs.StringArrayVar(&o.DNSOptions, "dns-option", nil, "Set DNS options")
	fs.StringVar(&o.Platform, "platform", "", "Set platform if server is multi-platform capable")
	fs.StringVar(&o.Pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
	fs.BoolVarP(&o.Quiet, "quiet", "q", false, "Suppress the pull output")
	fs.StringVar(&o.CIDFile, "cidfile", "", "Write the container ID to the file")
	o.sec.addFlags(fs)
	return o
}

// Request is the parsed create request.
type Request struct {
	Name             string
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

func (o *Options) changed(name string) bool { return o.flags != nil && o.flags.Changed(name) }

// Parse builds the create request from the flags and the positional
// arguments (IMAGE [COMMAND [ARG...]]). lookupEnv resolves `-e NAME` and
// env-file lines without a value; nil means os.LookupEnv.
func (o *Options) Parse(args []string, lookupEnv func(string) (string, bool)) (*Request, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if len(args) == 0 {
		return nil, errors.New("requires at least 1 argument")
	}
	cfg := &container.Config{
		Image:      args[0],
		Hostname:   o.Hostname,
		Domainname: o.Domainname,
		User:       o.User,
		WorkingDir: o.Workdir,
		Tty:        o.TTY,
		OpenStdin:  o.Interactive,
		StopSignal: o.StopSignal,
		Volumes:    map[string]struct{}{},
	}
	if len(args) > 1 {
		cfg.Cmd = args[1:]
	}
	if o.Entrypoint != "" {
		cfg.Entrypoint = []string{o.Entrypoint}
	} else if o.changed("entrypoint") {
		cfg.Entrypoint = []string{""} // explicit reset of the image's entrypoint
	}
	if o.changed("stop-timeout") {
		t := o.StopTimeout
		cfg.StopTimeout = &t
	}

	// Attach: -a wins; otherwise stdout+stderr unless detached, and stdin with -i.
	if o.Detach && len(o.Attach) > 0 {
		return nil, ErrAttachDetach
	}
	if len(o.Attach) > 0 {
		for _, s := range o.Attach {
			switch strings.ToLower(s) {
			case "stdin":
				cfg.AttachStdin = true
			case "stdout":
				cfg.AttachStdout = true
			case "stderr":
				cfg.AttachStderr = true
			default:
				return nil, fmt.Errorf("invalid argument %q for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR", s)
			}
		}
	} else if !o.Detach {
		cfg.AttachStdout = true
		cfg.AttachStderr = true
		cfg.AttachStdin = o.Interactive
	}
	if cfg.AttachStdin {
		cfg.StdinOnce = true
	}

	env, err := ReadEnvFiles(o.EnvFiles, lookupEnv)
	if err != nil {
		return nil, err
	}
	for _, e := range o.Env {
		env = append(env, expandEnv(e, lookupEnv))
	}
	if len(env) > 0 {
		cfg.Env = env
	}

	cfg.Labels = map[string]string{}
	for _, l := range o.Labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid label %q: empty name", l)
		}
		cfg.Labels[k] = v
	}

	hc := &container.HostConfig{
		AutoRemove:     o.AutoRemove,
		Privileged:     o.Privileged,
		ReadonlyRootfs: o.ReadOnly,
		CapAdd:         o.CapAdd,
		CapDrop:        o.CapDrop,
		SecurityOpt:    o.SecurityOpt,
		GroupAdd:       o.GroupAdd,
		ExtraHosts:     o.ExtraHosts,
		NetworkMode:    container.NetworkMode(o.Network),
		LogConfig:      container.LogConfig{Type: o.LogDriver, Config: map[string]string{}},
		PortBindings:   network.PortMap{},
	}
	hc.DNS = []netip.Addr{}
	for _, d := range o.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, flagError(d, "--dns", err)
		}
		hc.DNS = append(hc.DNS, a)
	}
	hc.DNSOptions, hc.DNSSearch = append([]string{}, o.DNSOptions...), append([]string{}, o.DNSSearch...)
	hc.PublishAllPorts = o.PublishAll
	for _, lo := range o.LogOpts {
		k, v, ok := strings.Cut(lo, "=")
		if !ok {
			return nil, fmt.Errorf("invalid log opt %q: expected key=value", lo)
		}
		hc.LogConfig.Config[k] = v
	}
	if len(o.Volumes) > 0 {
		hc.Binds = o.Volumes
	}
	for _, s := range o.Mounts {
		m, err := ParseMountFlag(s)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--mount\" flag: %w", s, err)
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	hc.VolumesFrom = o.VolumesFrom
	if len(o.Tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range o.Tmpfs {
			p, opts, _ := strings.Cut(t, ":")
			hc.Tmpfs[p] = opts
		}
	}
	if o.Init {
		b := true
		hc.Init = &b
	}
	oomKillDisable := o.OomKillDis
	hc.OomKillDisable = &oomKillDisable
	// Empty lists rather than null, byte-for-byte what docker's CLI sends.
	hc.Devices = []container.DeviceMapping{}
	hc.BlkioWeightDevice = []*blkiodev.WeightDevice{}
	hc.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{}
	hc.BlkioDeviceWriteBps = []*blkiodev.ThrottleDevice{}
	hc.BlkioDeviceReadIOps = []*blkiodev.ThrottleDevice{}
	hc.BlkioDeviceWriteIOps = []*blkiodev.ThrottleDevice{}
	if err := o.sec.apply(hc); err != nil {
		return nil, err
	}
	rp, err := ParseRestartPolicy(o.Restart)
	if err != nil {
		return nil, err
	}
	hc.RestartPolicy = rp
	if o.AutoRemove && rp.Name != container.RestartPolicyDisabled && rp.Name != "" {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	if o.Memory != "" {
		if hc.Memory, err = units.RAMInBytes(o.Memory); err != nil {
			return nil, flagError(o.Memory, "-m, --memory", err)
		}
	}
	if o.MemorySwap != "" {
		if o.MemorySwap == "-1" {
			hc.MemorySwap = -1
		} else if hc.MemorySwap, err = units.RAMInBytes(o.MemorySwap); err != nil {
			return nil, flagError(o.MemorySwap, "--memory-swap", err)
		}
	}
	if o.ShmSize != "" {
		if hc.ShmSize, err = units.RAMInBytes(o.ShmSize); err != nil {
			return nil, flagError(o.ShmSize, "--shm-size", err)
		}
	}
	sw := o.Swappiness
	hc.MemorySwappiness = &sw
	if o.CPUs != "" {
		if hc.NanoCPUs, err = ParseCPUs(o.CPUs); err != nil {
			return nil, flagError(o.CPUs, "--cpus", err)
		}
	}
	hc.CPUShares = o.CPUShares
	pl := o.PidsLimit
	hc.PidsLimit = &pl
	hc.Ulimits = []*container.Ulimit{}
	for _, u := range o.Ulimits {
		ul, err := units.ParseUlimit(u)
		if err != nil {
			return nil, flagError(u, "--ulimit", err)
		}
		hc.Ulimits = append(hc.Ulimits, ul)
	}
	if len(o.Publish) > 0 {
		ports, bindings, err := ParsePublish(o.Publish)
		if err != nil {
			return nil, err
		}
		cfg.ExposedPorts = ports
		hc.PortBindings = bindings
	}
	for _, e := range o.Expose {
		specs, err := portspec.Parse(e)
		if err != nil || strings.Contains(e, ":") {
			return nil, fmt.Errorf("invalid range format for --expose: %s", e)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		for _, s := range specs {
			cfg.ExposedPorts[s.Port] = struct{}{}
		}
	}

	if err := o.health.apply(cfg); err != nil {
		return nil, err
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	if o.Network != "" {
		es := &network.EndpointSettings{}
		if o.IP != "" {
			a, err := netip.ParseAddr(o.IP)
			if err != nil || !a.Is4() {
				return nil, flagError(o.IP, "--ip", fmt.Errorf("invalid IPv4 address"))
			}
			es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: a}
		}
		if o.MacAddress != "" {
			mac, err := net.ParseMAC(o.MacAddress)
			if err != nil {
				return nil, fmt.Errorf("%s is not a valid mac address", o.MacAddress)
			}
			es.MacAddress = network.HardwareAddr(mac)
		}
		if len(o.Aliases) > 0 {
			es.Aliases = o.Aliases
		}
		nc.EndpointsConfig[o.Network] = es
	}
	return &Request{Name: o.Name, Config: cfg, HostConfig: hc, NetworkingConfig: nc}, nil
}

// expandEnv turns `-e NAME` into NAME=value from the client's environment,
// as docker does; NAME stays bare when unset.
func expandEnv(e string, lookup func(string) (string, bool)) string {
	if strings.Contains(e, "=") {
		return e
	}
	if v, ok := lookup(e); ok {
		return e + "=" + v
	}
	return e
}

// ParseCPUs converts a decimal CPU count ("1.5") to nano CPUs.
func ParseCPUs(s string) (int64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("failed to parse %s as a rational number", s)
	}
	if r.Sign() < 0 {
		return 0, errors.New("must be a non-negative number")
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, errors.New("value is too precise")
	}
	if !nano.Num().IsInt64() {
		return 0, errors.New("value is too large")
	}
	return nano.Num().Int64(), nil
}

// ParseRestartPolicy parses no | always | unless-stopped | on-failure[:N].
func ParseRestartPolicy(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	switch p.Name {
	case "", container.RestartPolicyDisabled:
		p.Name = container.RestartPolicyDisabled
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if hasCount {
			return p, fmt.Errorf("invalid restart policy format: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return p, fmt.Errorf("invalid restart policy format: maximum retry count must be a non-negative integer")
			}
			p.MaximumRetryCount = n
		}
	default:
		return p, fmt.Errorf("invalid restart policy %q", s)
	}
	if p.Name == container.RestartPolicyDisabled && hasCount {
		return p, fmt.Errorf("invalid restart policy format: maximum retry count can only be used with 'on-failure'")
	}
	return p, nil
}

// ReadEnvFiles reads docker-style env files in order: KEY=value lines,
// comments (#) and blank lines skipped, bare KEY taken from lookup (and
// dropped when unset).
func ReadEnvFiles(paths []string, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("env file: %w", err)
		}
		lines, err := ParseEnvFile(data, lookup)
		if err != nil {
			return nil, fmt.Errorf("env file %s: %w", p, err)
		}
		out = append(out, lines...)
	}
	return out, nil
}

// ParseEnvFile parses the contents of one env file.
func ParseEnvFile(data []byte, lookup func(string) (string, bool)) ([]string, error) {
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Bytes()
		if !utf8.Valid(raw) {
			return nil, fmt.Errorf("invalid utf8 bytes at line %d", n)
		}
		line := strings.TrimLeftFunc(string(raw), unicode.IsSpace)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, hasVal := strings.Cut(line, "=")
		if key == "" {
			return nil, fmt.Errorf("no variable name on line '%s'", line)
		}
		if strings.ContainsFunc(key, unicode.IsSpace) {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", key)
		}
		if hasVal {
			out = append(out, key+"="+val)
		} else if v, ok := lookup(key); ok {
			out = append(out, key+"="+v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ParsePublish parses -p [ip:]hostPort:containerPort[/proto] | containerPort[/proto].
func ParsePublish(specs []string) (network.PortSet, network.PortMap, error) {
	set := network.PortSet{}
	pm := network.PortMap{}
	for _, s := range specs {
		parsed, err := portspec.Parse(s)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid published port %q: %w", s, err)
		}
		for _, p := range parsed {
			set[p.Port] = struct{}{}
			pm[p.Port] = append(pm[p.Port], p.Binding)
		}
	}
	return set, pm, nil
}

// ErrAttachDetach is docker's plain (exit 1) refusal of -a with -d.
var ErrAttachDetach = errors.New("conflicting options: cannot specify both --attach and --detach")

// FlagError is a bad flag value, reported like pflag's own errors so the
// CLI can treat it as a usage error (exit 125), as docker does.
type FlagError struct{ msg string }

func (e FlagError) Error() string { return e.msg }

func flagError(value, flag string, err error) error {
	return FlagError{msg: fmt.Sprintf("invalid argument %q for %q flag: %v", value, flag, err)}
}
