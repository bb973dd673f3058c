package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	composeerrdefs "github.com/compose-spec/compose-go/v2/errdefs"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/events"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cli/formatter"
	"github.com/berth-dev/berth/compose"
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

// addComposeCommands adds `compose` and its subcommands.
func addComposeCommands(root *cobra.Command, env *Env) {
	// compose's -f (file) and its subcommands' -f (logs --follow) coexist
	// as in docker compose: compose's own flags are parsed before the
	// subcommand's. cobra does that only with TraverseChildren, which would
	// change every other command's parsing, so compose runs its own tree.
	outer := &cobra.Command{
		Use:                "compose [OPTIONS] COMMAND",
		Short:              "Define and run multi-container applications",
		DisableFlagParsing: true,
		RunE: func(c *cobra.Command, args []string) error {
			inner := newComposeTree(env, &composeFlags{})
			// Flag parsing is off here, so berth's own flags given before
			// `compose` (-H, --tls...) arrive in args: the tree parses them.
			inner.Flags().AddFlagSet(root.PersistentFlags())
			inner.SetArgs(args)
			inner.SetIn(env.In)
			inner.SetOut(env.Out)
			inner.SetErr(env.Err)
			_, err := inner.ExecuteContextC(c.Context())
			return err
		},
	}
	root.AddCommand(outer)
}

// newComposeTree is `compose` with its flags and subcommands.
func newComposeTree(env *Env, f *composeFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:              "compose [OPTIONS] COMMAND",
		Short:            "Define and run multi-container applications",
		TraverseChildren: true,
		SilenceErrors:    true,
		SilenceUsage:     true,
	}
	cmd.DisableFlagsInUseLine = true
	// This tree's root is "compose": name the full command in errors.
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return StatusError{Code: 125, Status: fmt.Sprintf("%s\n\nUsage:  berth %s\n\nRun 'berth %s --help' for more information", err, c.UseLine(), c.CommandPath())}
	})
	fs := cmd.Flags()
	fs.StringArrayVarP(&f.files, "file", "f", nil, "Compose configuration files")
	fs.StringVarP(&f.project, "project-name", "p", "", "Project name")
	fs.StringArrayVar(&f.profiles, "profile", nil, "Specify a profile to enable")
	fs.StringArrayVar(&f.envFiles, "env-file", nil, "Specify an alternate environment file")
	fs.StringVar(&f.projectDir, "project-directory", "", "Specify an alternate working directory")
	fs.StringVar(&f.progress, "progress", "auto", `Set type of progress output ("auto", "tty", "plain", "quiet")`)
	cmd.AddCommand(
		composeUpCmd(env, f), composeCreateCmd(env, f), composeDownCmd(env, f), composePsCmd(env, f),
		composeLogsCmd(env, f), composeBuildCmd(env, f), composePullCmd(env, f), composePushCmd(env, f),
		composeExecCmd(env, f), composeRunCmd(env, f), composeSimpleCmd(env, f, "start"),
		composeSimpleCmd(env, f, "stop"), composeSimpleCmd(env, f, "restart"), composeConfigCmd(env, f),
		composeImagesCmd(env, f), composeTopCmd(env, f), composeEventsCmd(env, f), composeRmCmd(env, f),
	)
	for _, c := range cmd.Commands() {
		c.DisableFlagsInUseLine = true
	}
	return cmd
}

// load reads the project as the global flags say.
func (f *composeFlags) load(ctx context.Context, env *Env) (*types.Project, error) {
	return compose.Load(ctx, compose.LoadOptions{
		Files: f.files, Name: f.project, Profiles: f.profiles, EnvFiles: f.envFiles,
		WorkingDir: f.projectDir, Environ: os.Environ(),
	})
}

// service builds the compose runner on this CLI's client and streams.
func (f *composeFlags) service(env *Env) (*compose.Service, error) {
	c, err := env.Client()
	if err != nil {
		return nil, err
	}
	_, tty := termFd(env.Out)
	switch f.progress {
	case "tty":
		tty = true
	case "plain":
		tty = false
	}
	svc := &compose.Service{API: c, Out: env.Err, Err: env.Err, TTY: tty}
	if f.progress == "quiet" {
		svc.Out = nil
	}
	return svc, nil
}

// projectAndService loads the project and the runner together.
func (f *composeFlags) projectAndService(cmd *cobra.Command, env *Env) (*types.Project, *compose.Service, error) {
	p, err := f.load(cmd.Context(), env)
	if err != nil {
		return nil, nil, err
	}
	s, err := f.service(env)
	return p, s, err
}

// projectName is -p, or the loaded project's name.
func (f *composeFlags) projectName(cmd *cobra.Command, env *Env) (string, error) {
	if f.project != "" {
		return f.project, nil
	}
	if v := os.Getenv("COMPOSE_PROJECT_NAME"); v != "" {
		return v, nil
	}
	p, err := f.load(cmd.Context(), env)
	if err != nil {
		return "", err
	}
	return p.Name, nil
}

func parseScale(in []string) (map[string]int, error) {
	out := map[string]int{}
	for _, s := range in {
		k, v, ok := strings.Cut(s, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return nil, fmt.Errorf("invalid --scale %q: want SERVICE=NUM", s)
		}
		out[k] = n
	}
	return out, nil
}

func composeUpCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.UpOptions
	var detach bool
	var scale []string
	var waitTimeout int
	cmd := &cobra.Command{
		Use:   "up [OPTIONS] [SERVICE...]",
		Short: "Create and start containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, svc, err := f.projectAndService(cmd, env)
			if err != nil {
				return err
			}
			if o.Scale, err = parseScale(scale); err != nil {
				return err
			}
			if o.ForceRecreate && o.NoRecreate {
				return fmt.Errorf("--force-recreate and --no-recreate are incompatible")
			}
			o.Services = args
			o.WaitTimeout = time.Duration(waitTimeout) * time.Second
			if err := svc.Up(cmd.Context(), p, o); err != nil {
				return err
			}
			if detach || o.Wait {
				return nil
			}
			// Attached: follow the logs until interrupted, then stop.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			svc.Out = env.Out
			err = svc.Logs(ctx, p.Name, compose.LogsOptions{Services: args, Follow: true})
			if ctx.Err() != nil {
				svc.Out = env.Err
				return svc.Stop(context.Background(), p, args, nil)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&detach, "detach", "d", false, "Detached mode: Run containers in the background")
	fl.BoolVar(&o.Build, "build", false, "Build images before starting containers")
	fl.BoolVar(&o.NoBuild, "no-build", false, "Don't build an image, even if it's policy")
	fl.BoolVar(&o.Wait, "wait", false, "Wait for services to be running|healthy. Implies detached mode.")
	fl.IntVar(&waitTimeout, "wait-timeout", 0, "Maximum duration in seconds to wait for the project to be running|healthy")
	fl.StringArrayVar(&scale, "scale", nil, "Scale SERVICE to NUM instances")
	fl.BoolVar(&o.ForceRecreate, "force-recreate", false, "Recreate containers even if their configuration and image haven't changed")
	fl.BoolVar(&o.NoRecreate, "no-recreate", false, "If containers already exist, don't recreate them")
	fl.BoolVar(&o.RemoveOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	fl.Bool("no-deps", false, "Don't start linked services")
	fl.Bool("quiet-pull", false, "Pull without printing progress information")
	return cmd
}

func composeCreateCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.UpOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [SERVICE...]",
		Short: "Creates containers for a service",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, svc, err := f.projectAndService(cmd, env)
			if err != nil {
				return err
			}
			o.Services, o.NoStart = args, true
			return svc.Up(cmd.Context(), p, o)
		},
	}
	cmd.Flags().BoolVar(&o.Build, "build", false, "Build images before starting containers")
	cmd.Flags().BoolVar(&o.ForceRecreate, "force-recreate", false, "Recreate containers even if their configuration and image haven't changed")
	cmd.Flags().BoolVar(&o.NoRecreate, "no-recreate", false, "If containers already exist, don't recreate them")
	return cmd
}

func composeDownCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.DownOptions
	cmd := &cobra.Command{
		Use:   "down [OPTIONS]",
		Short: "Stop and remove containers, networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), env)
			if err != nil && f.project != "" && composeerrdefs.IsNotFoundError(err) {
				// No file: -p alone names the project, found by its labels.
				p, err = &types.Project{Name: f.project}, nil
			}
			if err != nil {
				return err
			}
			svc, err := f.service(env)
			if err != nil {
				return err
			}
			return svc.Down(cmd.Context(), p, o)
		},
	}
	cmd.Flags().BoolVarP(&o.Volumes, "volumes", "v", false, "Remove named volumes declared in the \"volumes\" section of the Compose file")
	cmd.Flags().StringVar(&o.RemoveImages, "rmi", "", `Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")`)
	cmd.Flags().BoolVar(&o.RemoveOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	cmd.Flags().IntP("timeout", "t", 0, "Specify a shutdown timeout in seconds")
	return cmd
}

// composeRow is one `compose ps` row.
type composeRow struct {
	formatter.Container
}

func (r composeRow) Name() string    { return r.Names() }
func (r composeRow) Service() string { return r.C.Labels[compose.LabelService] }
func (r composeRow) Project() string { return r.C.Labels[compose.LabelProject] }
func (r composeRow) Image() string   { return r.C.Image }

var composePsHeader = map[string]string{
	"Name": "NAME", "Image": "IMAGE", "Command": "COMMAND", "Service": "SERVICE",
	"RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "ID": "CONTAINER ID", "State": "STATE",
	"Project": "PROJECT",
}

func composePsCmd(env *Env, f *composeFlags) *cobra.Command {
	var all, quiet, services bool
	var format string
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS] [SERVICE...]",
		Short: "List containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := f.projectName(cmd, env)
			if err != nil {
				return err
			}
			svc, err := f.service(env)
			if err != nil {
				return err
			}
			cts, err := svc.Ps(cmd.Context(), name, args, all)
			if err != nil {
				return err
			}
			if services {
				var seen []string
				for _, c := range cts {
					if s := c.Labels[compose.LabelService]; !slices.Contains(seen, s) {
						seen = append(seen, s)
						fmt.Fprintln(env.Out, s)
					}
				}
				return nil
			}
			if quiet {
				for _, c := range cts {
					fmt.Fprintln(env.Out, c.ID)
				}
				return nil
			}
			switch format {
			case "", "table":
				format = "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}"
			case "json":
				format = "{{json .}}"
			}
			now := time.Now()
			rows := make([]any, len(cts))
			for i, c := range cts {
				rows[i] = composeRow{formatter.Container{C: c, Trunc: true, Now: now}}
			}
			return formatter.Write(env.Out, format, composePsHeader, rows)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Show all stopped containers (including those created by the run command)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	cmd.Flags().BoolVar(&services, "services", false, "Display services")
	cmd.Flags().StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

func composeLogsCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.LogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] [SERVICE...]",
		Short: "View output from containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := f.projectName(cmd, env)
			if err != nil {
				return err
			}
			svc, err := f.service(env)
			if err != nil {
				return err
			}
			svc.Out = env.Out
			o.Services = args
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return svc.Logs(ctx, name, o)
		},
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "Follow log output")
	cmd.Flags().StringVarP(&o.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs for each container")
	cmd.Flags().BoolVarP(&o.Timestamps, "timestamps", "t", false, "Show timestamps")
	cmd.Flags().BoolVar(&o.NoPrefix, "no-log-prefix", false, "Don't print prefix in logs")
	return cmd
}

func composeBuildCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.BuildOptions
	var args []string
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] [SERVICE...]",
		Short: "Build or rebuild services",
		RunE: func(cmd *cobra.Command, services []string) error {
			p, svc, err := f.projectAndService(cmd, env)
			if err != nil {
				return err
			}
			o.Services = services
			o.Args = map[string]string{}
			for _, a := range args {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					v = os.Getenv(k)
				}
				o.Args[k] = v
			}
			return svc.Build(cmd.Context(), p, o)
		},
	}
	cmd.Flags().BoolVar(&o.NoCache, "no-cache", false, "Do not use cache when building the image")
	cmd.Flags().BoolVar(&o.Pull, "pull", false, "Always attempt to pull a newer version of the image")
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "Don't print anything to STDOUT")
	cmd.Flags().StringArrayVar(&args, "build-arg", nil, "Set build-time variables for services")
	return cmd
}

func composePullCmd(env *Env, f *composeFlags) *cobra.Command {
	var ignore bool
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] [SERVICE...]",
		Short: "Pull service images",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, svc, err := f.projectAndService(cmd, env)
			if err != nil {
				return err
			}
			return svc.Pull(cmd.Context(), p, args, ignore)
		},
	}
	cmd.Flags().BoolVar(&ignore, "ignore-pull-failures", false, "Pull what it can and ignores images with pull failures")
	cmd.Flags().BoolP("quiet", "q", false, "Pull without printing progress information")
	return cmd
}

func composePushCmd(env *Env, f *composeFlags) *cobra.Command {
	var ignore bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] [SERVICE...]",
		Short: "Push service images",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, svc, err := f.projectAndService(cmd, env)
			if err != nil {
				return err
			}
			return svc.Push(cmd.Context(), p, args, ignore)
		},
	}
	cmd.Flags().BoolVar(&ignore, "ignore-push-failures", false, "Push what it can and ignores images with push failures")
	return cmd
}

func composeExecCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.ExecOptions
	var noTTY, interactive bool
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] SERVICE COMMAND [ARGS...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := f.projectName(cmd, env)
			if err != nil {
				return err
			}
			svc, err := f.service(env)
			if err != nil {
				return err
			}
			svc.Out = env.Out
			o.Service, o.Cmd = args[0], args[1:]
			if interactive {
				if _, tty := termFd(env.In); !tty || !noTTY {
					o.In = env.In
				}
			}
			code, err := svc.Exec(cmd.Context(), name, o)
			if err != nil {
				return err
			}
			if code != 0 {
				return StatusError{Code: code}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&o.Detach, "detach", "d", false, "Detached mode: Run command in the background")
	fl.IntVar(&o.Index, "index", 0, "Index of the container if service has multiple replicas")
	fl.StringVarP(&o.User, "user", "u", "", "Run the command as this user")
	fl.StringVarP(&o.WorkingDir, "workdir", "w", "", "Path to workdir directory for this command")
	fl.StringArrayVarP(&o.Env, "env", "e", nil, "Set environment variables")
	fl.BoolVar(&o.Privileged, "privileged", false, "Give extended privileges to the process")
	fl.BoolVarP(&noTTY, "no-TTY", "T", false, "Disable pseudo-TTY allocation")
	fl.BoolVarP(&interactive, "interactive", "i", true, "Keep STDIN open even if not attached")
	return cmd
}

func composeRunCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.RunOptions
	var entrypoint string
	var labels []string
	var interactive bool
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] SERVICE [COMMAND] [ARGS...]",
		Short: "Run a one-off command on a service",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, svc, err := f.projectAndService(cmd, env)
			if err != nil {
				return err
			}
			svc.Out = env.Out
			o.Service, o.Cmd = args[0], args[1:]
			if cmd.Flags().Changed("entrypoint") {
				o.Entrypoint = strings.Fields(entrypoint)
				if o.Entrypoint == nil {
					o.Entrypoint = []string{}
				}
			}
			o.Labels = map[string]string{}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				o.Labels[k] = v
			}
			if interactive && !o.Detach {
				if _, tty := termFd(env.In); tty {
					o.In = env.In
				}
			}
			code, err := svc.Run(cmd.Context(), p, o)
			if err != nil {
				return err
			}
			if code != 0 {
				return StatusError{Code: code}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&o.Detach, "detach", "d", false, "Run container in background and print container ID")
	fl.BoolVar(&o.Remove, "rm", false, "Automatically remove the container when it exits")
	fl.StringVar(&o.Name, "name", "", "Assign a name to the container")
	fl.StringVarP(&o.User, "user", "u", "", "Run as specified username or uid")
	fl.StringVarP(&o.WorkingDir, "workdir", "w", "", "Working directory inside the container")
	fl.StringArrayVarP(&o.Env, "env", "e", nil, "Set environment variables")
	fl.StringArrayVarP(&labels, "label", "l", nil, "Add or override a label")
	fl.StringVar(&entrypoint, "entrypoint", "", "Override the entrypoint of the image")
	fl.BoolVar(&o.NoDeps, "no-deps", false, "Don't start linked services")
	fl.BoolVarP(&interactive, "interactive", "i", true, "Keep STDIN open even if not attached")
	fl.BoolP("no-TTY", "T", false, "Disable pseudo-TTY allocation")
	return cmd
}

// composeSimpleCmd is start, stop or restart.
func composeSimpleCmd(env *Env, f *composeFlags, verb string) *cobra.Command {
	var timeout int
	short := map[string]string{"start": "Start services", "stop": "Stop services", "restart": "Restart service containers"}[verb]
	cmd := &cobra.Command{
		Use:   verb + " [OPTIONS] [SERVICE...]",
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, svc, err := f.projectAndService(cmd, env)
			if err != nil {
				return err
			}
			var t *int
			if cmd.Flags().Changed("timeout") {
				t = &timeout
			}
			switch verb {
			case "start":
				return svc.Start(cmd.Context(), p, args)
			case "stop":
				return svc.Stop(cmd.Context(), p, args, t)
			default:
				return svc.Restart(cmd.Context(), p, args, t)
			}
		},
	}
	if verb != "start" {
		cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Specify a shutdown timeout in seconds")
	}
	return cmd
}

func composeRmCmd(env *Env, f *composeFlags) *cobra.Command {
	var force, stop, volumes bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] [SERVICE...]",
		Short: "Removes stopped service containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, svc, err := f.projectAndService(cmd, env)
			if err != nil {
				return err
			}
			if stop {
				if err := svc.Stop(cmd.Context(), p, args, nil); err != nil {
					return err
				}
			}
			return svc.Remove(cmd.Context(), p, args, volumes)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Don't ask to confirm removal")
	cmd.Flags().BoolVarP(&stop, "stop", "s", false, "Stop the containers, if required, before removing")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove any anonymous volumes attached to containers")
	return cmd
}

func composeConfigCmd(env *Env, f *composeFlags) *cobra.Command {
	var services, volumes, quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "config [OPTIONS] [SERVICE...]",
		Short: "Parse, resolve and render compose file in canonical format",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(cmd.Context(), env)
			if err != nil {
				return err
			}
			switch {
			case quiet:
				return nil
			case services:
				for _, s := range p.ServiceNames() {
					fmt.Fprintln(env.Out, s)
				}
				return nil
			case volumes:
				for _, v := range p.VolumeNames() {
					fmt.Fprintln(env.Out, v)
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
	cmd.Flags().BoolVar(&services, "services", false, "Print the service names, one per line")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "Print the volume names, one per line")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only validate the configuration, don't print anything")
	cmd.Flags().StringVar(&format, "format", "yaml", "Format the output. Values: [yaml | json]")
	return cmd
}

func composeImagesCmd(env *Env, f *composeFlags) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [SERVICE...]",
		Short: "List images used by the created containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := f.projectName(cmd, env)
			if err != nil {
				return err
			}
			svc, err := f.service(env)
			if err != nil {
				return err
			}
			imgs, err := svc.Images(cmd.Context(), name, args)
			if err != nil {
				return err
			}
			if quiet {
				for _, i := range imgs {
					fmt.Fprintln(env.Out, i.ID)
				}
				return nil
			}
			rows := make([]any, len(imgs))
			for i, im := range imgs {
				rows[i] = map[string]string{"Container": im.Container, "Repository": im.Repository, "Tag": im.Tag,
					"ID": formatter.TruncateID(im.ID), "Size": units.HumanSizeWithPrecision(float64(im.Size), 3)}
			}
			header := map[string]string{"Container": "CONTAINER", "Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Size": "SIZE"}
			return formatter.Write(env.Out, "table {{.Container}}\t{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}", header, rows)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	return cmd
}

func composeTopCmd(env *Env, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "top [SERVICES...]",
		Short: "Display the running processes",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := f.projectName(cmd, env)
			if err != nil {
				return err
			}
			svc, err := f.service(env)
			if err != nil {
				return err
			}
			tops, err := svc.Top(cmd.Context(), name, args)
			if err != nil {
				return err
			}
			for i, t := range tops {
				if i > 0 {
					fmt.Fprintln(env.Out)
				}
				fmt.Fprintln(env.Out, t.Name)
				var b strings.Builder
				b.WriteString(strings.Join(t.Titles, "\t") + "\n")
				for _, p := range t.Processes {
					b.WriteString(strings.Join(p, "\t") + "\n")
				}
				tw := tabwriter.NewWriter(env.Out, 10, 1, 3, ' ', 0)
				fmt.Fprint(tw, b.String())
				tw.Flush()
			}
			return nil
		},
	}
}

func composeEventsCmd(env *Env, f *composeFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events [OPTIONS] [SERVICE...]",
		Short: "Receive real time events from containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := f.projectName(cmd, env)
			if err != nil {
				return err
			}
			svc, err := f.service(env)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return svc.Events(ctx, name, args, func(m events.Message) error {
				t := time.Unix(0, m.TimeNano)
				attrs := map[string]string{}
				for k, v := range m.Actor.Attributes {
					if !strings.HasPrefix(k, "com.docker.compose.") {
						attrs[k] = v
					}
				}
				if asJSON {
					fmt.Fprintf(env.Out, `{"action":%q,"attributes":%s,"id":%q,"service":%q,"time":%q,"type":%q}`+"\n",
						m.Action, composeJSON(attrs), m.Actor.ID, m.Actor.Attributes[compose.LabelService], t.Format(time.RFC3339Nano), "container")
					return nil
				}
				keys := make([]string, 0, len(attrs))
				for k := range attrs {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				var kv []string
				for _, k := range keys {
					kv = append(kv, k+"="+attrs[k])
				}
				fmt.Fprintf(env.Out, "%s container %s %s (%s)\n", t.Format("2006-01-02 15:04:05.000000"), m.Action, m.Actor.ID, strings.Join(kv, ", "))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "Output events as a stream of json objects")
	return cmd
}

func composeJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
