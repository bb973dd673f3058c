package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/cli/formatter"
	"github.com/berth-dev/berth/compose"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// composeFlags are `compose`'s global flags.
type composeFlags struct {
	files      []string
	project    string
	profiles   []string
	envFiles   []string
	projectDir string
	progress   string
}

// addComposeCommands adds `berth compose ...`.
func addComposeCommands(root *cobra.Command, env *Env) {
	f := &composeFlags{}
	cmd := &cobra.Command{Use: "compose [OPTIONS] COMMAND", Short: "Define and run multi-container applications", TraverseChildren: true}
	// compose's own flags go before the subcommand (`compose -f x logs -f`),
	// so they are local flags found by traversal, not persistent ones.
	root.TraverseChildren = true
	fs := cmd.Flags()
	fs.StringArrayVarP(&f.files, "file", "f", nil, "Compose configuration files")
	fs.StringVarP(&f.project, "project-name", "p", "", "Project name")
	fs.StringArrayVar(&f.profiles, "profile", nil, "Specify a profile to enable")
	fs.StringArrayVar(&f.envFiles, "env-file", nil, "Specify an alternate environment file")
	fs.StringVar(&f.projectDir, "project-directory", "", "Specify an alternate working directory")
	fs.StringVar(&f.progress, "progress", "auto", `Set type of progress output ("auto", "tty", "plain", "quiet")`)
	cmd.AddCommand(
		composeUpCmd(env, f), composeDownCmd(env, f), composePsCmd(env, f), composeLogsCmd(env, f),
		composeBuildCmd(env, f), composePullCmd(env, f), composePushCmd(env, f), composeExecCmd(env, f),
		composeRunCmd(env, f), composeSimpleCmd(env, f, "start"), composeSimpleCmd(env, f, "stop"),
		composeSimpleCmd(env, f, "restart"), composeConfigCmd(env, f), composeImagesCmd(env, f),
		composeTopCmd(env, f), composeEventsCmd(env, f),
	)
	root.AddCommand(cmd)
}

// load reads the project. Commands that only need the name (down, ps, logs
// ...) still work with -p and no file, as in docker compose.
func (f *composeFlags) load(ctx context.Context, env *Env, nameOnly bool) (*types.Project, error) {
	p, err := compose.Load(ctx, compose.LoadOptions{
		Files: f.files, ProjectName: f.project, Profiles: f.profiles, EnvFiles: f.envFiles,
		WorkDir: f.projectDir, Env: os.Environ(),
	})
	if err != nil && nameOnly && len(f.files) == 0 && strings.Contains(err.Error(), "no configuration file provided") {
		name := f.project
		if name == "" {
			name = env.Getenv("COMPOSE_PROJECT_NAME")
		}
		if name != "" {
			return &types.Project{Name: name, Services: types.Services{}}, nil
		}
	}
	return p, err
}

// engine connects and returns the compose runner with docker compose's
// progress style: a terminal shows outcomes, anything else plain steps.
func (f *composeFlags) engine(env *Env) (*compose.Compose, error) {
	c, err := env.Client()
	if err != nil {
		return nil, err
	}
	_, tty := termFd(env.Err)
	switch f.progress {
	case "tty":
		tty = true
	case "plain":
		tty = false
	}
	errw := env.Err
	if f.progress == "quiet" {
		errw = nil
	}
	return compose.New(c, env.Out, errw, tty, nil), nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

func timeoutFlag(cmd *cobra.Command, v *int) {
	cmd.Flags().IntVarP(v, "timeout", "t", 0, "Specify a shutdown timeout in seconds")
}

func timeoutPtr(cmd *cobra.Command, v int) *int {
	if cmd.Flags().Changed("timeout") {
		return &v
	}
	return nil
}

func composeUpCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.UpOptions
	var detach bool
	var scale []string
	var timeout, waitTimeout int
	cmd := &cobra.Command{
		Use:   "up [OPTIONS] [SERVICE...]",
		Short: "Create and start containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			p, err := f.load(ctx, env, false)
			if err != nil {
				return err
			}
			o.Services = args
			o.Timeout = timeoutPtr(cmd, timeout)
			o.WaitTimeout = time.Duration(waitTimeout) * time.Second
			o.Scale = map[string]int{}
			for _, s := range scale {
				name, n, ok := strings.Cut(s, "=")
				v, err := strconv.Atoi(n)
				if !ok || err != nil || v < 0 {
					return fmt.Errorf("invalid --scale %q: want SERVICE=NUM", s)
				}
				o.Scale[name] = v
			}
			if o.Wait {
				detach = true
			}
			c, err := f.engine(env)
			if err != nil {
				return err
			}
			if err := c.Up(ctx, p, o); err != nil {
				return err
			}
			if detach {
				return nil
			}
			// Attached: follow the logs until the containers exit or an
			// interrupt, which stops them, as docker compose does.
			fmt.Fprintln(env.Out, "Attaching to", strings.Join(serviceContainers(ctx, c, p), ", "))
			_ = c.Logs(ctx, p.Name, compose.LogOptions{Services: args, Follow: true})
			if ctx.Err() != nil {
				fmt.Fprintln(env.Err, "Gracefully stopping... (press Ctrl+C again to force)")
				return c.Stop(context.Background(), p, args, o.Timeout)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&detach, "detach", "d", false, "Detached mode: Run containers in the background")
	fl.BoolVar(&o.Build, "build", false, "Build images before starting containers")
	fl.BoolVar(&o.NoBuild, "no-build", false, "Don't build an image, even if it's policy")
	fl.BoolVar(&o.Wait, "wait", false, "Wait for services to be running|healthy. Implies detached mode.")
	fl.IntVar(&waitTimeout, "wait-timeout", 0, "Maximum duration in seconds to wait for the project to be running|healthy")
	fl.StringArrayVar(&scale, "scale", nil, "Scale SERVICE to NUM instances. Overrides the scale setting in the Compose file if present.")
	fl.BoolVar(&o.ForceRecreate, "force-recreate", false, "Recreate containers even if their configuration and image haven't changed")
	fl.BoolVar(&o.NoRecreate, "no-recreate", false, "If containers already exist, don't recreate them")
	fl.BoolVar(&o.RemoveOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	fl.BoolVar(&o.NoStart, "no-start", false, "Don't start the services after creating them")
	timeoutFlag(cmd, &timeout)
	return cmd
}

func serviceContainers(ctx context.Context, c *compose.Compose, p *types.Project) []string {
	cts, _ := c.Ps(ctx, p.Name, nil, true)
	var names []string
	for _, ct := range cts {
		names = append(names, strings.TrimPrefix(ct.Names[0], "/"))
	}
	return names
}

func composeDownCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.DownOptions
	var timeout int
	cmd := &cobra.Command{
		Use:   "down [OPTIONS]",
		Short: "Stop and remove containers, networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			p, err := f.load(ctx, env, true)
			if err != nil {
				return err
			}
			c, err := f.engine(env)
			if err != nil {
				return err
			}
			o.Timeout = timeoutPtr(cmd, timeout)
			return c.Down(ctx, p, o)
		},
	}
	cmd.Flags().BoolVarP(&o.Volumes, "volumes", "v", false, "Remove named volumes declared in the \"volumes\" section of the Compose file and anonymous volumes attached to containers")
	cmd.Flags().StringVar(&o.RemoveImages, "rmi", "", `Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")`)
	cmd.Flags().BoolVar(&o.RemoveOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	timeoutFlag(cmd, &timeout)
	return cmd
}

// psRow is one `compose ps` line; its methods are the --format fields.
type psRow struct{ formatter.Container }

func (r psRow) Name() string    { return r.Names() }
func (r psRow) Service() string { return r.C.Labels[compose.LabelService] }
func (r psRow) Project() string { return r.C.Labels[compose.LabelProject] }
func (r psRow) Image() string   { return r.C.Image }

const composePsTable = "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}"

var composePsHeader = map[string]string{"Name": "NAME", "Image": "IMAGE", "Command": "COMMAND", "Service": "SERVICE",
	"RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "ID": "CONTAINER ID", "State": "STATE", "Project": "PROJECT"}

func composePsCmd(env *Env, f *composeFlags) *cobra.Command {
	var all, quiet, services bool
	var format string
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS] [SERVICE...]",
		Short: "List containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env, true)
			if err != nil {
				return err
			}
			c, err := f.engine(env)
			if err != nil {
				return err
			}
			cts, err := c.Ps(ctx, p.Name, args, all)
			if err != nil {
				return err
			}
			if services {
				seen := map[string]bool{}
				for _, ct := range cts {
					if s := ct.Labels[compose.LabelService]; !seen[s] {
						seen[s] = true
						fmt.Fprintln(env.Out, s)
					}
				}
				return nil
			}
			if quiet {
				for _, ct := range cts {
					fmt.Fprintln(env.Out, ct.ID)
				}
				return nil
			}
			now := time.Now()
			if format == "json" {
				for _, ct := range cts {
					b, _ := json.Marshal(ct)
					fmt.Fprintln(env.Out, string(b))
				}
				return nil
			}
			if format == "" || format == "table" {
				format = composePsTable
			}
			rows := make([]any, 0, len(cts))
			for _, ct := range cts {
				rows = append(rows, psRow{formatter.Container{C: ct, Trunc: true, Now: now}})
			}
			return formatter.Write(env.Out, format, composePsHeader, rows)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Show all stopped containers (including those created by the run command)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	cmd.Flags().BoolVar(&services, "services", false, "Display services")
	cmd.Flags().StringVar(&format, "format", "table", "Format output using a custom template")
	return cmd
}

func composeLogsCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.LogOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] [SERVICE...]",
		Short: "View output from containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			p, err := f.load(ctx, env, true)
			if err != nil {
				return err
			}
			c, err := f.engine(env)
			if err != nil {
				return err
			}
			o.Services = args
			return c.Logs(ctx, p.Name, o)
		},
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "Follow log output")
	cmd.Flags().StringVarP(&o.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs for each container")
	cmd.Flags().BoolVarP(&o.Timestamps, "timestamps", "t", false, "Show timestamps")
	cmd.Flags().BoolVar(&o.NoPrefix, "no-log-prefix", false, "Don't print prefix in logs")
	cmd.Flags().StringVar(&o.Since, "since", "", "Show logs since timestamp or relative")
	return cmd
}

// projectCmd is a command that loads the project and runs fn.
func projectCmd(env *Env, f *composeFlags, use, short string, fn func(ctx context.Context, c *compose.Compose, p *types.Project, cmd *cobra.Command, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			p, err := f.load(ctx, env, false)
			if err != nil {
				return err
			}
			c, err := f.engine(env)
			if err != nil {
				return err
			}
			return fn(ctx, c, p, cmd, args)
		},
	}
}

func composeBuildCmd(env *Env, f *composeFlags) *cobra.Command {
	return projectCmd(env, f, "build [OPTIONS] [SERVICE...]", "Build or rebuild services",
		func(ctx context.Context, c *compose.Compose, p *types.Project, _ *cobra.Command, args []string) error {
			return c.Build(ctx, p, args)
		})
}

func composePullCmd(env *Env, f *composeFlags) *cobra.Command {
	var ignoreBuildable bool
	cmd := projectCmd(env, f, "pull [OPTIONS] [SERVICE...]", "Pull service images",
		func(ctx context.Context, c *compose.Compose, p *types.Project, _ *cobra.Command, args []string) error {
			return c.Pull(ctx, p, args, ignoreBuildable)
		})
	cmd.Flags().BoolVar(&ignoreBuildable, "ignore-buildable", false, "Ignore images that can be built")
	return cmd
}

func composePushCmd(env *Env, f *composeFlags) *cobra.Command {
	return projectCmd(env, f, "push [OPTIONS] [SERVICE...]", "Push service images",
		func(ctx context.Context, c *compose.Compose, p *types.Project, _ *cobra.Command, args []string) error {
			return c.Push(ctx, p, args)
		})
}

func composeSimpleCmd(env *Env, f *composeFlags, verb string) *cobra.Command {
	var timeout int
	short := map[string]string{"start": "Start services", "stop": "Stop services", "restart": "Restart service containers"}[verb]
	cmd := projectCmd(env, f, verb+" [SERVICE...]", short,
		func(ctx context.Context, c *compose.Compose, p *types.Project, cmd *cobra.Command, args []string) error {
			switch verb {
			case "start":
				return c.Start(ctx, p, args)
			case "stop":
				return c.Stop(ctx, p, args, timeoutPtr(cmd, timeout))
			default:
				return c.Restart(ctx, p, args, timeoutPtr(cmd, timeout))
			}
		})
	if verb != "start" {
		timeoutFlag(cmd, &timeout)
	}
	return cmd
}

func composeExecCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.ExecOptions
	var noTTY bool
	cmd := projectCmd(env, f, "exec [OPTIONS] SERVICE COMMAND [ARGS...]", "Execute a command in a running container",
		func(ctx context.Context, c *compose.Compose, p *types.Project, cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return argsError(cmd, "requires at least 2 arguments", "See")
			}
			o.Service, o.Cmd = args[0], args[1:]
			_, inTTY := termFd(env.In)
			o.TTY = !noTTY && inTTY
			o.Interact = true
			o.In = env.In
			code, err := c.Exec(ctx, p, o)
			if err != nil {
				return err
			}
			if code != 0 {
				return StatusError{Code: code}
			}
			return nil
		})
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&o.Detach, "detach", "d", false, "Detached mode: Run command in the background")
	fl.BoolVarP(&noTTY, "no-TTY", "T", false, "Disable pseudo-TTY allocation")
	fl.StringVarP(&o.User, "user", "u", "", "Run the command as this user")
	fl.StringArrayVarP(&o.Env, "env", "e", nil, "Set environment variables")
	fl.StringVarP(&o.WorkingDir, "workdir", "w", "", "Path to workdir directory for this command")
	fl.BoolVar(&o.Privileged, "privileged", false, "Give extended privileges to the process")
	fl.IntVar(&o.Index, "index", 0, "Index of the container if service has multiple replicas")
	return cmd
}

func composeRunCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.RunOptions
	var noTTY, interactive bool
	var entrypoint string
	cmd := projectCmd(env, f, "run [OPTIONS] SERVICE [COMMAND] [ARGS...]", "Run a one-off command on a service",
		func(ctx context.Context, c *compose.Compose, p *types.Project, cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return argsError(cmd, "requires at least 1 argument", "See")
			}
			o.Service, o.Cmd = args[0], args[1:]
			if cmd.Flags().Changed("entrypoint") {
				o.Entrypoint = strings.Fields(entrypoint)
			}
			_, inTTY := termFd(env.In)
			o.TTY = !noTTY && inTTY && !o.Detach
			o.Interactive = interactive && !o.Detach
			o.In = env.In
			code, err := c.Run(ctx, p, o)
			if err != nil {
				return err
			}
			if code != 0 {
				return StatusError{Code: code}
			}
			return nil
		})
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&o.Detach, "detach", "d", false, "Run container in background and print container ID")
	fl.BoolVar(&o.Remove, "rm", false, "Automatically remove the container when it exits")
	fl.BoolVarP(&noTTY, "no-TTY", "T", false, "Disable pseudo-TTY allocation")
	fl.BoolVarP(&interactive, "interactive", "i", true, "Keep STDIN open even if not attached")
	fl.StringVar(&o.Name, "name", "", "Assign a name to the container")
	fl.StringVarP(&o.User, "user", "u", "", "Run as specified username or uid")
	fl.StringArrayVarP(&o.Env, "env", "e", nil, "Set environment variables")
	fl.StringVarP(&o.WorkingDir, "workdir", "w", "", "Working directory inside the container")
	fl.StringVar(&entrypoint, "entrypoint", "", "Override the entrypoint of the image")
	fl.BoolVar(&o.NoDeps, "no-deps", false, "Don't start linked services")
	fl.BoolVar(&o.Publish, "service-ports", false, "Run command with all service's ports enabled and mapped to the host")
	return cmd
}

func composeConfigCmd(env *Env, f *composeFlags) *cobra.Command {
	var format string
	var servicesOnly, quiet bool
	cmd := &cobra.Command{
		Use:   "config [OPTIONS] [SERVICE...]",
		Short: "Parse, resolve and render compose file in canonical format",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(context.Background(), env, false)
			if err != nil {
				return err
			}
			if quiet {
				return nil
			}
			if servicesOnly {
				for _, n := range p.ServiceNames() {
					fmt.Fprintln(env.Out, n)
				}
				return nil
			}
			if len(args) > 0 {
				if p, err = p.WithSelectedServices(args); err != nil {
					return err
				}
			}
			var b []byte
			if format == "json" {
				b, err = p.MarshalJSON()
			} else {
				b, err = p.MarshalYAML()
			}
			if err != nil {
				return err
			}
			_, err = env.Out.Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "yaml", `Format the output. Values: [yaml | json]`)
	cmd.Flags().BoolVar(&servicesOnly, "services", false, "Print the service names, one per line.")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only validate the configuration, don't print anything")
	return cmd
}

func composeImagesCmd(env *Env, f *composeFlags) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [SERVICE...]",
		Short: "List images used by the created containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env, true)
			if err != nil {
				return err
			}
			c, err := f.engine(env)
			if err != nil {
				return err
			}
			rows, err := c.Images(ctx, p.Name, args)
			if err != nil {
				return err
			}
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(env.Out, r.ID)
				}
				return nil
			}
			table := [][]string{{"CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"}}
			for _, r := range rows {
				table = append(table, []string{r.Container, r.Repository, r.Tag, formatter.TruncateID(r.ID), units.HumanSizeWithPrecision(float64(r.Size), 3)})
			}
			return formatter.Write(env.Out, "table {{index . 0}}\t{{index . 1}}\t{{index . 2}}\t{{index . 3}}\t{{index . 4}}", nil, toAny(table))
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	return cmd
}

func toAny(rows [][]string) []any {
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = r
	}
	return out
}

func composeTopCmd(env *Env, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "top [SERVICES...]",
		Short: "Display the running processes",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env, true)
			if err != nil {
				return err
			}
			c, err := f.engine(env)
			if err != nil {
				return err
			}
			return c.Top(ctx, p.Name, args)
		},
	}
}

func composeEventsCmd(env *Env, f *composeFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events [OPTIONS] [SERVICE...]",
		Short: "Receive real time events from containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			p, err := f.load(ctx, env, true)
			if err != nil {
				return err
			}
			c, err := f.engine(env)
			if err != nil {
				return err
			}
			err = c.Events(ctx, p.Name, args, asJSON)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "Output events as a stream of json objects")
	return cmd
}
