package compose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/build/buildcontext"
)

// imageID is the local image's ID, "" when absent.
func (c *Service) imageID(ctx context.Context, ref string) string {
	res, err := c.API.ImageInspect(ctx, ref)
	if err != nil {
		return ""
	}
	return res.ID
}

// ensureImages builds services with a build section (always with --build,
// else only when their image is missing) and pulls missing images.
func (c *Service) ensureImages(ctx context.Context, p *types.Project, build, noBuild bool, pr *progress) error {
	var toBuild []string
	for _, svc := range p.ServiceNames() {
		s := p.Services[svc]
		ref := imageName(p, s)
		present := c.imageID(ctx, ref) != ""
		switch {
		case s.Build != nil && !noBuild && (build || !present || s.PullPolicy == types.PullPolicyBuild):
			toBuild = append(toBuild, svc)
		case present || s.PullPolicy == types.PullPolicyNever:
		case s.Build != nil && noBuild:
			return fmt.Errorf("service %s: image %s not built and --no-build given", svc, ref)
		default:
			if err := c.pullOne(ctx, svc, ref, pr); err != nil {
				return err
			}
		}
	}
	if len(toBuild) > 0 {
		return c.Build(ctx, p, BuildOptions{Services: toBuild})
	}
	return nil
}

// BuildOptions are `compose build`'s flags.
type BuildOptions struct {
	Services []string
	NoCache  bool
	Pull     bool
	Quiet    bool
	Args     map[string]string
}

// Build builds the services with a build section through POST /build,
// sending the context directory as a tar.
func (c *Service) Build(ctx context.Context, p *types.Project, o BuildOptions) error {
	names, err := selectServices(p, o.Services)
	if err != nil {
		return err
	}
	pr := c.progress()
	for _, svc := range names {
		s := p.Services[svc]
		if s.Build == nil {
			continue
		}
		ref := imageName(p, s)
		pr.event("Service", svc, "Building")
		if err := c.buildOne(ctx, p, s, ref, o); err != nil {
			pr.event("Service", svc, "Error")
			return fmt.Errorf("build service %s: %w", svc, err)
		}
		pr.event("Service", svc, "Built")
	}
	return nil
}

func (c *Service) buildOne(ctx context.Context, p *types.Project, s types.ServiceConfig, ref string, o BuildOptions) error {
	b := s.Build
	dir := b.Context
	if dir == "" {
		dir = "."
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(p.WorkingDir, dir)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("build context %s is not a directory", dir)
	}
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	tarOpts := buildcontext.Options{Keep: []string{".dockerignore"}}
	if b.DockerfileInline != "" {
		dockerfile = ".dockerfile.inline"
		tarOpts.Extra = map[string][]byte{dockerfile: []byte(b.DockerfileInline)}
	} else if filepath.IsAbs(dockerfile) {
		rel, err := filepath.Rel(dir, dockerfile)
		if err != nil || strings.HasPrefix(rel, "..") {
			data, err := os.ReadFile(dockerfile)
			if err != nil {
				return fmt.Errorf("read dockerfile: %w", err)
			}
			dockerfile = ".dockerfile.compose"
			tarOpts.Extra = map[string][]byte{dockerfile: data}
		} else {
			dockerfile = rel
		}
	}
	tarOpts.Keep = append(tarOpts.Keep, dockerfile)
	excludes, err := buildcontext.ReadIgnore(dir)
	if err != nil {
		return err
	}
	tarOpts.Excludes = excludes

	args := map[string]*string{}
	for k, v := range b.Args {
		args[k] = v
	}
	for k, v := range o.Args {
		args[k] = &v
	}
	labels := map[string]string{}
	for k, v := range b.Labels {
		labels[k] = v
	}
	tags := append([]string{ref}, b.Tags...)

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(buildcontext.Write(pw, dir, tarOpts)) }()
	defer pr.Close()
	res, err := c.API.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags: tags, Dockerfile: dockerfile, BuildArgs: args, Target: b.Target, Labels: labels,
		NoCache: o.NoCache || b.NoCache, PullParent: o.Pull || b.Pull, Remove: true,
		NetworkMode: b.Network, ShmSize: int64(b.ShmSize), ExtraHosts: b.ExtraHosts.AsList(":"),
		CacheFrom: b.CacheFrom,
	})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	return c.jsonStream(res.Body, o.Quiet)
}

// jsonStream copies a build/pull/push message stream's text to Out and
// turns its error message into an error.
func (c *Service) jsonStream(r io.Reader, quiet bool) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			jsonstream.Message
			ErrorMessage string `json:"error,omitempty"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read daemon output: %w", err)
		}
		switch {
		case m.Error != nil:
			return errors.New(m.Error.Message)
		case m.ErrorMessage != "":
			return errors.New(m.ErrorMessage)
		case m.Stream != "" && !quiet && c.Out != nil && !c.TTY:
			fmt.Fprint(c.Out, m.Stream)
		}
	}
}

func (c *Service) pullOne(ctx context.Context, svc, ref string, pr *progress) error {
	pr.event("Image", ref, "Pulling")
	res, err := c.API.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		pr.event("Image", ref, "Error")
		return fmt.Errorf("pull %s for service %s: %w", ref, svc, err)
	}
	defer res.Close()
	if err := c.jsonStream(res, true); err != nil {
		pr.event("Image", ref, "Error")
		return fmt.Errorf("pull %s for service %s: %w", ref, svc, err)
	}
	pr.event("Image", ref, "Pulled")
	return nil
}

// Pull pulls the images of the named services (all when none); services
// that only build are skipped, as docker compose does.
func (c *Service) Pull(ctx context.Context, p *types.Project, services []string, ignoreFailures bool) error {
	names, err := selectServices(p, services)
	if err != nil {
		return err
	}
	pr := c.progress()
	for _, svc := range names {
		s := p.Services[svc]
		if s.Image == "" {
			continue
		}
		if err := c.pullOne(ctx, svc, s.Image, pr); err != nil {
			if s.Build != nil || ignoreFailures {
				pr.event("Image", s.Image, "Warning")
				continue
			}
			return err
		}
	}
	return nil
}

// Push pushes the images of services with a build section and an image name.
func (c *Service) Push(ctx context.Context, p *types.Project, services []string, ignoreFailures bool) error {
	names, err := selectServices(p, services)
	if err != nil {
		return err
	}
	pr := c.progress()
	for _, svc := range names {
		s := p.Services[svc]
		if s.Build == nil || s.Image == "" {
			continue
		}
		pr.event("Image", s.Image, "Pushing")
		res, err := c.API.ImagePush(ctx, s.Image, client.ImagePushOptions{RegistryAuth: "e30="})
		if err == nil {
			err = c.jsonStream(res, true)
			res.Close()
		}
		if err != nil {
			pr.event("Image", s.Image, "Error")
			if ignoreFailures {
				continue
			}
			return fmt.Errorf("push %s: %w", s.Image, err)
		}
		pr.event("Image", s.Image, "Pushed")
	}
	return nil
}

// projectImages are the images the project's services use, sorted.
func projectImages(p *types.Project, onlyBuilt bool) []string {
	var out []string
	for _, svc := range p.ServiceNames() {
		s := p.Services[svc]
		if onlyBuilt && s.Image != "" {
			continue
		}
		ref := imageName(p, s)
		if !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	slices.Sort(out)
	return out
}
