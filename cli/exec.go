package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addExecCommands adds this area's commands.
func addExecCommands(root, containerCmd *cobra.Command, env *Env) {
	root.AddCommand(newExecCmd(env))
	containerCmd.AddCommand(newExecCmd(env))
}

type execOptions struct {
	detach      bool
	detachKeys  string
	env         []string
	interactive bool
	privileged  bool
	tty         bool
	user        string
	workdir     string
}

func newExecCmd(env *Env) *cobra.Command {
	var o execOptions
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(env, &o, args[0], args[1:])
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: run command in the background")
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	f.StringArrayVarP(&o.env, "env", "e", nil, "Set environment variables")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the command")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.StringVarP(&o.user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

func runExec(env *Env, o *execOptions, ctr string, command []string) error {
	if o.tty && o.interactive && !o.detach {
		if _, ok := termFd(env.In); !ok {
			return errors.New("the input device is not a TTY")
		}
	}
	c, err := env.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// `-e NAME` takes NAME's value from this environment, as docker does.
	for i, kv := range o.env {
		if !strings.Contains(kv, "=") {
			if v, ok := os.LookupEnv(kv); ok {
				o.env[i] = kv + "=" + v
			}
		}
	}
	opts := client.ExecCreateOptions{
		User: o.user, Privileged: o.privileged, TTY: o.tty,
		AttachStdin: o.interactive && !o.detach, AttachStdout: !o.detach, AttachStderr: !o.detach,
		DetachKeys: o.detachKeys, Env: o.env, WorkingDir: o.workdir, Cmd: command,
	}
	outFd, outTerm := termFd(env.Out)
	if o.tty && outTerm {
		if w, h, err := term.GetSize(outFd); err == nil {
			opts.ConsoleSize = client.ConsoleSize{Height: uint(h), Width: uint(w)}
		}
	}
	created, err := c.ExecCreate(ctx, ctr, opts)
	if err != nil {
		return err
	}
	if o.detach {
		_, err := c.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true, TTY: o.tty, ConsoleSize: opts.ConsoleSize})
		return err
	}
	res, err := c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: o.tty, ConsoleSize: opts.ConsoleSize})
	if err != nil {
		return err
	}
	s := &session{env: env, api: c, id: created.ID, tty: o.tty, stdin: opts.AttachStdin, stdout: true, stderr: true,
		detachKeys: o.detachKeys, hj: res.HijackedResponse}
	s.resize = func(ctx context.Context, h, w uint) {
		_, _ = c.ExecResize(ctx, created.ID, client.ExecResizeOptions{Height: h, Width: w})
	}
	if o.tty && opts.AttachStdin {
		if fd, ok := termFd(env.In); ok {
			if st, err := term.MakeRaw(fd); err == nil {
				s.restore = func() { _ = term.Restore(fd, st) }
			}
		}
	}
	defer s.close()
	// The exit code is asked for once the output has ended.
	ended := &endReader{r: res.Reader, done: make(chan struct{})}
	s.hj.Reader = bufio.NewReader(ended)
	status := make(chan int, 1)
	go func() {
		select {
		case <-ended.done:
		case <-ctx.Done():
			return
		}
		r, err := c.ExecInspect(context.WithoutCancel(ctx), created.ID, client.ExecInspectOptions{})
		if err != nil {
			fmt.Fprintln(env.Err, err)
			status <- 126
			return
		}
		status <- r.ExitCode
	}()
	return s.finish(ctx, status, outTerm)
}

// endReader closes done when its reader first fails (EOF included).
type endReader struct {
	r    io.Reader
	done chan struct{}
	once sync.Once
}

func (e *endReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.done) })
	}
	return n, err
}
