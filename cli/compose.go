package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/compose"
	"github.com/compose-spec/compose-go/v2/types"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// composeFlags are `berth compose`'s global flags.
type composeFlags struct {
	files      []string
	project    string
	projectDir string
	profiles   []string
	envFiles   []string
}

// addComposeCommands adds `berth compose ...`.
func addComposeCommands(root *cobra.Command, env *Env) {
	f := &composeFlags{}
	cc := &cobra.Command{Use: "compose", Short: "Define and run multi-container applications", Args: noArgs}
	// Local, not persistent: `compose -f FILE logs -f` has two -f flags
	// (file, follow), as in docker compose; the root traverses children so
	// that these are parsed before the subcommand.
	root.TraverseChildren = true
	pf := cc.Flags()
	pf.StringArrayVarP(&f.files, "file", "f", nil, "Compose configuration files")
	pf.StringVarP(&f.project, "project-name", "p", "", "Project name")
	pf.StringVar(&f.projectDir, "project-directory", "", "Alternate working directory")
	pf.StringArrayVar(&f.profiles, "profile", nil, "Specify a profile to enable")
	pf.StringArrayVar(&f.envFiles, "env-file", nil, "Specify an alternate environment file")
	cc.AddCommand(composeUpCmd(env, f), composeDownCmd(env, f), composePsCmd(env, f), composeLogsCmd(env, f),
		composeConfigCmd(env, f), composeBuildCmd(env, f), composePullCmd(env, f), composePushCmd(env, f),
		composeLifecycleCmd(env, f, "start"), composeLifecycleCmd(env, f, "stop"), composeLifecycleCmd(env, f, "restart"),
		composeImagesCmd(env, f), composeTopCmd(env, f), composeExecCmd(env, f), composeRunCmd(env, f), composeEventsCmd(env, f))
	root.AddCommand(cc)
}

func (f *composeFlags) load(ctx context.Context, env *Env) (*types.Project, error) {
	return compose.Load(ctx, compose.LoadOptions{
		Files: f.files, ProjectName: f.project, WorkingDir: f.projectDir, Profiles: f.profiles, EnvFiles: f.envFiles, Env: os.Environ(),
	})
}

func (f *composeFlags) compose(env *Env) (*compose.Compose, error) {
	c, err := env.Client()
	if err != nil {
		return nil, err
	}
	return &compose.Compose{Engine: c, Out: env.Err}, nil
}

func composeUpCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.UpOptions
	var detach bool
	var scales []string
	var waitTimeout int
	cmd := &cobra.Command{
		Use:   "up [OPTIONS] [SERVICE...]",
		Short: "Create and start containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			c, err := f.compose(env)
			if err != nil {
				return err
			}
			o.Services = args
			o.Scale = map[string]int{}
			for _, s := range scales {
				name, n, ok := strings.Cut(s, "=")
				v, err := strconv.Atoi(n)
				if !ok || err != nil {
					return fmt.Errorf("invalid --scale %q: want SERVICE=NUM", s)
				}
				o.Scale[name] = v
			}
			if waitTimeout > 0 {
				o.WaitTimeout = time.Duration(waitTimeout) * time.Second
			}
			if err := c.Up(ctx, p, o); err != nil {
				return err
			}
			if detach || o.Wait {
				return nil
			}
			// Attached: follow the logs until interrupted, then stop.
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = followLogs(ctx, env, c.Engine, p.Name, args, true, "all", false)
			if ctx.Err() != nil {
				fmt.Fprintln(env.Err, "Gracefully stopping... (press Ctrl+C again to force)")
				return composeLifecycle(context.Background(), env, f, p, "stop", args)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&detach, "detach", "d", false, "Detached mode: Run containers in the background")
	fl.BoolVar(&o.Build, "build", false, "Build images before starting containers")
	fl.BoolVar(&o.ForceRecreate, "force-recreate", false, "Recreate containers even if their configuration and image haven't changed")
	fl.BoolVar(&o.NoRecreate, "no-recreate", false, "If containers already exist, don't recreate them")
	fl.BoolVar(&o.RemoveOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	fl.BoolVar(&o.Wait, "wait", false, "Wait for services to be running|healthy. Implies detached mode")
	fl.IntVar(&waitTimeout, "wait-timeout", 0, "Maximum duration in seconds to wait for the project to be running|healthy")
	fl.StringArrayVar(&scales, "scale", nil, "Scale SERVICE to NUM instances")
	return cmd
}

func composeDownCmd(env *Env, f *composeFlags) *cobra.Command {
	var o compose.DownOptions
	cmd := &cobra.Command{
		Use:   "down [OPTIONS]",
		Short: "Stop and remove containers, networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			c, err := f.compose(env)
			if err != nil {
				return err
			}
			return c.Down(ctx, p, o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Volumes, "volumes", "v", false, "Remove named volumes declared in the volumes section and anonymous volumes")
	fl.BoolVar(&o.RemoveOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	fl.StringVar(&o.RMI, "rmi", "", `Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")`)
	return cmd
}

// projectContainers lists a project's service containers.
func projectContainers(ctx context.Context, c *client.Client, project string, all bool, services []string) ([]container.Summary, error) {
	res, err := c.ContainerList(ctx, client.ContainerListOptions{All: all, Filters: make(client.Filters).Add("label", compose.LabelProject+"="+project)})
	if err != nil {
		return nil, err
	}
	var out []container.Summary
	for _, s := range res.Items {
		if s.Labels[compose.LabelOneoff] == "True" || (len(services) > 0 && !containsString(services, s.Labels[compose.LabelService])) {
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Names[0] < out[j].Names[0] })
	return out, nil
}

func newTabWriter(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 10, 1, 3, ' ', 0) }

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func composePsCmd(env *Env, f *composeFlags) *cobra.Command {
	var all, quiet bool
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS] [SERVICE...]",
		Short: "List containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			cs, err := projectContainers(ctx, c, p.Name, all, args)
			if err != nil {
				return err
			}
			if quiet {
				for _, ct := range cs {
					fmt.Fprintln(env.Out, ct.ID)
				}
				return nil
			}
			tw := newTabWriter(env.Out)
			fmt.Fprintln(tw, "NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS")
			for _, ct := range cs {
				created := units.HumanDuration(time.Since(time.Unix(ct.Created, 0))) + " ago"
				fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t%s\t%s\n", strings.TrimPrefix(ct.Names[0], "/"), ct.Image, truncate(ct.Command, 20),
					ct.Labels[compose.LabelService], created, ct.Status, portsSummary(ct.Ports))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Show all stopped containers")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	return cmd
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

func portsSummary(ports []container.PortSummary) string {
	var out []string
	for _, p := range ports {
		if p.PublicPort != 0 {
			ip := "0.0.0.0"
			if p.IP.IsValid() {
				ip = p.IP.String()
			}
			out = append(out, fmt.Sprintf("%s:%d->%d/%s", ip, p.PublicPort, p.PrivatePort, p.Type))
		} else {
			out = append(out, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
		}
	}
	return strings.Join(out, ", ")
}

func composeLogsCmd(env *Env, f *composeFlags) *cobra.Command {
	var follow, timestamps bool
	var tail string
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] [SERVICE...]",
		Short: "View output from containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			if follow {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			return followLogs(ctx, env, c, p.Name, args, follow, tail, timestamps)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "Follow log output")
	cmd.Flags().BoolVarP(&timestamps, "timestamps", "t", false, "Show timestamps")
	cmd.Flags().StringVarP(&tail, "tail", "n", "all", "Number of lines to show from the end of the logs for each container")
	return cmd
}

// followLogs prints the containers' logs, each line prefixed with the
// container's name, as docker compose does.
func followLogs(ctx context.Context, env *Env, c *client.Client, project string, services []string, follow bool, tail string, timestamps bool) error {
	cs, err := projectContainers(ctx, c, project, true, services)
	if err != nil {
		return err
	}
	width := 0
	for _, ct := range cs {
		if n := len(strings.TrimPrefix(ct.Names[0], "/")); n > width {
			width = n
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ct := range cs {
		name := strings.TrimPrefix(ct.Names[0], "/")
		prefix := fmt.Sprintf("%-*s | ", width, name)
		rc, err := c.ContainerLogs(ctx, ct.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Tail: tail, Timestamps: timestamps})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rc.Close()
			pr, pw := io.Pipe()
			go func() {
				var err error
				if ct.Labels != nil && isTTY(ctx, c, ct.ID) {
					_, err = io.Copy(pw, rc)
				} else {
					_, err = stdcopy.StdCopy(pw, pw, rc)
				}
				pw.CloseWithError(err)
			}()
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				mu.Lock()
				fmt.Fprintln(env.Out, prefix+sc.Text())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return nil
}

func isTTY(ctx context.Context, c *client.Client, id string) bool {
	res, err := c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	return err == nil && res.Container.Config != nil && res.Container.Config.Tty
}

func composeConfigCmd(env *Env, f *composeFlags) *cobra.Command {
	var services, quiet bool
	cmd := &cobra.Command{
		Use:   "config [OPTIONS] [SERVICE...]",
		Short: "Parse, resolve and render compose file in canonical format",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(context.Background(), env)
			if err != nil {
				return err
			}
			if quiet {
				return nil
			}
			if services {
				for _, s := range p.ServiceNames() {
					fmt.Fprintln(env.Out, s)
				}
				return nil
			}
			out, err := p.MarshalYAML()
			if err != nil {
				return err
			}
			_, err = env.Out.Write(out)
			return err
		},
	}
	cmd.Flags().BoolVar(&services, "services", false, "Print the service names, one per line")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only validate the configuration, don't print anything")
	return cmd
}

func composeBuildCmd(env *Env, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "build [SERVICE...]",
		Short: "Build or rebuild services",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			c, err := f.compose(env)
			if err != nil {
				return err
			}
			for _, name := range p.ServiceNames() {
				s := p.Services[name]
				if s.Build == nil || (len(args) > 0 && !containsString(args, name)) {
					continue
				}
				if err := c.Build(ctx, p, s); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func composePullCmd(env *Env, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "pull [SERVICE...]",
		Short: "Pull service images",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			for _, name := range p.ServiceNames() {
				s := p.Services[name]
				if s.Image == "" || (len(args) > 0 && !containsString(args, name)) {
					continue
				}
				if err := pullWithProgress(ctx, env, c, s.Image, "", true); err != nil {
					if s.Build != nil {
						continue // built locally instead
					}
					return err
				}
				fmt.Fprintf(env.Err, " ✔ %s Pulled\n", name)
			}
			return nil
		},
	}
}

func composePushCmd(env *Env, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "push [SERVICE...]",
		Short: "Push service images",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			for _, name := range p.ServiceNames() {
				s := p.Services[name]
				if s.Image == "" || s.Build == nil || (len(args) > 0 && !containsString(args, name)) {
					continue
				}
				rc, err := c.ImagePush(ctx, s.Image, client.ImagePushOptions{RegistryAuth: registryAuthFor(env, s.Image)})
				if err != nil {
					return err
				}
				err = displayJSON(io.Discard, rc)
				rc.Close()
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Err, " ✔ %s Pushed\n", name)
			}
			return nil
		},
	}
}

func composeLifecycleCmd(env *Env, f *composeFlags, verb string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " [SERVICE...]",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " services",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.load(context.Background(), env)
			if err != nil {
				return err
			}
			return composeLifecycle(context.Background(), env, f, p, verb, args)
		},
	}
}

func composeLifecycle(ctx context.Context, env *Env, f *composeFlags, p *types.Project, verb string, services []string) error {
	c, err := env.Client()
	if err != nil {
		return err
	}
	cs, err := projectContainers(ctx, c, p.Name, true, services)
	if err != nil {
		return err
	}
	past := map[string]string{"start": "Started", "stop": "Stopped", "restart": "Restarted"}[verb]
	for _, ct := range cs {
		name := strings.TrimPrefix(ct.Names[0], "/")
		switch verb {
		case "start":
			_, err = c.ContainerStart(ctx, ct.ID, client.ContainerStartOptions{})
		case "stop":
			_, err = c.ContainerStop(ctx, ct.ID, client.ContainerStopOptions{})
		case "restart":
			_, err = c.ContainerRestart(ctx, ct.ID, client.ContainerRestartOptions{})
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", verb, name, err)
		}
		fmt.Fprintf(env.Err, " ✔ Container %s  %s\n", name, past)
	}
	return nil
}

func composeImagesCmd(env *Env, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "images [SERVICE...]",
		Short: "List images used by the created containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			cs, err := projectContainers(ctx, c, p.Name, true, args)
			if err != nil {
				return err
			}
			tw := newTabWriter(env.Out)
			fmt.Fprintln(tw, "CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE")
			for _, ct := range cs {
				repo, tag, _ := strings.Cut(ct.Image, ":")
				if tag == "" {
					tag = "latest"
				}
				size := ""
				if ii, err := c.ImageInspect(ctx, ct.ImageID); err == nil {
					size = units.HumanSizeWithPrecision(float64(ii.Size), 3)
				}
				id := strings.TrimPrefix(ct.ImageID, "sha256:")
				if len(id) > 12 {
					id = id[:12]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strings.TrimPrefix(ct.Names[0], "/"), repo, tag, id, size)
			}
			return tw.Flush()
		},
	}
}

func composeTopCmd(env *Env, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "top [SERVICE...]",
		Short: "Display the running processes",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			cs, err := projectContainers(ctx, c, p.Name, false, args)
			if err != nil {
				return err
			}
			for _, ct := range cs {
				res, err := c.ContainerTop(ctx, ct.ID, client.ContainerTopOptions{})
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Out, strings.TrimPrefix(ct.Names[0], "/"))
				tw := newTabWriter(env.Out)
				fmt.Fprintln(tw, strings.Join(res.Titles, "\t"))
				for _, proc := range res.Processes {
					fmt.Fprintln(tw, strings.Join(proc, "\t"))
				}
				tw.Flush()
				fmt.Fprintln(env.Out)
			}
			return nil
		},
	}
}

// serviceContainer is the container `compose exec` and friends act on.
func serviceContainer(ctx context.Context, c *client.Client, p *types.Project, service string, index int) (string, error) {
	cs, err := projectContainers(ctx, c, p.Name, false, []string{service})
	if err != nil {
		return "", err
	}
	for _, ct := range cs {
		if ct.Labels[compose.LabelNumber] == strconv.Itoa(index) {
			return ct.ID, nil
		}
	}
	return "", fmt.Errorf("service %q is not running", service)
}

func composeExecCmd(env *Env, f *composeFlags) *cobra.Command {
	var o execOptions
	var index int
	var noTTY bool
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] SERVICE COMMAND [ARGS...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			id, err := serviceContainer(ctx, c, p, args[0], index)
			if err != nil {
				return err
			}
			// docker compose exec allocates a tty when stdin is one.
			_, inTerm := termFd(env.In)
			o.tty = inTerm && !noTTY
			o.interactive = !o.detach
			return runExec(env, &o, id, args[1:])
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: Run command in the background")
	fl.StringArrayVarP(&o.env, "env", "e", nil, "Set environment variables")
	fl.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the process")
	fl.StringVarP(&o.user, "user", "u", "", "Run the command as this user")
	fl.StringVarP(&o.workdir, "workdir", "w", "", "Path to workdir directory for this command")
	fl.IntVar(&index, "index", 1, "Index of the container if service has multiple replicas")
	fl.BoolVarP(&noTTY, "no-TTY", "T", false, "Disable pseudo-TTY allocation")
	return cmd
}

func composeRunCmd(env *Env, f *composeFlags) *cobra.Command {
	var rm, detach bool
	var envs []string
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] SERVICE [COMMAND] [ARGS...]",
		Short: "Run a one-off command on a service",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			s, err := p.GetService(args[0])
			if err != nil {
				return err
			}
			c, err := f.compose(env)
			if err != nil {
				return err
			}
			if deps := depsOf(s); len(deps) > 0 {
				if err := c.Up(ctx, p, compose.UpOptions{Services: deps}); err != nil {
					return err
				}
			} else if err := c.Prepare(ctx, p); err != nil {
				return err
			}
			id, err := c.RunOneOff(ctx, p, s, args[1:], envs)
			if err != nil {
				return err
			}
			if detach {
				fmt.Fprintln(env.Out, id)
				return nil
			}
			code, err := attachAndWait(ctx, env, c.Engine, id)
			if rm {
				c.Engine.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})
			}
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
	fl.BoolVar(&rm, "rm", false, "Automatically remove the container when it exits")
	fl.BoolVarP(&detach, "detach", "d", false, "Run container in background and print container ID")
	fl.StringArrayVarP(&envs, "env", "e", nil, "Set environment variables")
	return cmd
}

func depsOf(s types.ServiceConfig) []string {
	var out []string
	for d := range s.DependsOn {
		out = append(out, d)
	}
	return out
}

// attachAndWait starts nothing: the one-off container is started by
// RunOneOff; this streams its output and returns its exit code.
func attachAndWait(ctx context.Context, env *Env, c *client.Client, id string) (int, error) {
	wait := c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	rc, err := c.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	stdcopy.StdCopy(env.Out, env.Err, rc)
	select {
	case res := <-wait.Result:
		return int(res.StatusCode), nil
	case err := <-wait.Error:
		return 0, err
	}
}

func composeEventsCmd(env *Env, f *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "events [SERVICE...]",
		Short: "Receive real time events from containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			p, err := f.load(ctx, env)
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			res := c.Events(ctx, client.EventsListOptions{Filters: make(client.Filters).Add("label", compose.LabelProject+"="+p.Name)})
			for {
				select {
				case m := <-res.Messages:
					svc := m.Actor.Attributes[compose.LabelService]
					if len(args) > 0 && !containsString(args, svc) {
						continue
					}
					fmt.Fprintf(env.Out, "%s container %s %s (name=%s, service=%s)\n", time.Unix(0, m.TimeNano).Format("2006-01-02 15:04:05.000000"),
						m.Action, m.Actor.ID, m.Actor.Attributes["name"], svc)
				case err := <-res.Err:
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
		},
	}
}
