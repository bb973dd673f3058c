package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/build/buildcontext"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// addBuildCommands adds this area's commands.
func addBuildCommands(root, imageCmd *cobra.Command, env *Env) {
	root.AddCommand(newBuildCmd(env))
	imageCmd.AddCommand(newBuildCmd(env))
	builder := &cobra.Command{Use: "builder", Short: "Manage builds"}
	builder.AddCommand(newBuilderPruneCmd(env), newBuildCmd(env))
	root.AddCommand(builder)
}

type buildFlags struct {
	tags, buildArgs, labels, cacheFrom []string
	file, target, platform, progress   string
	iidfile, network                   string
	noCache, pull, quiet, rm, forceRm  bool
}

func newBuildCmd(env *Env) *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | URL | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(env, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, `Name and optionally a tag in the "name:tag" format`)
	fl.StringVarP(&f.file, "file", "f", "", `Name of the Dockerfile (Default is "PATH/Dockerfile")`)
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "Set build-time variables")
	fl.StringArrayVar(&f.labels, "label", nil, "Set metadata for an image")
	fl.StringArrayVar(&f.cacheFrom, "cache-from", nil, "Images to consider as cache sources")
	fl.StringVar(&f.target, "target", "", "Set the target build stage to build.")
	fl.StringVar(&f.platform, "platform", "", "Set platform if server is multi-platform capable")
	fl.StringVar(&f.progress, "progress", "auto", "Set type of progress output (auto, plain, quiet)")
	fl.StringVar(&f.iidfile, "iidfile", "", "Write the image ID to the file")
	fl.StringVar(&f.network, "network", "default", "Set the networking mode for the RUN instructions during build")
	fl.BoolVar(&f.noCache, "no-cache", false, "Do not use cache when building the image")
	fl.BoolVar(&f.pull, "pull", false, "Always attempt to pull a newer version of the image")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	fl.BoolVar(&f.rm, "rm", true, "Remove intermediate containers after a successful build")
	fl.BoolVar(&f.forceRm, "force-rm", false, "Always remove intermediate containers")
	return cmd
}

func runBuild(env *Env, f buildFlags, contextArg string) error {
	switch f.progress {
	case "auto", "plain", "tty", "rawjson":
	case "quiet":
		f.quiet = true
	default:
		return fmt.Errorf("invalid progress mode %q: use auto, plain or quiet", f.progress)
	}
	if f.file == "-" && contextArg == "-" {
		return errors.New("invalid argument: can't use stdin for both build context and dockerfile")
	}
	body, dockerfile, remote, err := buildContext(env, contextArg, f.file)
	if err != nil {
		return err
	}
	if body != nil {
		defer body.Close()
	}
	opts := client.ImageBuildOptions{
		Tags:           f.tags,
		Dockerfile:     dockerfile,
		RemoteContext:  remote,
		NoCache:        f.noCache,
		PullParent:     f.pull,
		SuppressOutput: f.quiet,
		Remove:         f.rm,
		ForceRemove:    f.forceRm,
		Target:         f.target,
		CacheFrom:      f.cacheFrom,
		BuildArgs:      map[string]*string{},
		Labels:         map[string]string{},
		Version:        "1",
	}
	if f.network != "default" {
		opts.NetworkMode = f.network
	}
	for _, a := range f.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			// "--build-arg NAME" takes the value from the environment.
			if ev, set := os.LookupEnv(k); set {
				opts.BuildArgs[k] = &ev
			} else {
				opts.BuildArgs[k] = nil
			}
			continue
		}
		opts.BuildArgs[k] = &v
	}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		opts.Labels[k] = v
	}
	if f.platform != "" {
		p, err := parsePlatformFlag(f.platform)
		if err != nil {
			return err
		}
		opts.Platforms = append(opts.Platforms, p)
	}
	c, err := env.Client()
	if err != nil {
		return err
	}
	var ctxReader io.Reader = bytes.NewReader(nil)
	if body != nil {
		ctxReader = body
	}
	res, err := c.ImageBuild(context.Background(), ctxReader, opts)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	id, err := renderBuild(env.Out, res.Body, f.quiet)
	if err != nil {
		return err
	}
	if f.quiet {
		fmt.Fprintln(env.Out, id)
	}
	if f.iidfile != "" {
		if err := os.WriteFile(f.iidfile, []byte(id), 0o666); err != nil {
			return err
		}
	}
	return nil
}

// buildContext prepares what is sent as the context: a tar of a
// directory (minus .dockerignore'd files), a tarball, stdin, or nothing
// for a URL (the daemon fetches it). It returns the Dockerfile name to use
// inside the context.
func buildContext(env *Env, arg, file string) (io.ReadCloser, string, string, error) {
	var dockerfileData []byte
	if file == "-" {
		data, err := io.ReadAll(env.In)
		if err != nil {
			return nil, "", "", err
		}
		dockerfileData = data
	}
	switch {
	case arg == "-":
		br := bufio.NewReader(env.In)
		head, _ := br.Peek(512)
		if isTarStream(head) {
			return io.NopCloser(br), file, "", nil
		}
		// A Dockerfile on stdin: a context holding only it.
		data, err := io.ReadAll(br)
		if err != nil {
			return nil, "", "", err
		}
		return pipeContext("", buildcontext.Options{Extra: map[string][]byte{"Dockerfile": data}}), "Dockerfile", "", nil
	case strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://") || strings.HasPrefix(arg, "git@") || strings.HasPrefix(arg, "github.com/"):
		return nil, file, arg, nil
	}
	fi, err := os.Stat(arg)
	if err != nil {
		return nil, "", "", fmt.Errorf("unable to prepare context: path %q not found", arg)
	}
	if !fi.IsDir() {
		fh, err := os.Open(arg)
		if err != nil {
			return nil, "", "", err
		}
		return fh, file, "", nil
	}
	excludes, err := buildcontext.ReadIgnore(arg)
	if err != nil {
		return nil, "", "", err
	}
	opts := buildcontext.Options{Excludes: excludes, Keep: []string{".dockerignore"}}
	name := "Dockerfile"
	switch {
	case dockerfileData != nil:
		name = randomDockerfileName()
		opts.Extra = map[string][]byte{name: dockerfileData}
	case file != "":
		abs, _ := filepath.Abs(file)
		ctxAbs, _ := filepath.Abs(arg)
		rel, err := filepath.Rel(ctxAbs, abs)
		if err != nil || strings.HasPrefix(rel, "..") {
			// Outside the context: sent under a private name, as docker does.
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, "", "", fmt.Errorf("unable to prepare context: %w", err)
			}
			name = randomDockerfileName()
			opts.Extra = map[string][]byte{name: data}
		} else {
			name = filepath.ToSlash(rel)
			opts.Keep = append(opts.Keep, name)
		}
	default:
		if _, err := os.Stat(filepath.Join(arg, "Dockerfile")); err != nil {
			return nil, "", "", fmt.Errorf("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat %s: no such file or directory", filepath.Join(mustAbs(arg), "Dockerfile"))
		}
		opts.Keep = append(opts.Keep, "Dockerfile")
	}
	return pipeContext(arg, opts), name, "", nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func randomDockerfileName() string {
	var b [10]byte
	rand.Read(b[:])
	return ".dockerfile." + hex.EncodeToString(b[:])
}

// pipeContext streams the context tar as it is written.
func pipeContext(dir string, opts buildcontext.Options) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		var err error
		if dir == "" {
			empty, _ := os.MkdirTemp("", "berth-build-")
			defer os.RemoveAll(empty)
			dir = empty
		}
		err = buildcontext.Write(pw, dir, opts)
		pw.CloseWithError(err)
	}()
	return pr
}

func isTarStream(head []byte) bool {
	if archive.Detect(head) != archive.Uncompressed {
		return true
	}
	return len(head) >= 262 && string(head[257:262]) == "ustar"
}

// renderBuild prints the classic builder's stream and returns the image
// ID; a failed step's exit code becomes the command's.
func renderBuild(out io.Writer, r io.Reader, quiet bool) (string, error) {
	dec := json.NewDecoder(r)
	id := ""
	for {
		var m struct {
			jsonstream.Message
			Aux          json.RawMessage `json:"aux,omitempty"`
			ErrorMessage string          `json:"error,omitempty"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return id, nil
			}
			return "", fmt.Errorf("read build output: %w", err)
		}
		switch {
		case m.Error != nil:
			code := m.Error.Code
			if code == 0 {
				code = 1
			}
			return "", StatusError{Status: m.Error.Message, Code: code}
		case m.ErrorMessage != "":
			return "", StatusError{Status: m.ErrorMessage, Code: 1}
		case len(m.Aux) > 0:
			var aux struct{ ID string }
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		case m.Stream != "":
			if !quiet {
				fmt.Fprint(out, m.Stream)
			}
		}
	}
}

func newBuilderPruneCmd(env *Env) *cobra.Command {
	var (
		all, force bool
		keep       string
		filter     []string
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove build cache",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				fmt.Fprint(env.Out, "WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] ")
				if !confirmPrompt(env.In) {
					return nil
				}
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			opts := client.BuildCachePruneOptions{All: all}
			if keep != "" {
				n, err := units.RAMInBytes(keep)
				if err != nil {
					return err
				}
				opts.ReservedSpace = n
			}
			res, err := c.BuildCachePrune(context.Background(), opts)
			if err != nil {
				return err
			}
			if len(res.Report.CachesDeleted) > 0 {
				fmt.Fprintln(env.Out, "Deleted build cache objects:")
				for _, id := range res.Report.CachesDeleted {
					fmt.Fprintln(env.Out, id)
				}
				fmt.Fprintln(env.Out)
			}
			fmt.Fprintf(env.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Remove all unused build cache, not just dangling ones")
	fl.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fl.StringVar(&keep, "keep-storage", "", "Amount of disk space to keep for cache")
	fl.StringArrayVar(&filter, "filter", nil, `Provide filter values (e.g. "until=24h")`)
	return cmd
}

func confirmPrompt(in io.Reader) bool {
	line, _ := bufio.NewReader(in).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

func parsePlatformFlag(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}
