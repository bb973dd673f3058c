package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/cli/formatter"
	units "github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// addVolumeCommands adds this area's commands.
func addVolumeCommands(root *cobra.Command, env *Env) {
	vol := &cobra.Command{
		Use:   "volume COMMAND",
		Short: "Manage volumes",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	vol.AddCommand(newVolumeCreateCmd(env), newVolumeLsCmd(env), newVolumeInspectCmd(env),
		newVolumeRmCmd(env), newVolumePruneCmd(env))
	root.AddCommand(vol)
}

// keyValues turns ["k=v", "k2"] into a map (a bare key has an empty value).
func keyValues(in []string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, kv := range in {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

func newVolumeCreateCmd(env *Env) *cobra.Command {
	var driver, name string
	var opts, labels []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return fmt.Errorf("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				name = args[0]
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			res, err := c.VolumeCreate(context.Background(), client.VolumeCreateOptions{
				Name: name, Driver: driver, DriverOpts: keyValues(opts), Labels: keyValues(labels),
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Out, res.Volume.Name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	fl.StringVar(&name, "name", "", "Specify volume name")
	fl.MarkHidden("name")
	fl.StringArrayVarP(&opts, "opt", "o", nil, "Set driver specific options")
	fl.StringArrayVar(&labels, "label", nil, "Set metadata for a volume")
	return cmd
}

func newVolumeLsCmd(env *Env) *cobra.Command {
	var quiet bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			res, err := c.VolumeList(context.Background(), client.VolumeListOptions{Filters: f})
			if err != nil {
				return err
			}
			switch {
			case quiet:
				format = "{{.Name}}"
			case format == "" || format == "table":
				format = formatter.VolumeTable
			}
			return formatter.Write(env.Out, format, formatter.VolumeHeader, formatter.VolumeRows(res.Items))
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (e.g. \"dangling=true\")")
	fl.StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

func inspectVolume(ctx context.Context, c *client.Client, ref string, _ bool) (inspected, error) {
	res, err := c.VolumeInspect(ctx, ref, client.VolumeInspectOptions{})
	if err != nil {
		return inspected{}, err
	}
	return inspected{typed: res.Volume, raw: res.Raw}, nil
}

func newVolumeInspectCmd(env *Env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(env, args, format, false, "volume", inspectVolume)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func newVolumeRmCmd(env *Env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEach(env, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: force})
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func newVolumePruneCmd(env *Env) *cobra.Command {
	var force, all bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			if !force {
				what := "anonymous local volumes"
				if all {
					what = "all local volumes"
				}
				fmt.Fprintf(env.Out, "WARNING! This will remove %s not used by at least one container.\nAre you sure you want to continue? [y/N] ", what)
				line, _ := bufio.NewReader(env.In).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return errors.New("volume prune has been cancelled")
				}
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			res, err := c.VolumePrune(context.Background(), client.VolumePruneOptions{All: all, Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.VolumesDeleted) > 0 {
				fmt.Fprintln(env.Out, "Deleted Volumes:")
				for _, name := range res.Report.VolumesDeleted {
					fmt.Fprintln(env.Out, name)
				}
				fmt.Fprintln(env.Out)
			}
			fmt.Fprintf(env.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	fl.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fl.StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"label=<label>\")")
	return cmd
}
