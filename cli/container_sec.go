package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/cli/runopts"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// addContainerSecCommands adds rename, update, commit and cp, at the top
// level and under `container`.
func addContainerSecCommands(root, containerCmd *cobra.Command, env *Env) {
	for _, mk := range []func(*Env) *cobra.Command{newRenameCmd, newUpdateCmd, newCommitCmd, newCpCmd} {
		root.AddCommand(mk(env))
		if containerCmd != nil {
			containerCmd.AddCommand(mk(env))
		}
	}
}

func newRenameCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			oldName, newName := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			if oldName == "" || newName == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			if _, err := c.ContainerRename(context.Background(), oldName, client.ContainerRenameOptions{NewName: newName}); err != nil {
				return fmt.Errorf("%w\nError: failed to rename container named %s", err, oldName)
			}
			return nil
		},
	}
}

func newUpdateCmd(env *Env) *cobra.Command {
	var memory, memorySwap, memoryRes, cpus, cpusetCpus, cpusetMems, restart string
	var cpuShares, pidsLimit, cpuPeriod, cpuQuota int64
	var blkioWeight uint16
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r container.Resources
			var err error
			if memory != "" {
				if r.Memory, err = units.RAMInBytes(memory); err != nil {
					return err
				}
			}
			if memorySwap != "" {
				if memorySwap == "-1" {
					r.MemorySwap = -1
				} else if r.MemorySwap, err = units.RAMInBytes(memorySwap); err != nil {
					return err
				}
			}
			if memoryRes != "" {
				if r.MemoryReservation, err = units.RAMInBytes(memoryRes); err != nil {
					return err
				}
			}
			if cpus != "" {
				if r.NanoCPUs, err = runopts.ParseCPUs(cpus); err != nil {
					return err
				}
			}
			r.CPUShares, r.CPUPeriod, r.CPUQuota, r.BlkioWeight = cpuShares, cpuPeriod, cpuQuota, blkioWeight
			r.CpusetCpus, r.CpusetMems = cpusetCpus, cpusetMems
			if cmd.Flags().Changed("pids-limit") {
				r.PidsLimit = &pidsLimit
			}
			opts := client.ContainerUpdateOptions{Resources: &r}
			if cmd.Flags().Changed("restart") {
				p, err := runopts.ParseRestartPolicy(restart)
				if err != nil {
					return err
				}
				opts.RestartPolicy = &p
			}
			return forEach(env, args, func(ctx context.Context, c *client.Client, name string) error {
				_, err := c.ContainerUpdate(ctx, name, opts)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&memory, "memory", "m", "", "Memory limit")
	f.StringVar(&memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	f.StringVar(&memoryRes, "memory-reservation", "", "Memory soft limit")
	f.StringVar(&cpus, "cpus", "", "Number of CPUs")
	f.Int64VarP(&cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	f.Uint16Var(&blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	f.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}

func newCommitCmd(env *Env) *cobra.Command {
	var author, message string
	var changes []string
	pause := true
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			opts := client.ContainerCommitOptions{Comment: message, Author: author, Changes: changes, NoPause: !pause}
			if len(args) == 2 {
				opts.Reference = args[1]
			}
			res, err := c.ContainerCommit(context.Background(), args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Out, res.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	f.StringVarP(&message, "message", "m", "", "Commit message")
	f.StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	f.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	return cmd
}

func newCpCmd(env *Env) *cobra.Command {
	var followLink, archiveMode, quiet bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, srcPath := splitCpArg(args[0])
			dstCtr, dstPath := splitCpArg(args[1])
			c, err := env.Client()
			if err != nil {
				return err
			}
			ctx := context.Background()
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr != "":
				return copyFromContainer(ctx, env, c, srcCtr, srcPath, dstPath)
			case dstCtr != "":
				return copyToContainer(ctx, env, c, srcPath, dstCtr, dstPath, archiveMode)
			}
			return errors.New("must specify at least one container source")
		},
	}
	cmd.Flags().BoolVarP(&followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	cmd.Flags().BoolVarP(&archiveMode, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress progress output during copy")
	return cmd
}

// splitCpArg splits "container:path"; a path with a slash before the colon,
// or starting with "." or "/", is local.
func splitCpArg(arg string) (ctr, p string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || strings.Contains(ctr, "/") {
		return "", arg
	}
	return ctr, p
}

func copyFromContainer(ctx context.Context, env *Env, c *client.Client, ctr, src, dst string) error {
	res, err := c.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: src})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	if dst == "-" {
		_, err := io.Copy(env.Out, res.Content)
		return err
	}
	// Into an existing directory the entry keeps its name; otherwise it
	// takes the destination's.
	dir, rename := dst, ""
	if fi, err := os.Stat(dst); err != nil || !fi.IsDir() {
		dir, rename = filepath.Dir(dst), filepath.Base(dst)
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("destination directory %q must exist: %w", dir, err)
		}
	}
	r := io.Reader(res.Content)
	if rename != "" && rename != res.Stat.Name {
		r = renameRoot(r, res.Stat.Name, rename)
	}
	_, err = archive.ApplyTar(ctx, dir, r, archive.ApplyOptions{})
	return err
}

func copyToContainer(ctx context.Context, env *Env, c *client.Client, src, ctr, dst string, keepIDs bool) error {
	var content io.Reader
	base := filepath.Base(src)
	if src == "-" {
		content = env.In
	} else {
		if _, err := os.Lstat(src); err != nil {
			return err
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarPath(pw, src, base)) }()
		content = pr
	}
	dir := dst
	st, err := c.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dst})
	switch {
	case src == "-":
	case err == nil && st.Stat.Mode.IsDir():
	case err == nil || errdefs.IsNotFound(err):
		// A new name (or a file to replace): unpack into the parent with
		// the entry renamed.
		if strings.HasSuffix(dst, "/") {
			return errors.New("no such directory")
		}
		dir = path.Dir(dst)
		content = renameRoot(content, base, path.Base(dst))
	default:
		return err
	}
	_, err = c.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{
		DestinationPath: dir, Content: content, CopyUIDGID: keepIDs,
	})
	return err
}

// tarPath writes a tar of the local path src, its root entry named name.
func tarPath(w io.Writer, src, name string) error {
	tw := tar.NewWriter(w)
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		hdr.Name = path.Join(name, filepath.ToSlash(rel))
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// renameRoot rewrites a tar stream's entries from old/... to name/....
func renameRoot(r io.Reader, old, name string) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tr, tw := tar.NewReader(r), tar.NewWriter(pw)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			n := strings.TrimPrefix(hdr.Name, "./")
			if n == old || n == old+"/" {
				hdr.Name = name + strings.TrimPrefix(n, old)
			} else if rest, ok := strings.CutPrefix(n, old+"/"); ok {
				hdr.Name = name + "/" + rest
			}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}
