package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/cli/formatter"
	"github.com/berth-dev/berth/distribution"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addDistributionCommands adds this area's commands: push, login, logout,
// save, load, image prune, system df (pull lives in image.go and renders
// through displayProgress).
func addDistributionCommands(root, imageCmd *cobra.Command, env *Env) {
	for _, mk := range []func(*Env) *cobra.Command{newPushCmd, newSaveCmd, newLoadCmd} {
		root.AddCommand(mk(env))
		imageCmd.AddCommand(mk(env))
	}
	root.AddCommand(newLoginCmd(env), newLogoutCmd(env))
	imageCmd.AddCommand(newImagePruneCmd(env))
	system := findCommand(root, "system")
	if system == nil {
		system = &cobra.Command{Use: "system", Short: "Manage berth"}
		root.AddCommand(system)
	}
	system.AddCommand(newSystemDfCmd(env))
}

func findCommand(parent *cobra.Command, name string) *cobra.Command {
	for _, c := range parent.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// dockerConfig loads the client's config.json ($DOCKER_CONFIG or ~/.docker).
func (e *Env) dockerConfig() (*distribution.DockerConfig, error) {
	path := ""
	if d := e.Getenv("DOCKER_CONFIG"); d != "" {
		path = filepath.Join(d, "config.json")
	}
	return distribution.LoadDockerConfig(path)
}

// registryAuth is the X-Registry-Auth value for the registry of ref.
func registryAuth(ctx context.Context, env *Env, ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	cfg, err := env.dockerConfig()
	if err != nil {
		return ""
	}
	domain := reference.Domain(named)
	creds, err := cfg.Resolve(ctx, domain)
	if err != nil {
		fmt.Fprintf(env.Err, "WARNING: %v\n", err)
		return ""
	}
	return distribution.EncodeAuthHeader(creds, domain)
}

// displayProgress renders a JSON message stream: progress bars on a
// terminal, plain lines otherwise, as docker does.
func displayProgress(out io.Writer, r io.Reader) error {
	fd, isTerm := termFd(out)
	err := jsonmessage.DisplayJSONMessagesStream(r, out, uintptr(fd), isTerm, nil)
	var je *jsonstream.Error
	if errors.As(err, &je) {
		return errors.New(je.Message)
	}
	return err
}

// pullWithProgress pulls ref through the daemon, sending stored credentials.
func pullWithProgress(ctx context.Context, env *Env, c *client.Client, ref, platform string, out io.Writer) error {
	opts := client.ImagePullOptions{RegistryAuth: registryAuth(ctx, env, ref)}
	if platform != "" {
		p, err := distribution.ParsePlatform(platform)
		if err != nil {
			return err
		}
		opts.Platforms = append(opts.Platforms, p)
	}
	rc, err := c.ImagePull(ctx, ref, opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	return displayProgress(out, rc)
}

func newPushCmd(env *Env) *cobra.Command {
	var all, quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, err := reference.ParseNormalizedNamed(args[0])
			if err != nil {
				return err
			}
			_, tagged := named.(reference.Tagged)
			if all && tagged {
				return fmt.Errorf("tag can't be used with --all-tags/-a")
			}
			ref := args[0]
			if !all && !tagged {
				fmt.Fprintln(env.Out, "Using default tag: latest")
				ref = reference.TagNameOnly(named).String()
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			ctx := context.Background()
			rc, err := c.ImagePush(ctx, ref, client.ImagePushOptions{All: all, RegistryAuth: registryAuth(ctx, env, ref)})
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
				fmt.Fprintln(env.Out, ref)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all-tags", "a", false, "Push all tags of an image to the repository")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

// serverKey is the registry name used in config.json for a login server.
func serverKey(server string) string {
	if server == "" {
		return "docker.io"
	}
	s := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://"), "/")
	if h, _, ok := strings.Cut(s, "/"); ok {
		s = h
	}
	if s == "index.docker.io" || s == "registry-1.docker.io" {
		return "docker.io"
	}
	return s
}

func displayServer(server string) string {
	if serverKey(server) == "docker.io" {
		return "https://index.docker.io/v1/"
	}
	return serverKey(server)
}

func newLoginCmd(env *Env) *cobra.Command {
	var user, pass string
	var passStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			if pass != "" {
				fmt.Fprintln(env.Err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
				if passStdin {
					return errors.New("--password and --password-stdin are mutually exclusive")
				}
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
				if fd, ok := termFd(env.In); ok {
					b, err := term.ReadPassword(fd)
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
				return errors.New("Error: Non-null Username Required")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			ctx := context.Background()
			res, err := c.RegistryLogin(ctx, client.RegistryLoginOptions{Username: user, Password: pass, ServerAddress: displayServer(server)})
			if err != nil {
				return err
			}
			cfg, err := env.dockerConfig()
			if err != nil {
				return err
			}
			creds := distribution.Credentials{Username: user, Password: pass}
			if res.Auth.IdentityToken != "" {
				creds = distribution.Credentials{IdentityToken: res.Auth.IdentityToken}
			}
			if err := cfg.Store(ctx, serverKey(server), creds); err != nil {
				return fmt.Errorf("error saving credentials: %w", err)
			}
			fmt.Fprintln(env.Out, "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "Username")
	cmd.Flags().StringVarP(&pass, "password", "p", "", "Password")
	cmd.Flags().BoolVar(&passStdin, "password-stdin", false, "Take the password from stdin")
	return cmd
}

func newLogoutCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			cfg, err := env.dockerConfig()
			if err != nil {
				return err
			}
			found, err := cfg.Erase(context.Background(), serverKey(server))
			if err != nil {
				return err
			}
			if !found {
				fmt.Fprintf(env.Out, "Not logged in to %s\n", displayServer(server))
				return nil
			}
			fmt.Fprintf(env.Out, "Removing login credentials for %s\n", displayServer(server))
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
				tmp := output + ".tmp"
				f, err := os.Create(tmp)
				if err != nil {
					return fmt.Errorf("failed to save image: %w", err)
				}
				if _, err := io.Copy(f, rc); err != nil {
					f.Close()
					os.Remove(tmp)
					return fmt.Errorf("failed to save image: %w", err)
				}
				if err := f.Close(); err != nil {
					os.Remove(tmp)
					return err
				}
				return os.Rename(tmp, output)
			}
			_, err = io.Copy(out, rc)
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
			c, err := env.Client()
			if err != nil {
				return err
			}
			rc, err := c.ImageLoad(context.Background(), in, client.ImageLoadWithQuiet(quiet))
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
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			warning := "WARNING! This will remove all dangling images."
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them."
				f.Add("dangling", "false")
			} else {
				f.Add("dangling", "true")
			}
			if !force {
				fmt.Fprint(env.Out, warning+"\nAre you sure you want to continue? [y/N] ")
				line, _ := bufio.NewReader(env.In).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return nil
				}
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			res, err := c.ImagePrune(context.Background(), client.ImagePruneOptions{Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.ImagesDeleted) > 0 {
				fmt.Fprintln(env.Out, "Deleted Images:")
				for _, d := range res.Report.ImagesDeleted {
					if d.Untagged != "" {
						fmt.Fprintf(env.Out, "untagged: %s\n", d.Untagged)
					} else {
						fmt.Fprintf(env.Out, "deleted: %s\n", d.Deleted)
					}
				}
				fmt.Fprintln(env.Out)
			}
			fmt.Fprintf(env.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}

// dfRow is one line of `system df`.
type dfRow struct {
	Type        string
	TotalCount  string
	Active      string
	Size        string
	Reclaimable string
}

var dfHeader = map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}

const dfTable = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"

func reclaimable(reclaim, total int64) string {
	if total > 0 {
		return fmt.Sprintf("%s (%v%%)", units.HumanSize(float64(reclaim)), reclaim*100/total)
	}
	return units.HumanSize(float64(reclaim))
}

func newSystemDfCmd(env *Env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show docker disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			du, err := c.DiskUsage(context.Background(), client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true, Verbose: true})
			if err != nil {
				return err
			}
			var imgActive, imgUsed int64
			for _, i := range du.Images.Items {
				if i.Containers > 0 {
					imgActive++
					if i.Size != -1 && i.SharedSize != -1 {
						imgUsed += i.Size - i.SharedSize
					}
				}
			}
			var ctrSize, ctrReclaim, ctrActive int64
			for _, ct := range du.Containers.Items {
				ctrSize += ct.SizeRw
				if ct.State == "running" || ct.State == "paused" || ct.State == "restarting" {
					ctrActive++
				} else {
					ctrReclaim += ct.SizeRw
				}
			}
			var volSize, volReclaim, volActive int64
			for _, v := range du.Volumes.Items {
				if v.UsageData == nil {
					continue
				}
				if v.UsageData.Size > 0 {
					volSize += v.UsageData.Size
				}
				if v.UsageData.RefCount > 0 {
					volActive++
				} else if v.UsageData.Size > 0 {
					volReclaim += v.UsageData.Size
				}
			}
			var bcSize, bcReclaim int64
			var bcActive int
			for _, b := range du.BuildCache.Items {
				if !b.Shared {
					bcSize += b.Size
				}
				if b.InUse {
					bcActive++
				} else if !b.Shared {
					bcReclaim += b.Size
				}
			}
			rows := []any{
				dfRow{"Images", fmt.Sprint(len(du.Images.Items)), fmt.Sprint(imgActive), units.HumanSize(float64(du.Images.TotalSize)), reclaimable(du.Images.TotalSize-imgUsed, du.Images.TotalSize)},
				dfRow{"Containers", fmt.Sprint(len(du.Containers.Items)), fmt.Sprint(ctrActive), units.HumanSize(float64(ctrSize)), reclaimable(ctrReclaim, ctrSize)},
				dfRow{"Local Volumes", fmt.Sprint(len(du.Volumes.Items)), fmt.Sprint(volActive), units.HumanSize(float64(volSize)), reclaimable(volReclaim, volSize)},
				dfRow{"Build Cache", fmt.Sprint(len(du.BuildCache.Items)), fmt.Sprint(bcActive), units.HumanSize(float64(bcSize)), units.HumanSize(float64(bcReclaim))},
			}
			if format == "" || format == "table" {
				format = dfTable
			}
			return formatter.Write(env.Out, format, dfHeader, rows)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}
