// Package compose runs multi-container applications described by compose
// files: it loads a project with compose-go and drives the Engine API
// (networks, volumes, images, containers) the way Docker Compose v2 does,
// with the same labels, names and config hashes, so that an unchanged
// service is left alone and `docker compose`-aware tools see the project.
package compose

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// Labels Docker Compose puts on what it creates.
const (
	LabelProject     = "com.docker.compose.project"
	LabelService     = "com.docker.compose.service"
	LabelNumber      = "com.docker.compose.container-number"
	LabelConfigHash  = "com.docker.compose.config-hash"
	LabelOneoff      = "com.docker.compose.oneoff"
	LabelWorkingDir  = "com.docker.compose.project.working_dir"
	LabelConfigFiles = "com.docker.compose.project.config_files"
	LabelVersion     = "com.docker.compose.version"
	LabelImage       = "com.docker.compose.image"
	LabelDependsOn   = "com.docker.compose.depends_on"
	LabelNetwork     = "com.docker.compose.network"
	LabelVolume      = "com.docker.compose.volume"
)

// Version is what berth reports as its compose version in labels.
const Version = "2.29.0"

// LoadOptions select and shape a project.
type LoadOptions struct {
	Files       []string // -f; default: compose.yaml and friends in WorkingDir
	ProjectName string   // -p
	WorkingDir  string   // --project-directory
	Profiles    []string
	EnvFiles    []string
	Env         []string // the process environment (os.Environ())
}

// Load reads and validates a project: interpolation, env files, extends,
// overrides from several files, profiles.
func Load(ctx context.Context, o LoadOptions) (*types.Project, error) {
	opts := []cli.ProjectOptionsFn{
		cli.WithEnv(o.Env),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithProfiles(o.Profiles),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	}
	if o.WorkingDir != "" {
		opts = append(opts, cli.WithWorkingDirectory(o.WorkingDir))
	}
	if len(o.EnvFiles) > 0 {
		opts = append(opts, cli.WithEnvFiles(o.EnvFiles...))
	}
	if o.ProjectName != "" {
		opts = append(opts, cli.WithName(o.ProjectName))
	}
	po, err := cli.NewProjectOptions(o.Files, opts...)
	if err != nil {
		return nil, err
	}
	p, err := po.LoadProject(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkCycles(p); err != nil {
		return nil, err
	}
	return p, nil
}

// checkCycles refuses depends_on cycles with the services involved.
func checkCycles(p *types.Project) error {
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("dependency cycle detected: %s", strings.Join(append(path, name), " -> "))
		case 2:
			return nil
		}
		state[name] = 1
		s, ok := p.Services[name]
		if ok {
			deps := make([]string, 0, len(s.DependsOn))
			for d := range s.DependsOn {
				deps = append(deps, d)
			}
			sort.Strings(deps)
			for _, d := range deps {
				if err := visit(d, append(path, name)); err != nil {
					return err
				}
			}
		}
		state[name] = 2
		return nil
	}
	for _, name := range p.ServiceNames() {
		if err := visit(name, nil); err != nil {
			return err
		}
	}
	return nil
}

// order returns the project's services with every dependency first.
func order(p *types.Project, names []string) []string {
	var out []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		s := p.Services[name]
		deps := make([]string, 0, len(s.DependsOn))
		for d := range s.DependsOn {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		for _, d := range deps {
			if _, ok := p.Services[d]; ok {
				visit(d)
			}
		}
		out = append(out, name)
	}
	if len(names) == 0 {
		names = p.ServiceNames()
	}
	sort.Strings(names)
	for _, n := range names {
		visit(n)
	}
	return out
}

// ConfigHash is the hash Compose keeps in a container's labels: the
// service's configuration (without its scale) and the image it runs.
func ConfigHash(s types.ServiceConfig, imageID string) string {
	s.Scale = nil
	if s.Deploy != nil {
		d := *s.Deploy
		d.Replicas = nil
		s.Deploy = &d
	}
	data, _ := json.Marshal(s)
	h := sha256.New()
	h.Write(data)
	h.Write([]byte(imageID))
	return hex.EncodeToString(h.Sum(nil))
}

// projectLabels are the labels of every container of the project.
func projectLabels(p *types.Project) map[string]string {
	files := make([]string, 0, len(p.ComposeFiles))
	for _, f := range p.ComposeFiles {
		if abs, err := filepath.Abs(f); err == nil {
			f = abs
		}
		files = append(files, f)
	}
	wd := p.WorkingDir
	if wd == "" {
		wd, _ = os.Getwd()
	}
	return map[string]string{
		LabelProject:     p.Name,
		LabelWorkingDir:  wd,
		LabelConfigFiles: strings.Join(files, ","),
		LabelVersion:     Version,
	}
}

// networkName and volumeName are the engine names of project objects.
func networkName(p *types.Project, key string) string {
	if n, ok := p.Networks[key]; ok && n.Name != "" {
		return n.Name
	}
	return p.Name + "_" + key
}

func volumeName(p *types.Project, key string) string {
	if v, ok := p.Volumes[key]; ok && v.Name != "" {
		return v.Name
	}
	return p.Name + "_" + key
}

// containerName is <project>-<service>-<n>, or the service's container_name.
func containerName(p *types.Project, s types.ServiceConfig, n int) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return fmt.Sprintf("%s-%s-%d", p.Name, s.Name, n)
}

// scale is how many containers a service wants.
func scale(s types.ServiceConfig) int {
	if s.Scale != nil {
		return *s.Scale
	}
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		return *s.Deploy.Replicas
	}
	return 1
}

// imageName is the image a service runs: its image, or for a build
// without one, <project>-<service>.
func imageName(p *types.Project, s types.ServiceConfig) string {
	if s.Image != "" {
		return s.Image
	}
	return p.Name + "-" + s.Name
}
