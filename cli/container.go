package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/cli/formatter"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// forEach runs fn on every argument, printing each name on success and
// collecting errors like docker's multi-container commands do.
func forEach(env *Env, names []string, fn func(ctx context.Context, c *client.Client, name string) error) error {
	c, err := env.Client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	var errs []string
	for _, n := range names {
		if err := fn(ctx, c, n); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		fmt.Fprintln(env.Out, n)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func newStartCmd(env *Env) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if attach || interactive {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				return startAttached(env, args[0], interactive, detachKeys)
			}
			var failed []string
			err := forEach(env, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.ContainerStart(ctx, name, client.ContainerStartOptions{})
				if err != nil {
					failed = append(failed, name)
				}
				return err
			})
			if len(failed) > 0 {
				return fmt.Errorf("%w\nError: failed to start containers: %s", err, strings.Join(failed, ", "))
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// startAttached is `start -a`: attach, wait for next exit, start, stream,
// then exit with the container's status.
func startAttached(env *Env, name string, stdin bool, detachKeys string) error {
	c, err := env.Client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	insp, err := c.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	ctr := insp.Container
	stdin = stdin && ctr.Config.OpenStdin
	s := &session{env: env, api: c, id: ctr.ID, tty: ctr.Config.Tty, stdin: stdin, stdout: true, stderr: true, detachKeys: detachKeys}
	if err := s.attach(ctx); err != nil {
		return err
	}
	defer s.close()
	status := waitExit(ctx, env, c, ctr.ID, ctr.HostConfig.AutoRemove)
	if _, err := c.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
		return err
	}
	return s.finish(ctx, status, true)
}

func newStopCmd(env *Env) *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := client.ContainerStopOptions{Signal: signal}
			opts.Timeout = stopTimeout(cmd, &timeout)
			return forEach(env, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.ContainerStop(ctx, name, opts)
				return err
			})
		},
	}
	addStopFlags(cmd, &timeout, &signal)
	return cmd
}

// addStopFlags adds stop and restart's -t/--timeout (and the hidden,
// deprecated --time) and -s/--signal.
func addStopFlags(cmd *cobra.Command, timeout *int, signal *string) {
	cmd.Flags().IntVarP(timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	cmd.Flags().IntVar(timeout, "time", 0, "Seconds to wait before killing the container (deprecated)")
	_ = cmd.Flags().MarkHidden("time")
	cmd.Flags().StringVarP(signal, "signal", "s", "", "Signal to send to the container")
}

// stopTimeout is the timeout to send: nil (the container's own) unless given.
func stopTimeout(cmd *cobra.Command, timeout *int) *int {
	if cmd.Flags().Changed("timeout") || cmd.Flags().Changed("time") {
		return timeout
	}
	return nil
}

func newRestartCmd(env *Env) *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := client.ContainerRestartOptions{Signal: signal}
			opts.Timeout = stopTimeout(cmd, &timeout)
			return forEach(env, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.ContainerRestart(ctx, name, opts)
				return err
			})
		},
	}
	addStopFlags(cmd, &timeout, &signal)
	return cmd
}

func newKillCmd(env *Env) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEach(env, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: signal})
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func newRmCmd(env *Env) *cobra.Command {
	var force, volumes, links bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEach(env, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: force, RemoveVolumes: volumes, RemoveLinks: links})
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	cmd.Flags().BoolVarP(&links, "link", "l", false, "Remove the specified link")
	return cmd
}

func newWaitCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ctx := context.Background()
			var errs []string
			for _, name := range args {
				res := c.ContainerWait(ctx, name, client.ContainerWaitOptions{})
				select {
				case r := <-res.Result:
					fmt.Fprintf(env.Out, "%d\n", r.StatusCode)
				case err := <-res.Error:
					errs = append(errs, err.Error())
				}
			}
			if len(errs) > 0 {
				return errors.New(strings.Join(errs, "\n"))
			}
			return nil
		},
	}
}

// parseFilters turns repeated -f key=value into API filters.
func parseFilters(in []string) (client.Filters, error) {
	f := client.Filters{}
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		f.Add(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
	}
	return f, nil
}

func newPsCmd(env *Env) *cobra.Command {
	var all, quiet, latest, size, noTrunc bool
	var last int
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			if latest && last == -1 {
				last = 1
			}
			switch {
			case quiet:
				format = "{{.ID}}"
			case format == "" || format == "table":
				format = formatter.ContainerTable
				if size {
					format = formatter.ContainerTableSize
				}
			}
			if strings.Contains(format, ".Size") {
				size = true
			}
			res, err := c.ContainerList(context.Background(), client.ContainerListOptions{All: all, Limit: last, Size: size, Filters: f})
			if err != nil {
				return err
			}
			now := time.Now()
			rows := make([]any, 0, len(res.Items))
			for _, it := range res.Items {
				rows = append(rows, formatter.Container{C: it, Trunc: !noTrunc, Now: now})
			}
			return formatter.Write(env.Out, format, formatter.ContainerHeader, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fl.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fl.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fl.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	fl.StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

func newLogsCmd(env *Env) *cobra.Command {
	var opts client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ctx := context.Background()
			insp, err := c.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			opts.ShowStdout, opts.ShowStderr = true, true
			rc, err := c.ContainerLogs(ctx, insp.Container.ID, opts)
			if err != nil {
				return err
			}
			defer rc.Close()
			if insp.Container.Config != nil && insp.Container.Config.Tty {
				_, err = io.Copy(env.Out, rc)
			} else {
				_, err = stdcopy.StdCopy(env.Out, env.Err, rc)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "Follow log output")
	fl.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "Show timestamps")
	fl.StringVarP(&opts.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	fl.StringVar(&opts.Since, "since", "", "Show logs since timestamp or relative (e.g. 42m for 42 minutes)")
	fl.StringVar(&opts.Until, "until", "", "Show logs before a timestamp or relative (e.g. 42m for 42 minutes)")
	fl.BoolVar(&opts.Details, "details", false, "Show extra details provided to logs")
	return cmd
}

func newPruneCmd(env *Env) *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			if !force {
				fmt.Fprint(env.Out, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
				line, _ := bufio.NewReader(env.In).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return nil
				}
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			res, err := c.ContainerPrune(context.Background(), client.ContainerPruneOptions{Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.ContainersDeleted) > 0 {
				fmt.Fprintln(env.Out, "Deleted Containers:")
				for _, id := range res.Report.ContainersDeleted {
					fmt.Fprintln(env.Out, id)
				}
				fmt.Fprintln(env.Out)
			}
			fmt.Fprintf(env.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}
