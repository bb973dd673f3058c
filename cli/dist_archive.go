package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	units "github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// addArchiveCommands adds save, load, export, image prune and system df.
func addArchiveCommands(root, imageCmd *cobra.Command, env *Env) {
	root.AddCommand(newSaveCmd(env), newLoadCmd(env), newExportCmd(env))
	imageCmd.AddCommand(newSaveCmd(env), newLoadCmd(env), newImagePruneCmd(env))
	system := &cobra.Command{Use: "system", Short: "Manage berth", Args: noArgs}
	system.AddCommand(newDfCmd(env))
	root.AddCommand(system)
}

// outputFile is -o's file, or stdout when it is not a terminal.
func outputFile(env *Env, path string) (io.WriteCloser, error) {
	if path != "" {
		return os.Create(path)
	}
	if _, isTerm := termFd(env.Out); isTerm {
		return nil, errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	return nopWriteCloser{env.Out}, nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func newSaveCmd(env *Env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			w, err := outputFile(env, output)
			if err != nil {
				return err
			}
			rc, err := c.ImageSave(context.Background(), args)
			if err != nil {
				w.Close()
				return err
			}
			defer rc.Close()
			_, err = io.Copy(w, rc)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func newLoadCmd(env *Env) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			var in io.Reader = env.In
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			} else if _, isTerm := termFd(env.In); isTerm {
				return errors.New("requested load from stdin, but stdin is empty")
			}
			rc, err := c.ImageLoad(context.Background(), in, client.ImageLoadWithQuiet(quiet))
			if err != nil {
				return err
			}
			defer rc.Close()
			return displayJSON(env.Out, rc)
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}

func newExportCmd(env *Env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			w, err := outputFile(env, output)
			if err != nil {
				return err
			}
			rc, err := c.ContainerExport(context.Background(), args[0], client.ContainerExportOptions{})
			if err != nil {
				w.Close()
				return err
			}
			defer rc.Close()
			_, err = io.Copy(w, rc)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func newImagePruneCmd(env *Env) *cobra.Command {
	var all, force bool
	var filterFlags []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				warning := "WARNING! This will remove all dangling images.\n"
				if all {
					warning = "WARNING! This will remove all images without at least one container associated to them.\n"
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
			if all {
				f = f.Add("dangling", "false")
			}
			res, err := c.ImagePrune(context.Background(), client.ImagePruneOptions{Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.ImagesDeleted) > 0 {
				fmt.Fprintln(env.Out, "Deleted Images:")
				for _, d := range res.Report.ImagesDeleted {
					if d.Untagged != "" {
						fmt.Fprintln(env.Out, "untagged: "+d.Untagged)
					} else {
						fmt.Fprintln(env.Out, "deleted: "+d.Deleted)
					}
				}
				fmt.Fprintln(env.Out)
			}
			fmt.Fprintf(env.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	fl.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fl.StringArrayVar(&filterFlags, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}

func newDfCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "df",
		Short: "Show berth disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			du, err := c.DiskUsage(context.Background(), client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true})
			if err != nil {
				return err
			}
			reclaim := func(r, total int64) string {
				if total == 0 {
					return units.HumanSize(float64(r))
				}
				return fmt.Sprintf("%s (%d%%)", units.HumanSize(float64(r)), r*100/total)
			}
			fmt.Fprintf(env.Out, "%-15s %-9s %-9s %-9s %s\n", "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")
			row := func(name string, total, active, size, r int64) {
				fmt.Fprintf(env.Out, "%-15s %-9d %-9d %-9s %s\n", name, total, active, units.HumanSize(float64(size)), reclaim(r, size))
			}
			row("Images", du.Images.TotalCount, du.Images.ActiveCount, du.Images.TotalSize, du.Images.Reclaimable)
			row("Containers", du.Containers.TotalCount, du.Containers.ActiveCount, du.Containers.TotalSize, du.Containers.Reclaimable)
			row("Local Volumes", du.Volumes.TotalCount, du.Volumes.ActiveCount, du.Volumes.TotalSize, du.Volumes.Reclaimable)
			row("Build Cache", du.BuildCache.TotalCount, du.BuildCache.ActiveCount, du.BuildCache.TotalSize, du.BuildCache.Reclaimable)
			return nil
		},
	}
}
