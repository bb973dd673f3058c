package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

type preparedStep struct {
	createdBy string
	keyParts  []string
	exec      func(context.Context, *state) (*layerFile, error)
}

// prepareRun works out a RUN step's argv, history line and cache key.
func (bd *build) prepareRun(st *state, c *instructions.RunCommand) (*preparedStep, error) {
	args, err := runArgs(c, st.shell())
	if err != nil {
		return nil, err
	}
	network := instructions.GetNetwork(c)
	mounts := instructions.GetMounts(c)
	// The classic builder's history line: "|N K=V... /bin/sh -c cmd" when
	// build args are in scope.
	createdBy := strings.Join(args, " ")
	if len(st.args) > 0 {
		var kv []string
		for _, a := range st.args {
			kv = append(kv, a.name+"="+a.value)
		}
		createdBy = fmt.Sprintf("|%d %s %s", len(kv), strings.Join(kv, " "), createdBy)
	}
	var parts []string
	for _, m := range mounts {
		parts = append(parts, fmt.Sprintf("mount:%+v", *m))
		if m.From != "" {
			if j := bd.stageRef(m.From, len(bd.df.stages)); j >= 0 && bd.all[j].res != nil {
				parts = append(parts, "from:"+bd.all[j].res.img.ID.String())
			}
		}
	}
	parts = append(parts, "net:"+network, "env:"+strings.Join(st.cfg.Config.Env, "\x00"),
		"user:"+st.cfg.Config.User, "wd:"+st.cfg.Config.WorkingDir)
	exec := func(ctx context.Context, st *state) (*layerFile, error) {
		return bd.execRun(ctx, st, args, createdBy, network, mounts)
	}
	return &preparedStep{createdBy: createdBy, keyParts: parts, exec: exec}, nil
}

// runArgs is the argv of a RUN: exec form as is; shell form under SHELL,
// with heredocs handed to the shell as a script.
func runArgs(c *instructions.RunCommand, sh []string) ([]string, error) {
	if !c.PrependShell {
		if len(c.CmdLine) == 0 {
			return nil, errdefs.InvalidParameterf("RUN requires at least one argument")
		}
		return append([]string(nil), c.CmdLine...), nil
	}
	script := strings.Join(c.CmdLine, " ")
	if len(c.Files) > 0 {
		onlyHeredoc := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(script), "<-")) == c.Files[0].Name && len(c.Files) == 1
		data := func(f instructions.ShellInlineFile) string {
			if f.Chomp {
				return parser.ChompHeredocContent(f.Data)
			}
			return f.Data
		}
		if onlyHeredoc {
			script = data(c.Files[0])
		} else {
			var b strings.Builder
			b.WriteString(script)
			b.WriteString("\n")
			for _, f := range c.Files {
				b.WriteString(data(f))
				b.WriteString(f.Name)
				b.WriteString("\n")
			}
			script = b.String()
		}
	}
	return append(append([]string(nil), sh...), script), nil
}

func randomID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// execRun runs args on a writable snapshot of st's image and returns the
// layer of its changes. On failure nothing is committed.
func (bd *build) execRun(ctx context.Context, st *state, args []string, createdBy, network string, mounts []*instructions.Mount) (*layerFile, error) {
	if st.img == nil {
		img, err := bd.commit(ctx, st, nil, "", true)
		if err != nil {
			return nil, err
		}
		st.img = img
	}
	cid := randomID()
	bd.out.printf(" ---> Running in %s\n", cid[:12])
	rootfs, err := bd.b.store.CreateRootfs(ctx, cid, st.img)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	defer func() {
		if err := bd.b.store.RemoveRootfs(context.WithoutCancel(ctx), cid); err != nil {
			bd.b.log.Warn("remove build rootfs", "id", cid, "err", err)
		}
	}()
	wd := st.cfg.Config.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := mkdirInRoot(rootfs, wd); err != nil {
		return nil, fmt.Errorf("run: workdir %s: %w", wd, err)
	}
	scratch, err := bd.b.TempDir("run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	defer bd.runCleanups(scratch)
	specMounts, err := bd.runMounts(ctx, st, rootfs, scratch, network, mounts)
	if err != nil {
		return nil, err
	}
	// Mount points the runtime creates in the rootfs must not end up in
	// the layer: remember which did not exist.
	created := missingTargets(rootfs, append(specMounts, runtimeMountTargets...))
	if network == "" || network == "default" {
		network = bd.opts.NetworkMode
	}
	if network == "" || network == "default" || network == "bridge" {
		network = "host"
	}
	code, err := bd.b.runner.Run(ctx, Process{
		ID: "build-" + cid[:12], Rootfs: rootfs, Args: args, Env: st.runEnv(), Cwd: wd,
		User: st.cfg.Config.User, Network: network, Mounts: specMounts, Output: bd.out,
	})
	removeCreated(rootfs, created)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	if code != 0 {
		return nil, &ExitError{Cmd: displayCmd(createdBy, args), Code: code}
	}
	bd.out.printf("Removing intermediate container %s\n", cid[:12])
	return bd.diffLayer(ctx, cid)
}

// displayCmd is the command as the classic builder's error names it.
func displayCmd(createdBy string, args []string) string {
	if strings.HasPrefix(createdBy, "|") {
		return createdBy
	}
	return strings.Join(args, " ")
}

// ExitError is a RUN step that exited non-zero.
type ExitError struct {
	Cmd  string
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", e.Cmd, e.Code)
}

// runtimeMountTargets are what every container gets mounted (the spec's
// defaults), whose mount points may be created in the rootfs.
var runtimeMountTargets = []specs.Mount{
	{Destination: "/proc"}, {Destination: "/dev"}, {Destination: "/sys"},
	{Destination: "/etc/resolv.conf"}, {Destination: "/etc/hosts"}, {Destination: "/etc/hostname"},
}

func missingTargets(rootfs string, mounts []specs.Mount) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range mounts {
		// Walk up: parents created for a deep mount point count too.
		for p := filepath.Clean(m.Destination); p != "/" && p != "."; p = filepath.Dir(p) {
			if seen[p] {
				continue
			}
			seen[p] = true
			if _, err := os.Lstat(filepath.Join(rootfs, p)); os.IsNotExist(err) {
				out = append(out, p)
			}
		}
	}
	// Deepest first, so parents are empty when their turn comes.
	sort.Slice(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out
}

func removeCreated(rootfs string, paths []string) {
	for _, p := range paths {
		full := filepath.Join(rootfs, p)
		fi, err := os.Lstat(full)
		if err != nil {
			continue
		}
		if fi.IsDir() || fi.Size() == 0 {
			os.Remove(full) // fails, rightly, on a directory the step filled
		}
	}
}

// diffLayer writes the changes of container cid as a layer tar, with
// timestamps clamped to SOURCE_DATE_EPOCH when set.
func (bd *build) diffLayer(ctx context.Context, cid string) (*layerFile, error) {
	f, err := os.CreateTemp(filepath.Join(bd.b.root, "tmp"), "layer-")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := newClampWriter(f, bd.epoch)
	if err := bd.b.store.DiffRootfs(ctx, cid, w); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	if err := w.Close(); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &layerFile{path: f.Name(), size: fi.Size()}, nil
}

func removeFile(p string) { os.Remove(p) }

var _ = image.PutOptions{}

// ExitCode is the step's exit code (the API's errorDetail code).
func (e *ExitError) ExitCode() int { return e.Code }
