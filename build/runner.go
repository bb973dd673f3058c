package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/spec"
)

// RuntimeRunner runs RUN steps directly with an OCI runtime, without a
// shim: a build step's process lives only as long as the build waits for
// it, so the daemon can be its parent.
type RuntimeRunner struct {
	Runtime runtime.Runtime
	// BundleDir holds one bundle directory per running step.
	BundleDir string
	// CgroupParent, when set, puts each step in its own cgroup under it.
	CgroupParent string
}

// Run implements Runner.
func (r *RuntimeRunner) Run(ctx context.Context, p Process) (int, error) {
	opts := spec.Options{
		ID:          p.ID,
		Rootfs:      p.Rootfs,
		Args:        p.Args,
		Env:         p.Env,
		Cwd:         p.Cwd,
		User:        p.User,
		Hostname:    p.ID[len(p.ID)-12:],
		NetworkMode: p.Network,
		Mounts:      p.Mounts,
	}
	if r.CgroupParent != "" {
		opts.CgroupsPath = filepath.Join(r.CgroupParent, p.ID)
	}
	if p.Network == "host" {
		opts.Hostname = ""
	}
	s, err := spec.Generate(opts)
	if err != nil {
		return 0, err
	}
	bundle := filepath.Join(r.BundleDir, p.ID)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return 0, err
	}
	defer os.RemoveAll(bundle)
	data, err := json.Marshal(s)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return 0, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	out := p.Output
	if out == nil {
		out = io.Discard
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(out, pr)
		pr.Close()
	}()
	proc, err := r.Runtime.Start(ctx, p.ID, bundle, runtime.IO{Stdout: pw, Stderr: pw})
	pw.Close()
	if err != nil {
		wg.Wait()
		r.Runtime.Delete(context.WithoutCancel(ctx), p.ID)
		return 0, fmt.Errorf("start %s: %w", p.Args[0], err)
	}
	stop := context.AfterFunc(ctx, func() { proc.Signal(9) })
	st, err := proc.Wait()
	stop()
	wg.Wait()
	r.Runtime.Delete(context.WithoutCancel(ctx), p.ID)
	if err != nil {
		return 0, err
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return st.Code, nil
}
