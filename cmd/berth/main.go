// Command berth is the whole of berth in one binary: the client CLI (default),
// the daemon (`berth daemon`), the registry server (`berth registry serve`),
// and the hidden modes the daemon re-executes: the container init and the
// per-container shim.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/cli"
	"github.com/berth-dev/berth/initproc"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/shim"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// gitCommit and buildTime are set at build time too (see the Makefile).
var gitCommit, buildTime string

func main() {
	// As /sbin/docker-init in a container (--init): the tiny init.
	if filepath.Base(os.Args[0]) == "docker-init" {
		os.Exit(initproc.Main(os.Args[1:]))
	}
	// Hidden modes first, before any flag parsing: they are on the hot path
	// of every container start.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "__init":
			runtime.InitMain()
			return
		case "__shim":
			os.Exit(shim.Main(os.Args[2:]))
		}
	}
	root := cli.NewRootCommand(version)
	root.AddCommand(newDaemonCommand(version))
	root.AddCommand(newRegistryCommand())
	if err := root.Execute(); err != nil {
		if code, ok := cli.ExitCode(err); ok {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, msg)
			}
			os.Exit(code)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
