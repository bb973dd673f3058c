package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/registry/storage"
)

// newRegistryCommand wires `berth registry serve|gc` (owned with registry/).
func newRegistryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run an OCI Distribution registry",
	}
	cmd.AddCommand(newRegistryServeCommand(), newRegistryGCCommand(), newRegistryPasswdCommand())
	return cmd
}

func newRegistryServeCommand() *cobra.Command {
	var (
		configFile                   string
		addr, root, cert, key, ca    string
		htpasswd, logLevel, logFmt   string
		readOnly, del, token, anonRO bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the OCI Distribution API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := registry.DefaultConfig()
			if configFile != "" {
				var err error
				if c, err = registry.LoadConfig(configFile); err != nil {
					return err
				}
			}
			f := cmd.Flags()
			set := func(name string, dst *string, v string) {
				if f.Changed(name) || (configFile == "" && v != "") {
					*dst = v
				}
			}
			set("addr", &c.Addr, addr)
			set("root", &c.Root, root)
			set("tls-cert", &c.TLS.Cert, cert)
			set("tls-key", &c.TLS.Key, key)
			set("tls-client-ca", &c.TLS.ClientCA, ca)
			set("htpasswd", &c.Auth.Htpasswd, htpasswd)
			set("log-level", &c.LogLevel, logLevel)
			set("log-format", &c.LogFormat, logFmt)
			if f.Changed("read-only") {
				c.ReadOnly = readOnly
			}
			if f.Changed("delete") {
				c.EnableDelete = del
			}
			if f.Changed("token") {
				c.Auth.Token.Enabled = token
			}
			if f.Changed("anonymous-pull") {
				c.Auth.AnonymousPull = anonRO
			}
			log, err := registry.NewLogger(c)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return registry.Serve(ctx, c, log, nil)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configFile, "config", "c", "", "YAML configuration file (flags override it)")
	f.StringVar(&addr, "addr", "127.0.0.1:5000", "listen address")
	f.StringVar(&root, "root", "/var/lib/berth/registry", "storage root directory")
	f.StringVar(&cert, "tls-cert", "", "TLS certificate (PEM)")
	f.StringVar(&key, "tls-key", "", "TLS private key (PEM)")
	f.StringVar(&ca, "tls-client-ca", "", "require client certificates signed by this CA (mutual TLS)")
	f.StringVar(&htpasswd, "htpasswd", "", "htpasswd file with bcrypt hashes: enables authentication")
	f.BoolVar(&token, "token", false, "bearer-token mode: issue and verify our own signed tokens at /token")
	f.BoolVar(&anonRO, "anonymous-pull", false, "allow pulls without credentials")
	f.BoolVar(&readOnly, "read-only", false, "refuse pushes and deletes")
	f.BoolVar(&del, "delete", false, "allow deleting manifests, tags and blobs")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&logFmt, "log-format", "text", "log format: text or json")
	return cmd
}

func newRegistryGCCommand() *cobra.Command {
	var (
		root   string
		dryRun bool
		grace  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove unreferenced blobs and untagged manifests (safe while the registry serves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := storage.Open(root, nil, storage.Options{})
			if err != nil {
				return err
			}
			res, err := store.GC(cmd.Context(), storage.GCOptions{DryRun: dryRun, Grace: grace})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			for _, m := range res.Manifests {
				fmt.Fprintf(out, "%s manifest %s\n", verb, m)
			}
			for _, l := range res.Links {
				fmt.Fprintf(out, "%s blob link %s\n", verb, l)
			}
			for _, b := range res.Blobs {
				fmt.Fprintf(out, "%s blob %s\n", verb, b)
			}
			fmt.Fprintf(out, "%s %d manifests, %d blob links, %d blobs (%d bytes), %d expired uploads\n",
				verb, len(res.Manifests), len(res.Links), len(res.Blobs), res.Bytes, res.Uploads)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", "/var/lib/berth/registry", "storage root directory")
	f.BoolVar(&dryRun, "dry-run", false, "only print what would be removed")
	f.DurationVar(&grace, "grace", time.Hour, "spare content written within this long (protects pushes in flight)")
	return cmd
}

// newRegistryPasswdCommand prints an htpasswd line, so that no Apache
// tools are needed to set up basic auth.
func newRegistryPasswdCommand() *cobra.Command {
	var cost int
	cmd := &cobra.Command{
		Use:   "passwd USER",
		Short: "Print an htpasswd (bcrypt) line for USER, reading the password from stdin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.ContainsAny(args[0], ":\n") {
				return fmt.Errorf("user name %q may not contain ':' or newlines", args[0])
			}
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			pw := strings.TrimRight(line, "\r\n")
			if pw == "" {
				return fmt.Errorf("no password on stdin: %v", err)
			}
			h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s:%s\n", args[0], h)
			return nil
		},
	}
	cmd.Flags().IntVar(&cost, "cost", bcrypt.DefaultCost, "bcrypt cost")
	return cmd
}
