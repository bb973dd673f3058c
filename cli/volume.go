package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/cli/formatter"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// addVolumeCommands adds `berth volume ...`.
func addVolumeCommands(root *cobra.Command, env *Env) {
	vc := &cobra.Command{Use: "volume", Short: "Manage volumes", Args: noArgs}
	vc.AddCommand(newVolumeCreateCmd(env), newVolumeLsCmd(env), newVolumeInspectCmd(env),
		newVolumeRmCmd(env), newVolumePruneCmd(env))
	root.AddCommand(vc)
}

func newVolumeCreateCmd(env *Env) *cobra.Command {
	var driver string
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			o := client.VolumeCreateOptions{Driver: driver, DriverOpts: keyValues(opts), Labels: keyValues(labels)}
			if len(args) == 1 {
				o.Name = args[0]
			}
			res, err := c.VolumeCreate(context.Background(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Out, res.Volume.Name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	fl.StringArrayVar(&labels, "label", nil, "Set metadata for a volume")
	fl.StringArrayVarP(&opts, "opt", "o", nil, "Set driver specific options")
	return cmd
}

var volumeHeader = map[string]string{"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
	"Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "CreatedAt": "CREATED AT"}

// volumeRow is one row of `volume ls`.
type volumeRow struct{ v volume.Volume }

func (r volumeRow) Name() string       { return r.v.Name }
func (r volumeRow) Driver() string     { return r.v.Driver }
func (r volumeRow) Scope() string      { return r.v.Scope }
func (r volumeRow) Mountpoint() string { return r.v.Mountpoint }
func (r volumeRow) CreatedAt() string  { return r.v.CreatedAt }
func (r volumeRow) Labels() string {
	var kv []string
	for k, v := range r.v.Labels {
		kv = append(kv, k+"="+v)
	}
	return strings.Join(kv, ",")
}

func newVolumeLsCmd(env *Env) *cobra.Command {
	var quiet bool
	var format string
	var filterFlags []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			res, err := c.VolumeList(context.Background(), client.VolumeListOptions{Filters: f})
			if err != nil {
				return err
			}
			if quiet {
				for _, v := range res.Items {
					fmt.Fprintln(env.Out, v.Name)
				}
				return nil
			}
			if format == "" {
				format = "table {{.Driver}}\t{{.Name}}"
			}
			rows := make([]any, 0, len(res.Items))
			for _, v := range res.Items {
				rows = append(rows, volumeRow{v})
			}
			return formatter.Write(env.Out, format, volumeHeader, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	fl.StringVar(&format, "format", "", "Format output using a custom template")
	fl.StringArrayVarP(&filterFlags, "filter", "f", nil, "Provide filter values (e.g. \"dangling=true\")")
	return cmd
}

func newVolumeInspectCmd(env *Env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(env, args, format, false, "volume", func(ctx context.Context, c *client.Client, ref string, _ bool) (inspected, error) {
				res, err := c.VolumeInspect(ctx, ref, client.VolumeInspectOptions{})
				if err != nil {
					return inspected{}, err
				}
				return inspected{typed: res.Volume, raw: res.Raw}, nil
			})
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
	var filterFlags []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				warning := "WARNING! This will remove anonymous local volumes not used by at least one container.\n"
				if all {
					warning = "WARNING! This will remove all local volumes not used by at least one container.\n"
				}
				fmt.Fprint(env.Out, warning+"Are you sure you want to continue? [y/N] ")
				if !confirmPrompt(env.In) {
					return nil
				}
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			res, err := c.VolumePrune(context.Background(), client.VolumePruneOptions{All: all, Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.VolumesDeleted) > 0 {
				fmt.Fprintln(env.Out, "Deleted Volumes:")
				for _, n := range res.Report.VolumesDeleted {
					fmt.Fprintln(env.Out, n)
				}
				fmt.Fprintln(env.Out)
			}
			fmt.Fprintf(env.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fl.BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	fl.StringArrayVar(&filterFlags, "filter", nil, "Provide filter values (e.g. \"label=<label>\")")
	return cmd
}
