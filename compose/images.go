package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/build/buildcontext"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/client"
)

// needsBuild tells whether up must build the service's image: it has a
// build section and either --build was given or the image is missing.
func (c *Compose) imageExists(ctx context.Context, ref string) (string, bool, error) {
	res, err := c.API.ImageInspect(ctx, ref)
	if err == nil {
		return res.ID, true, nil
	}
	if isNotFound(err) {
		return "", false, nil
	}
	return "", false, fmt.Errorf("inspect image %s: %w", ref, err)
}

// ensureImages builds or pulls what the services need. build forces
// builds; noBuild refuses them.
func (c *Compose) ensureImages(ctx context.Context, p *types.Project, services []string, build, noBuild bool) error {
	for _, n := range services {
		s := p.Services[n]
		ref := ImageName(p, s)
		_, ok, err := c.imageExists(ctx, ref)
		if err != nil {
			return err
		}
		switch {
		case s.Build != nil && !noBuild && (build || !ok || s.PullPolicy == types.PullPolicyBuild):
			if err := c.buildService(ctx, p, s); err != nil {
				return err
			}
		case !ok && s.PullPolicy == types.PullPolicyNever:
			return fmt.Errorf("service %s: image %s not found and pull_policy is never", n, ref)
		case !ok && s.Image == "":
			return fmt.Errorf("service %s has neither an image nor a build context specified: invalid compose project", n)
		case !ok || s.PullPolicy == types.PullPolicyAlways:
			if err := c.pullImage(ctx, "Image", ref); err != nil {
				return fmt.Errorf("service %s: %w", n, err)
			}
		}
	}
	return nil
}

// Build builds the images of the services that have a build section.
func (c *Compose) Build(ctx context.Context, p *types.Project, services []string) error {
	names, err := selectServices(p, services)
	if err != nil {
		return err
	}
	for _, n := range names {
		if s := p.Services[n]; s.Build != nil {
			if err := c.buildService(ctx, p, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// buildService sends the service's context to POST /build and tags the
// result with the service's image name (and build.tags).
func (c *Compose) buildService(ctx context.Context, p *types.Project, s types.ServiceConfig) error {
	b := s.Build
	ref := ImageName(p, s)
	dir := b.Context
	if dir == "" {
		dir = p.WorkingDir
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(p.WorkingDir, dir)
	}
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	var extra map[string][]byte
	if b.DockerfileInline != "" {
		dockerfile = ".berth-compose.Dockerfile"
		extra = map[string][]byte{dockerfile: []byte(b.DockerfileInline)}
	} else if filepath.IsAbs(dockerfile) {
		rel, err := filepath.Rel(dir, dockerfile)
		if err != nil || strings.HasPrefix(rel, "..") {
			// A Dockerfile outside the context travels with it.
			data, err := os.ReadFile(dockerfile)
			if err != nil {
				return fmt.Errorf("build %s: %w", s.Name, err)
			}
			dockerfile = ".berth-compose.Dockerfile"
			extra = map[string][]byte{dockerfile: data}
		} else {
			dockerfile = rel
		}
	}
	c.prog.event("Image", ref, "Building")
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarContext(dir, dockerfile, extra, pw)) }()
	defer pr.Close()
	labels := map[string]string{}
	for k, v := range b.Labels {
		labels[k] = v
	}
	args := map[string]*string{}
	for k, v := range b.Args {
		args[k] = v
	}
	res, err := c.API.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        append([]string{ref}, b.Tags...),
		Dockerfile:  filepath.ToSlash(dockerfile),
		BuildArgs:   args,
		Target:      b.Target,
		Labels:      labels,
		NoCache:     b.NoCache,
		PullParent:  b.Pull,
		NetworkMode: b.Network,
		ExtraHosts:  b.ExtraHosts.AsList(":"),
		ShmSize:     int64(b.ShmSize),
		CacheFrom:   b.CacheFrom,
		Remove:      true,
	})
	if err != nil {
		return fmt.Errorf("build %s: %w", s.Name, err)
	}
	defer res.Body.Close()
	if err := readJSONStream(res.Body, c.buildOutput()); err != nil {
		return fmt.Errorf("build %s: %w", s.Name, err)
	}
	c.prog.event("Image", ref, "Built")
	return nil
}

// buildOutput is where builder output goes: the progress stream when it is
// plain, nowhere on a terminal (only the outcome is shown).
func (c *Compose) buildOutput() io.Writer {
	if c.TTY || c.Err == nil {
		return io.Discard
	}
	return c.Err
}

func (c *Compose) pullImage(ctx context.Context, kind, ref string) error {
	c.prog.event(kind, ref, "Pulling")
	r, err := c.API.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer r.Close()
	for m, err := range r.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		if m.Error != nil {
			return fmt.Errorf("pull %s: %s", ref, m.Error.Message)
		}
	}
	c.prog.event(kind, ref, "Pulled")
	return nil
}

// Pull pulls the images of services that name one.
func (c *Compose) Pull(ctx context.Context, p *types.Project, services []string, ignoreBuildable bool) error {
	names, err := selectServices(p, services)
	if err != nil {
		return err
	}
	for _, n := range names {
		s := p.Services[n]
		if s.Image == "" || (ignoreBuildable && s.Build != nil) {
			continue
		}
		if err := c.pullImage(ctx, "Image", s.Image); err != nil {
			if s.Build != nil {
				c.prog.warn("%v (the service has a build section: build it instead)", err)
				continue
			}
			return err
		}
	}
	return nil
}

// Push pushes the images of services that have a build section and an image name.
func (c *Compose) Push(ctx context.Context, p *types.Project, services []string) error {
	names, err := selectServices(p, services)
	if err != nil {
		return err
	}
	for _, n := range names {
		s := p.Services[n]
		if s.Build == nil || s.Image == "" {
			continue
		}
		c.prog.event("Image", s.Image, "Pushing")
		r, err := c.API.ImagePush(ctx, s.Image, client.ImagePushOptions{RegistryAuth: "e30="})
		if err != nil {
			return fmt.Errorf("push %s: %w", s.Image, err)
		}
		for m, err := range r.JSONMessages(ctx) {
			if err != nil {
				r.Close()
				return fmt.Errorf("push %s: %w", s.Image, err)
			}
			if m.Error != nil {
				r.Close()
				return fmt.Errorf("push %s: %s", s.Image, m.Error.Message)
			}
		}
		r.Close()
		c.prog.event("Image", s.Image, "Pushed")
	}
	return nil
}

// readJSONStream copies a build's `stream` output to w and turns an
// error message into an error.
func readJSONStream(r io.Reader, w io.Writer) error {
	dec := newJSONDecoder(r)
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(strings.TrimSpace(m.ErrorDetail.Message))
		}
		if m.Error != "" {
			return errors.New(strings.TrimSpace(m.Error))
		}
		if m.Stream != "" {
			io.WriteString(w, m.Stream)
		}
	}
}

// tarContext writes dir as a tar stream with the build package's context
// writer (.dockerignore honoured, the Dockerfile always sent), plus the
// extra files (an inline or outside Dockerfile).
func tarContext(dir, dockerfile string, extra map[string][]byte, w io.Writer) error {
	excludes, err := buildcontext.ReadIgnore(dir)
	if err != nil {
		return fmt.Errorf("build context %s: %w", dir, err)
	}
	return buildcontext.Write(w, dir, buildcontext.Options{Excludes: excludes, Keep: []string{dockerfile, ".dockerignore"}, Extra: extra})
}
