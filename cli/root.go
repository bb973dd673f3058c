// Package cli is berth's client: the docker-compatible commands, their flags
// and their output (tables, -q, --format Go templates, progress), talking to
// the daemon through the Engine API.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

// StatusError carries the exit code a command must end with (as docker's
// CLI does: 125 daemon error, 126 cannot execute, 127 not found, or the
// container's own exit code for run/wait).
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

// DefaultHost is where the daemon listens by default.
const DefaultHost = "unix:///run/berth/berth.sock"

// globals are the root command's flags, shared by every command.
type globals struct {
	host      string
	tls       bool
	tlsVerify bool
	tlsCACert string
	tlsCert   string
	tlsKey    string
	stdout    io.Writer
	stderr    io.Writer
	stdin     io.Reader
}

// resolveHost applies the order -H, BERTH_HOST, DOCKER_HOST, default.
func resolveHost(flag string, getenv func(string) string) string {
	for _, h := range []string{flag, getenv("BERTH_HOST"), getenv("DOCKER_HOST")} {
		if h != "" {
			return h
		}
	}
	return DefaultHost
}

// client connects to the daemon the flags name.
func (g *globals) client(ctx context.Context) (*client.Client, error) {
	host := resolveHost(g.host, os.Getenv)
	var tc *tls.Config
	if g.tls || g.tlsVerify || os.Getenv("DOCKER_TLS_VERIFY") != "" {
		certPath := os.Getenv("DOCKER_CERT_PATH")
		pick := func(flag, name string) string {
			if flag != "" {
				return flag
			}
			if certPath != "" {
				return filepath.Join(certPath, name)
			}
			return ""
		}
		tc = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !g.tlsVerify && os.Getenv("DOCKER_TLS_VERIFY") == ""}
		if ca := pick(g.tlsCACert, "ca.pem"); ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return nil, err
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			tc.RootCAs = pool
		}
		if cert, key := pick(g.tlsCert, "cert.pem"), pick(g.tlsKey, "key.pem"); cert != "" && key != "" {
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return nil, err
			}
			tc.Certificates = []tls.Certificate{pair}
		}
	}
	c, err := client.New(host, tc)
	if err != nil {
		return nil, err
	}
	if err := c.Negotiate(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// daemonError formats an error like the docker CLI.
func daemonError(err error) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		return fmt.Errorf("Error response from daemon: %s", ce.Message)
	}
	return err
}

// NewRootCommand returns the `berth` command with every client command.
// Global flags: -H/--host (then BERTH_HOST, DOCKER_HOST, the default socket).
func NewRootCommand(version string) *cobra.Command {
	g := &globals{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "A container engine",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.host, "host", "H", "", "Daemon socket to connect to (default: $BERTH_HOST, $DOCKER_HOST, "+DefaultHost+")")
	pf.BoolVar(&g.tls, "tls", false, "Use TLS")
	pf.BoolVar(&g.tlsVerify, "tlsverify", false, "Use TLS and verify the daemon")
	pf.StringVar(&g.tlsCACert, "tlscacert", "", "Trust certs signed only by this CA")
	pf.StringVar(&g.tlsCert, "tlscert", "", "Path to TLS certificate file")
	pf.StringVar(&g.tlsKey, "tlskey", "", "Path to TLS key file")

	containerCmds := []func(*globals) *cobra.Command{
		newRunCommand, newCreateCommand, newStartCommand, newStopCommand, newKillCommand, newRestartCommand,
		newRmCommand, newPsCommand, newLogsCommand, newWaitCommand, newAttachCommand,
	}
	imageCmds := []func(*globals) *cobra.Command{
		newImagesCommand, newImportCommand, newTagCommand, newRmiCommand, newHistoryCommand,
	}
	for _, f := range containerCmds {
		root.AddCommand(f(g))
	}
	for _, f := range imageCmds {
		root.AddCommand(f(g))
	}
	root.AddCommand(newInspectCommand(g), newVersionCommand(g, version), newInfoCommand(g), newEventsCommand(g))

	containerGroup := &cobra.Command{Use: "container", Short: "Manage containers"}
	for _, f := range containerCmds {
		containerGroup.AddCommand(f(g))
	}
	ls := newPsCommand(g)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list", "ps"}
	containerGroup.AddCommand(ls, newInspectTypedCommand(g, "container"), newContainerPruneCommand(g))
	root.AddCommand(containerGroup)

	imageGroup := &cobra.Command{Use: "image", Short: "Manage images"}
	il := newImagesCommand(g)
	il.Use, il.Aliases = "ls [OPTIONS] [REPOSITORY[:TAG]]", []string{"list"}
	rm := newRmiCommand(g)
	rm.Use, rm.Aliases = "rm [OPTIONS] IMAGE [IMAGE...]", []string{"remove", "rmi"}
	imageGroup.AddCommand(il, rm, newImportCommand(g), newTagCommand(g), newHistoryCommand(g), newInspectTypedCommand(g, "image"))
	root.AddCommand(imageGroup)
	return root
}
