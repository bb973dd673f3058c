package compose

import (
	"context"
	"fmt"
	"strings"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/graph"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/errdefs"
)

// LoadOptions says where a project comes from, as docker compose's global
// flags do.
type LoadOptions struct {
	Files      []string // -f; none means compose.yaml (etc.) found from WorkingDir up
	Name       string   // -p; else COMPOSE_PROJECT_NAME, `name:`, the directory
	Profiles   []string // --profile; else COMPOSE_PROFILES
	EnvFiles   []string // --env-file; else .env in the project directory
	WorkingDir string   // --project-directory
	Environ    []string // the caller's environment (KEY=VALUE)
}

// Load reads, merges, interpolates and validates a project. Errors are
// InvalidParameter: a bad file is the user's to fix.
func Load(ctx context.Context, o LoadOptions) (*types.Project, error) {
	opts := []composecli.ProjectOptionsFn{
		composecli.WithEnv(o.Environ),
		composecli.WithWorkingDirectory(o.WorkingDir),
		composecli.WithEnvFiles(o.EnvFiles...),
		composecli.WithDotEnv,
		composecli.WithConfigFileEnv,
		composecli.WithDefaultConfigPath,
		composecli.WithDefaultProfiles(o.Profiles...),
		composecli.WithResolvedPaths(true),
	}
	if o.Name != "" {
		opts = append(opts, composecli.WithName(o.Name))
	}
	po, err := composecli.NewProjectOptions(o.Files, opts...)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	p, err := po.LoadProject(ctx)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if err := graph.CheckCycle(p); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("dependency cycle: %w", err))
	}
	if err := checkProject(p); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	return p, nil
}

// checkProject refuses what compose-go accepts but compose cannot run.
func checkProject(p *types.Project) error {
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.Image == "" && s.Build == nil {
			return fmt.Errorf("service %q has neither an image nor a build context specified", name)
		}
		for dep := range s.DependsOn {
			if _, ok := p.Services[dep]; !ok {
				if _, disabled := p.DisabledServices[dep]; !disabled {
					return fmt.Errorf("service %q depends on undefined service %q", name, dep)
				}
			}
		}
		for net := range s.Networks {
			if _, ok := p.Networks[net]; !ok {
				return fmt.Errorf("service %q refers to undefined network %s", name, net)
			}
		}
	}
	return nil
}

// imageName is the image a service runs: its own, or the one compose
// builds for it (<project>-<service>, as docker compose names it).
func imageName(p *types.Project, s types.ServiceConfig) string {
	if s.Image != "" {
		return s.Image
	}
	return strings.ToLower(p.Name + "-" + s.Name)
}
