package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// LoadOptions selects and parameterises a project, as docker compose's global
// flags do.
type LoadOptions struct {
	Files       []string // -f, in order; later files override earlier ones
	ProjectName string   // -p; else COMPOSE_PROJECT_NAME, the file's `name:`, the directory name
	Profiles    []string // --profile; else COMPOSE_PROFILES
	EnvFiles    []string // --env-file; else <project dir>/.env
	WorkDir     string   // --project-directory; else the first file's directory
	Env         []string // the process environment (KEY=VALUE), used for interpolation
}

// Load reads, merges, interpolates and validates the project. Errors are
// InvalidParameter: the file is wrong, not the daemon.
func Load(ctx context.Context, o LoadOptions) (*types.Project, error) {
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	fns := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(o.WorkDir),
		cli.WithEnv(env),
		cli.WithEnvFiles(o.EnvFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithName(o.ProjectName),
	}
	profiles := o.Profiles
	fns = append(fns, func(po *cli.ProjectOptions) error {
		if len(profiles) == 0 {
			if p := po.Environment["COMPOSE_PROFILES"]; p != "" {
				profiles = strings.Split(p, ",")
			}
		}
		return cli.WithProfiles(profiles)(po)
	})
	po, err := cli.NewProjectOptions(o.Files, fns...)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if len(po.ConfigPaths) == 0 {
		return nil, errdefs.InvalidParameter(errors.New("no configuration file provided: not found"))
	}
	p, err := po.LoadProject(ctx)
	if err != nil {
		return nil, errdefs.InvalidParameter(clarify(err))
	}
	return p, nil
}

// falseSchema is the JSON-schema validator's wording for a key the compose
// schema does not allow: "validating f: services.web.colour false schema".
var falseSchema = regexp.MustCompile(`^(validating [^:]+: )(.*)\.([^.]+) false schema$`)

// clarify rewords the loader's least helpful messages the way docker
// compose words them.
func clarify(err error) error {
	if m := falseSchema.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("%s%s additional properties '%s' not allowed", m[1], m[2], m[3])
	}
	return err
}

// LoadBytes loads a project from one in-memory file (fuzzing, tests).
func LoadBytes(ctx context.Context, name, workDir string, content []byte, env map[string]string) (*types.Project, error) {
	p, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  workDir,
		ConfigFiles: []types.ConfigFile{{Filename: "compose.yaml", Content: content}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName(name, true) })
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("load compose file: %w", clarify(err)))
	}
	return p, nil
}
