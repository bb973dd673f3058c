package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/api/stream"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/cli/runopts"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newRunCmd(env *Env) *cobra.Command {
	var opts *runopts.Options
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContainer(env, cmd, opts, args)
		},
	}
	opts = runopts.AddFlags(cmd.Flags(), true)
	return cmd
}

func newCreateCmd(env *Env) *cobra.Command {
	var opts *runopts.Options
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := opts.Parse(args, nil)
			if err != nil {
				return parseError(cmd, err)
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			id, err := createContainer(context.Background(), env, c, req, opts.CIDFile, opts.Pull)
			if err != nil {
				return statusf(125, "%s\n\nRun '%s --help' for more information", err, cmd.CommandPath())
			}
			fmt.Fprintln(env.Out, id)
			return nil
		},
	}
	opts = runopts.AddFlags(cmd.Flags(), false)
	return cmd
}

func createContainer(ctx context.Context, env *Env, c *client.Client, req *runopts.Request, cidFile, pull string) (string, error) {
	if cidFile != "" {
		if _, err := os.Stat(cidFile); err == nil {
			return "", fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", cidFile)
		}
	}
	create := func() (client.ContainerCreateResult, error) {
		return c.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: req.Config, HostConfig: req.HostConfig, NetworkingConfig: req.NetworkingConfig, Name: req.Name,
		})
	}
	if pull == "always" {
		if err := pullImage(ctx, env, c, req.Config.Image, env.Err); err != nil {
			return "", err
		}
	}
	res, err := create()
	// Like docker: a missing image is pulled, then the create retried.
	if err != nil && errdefs.IsNotFound(err) && pull != "never" && strings.Contains(err.Error(), "No such image") {
		fmt.Fprintf(env.Err, "Unable to find image '%s' locally\n", familiarTagged(req.Config.Image))
		if err := pullImage(ctx, env, c, req.Config.Image, env.Err); err != nil {
			return "", err
		}
		res, err = create()
	}
	if err != nil {
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(env.Err, "WARNING: %s\n", w)
	}
	if cidFile != "" {
		if err := os.WriteFile(cidFile, []byte(res.ID), 0o644); err != nil {
			return "", fmt.Errorf("write container ID file: %w", err)
		}
	}
	return res.ID, nil
}

// familiarTagged renders a reference the way docker's messages do
// ("busybox:latest").
func familiarTagged(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(reference.TagNameOnly(named))
}

// pullImage pulls ref, printing the daemon's progress to out.
func pullImage(ctx context.Context, env *Env, c *client.Client, ref string, out io.Writer) error {
	rc, err := c.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: registryAuthFor(env, ref)})
	if err != nil {
		return err
	}
	defer rc.Close()
	return displayJSON(out, rc)
}

// termFd returns the file descriptor behind a stream, if it is a terminal.
func termFd(v any) (int, bool) {
	f, ok := v.(interface{ Fd() uintptr })
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

func runContainer(env *Env, cmd *cobra.Command, opts *runopts.Options, args []string) error {
	usage := fmt.Sprintf("\n\nRun '%s --help' for more information", cmd.CommandPath())
	req, err := opts.Parse(args, nil)
	if err != nil {
		return parseError(cmd, err)
	}
	cfg := req.Config
	if cfg.Tty && cfg.AttachStdin {
		if _, ok := termFd(env.In); !ok {
			return errors.New("the input device is not a TTY")
		}
	}
	outFd, outTerm := termFd(env.Out)
	if cfg.Tty && outTerm {
		if w, h, err := term.GetSize(outFd); err == nil {
			req.HostConfig.ConsoleSize = [2]uint{uint(h), uint(w)}
		}
	}
	c, err := env.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id, err := createContainer(ctx, env, c, req, opts.CIDFile, opts.Pull)
	if err != nil {
		return statusf(125, "%s%s", err, usage)
	}
	attached := cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr
	var s *session
	if attached {
		s = &session{env: env, api: c, id: id, tty: cfg.Tty, stdin: cfg.AttachStdin, stdout: cfg.AttachStdout, stderr: cfg.AttachStderr, detachKeys: opts.DetachKeys}
		if err := s.attach(ctx); err != nil {
			return statusf(125, "%s%s", err, usage)
		}
		defer s.close()
	}
	// As docker does: ask for the exit before starting, so a fast
	// container's exit (or removal with --rm) cannot be missed.
	status := waitExit(ctx, env, c, id, req.HostConfig.AutoRemove)
	if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if s != nil {
			s.close()
		}
		code := startErrorCode(err)
		if req.HostConfig.AutoRemove {
			<-status // the daemon removes it; don't leave before it does
		}
		return statusf(code, "%s%s", err, usage)
	}
	if !attached {
		fmt.Fprintln(env.Out, id)
		return nil
	}
	if opts.SigProxy && !cfg.Tty {
		stop := proxySignals(ctx, c, id)
		defer stop()
	}
	return s.finish(ctx, status, outTerm)
}

// parseError reports a run/create option error: bad values as usage
// errors, conflicts as "berth: ..." (both exit 125, like docker).
func parseError(cmd *cobra.Command, err error) error {
	var fe runopts.FlagError
	if errors.As(err, &fe) {
		return usageError(cmd, err)
	}
	if errors.Is(err, runopts.ErrAttachDetach) {
		return err
	}
	return statusf(125, "%s\n\nRun '%s --help' for more information", err, cmd.CommandPath())
}

// startErrorCode maps a start failure to docker's exit codes: 127 when the
// command is not found, 126 when it cannot be invoked, 125 otherwise.
func startErrorCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, syscall.EACCES.Error()), strings.Contains(msg, syscall.EISDIR.Error()):
		return 126
	}
	return 125
}

// waitExit posts the wait (next-exit, or removed for --rm) and delivers the
// exit status; 125 when waiting itself fails.
func waitExit(ctx context.Context, env *Env, c *client.Client, id string, autoRemove bool) <-chan int {
	cond := container.WaitConditionNextExit
	if autoRemove {
		cond = container.WaitConditionRemoved
	}
	res := c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	out := make(chan int, 1)
	go func() {
		select {
		case r := <-res.Result:
			if r.Error != nil {
				fmt.Fprintf(env.Err, "Error waiting for container: %s\n", r.Error.Message)
				out <- 125
				return
			}
			out <- int(r.StatusCode)
		case err := <-res.Error:
			if ctx.Err() == nil {
				fmt.Fprintf(env.Err, "Error waiting for container: %v\n", err)
			}
			out <- 125
		}
	}()
	return out
}

// proxySignals forwards the signals berth receives to the container.
func proxySignals(ctx context.Context, c *client.Client, id string) func() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				if sig, ok := s.(syscall.Signal); ok {
					_, _ = c.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: strconv.Itoa(int(sig))})
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// session is one attached client: the hijacked stream plus the terminal.
type session struct {
	env                   *Env
	api                   *client.Client
	id                    string
	tty                   bool
	stdin, stdout, stderr bool
	detachKeys            string
	hj                    client.HijackedResponse
	restore               func()
	// resize sets the remote terminal's size; nil: the container's.
	resize func(ctx context.Context, h, w uint)
}

func (s *session) attach(ctx context.Context) error {
	res, err := s.api.ContainerAttach(ctx, s.id, client.ContainerAttachOptions{
		Stream: true, Stdin: s.stdin, Stdout: s.stdout, Stderr: s.stderr, DetachKeys: s.detachKeys,
	})
	if err != nil {
		return err
	}
	s.hj = res.HijackedResponse
	if s.tty && s.stdin {
		if fd, ok := termFd(s.env.In); ok {
			if st, err := term.MakeRaw(fd); err == nil {
				s.restore = func() { _ = term.Restore(fd, st) }
			}
		}
	}
	return nil
}

func (s *session) close() {
	if s.restore != nil {
		s.restore()
		s.restore = nil
	}
	if s.hj.Conn != nil {
		s.hj.Close()
	}
}

// finish streams until the container's output ends, then returns its exit
// status (as a StatusError when non-zero).
func (s *session) finish(ctx context.Context, status <-chan int, outTerm bool) error {
	if s.tty && outTerm {
		stop := s.monitorSize(ctx)
		defer stop()
	}
	outDone := make(chan error, 1)
	go func() {
		var err error
		if s.stdout || s.stderr {
			if s.tty {
				_, err = io.Copy(s.env.Out, s.hj.Reader)
			} else {
				_, err = stdcopy.StdCopy(s.env.Out, s.env.Err, s.hj.Reader)
			}
		} else {
			_, err = io.Copy(io.Discard, s.hj.Reader)
		}
		outDone <- err
	}()
	detached := make(chan struct{})
	if s.stdin {
		in := s.env.In
		if s.tty {
			// As docker does: the client watches for the detach keys itself.
			spec := s.detachKeys
			if spec == "" {
				spec = stream.DefaultDetachKeys
			}
			keys, err := stream.ParseDetachKeys(spec)
			if err != nil {
				return err
			}
			in = stream.NewEscapeReader(in, keys)
		}
		go func() {
			_, err := io.Copy(s.hj.Conn, in)
			if errors.Is(err, stream.ErrDetached) {
				close(detached)
				return
			}
			_ = s.hj.CloseWrite()
		}()
	}
	var err error
	select {
	case err = <-outDone:
	case <-detached:
		s.close()
		return nil
	}
	s.close()
	if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil && !isClosedConn(err) {
		return err
	}
	code := <-status
	if code != 0 {
		return StatusError{Code: code}
	}
	return nil
}

func isClosedConn(err error) bool {
	return strings.Contains(err.Error(), "use of closed network connection")
}

// monitorSize sends the terminal size now and on every SIGWINCH.
func (s *session) monitorSize(ctx context.Context) func() {
	fd, ok := termFd(s.env.Out)
	if !ok {
		return func() {}
	}
	resize := func() {
		w, h, err := term.GetSize(fd)
		if err != nil || w == 0 || h == 0 {
			return
		}
		if s.resize != nil {
			s.resize(ctx, uint(h), uint(w))
			return
		}
		_, _ = s.api.ContainerResize(ctx, s.id, client.ContainerResizeOptions{Height: uint(h), Width: uint(w)})
	}
	resize()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				resize()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

func newAttachCmd(env *Env) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			insp, err := c.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			ctr := insp.Container
			if ctr.State == nil || !ctr.State.Running {
				return errors.New("You cannot attach to a stopped container, start it first")
			}
			if ctr.State.Paused {
				return errors.New("You cannot attach to a paused container, unpause it first")
			}
			stdin := !noStdin && ctr.Config.OpenStdin
			s := &session{env: env, api: c, id: ctr.ID, tty: ctr.Config.Tty, stdin: stdin, stdout: true, stderr: true, detachKeys: detachKeys}
			if err := s.attach(ctx); err != nil {
				return err
			}
			defer s.close()
			if sigProxy && !ctr.Config.Tty {
				stop := proxySignals(ctx, c, ctr.ID)
				defer stop()
			}
			_, outTerm := termFd(env.Out)
			// The exit status comes from a wait posted once streaming ends.
			status := make(chan int, 1)
			err = s.finish(ctx, lazyStatus(ctx, c, ctr.ID, status), outTerm)
			return err
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// lazyStatus returns a channel that, when read, waits for the container
// to stop and yields its exit code.
func lazyStatus(ctx context.Context, c *client.Client, id string, ch chan int) <-chan int {
	go func() {
		res := c.ContainerWait(ctx, id, client.ContainerWaitOptions{})
		select {
		case r := <-res.Result:
			ch <- int(r.StatusCode)
		case <-res.Error:
			ch <- 0
		}
	}()
	return ch
}
