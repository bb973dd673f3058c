package build

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
)

// step runs one instruction on st and returns the new state.
func (bd *build) step(ctx context.Context, sr *stageRun, st *state, cmd instructions.Command, trigger bool) (*state, error) {
	code := cmd.Name()
	if s, ok := cmd.(fmt.Stringer); ok {
		code = s.String()
	}
	if trigger {
		bd.out.printf("# Executing build trigger: %s\n", code)
	} else {
		bd.out.printf("Step %d/%d : %s", bd.nextStep(), bd.totalStep, code)
		bd.out.printf("\n")
	}
	next := st.clone()
	lex := shell.NewLex(bd.df.escape)
	expander := func(word string) (string, error) {
		v, _, err := lex.ProcessWord(word, next.expandEnv())
		return v, err
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(expander); err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := e.ExpandRaw(expander); err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
	}
	cfg := &next.cfg.Config
	nop := "/bin/sh -c #(nop) "
	var (
		createdBy string
		extra     []string // more key material
		layerStep func(context.Context, *state) (*layerFile, error)
	)
	switch c := cmd.(type) {
	case *instructions.ArgCommand:
		var parts []string
		for _, kv := range c.Args {
			val, has := "", kv.Value != nil
			if has {
				val = *kv.Value
			}
			if o, ok := bd.opts.BuildArgs[kv.Key]; ok {
				bd.usedArgs.Store(kv.Key, true)
				if o != nil {
					val, has = *o, true
				}
			}
			if !has {
				if v, ok := bd.metaArgs[kv.Key]; ok {
					val = v
				} else if v, ok := bd.platform.env()[kv.Key]; ok {
					val = v
				}
			}
			next.args = setArg(next.args, kv.Key, val)
			parts = append(parts, kv.Key+"="+val)
		}
		createdBy = nop + "ARG " + strings.Join(argNames(c), " ")
		extra = parts
	case *instructions.EnvCommand:
		var parts []string
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		createdBy = nop + "ENV " + strings.Join(parts, " ")
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		var parts []string
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		createdBy = nop + "LABEL " + strings.Join(parts, " ")
	case *instructions.MaintainerCommand:
		next.cfg.Author = c.Maintainer
		createdBy = nop + "MAINTAINER " + c.Maintainer
	case *instructions.CmdCommand:
		cfg.Cmd = commandLine(c.ShellDependantCmdLine, next.shell())
		next.cmdSet = true
		createdBy = nop + " CMD " + jsonList(cfg.Cmd)
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = commandLine(c.ShellDependantCmdLine, next.shell())
		if !next.cmdSet {
			cfg.Cmd = nil // Docker drops an inherited CMD with a new ENTRYPOINT
		}
		createdBy = nop + " ENTRYPOINT " + jsonList(cfg.Entrypoint)
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		var ports []string
		for _, p := range c.Ports {
			v, err := expander(p)
			if err != nil {
				return nil, errdefs.InvalidParameter(err)
			}
			ps, err := exposedPorts(v)
			if err != nil {
				return nil, err
			}
			for _, port := range ps {
				cfg.ExposedPorts[port] = struct{}{}
				ports = append(ports, port)
			}
		}
		createdBy = nop + " EXPOSE " + strings.Join(ports, " ")
	case *instructions.WorkdirCommand:
		cfg.WorkingDir = resolveWorkdir(cfg.WorkingDir, c.Path)
		createdBy = nop + "WORKDIR " + cfg.WorkingDir
	case *instructions.UserCommand:
		cfg.User = c.User
		createdBy = nop + " USER " + c.User
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if strings.TrimSpace(v) == "" {
				return nil, errdefs.InvalidParameterf("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
		createdBy = nop + " VOLUME " + jsonList(c.Volumes)
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
		createdBy = nop + " STOPSIGNAL " + c.Signal
	case *instructions.HealthCheckCommand:
		hc := *c.Health
		cfg.Healthcheck = &hc
		raw, _ := json.Marshal(hc.Test)
		createdBy = nop + " HEALTHCHECK &{" + string(raw) + "}"
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
		createdBy = nop + " ONBUILD " + c.Expression
	case *instructions.ShellCommand:
		cfg.Shell = append([]string(nil), c.Shell...)
		createdBy = nop + " SHELL " + jsonList(c.Shell)
	case *instructions.RunCommand:
		r, err := bd.prepareRun(next, c)
		if err != nil {
			return nil, err
		}
		createdBy, extra = r.createdBy, r.keyParts
		layerStep = r.exec
	case *instructions.CopyCommand:
		cp, err := bd.prepareCopy(ctx, next, c.SourcesAndDest, copyFlags{from: c.From, chown: c.Chown, chmod: c.Chmod, link: c.Link, name: "COPY"})
		if err != nil {
			return nil, err
		}
		createdBy, extra = cp.createdBy, cp.keyParts
		layerStep = cp.exec
	case *instructions.AddCommand:
		if c.Checksum != "" || c.KeepGitDir != nil {
			return nil, errdefs.InvalidParameterf("ADD --checksum and git sources are not supported")
		}
		cp, err := bd.prepareCopy(ctx, next, c.SourcesAndDest, copyFlags{chown: c.Chown, chmod: c.Chmod, link: c.Link, add: true, unpack: c.Unpack, name: "ADD"})
		if err != nil {
			return nil, err
		}
		createdBy, extra = cp.createdBy, cp.keyParts
		layerStep = cp.exec
	default:
		return nil, errdefs.InvalidParameterf("unsupported instruction %s", strings.ToUpper(cmd.Name()))
	}
	key := stepKey(st.key, append([]string{createdBy}, extra...)...)
	next.key = key
	if img, ok := bd.cachedImage(ctx, key); ok {
		bd.out.printf(" ---> Using cache\n ---> %s\n", short(img.ID))
		next.img, next.cfg = img, img.Config
		sr.cached++
		return next, nil
	}
	stepStart := time.Now()
	var layer *layerFile
	metaCID := ""
	if layerStep == nil {
		// The classic builder commits a container for metadata steps too.
		metaCID = randomID()[:12]
		bd.out.printf(" ---> Running in %s\n", metaCID)
	}
	if layerStep != nil {
		var err error
		if layer, err = layerStep(ctx, next); err != nil {
			return nil, err
		}
		defer removeFile(layer.path)
	}
	execDone := time.Now()
	img, err := bd.commit(ctx, next, layer, createdBy, false)
	if err != nil {
		return nil, err
	}
	bd.b.log.Debug("build step", "step", code, "exec", execDone.Sub(stepStart), "commit", time.Since(execDone))
	next.img, next.cfg = img, img.Config
	sr.steps++
	if metaCID != "" {
		bd.out.printf("Removing intermediate container %s\n", metaCID)
	}
	bd.out.printf(" ---> %s\n", short(img.ID))
	return next, nil
}

func argNames(c *instructions.ArgCommand) []string {
	var out []string
	for _, kv := range c.Args {
		if kv.Value != nil {
			out = append(out, kv.Key+"="+*kv.Value)
		} else {
			out = append(out, kv.Key)
		}
	}
	return out
}

func setArg(args []argValue, k, v string) []argValue {
	for i := range args {
		if args[i].name == k {
			args[i].value = v
			return args
		}
	}
	return append(args, argValue{k, v})
}

// commandLine is the argv of a CMD or ENTRYPOINT: exec form as is, shell
// form under the current SHELL.
func commandLine(c instructions.ShellDependantCmdLine, sh []string) []string {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...)
	}
	return append(append([]string(nil), sh...), strings.Join(c.CmdLine, " "))
}

func jsonList(l []string) string {
	// Docker's history prints Go's %q of the slice: ["a" "b"].
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// exposedPorts parses one EXPOSE word: "80", "80/udp", "8000-8002/tcp".
func exposedPorts(v string) ([]string, error) {
	port, proto, _ := strings.Cut(v, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, errdefs.InvalidParameterf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	var a, b int
	if _, err := fmt.Sscanf(lo, "%d", &a); err != nil || a < 0 || a > 65535 || fmt.Sprint(a) != lo {
		return nil, errdefs.InvalidParameterf("invalid containerPort: %s", port)
	}
	b = a
	if isRange {
		if _, err := fmt.Sscanf(hi, "%d", &b); err != nil || b < a || b > 65535 {
			return nil, errdefs.InvalidParameterf("invalid range specified for container port: %s", port)
		}
	}
	var out []string
	for p := a; p <= b; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	sort.Strings(out)
	return out, nil
}

var _ = dockerspec.HealthcheckConfig{}
var _ digest.Digest

// exposedPortsOf parses an EXPOSE command's ports without expansion (for
// the fuzz test); other commands yield nothing.
func exposedPortsOf(c instructions.Command) ([]string, error) {
	e, ok := c.(*instructions.ExposeCommand)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, p := range e.Ports {
		ps, err := exposedPorts(p)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}
