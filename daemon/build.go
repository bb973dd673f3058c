package daemon

import (
	"context"
	"fmt"
	"github.com/moby/moby/api/types/jsonstream"
	"io"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/build"
	"github.com/berth-dev/berth/runtime"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
)

var _ api.BuildBackend = (*Daemon)(nil)

// newBuilder wires the Dockerfile builder to the image store. RUN steps
// run under the built-in runtime directly (no shim: the build waits for
// them), whatever runtime containers use, so the daemon never becomes a
// child subreaper.
func newBuilder(cfg Config, d *Daemon) (*build.Builder, error) {
	rt, err := runtime.New(runtime.Options{StateDir: filepath.Join(cfg.ExecRoot, "build", "runtime")})
	if err != nil {
		return nil, fmt.Errorf("builder: %w", err)
	}
	return build.New(build.Config{
		Store: d.images,
		Runner: &build.RuntimeRunner{
			Runtime:   rt,
			BundleDir: filepath.Join(cfg.ExecRoot, "build", "bundles"),
		},
		Puller: buildPuller{d},
		Root:   filepath.Join(cfg.DataRoot, "build"),
		// Small contexts unpack on tmpfs: the exec root when it is one
		// (/run/berth), else /dev/shm.
		ScratchDirs: []string{
			filepath.Join(cfg.ExecRoot, "build", "context"),
			filepath.Join("/dev/shm", "berth-build-"+digest.FromString(cfg.DataRoot).Encoded()[:12]),
		},
		Log: cfg.Log.With("component", "build"),
	})
}

// Build implements api.BuildBackend.
func (d *Daemon) Build(ctx context.Context, body io.Reader, opts api.BuildOptions, out io.Writer, built func(id string)) (*api.BuildResult, error) {
	start := time.Now()
	dir, cleanup, err := d.builder.LoadContext(ctx, body, opts.Remote)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	loaded := time.Since(start)
	res, err := d.builder.Build(ctx, build.Options{
		ContextDir:  dir,
		Dockerfile:  opts.Dockerfile,
		Tags:        opts.Tags,
		BuildArgs:   opts.BuildArgs,
		Labels:      opts.Labels,
		Target:      opts.Target,
		NoCache:     opts.NoCache,
		Pull:        opts.Pull,
		Platform:    opts.Platform,
		NetworkMode: opts.NetworkMode,
		Output:      out,
		Built:       func(id digest.Digest) { built(id.String()) },
	})
	if err != nil {
		return nil, err
	}
	d.log.Debug("build", "id", res.ID, "context", loaded, "build", res.Duration, "steps", res.Steps, "cached", res.CachedSteps)
	for _, t := range res.Tags {
		d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionTag, res.ID.String(), map[string]string{"name": familiar(t)})
	}
	return &api.BuildResult{ID: res.ID.String()}, nil
}

// BuildPrune implements api.BuildBackend.
func (d *Daemon) BuildPrune(ctx context.Context, all bool, keepStorage int64) (*api.BuildPruneReport, error) {
	rep, err := d.builder.Prune(ctx, all, keepStorage)
	if err != nil {
		return nil, err
	}
	return &api.BuildPruneReport{CachesDeleted: rep.CachesDeleted, SpaceReclaimed: rep.SpaceReclaimed}, nil
}

// buildPuller pulls the images a build needs (FROM, --pull), reporting
// progress as plain lines in the build's output.
type buildPuller struct{ d *Daemon }

func (p buildPuller) Pull(ctx context.Context, ref, platform string, out io.Writer) error {
	err := p.d.PullImage(ctx, ref, "", platform, "", func(m jsonstream.Message) {
		if m.Status == "" || m.Progress != nil && m.Status == "Downloading" {
			return
		}
		if m.ID != "" {
			fmt.Fprintf(out, "%s: %s\n", m.ID, m.Status)
		} else {
			fmt.Fprintln(out, m.Status)
		}
	})
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	return nil
}
