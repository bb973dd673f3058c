package cli

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// containerOpts are the flags of run and create.
type containerOpts struct {
	name        string
	env         []string
	envFiles    []string
	entrypoint  string
	user        string
	workdir     string
	labels      []string
	hostname    string
	memory      string
	memorySwap  string
	cpus        float64
	cpuShares   int64
	pidsLimit   int64
	network     string
	logDriver   string
	logOpts     []string
	restart     string
	stopSignal  string
	stopTimeout int
	readOnly    bool
	capAdd      []string
	capDrop     []string
	securityOpt []string
	privileged  bool
	ulimits     []string
	tty         bool
	interactive bool
	rm          bool
	volumes     []string
	tmpfs       []string
	shmSize     string
	attach      []string
	init        bool
}

func (o *containerOpts) addFlags(fl *pflag.FlagSet) {
	fl.SetInterspersed(false)
	// -h is --hostname here, as in docker: help has no shorthand.
	fl.Bool("help", false, "Print usage")
	fl.StringVar(&o.name, "name", "", "Assign a name to the container")
	fl.StringArrayVarP(&o.env, "env", "e", nil, "Set environment variables")
	fl.StringArrayVar(&o.envFiles, "env-file", nil, "Read in a file of environment variables")
	fl.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fl.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fl.StringArrayVarP(&o.labels, "label", "l", nil, "Set meta data on a container")
	fl.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fl.StringVarP(&o.memory, "memory", "m", "", "Memory limit")
	fl.StringVar(&o.memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fl.Float64Var(&o.cpus, "cpus", 0, "Number of CPUs")
	fl.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fl.StringVar(&o.network, "network", "", "Connect a container to a network (none, host, bridge)")
	fl.StringVar(&o.network, "net", "", "Connect a container to a network")
	fl.Lookup("net").Hidden = true
	fl.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	fl.StringArrayVar(&o.logOpts, "log-opt", nil, "Log driver options")
	fl.StringVar(&o.restart, "restart", "", "Restart policy to apply when a container exits")
	fl.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fl.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fl.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fl.StringArrayVar(&o.capAdd, "cap-add", nil, "Add Linux capabilities")
	fl.StringArrayVar(&o.capDrop, "cap-drop", nil, "Drop Linux capabilities")
	fl.StringArrayVar(&o.securityOpt, "security-opt", nil, "Security Options")
	fl.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fl.StringArrayVar(&o.ulimits, "ulimit", nil, "Ulimit options")
	fl.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVar(&o.rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	fl.StringArrayVarP(&o.volumes, "volume", "v", nil, "Bind mount a volume")
	fl.StringArrayVar(&o.tmpfs, "tmpfs", nil, "Mount a tmpfs directory")
	fl.StringVar(&o.shmSize, "shm-size", "", "Size of /dev/shm")
	fl.StringArrayVarP(&o.attach, "attach", "a", nil, "Attach to STDIN, STDOUT or STDERR")
	fl.BoolVar(&o.init, "init", false, "Run an init inside the container (accepted, not yet used)")
}

// request builds the create request for image and command args.
func (o *containerOpts) request(image string, args []string, changed func(string) bool) (*container.CreateRequest, error) {
	cfg := &container.Config{
		Image:      image,
		Cmd:        args,
		User:       o.user,
		WorkingDir: o.workdir,
		Hostname:   o.hostname,
		Tty:        o.tty,
		OpenStdin:  o.interactive,
		StopSignal: o.stopSignal,
		Labels:     map[string]string{},
	}
	if len(args) == 0 {
		cfg.Cmd = nil
	}
	if changed("entrypoint") {
		if o.entrypoint == "" {
			cfg.Entrypoint = []string{""}
		} else {
			cfg.Entrypoint = []string{o.entrypoint}
		}
	}
	if changed("stop-timeout") {
		t := o.stopTimeout
		cfg.StopTimeout = &t
	}
	env, err := readEnv(o.envFiles, o.env)
	if err != nil {
		return nil, err
	}
	cfg.Env = env
	for _, l := range o.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	hc := &container.HostConfig{
		AutoRemove:     o.rm,
		NetworkMode:    container.NetworkMode(o.network),
		ReadonlyRootfs: o.readOnly,
		CapAdd:         o.capAdd,
		CapDrop:        o.capDrop,
		SecurityOpt:    o.securityOpt,
		Privileged:     o.privileged,
		Binds:          o.volumes,
		LogConfig:      container.LogConfig{Type: o.logDriver, Config: map[string]string{}},
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	for _, lo := range o.logOpts {
		k, v, _ := strings.Cut(lo, "=")
		hc.LogConfig.Config[k] = v
	}
	if o.memory != "" {
		n, err := units.RAMInBytes(o.memory)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"-m, --memory\" flag: %w", o.memory, err)
		}
		hc.Memory = n
	}
	if o.memorySwap != "" {
		if o.memorySwap == "-1" {
			hc.MemorySwap = -1
		} else {
			n, err := units.RAMInBytes(o.memorySwap)
			if err != nil {
				return nil, fmt.Errorf("invalid argument %q for \"--memory-swap\" flag: %w", o.memorySwap, err)
			}
			hc.MemorySwap = n
		}
	}
	if o.cpus != 0 {
		if o.cpus < 0 {
			return nil, fmt.Errorf("invalid argument for \"--cpus\": must be positive")
		}
		hc.NanoCPUs = int64(math.Round(o.cpus * 1e9))
	}
	hc.CPUShares = o.cpuShares
	if changed("pids-limit") {
		p := o.pidsLimit
		hc.PidsLimit = &p
	}
	if o.shmSize != "" {
		n, err := units.RAMInBytes(o.shmSize)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--shm-size\" flag: %w", o.shmSize, err)
		}
		hc.ShmSize = n
	}
	for _, u := range o.ulimits {
		ul, err := units.ParseUlimit(u)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--ulimit\" flag: %w", u, err)
		}
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: ul.Name, Soft: ul.Soft, Hard: ul.Hard})
	}
	if len(o.tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range o.tmpfs {
			k, v, _ := strings.Cut(t, ":")
			hc.Tmpfs[k] = v
		}
	}
	if o.restart != "" {
		name, count, _ := strings.Cut(o.restart, ":")
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyMode(name)}
		if count != "" {
			n, err := strconv.Atoi(count)
			if err != nil {
				return nil, fmt.Errorf("invalid restart policy %q", o.restart)
			}
			hc.RestartPolicy.MaximumRetryCount = n
		}
	}
	return &container.CreateRequest{Config: cfg, HostConfig: hc}, nil
}

// readEnv merges --env-file files and -e values; "-e NAME" takes NAME from
// the client's environment, as docker does.
func readEnv(files, vals []string) ([]string, error) {
	var out []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("open env file: %w", err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			out = append(out, expandEnv(line)...)
		}
		fh.Close()
	}
	for _, v := range vals {
		out = append(out, expandEnv(v)...)
	}
	return out, nil
}

func expandEnv(kv string) []string {
	if strings.Contains(kv, "=") {
		return []string{kv}
	}
	if v, ok := os.LookupEnv(kv); ok {
		return []string{kv + "=" + v}
	}
	return nil
}
