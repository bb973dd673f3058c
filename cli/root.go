// Package cli is berth's client: the docker-compatible commands, their flags
// and their output (tables, -q, --format Go templates, progress), talking to
// the daemon through the Engine API.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// StatusError carries the exit code a command must end with (as docker's
// CLI does: 125 daemon error, 126 cannot execute, 127 not found, or the
// container's own exit code for run/wait). A non-empty Status is printed
// to stderr by cmd/berth before exiting.
type StatusError struct {
	Status string
	Code   int
}

func (e StatusError) Error() string { return e.Status }

// ExitCode extracts the exit code a command asked for.
func ExitCode(err error) (int, bool) {
	var se StatusError
	if errors.As(err, &se) {
		return se.Code, true
	}
	return 0, false
}

// Env is what every command works with: the standard streams, the
// environment and a lazily built Engine API client.
type Env struct {
	In      io.Reader
	Out     io.Writer
	Err     io.Writer
	Getenv  func(string) string
	Version string
	Conn    ConnOptions
	api     *client.Client
}

// Client connects (once) to the daemon chosen by -H/BERTH_HOST/DOCKER_HOST.
func (e *Env) Client() (*client.Client, error) {
	if e.api != nil {
		return e.api, nil
	}
	c, err := NewClient(e.Conn, e.Getenv, "berth-cli/"+e.Version)
	if err != nil {
		return nil, err
	}
	e.api = c
	return c, nil
}

// NewRootCommand returns the `berth` command with every client command.
// Global flags: -H/--host (then BERTH_HOST, DOCKER_HOST, the default socket).
func NewRootCommand(version string) *cobra.Command {
	return newRoot(&Env{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv, Version: version})
}

func newRoot(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "A container engine",
		Version:       env.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	fs := root.PersistentFlags()
	fs.StringArrayVarP(&env.Conn.Hosts, "host", "H", nil, "Daemon socket to connect to")
	fs.BoolVar(&env.Conn.TLS, "tls", false, "Use TLS; implied by --tlsverify")
	fs.BoolVar(&env.Conn.TLSVerify, "tlsverify", false, "Use TLS and verify the remote")
	fs.StringVar(&env.Conn.CACert, "tlscacert", "", "Trust certs signed only by this CA")
	fs.StringVar(&env.Conn.Cert, "tlscert", "", "Path to TLS certificate file")
	fs.StringVar(&env.Conn.Key, "tlskey", "", "Path to TLS key file")
	// Accepted for docker compatibility; berth's client has no debug output
	// or config file yet.
	fs.BoolP("debug", "D", false, "Enable debug mode")
	fs.String("log-level", "info", `Set the logging level ("debug", "info", "warn", "error", "fatal")`)
	fs.String("config", "", "Location of client config files")
	root.SetVersionTemplate("berth version {{.Version}}\n")
	// docker exits 125 on bad flags, printing the error and a hint.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError(c, err) })

	containerCmd := &cobra.Command{Use: "container", Short: "Manage containers"}
	imageCmd := &cobra.Command{Use: "image", Short: "Manage images"}
	root.AddCommand(containerCmd, imageCmd,
		newVersionCmd(env), newInfoCmd(env), newEventsCmd(env), newInspectCmd(env))

	// Top-level shortcuts and their `container`/`image` twins, as docker has them.
	for _, mk := range []func(*Env) *cobra.Command{
		newRunCmd, newCreateCmd, newStartCmd, newStopCmd, newKillCmd, newRestartCmd,
		newRmCmd, newPsCmd, newLogsCmd, newWaitCmd, newAttachCmd,
	} {
		root.AddCommand(mk(env))
		c := mk(env)
		switch c.Name() {
		case "ps":
			c.Use = strings.Replace(c.Use, "ps", "ls", 1)
			c.Aliases = []string{"ps", "list"}
		case "rm":
			c.Aliases = []string{"remove"}
		}
		containerCmd.AddCommand(c)
	}
	containerCmd.AddCommand(newContainerInspectCmd(env), newPruneCmd(env))
	for _, mk := range []func(*Env) *cobra.Command{newImagesCmd, newImportCmd, newPullCmd, newTagCmd, newRmiCmd, newHistoryCmd} {
		root.AddCommand(mk(env))
		c := mk(env)
		switch c.Name() {
		case "images":
			c.Use = strings.Replace(c.Use, "images", "ls", 1)
			c.Aliases = []string{"images", "list"}
		case "rmi":
			c.Use = strings.Replace(c.Use, "rmi", "rm", 1)
			c.Aliases = []string{"rmi", "remove"}
		}
		imageCmd.AddCommand(c)
	}
	imageCmd.AddCommand(newImageInspectCmd(env))

	// Areas add their commands from their own files.
	addDistributionCommands(root, imageCmd, env)      // dist.go: pull, push, login, logout, save, load, prune, system df
	addBuildCommands(root, imageCmd, env)             // build.go: build, builder prune
	addNetworkCommands(root, env)                     // network.go: network ..., port
	addVolumeCommands(root, env)                      // volume.go: volume ...
	addExecCommands(root, containerCmd, env)          // exec.go: exec
	addContainerMoreCommands(root, containerCmd, env) // container_more.go: pause, rename, update, top, stats, cp, commit, ...
	addComposeCommands(root, env)                     // compose.go: compose ...
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true // docker's usage lines list [OPTIONS] themselves
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

// usageError reports a bad flag like docker: the error, the usage line,
// a hint, exit 125.
func usageError(c *cobra.Command, err error) error {
	return StatusError{Code: 125, Status: fmt.Sprintf("%s\n\nUsage:  %s\n\nRun '%s --help' for more information", err, c.UseLine(), c.CommandPath())}
}

// Argument-count checks with docker's wording (exit 1).
func argsError(c *cobra.Command, what, hint string) error {
	return fmt.Errorf("berth: '%s' %s\n\nUsage:  %s\n\n%s '%s --help' for more information", c.CommandPath(), what, c.UseLine(), hint, c.CommandPath())
}

func plural(n int) string {
	if n == 1 {
		return "argument"
	}
	return "arguments"
}

func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return argsError(c, "accepts no arguments", "Run")
	}
	return nil
}

func minArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return argsError(c, fmt.Sprintf("requires at least %d %s", n, plural(n)), "See")
		}
		return nil
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return argsError(c, fmt.Sprintf("requires %d %s", n, plural(n)), "Run")
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return argsError(c, fmt.Sprintf("requires at least %d and at most %d %s", lo, hi, plural(hi)), "See")
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) > n {
			return argsError(c, fmt.Sprintf("requires at most %d %s", n, plural(n)), "Run")
		}
		return nil
	}
}

// statusf returns an exit code with docker's "berth: <msg>" message, which
// cmd/berth prints to stderr, as the docker CLI does for run/create
// failures and flag errors.
func statusf(code int, format string, args ...any) error {
	return StatusError{Status: "berth: " + fmt.Sprintf(format, args...), Code: code}
}
