package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/distribution"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addDistributionCommands adds this area's commands.
func addDistributionCommands(root, imageCmd *cobra.Command, env *Env) {
	for _, mk := range []func(*Env) *cobra.Command{newPushCmd, newSaveCmd, newLoadCmd} {
		root.AddCommand(mk(env))
		imageCmd.AddCommand(mk(env))
	}
	root.AddCommand(newLoginCmd(env), newLogoutCmd(env))
	imageCmd.AddCommand(newImagePruneCmd(env))
	var system *cobra.Command
	for _, c := range root.Commands() {
		if c.Name() == "system" {
			system = c
		}
	}
	if system == nil {
		system = &cobra.Command{Use: "system", Short: "Manage berth"}
		root.AddCommand(system)
	}
	system.AddCommand(newSystemDFCmd(env))
}

// registryAuth is the X-Registry-Auth value for ref's registry, from the
// client's config.json (and its credential helpers), as the docker CLI sends it.
func registryAuth(ref string) string {
	host := "docker.io"
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		host = reference.Domain(named)
	}
	cf, err := distribution.LoadConfigFile(distribution.DefaultConfigPath())
	if err != nil {
		return ""
	}
	a, err := cf.Get(host)
	if err != nil || a.Empty() {
		return distribution.EncodeAuthHeader(distribution.AuthConfig{})
	}
	return distribution.EncodeAuthHeader(a)
}

// normalizedRef parses a pull or push argument; without all, a missing
// tag means latest.
func normalizedRef(ref string, all bool) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, err
	}
	if !all {
		named = reference.TagNameOnly(named)
	}
	return named, nil
}

// pullPlatforms parses --platform.
func pullPlatforms(p string) []ocispec.Platform {
	if p == "" {
		return nil
	}
	parsed, err := distribution.ParsePlatform(p)
	if err != nil {
		return nil
	}
	return []ocispec.Platform{{OS: parsed.OS, Architecture: parsed.Architecture, Variant: parsed.Variant}}
}

// displayProgress renders a JSON message stream: bars on a terminal,
// plain lines otherwise, as the docker CLI does.
func displayProgress(out io.Writer, r io.Reader) error {
	fd, isTerm := termFd(out)
	return jsonmessage.DisplayJSONMessagesStream(r, out, uintptr(fd), isTerm, nil)
}

func newPushCmd(env *Env) *cobra.Command {
	var quiet, all bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ref := args[0]
			named, err := reference.ParseNormalizedNamed(ref)
			if err != nil {
				return err
			}
			if !all {
				named = reference.TagNameOnly(named)
			}
			rc, err := c.ImagePush(context.Background(), named.String(), client.ImagePushOptions{All: all, RegistryAuth: registryAuth(ref)})
			if err != nil {
				return err
			}
			defer rc.Close()
			out := env.Out
			if quiet {
				out = io.Discard
			}
			if err := displayProgress(out, rc); err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(env.Out, named.String())
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all-tags", "a", false, "Push all tags of an image to the repository")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

func newLoginCmd(env *Env) *cobra.Command {
	var user, pass string
	var passStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := "https://index.docker.io/v1/"
			if len(args) == 1 {
				server = args[0]
			}
			if passStdin {
				if user == "" {
					return errors.New("Must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(env.In)
				if err != nil {
					return err
				}
				pass = strings.TrimRight(string(b), "\r\n")
			}
			in := bufio.NewReader(env.In)
			if user == "" {
				fmt.Fprint(env.Out, "Username: ")
				line, _ := in.ReadString('\n')
				user = strings.TrimSpace(line)
			}
			if pass == "" {
				fmt.Fprint(env.Out, "Password: ")
				if f, ok := env.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					b, err := term.ReadPassword(int(f.Fd()))
					fmt.Fprintln(env.Out)
					if err != nil {
						return err
					}
					pass = string(b)
				} else {
					line, _ := in.ReadString('\n')
					pass = strings.TrimRight(line, "\r\n")
				}
			}
			if user == "" || pass == "" {
				return errors.New("Error: Non-null Username and Password Required")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			res, err := c.RegistryLogin(context.Background(), client.RegistryLoginOptions{Username: user, Password: pass, ServerAddress: server})
			if err != nil {
				return err
			}
			cf, err := distribution.LoadConfigFile(distribution.DefaultConfigPath())
			if err != nil {
				return err
			}
			a := distribution.AuthConfig{Username: user, Password: pass, IdentityToken: res.Auth.IdentityToken}
			if err := cf.Store(server, a); err != nil {
				return fmt.Errorf("store credentials: %w", err)
			}
			if cf.CredsStore == "" && len(cf.CredHelpers) == 0 {
				fmt.Fprintf(env.Err, "\nWARNING! Your credentials are stored unencrypted in '%s'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n\n", cf.Path())
			}
			fmt.Fprintln(env.Out, "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "Username")
	cmd.Flags().StringVarP(&pass, "password", "p", "", "Password or Personal Access Token (PAT)")
	cmd.Flags().BoolVar(&passStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

func newLogoutCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := "https://index.docker.io/v1/"
			if len(args) == 1 {
				server = args[0]
			}
			cf, err := distribution.LoadConfigFile(distribution.DefaultConfigPath())
			if err != nil {
				return err
			}
			had, err := cf.Erase(server)
			if err != nil {
				return err
			}
			if !had {
				fmt.Fprintf(env.Out, "Not logged in to %s\n", server)
				return nil
			}
			fmt.Fprintf(env.Out, "Removing login credentials for %s\n", server)
			return nil
		},
	}
}

func newSaveCmd(env *Env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out io.Writer = env.Out
			if output == "" {
				if _, isTerm := termFd(env.Out); isTerm {
					return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
				}
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			rc, err := c.ImageSave(context.Background(), args)
			if err != nil {
				return err
			}
			defer rc.Close()
			if output != "" {
				f, err := os.CreateTemp(dirOf(output), ".berth_temp_")
				if err != nil {
					return fmt.Errorf("failed to save image: %w", err)
				}
				if _, err := io.Copy(f, rc); err != nil {
					f.Close()
					os.Remove(f.Name())
					return err
				}
				if err := f.Close(); err != nil {
					os.Remove(f.Name())
					return err
				}
				return os.Rename(f.Name(), output)
			}
			_, err = io.Copy(out, rc)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1]
	}
	return "."
}

func newLoadCmd(env *Env) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := env.In
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
			c, err := env.Client()
			if err != nil {
				return err
			}
			opts := []client.ImageLoadOption{}
			if quiet {
				opts = append(opts, client.ImageLoadWithQuiet(true))
			}
			rc, err := c.ImageLoad(context.Background(), in, opts...)
			if err != nil {
				return err
			}
			defer rc.Close()
			return displayProgress(env.Out, rc)
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}

func newImagePruneCmd(env *Env) *cobra.Command {
	var all, force bool
	var filter []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				warning := "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
				if all {
					warning = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] "
				}
				fmt.Fprint(env.Out, warning)
				line, _ := bufio.NewReader(env.In).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return nil
				}
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			f := client.Filters{}
			for _, kv := range filter {
				k, v, _ := strings.Cut(kv, "=")
				f = f.Add(k, v)
			}
			if all {
				f = f.Add("dangling", "false")
			} else {
				f = f.Add("dangling", "true")
			}
			res, err := c.ImagePrune(context.Background(), client.ImagePruneOptions{Filters: f})
			if err != nil {
				return err
			}
			rep := res.Report
			if len(rep.ImagesDeleted) > 0 {
				fmt.Fprintln(env.Out, "Deleted Images:")
				for _, d := range rep.ImagesDeleted {
					if d.Untagged != "" {
						fmt.Fprintf(env.Out, "untagged: %s\n", d.Untagged)
					} else {
						fmt.Fprintf(env.Out, "deleted: %s\n", d.Deleted)
					}
				}
				fmt.Fprintln(env.Out)
			}
			fmt.Fprintf(env.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(rep.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filter, "filter", nil, `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

func newSystemDFCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show docker disk usage",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			du, err := c.DiskUsage(context.Background(), client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.Out, 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
			row := func(name string, total, active, size, reclaim int64) {
				pct := ""
				if size > 0 {
					pct = fmt.Sprintf(" (%d%%)", reclaim*100/size)
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s%s\n", name, total, active, units.HumanSizeWithPrecision(float64(size), 3), units.HumanSizeWithPrecision(float64(reclaim), 3), pct)
			}
			row("Images", du.Images.TotalCount, du.Images.ActiveCount, du.Images.TotalSize, du.Images.Reclaimable)
			row("Containers", du.Containers.TotalCount, du.Containers.ActiveCount, du.Containers.TotalSize, du.Containers.Reclaimable)
			row("Local Volumes", du.Volumes.TotalCount, du.Volumes.ActiveCount, du.Volumes.TotalSize, du.Volumes.Reclaimable)
			row("Build Cache", du.BuildCache.TotalCount, du.BuildCache.ActiveCount, du.BuildCache.TotalSize, du.BuildCache.Reclaimable)
			return tw.Flush()
		},
	}
	cmd.Flags().BoolP("verbose", "v", false, "Show detailed information on space usage")
	return cmd
}
