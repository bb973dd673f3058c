package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/berth-dev/berth/cli/formatter"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// ClientVersion is the client half of `berth version`.
type ClientVersion struct {
	Platform          struct{ Name string }
	Version           string
	APIVersion        string
	DefaultAPIVersion string
	GoVersion         string
	GitCommit         string
	BuildTime         string
	Os                string
	Arch              string
	Context           string
}

// VersionInfo is what `berth version --format` templates see.
type VersionInfo struct {
	Client ClientVersion
	Server *client.ServerVersionResult
}

// ServerOK reports whether the daemon answered.
func (v VersionInfo) ServerOK() bool { return v.Server != nil }

const versionTemplate = `{{with .Client -}}
Client:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 Version:	{{.Version}}
 API version:	{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:	{{.GoVersion}}
 Git commit:	{{.GitCommit}}
 Built:	{{.BuildTime}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}

{{- if .ServerOK}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:	{{.Version}}
  API version:	{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:	{{index .Details "GoVersion"}}
  Git commit:	{{index .Details "GitCommit"}}
  Built:	{{index .Details "BuildTime"}}
  OS/Arch:	{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:	{{index .Details "Experimental"}}
  {{- else }}
  Version:	{{$component.Version}}
  {{- range $key, $value := .Details}}
  {{$key}}:	{{$value}}
  {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}
`

func newVersionCmd(env *Env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tmplText := versionTemplate
			if format != "" {
				tmplText = format + "\n"
				if format == "json" {
					tmplText = "{{json .}}\n"
				}
			}
			tmpl, err := template.New("").Funcs(formatter.Funcs).Parse(tmplText)
			if err != nil {
				return fmt.Errorf("template parsing error: %w", err)
			}
			v := VersionInfo{Client: ClientVersion{
				Version: env.Version, DefaultAPIVersion: client.MaxAPIVersion, APIVersion: client.MaxAPIVersion,
				GoVersion: runtime.Version(), GitCommit: "-", BuildTime: "-",
				Os: runtime.GOOS, Arch: runtime.GOARCH, Context: "default",
			}}
			v.Client.Platform.Name = "berth"
			var srvErr error
			c, err := env.Client()
			if err == nil {
				var sv client.ServerVersionResult
				if sv, srvErr = c.ServerVersion(context.Background(), client.ServerVersionOptions{}); srvErr == nil {
					v.Server = &sv
				}
				v.Client.APIVersion = c.ClientVersion()
			} else {
				srvErr = err
			}
			var out io.Writer = env.Out
			tw := tabwriter.NewWriter(env.Out, 20, 1, 1, ' ', 0)
			if format == "" {
				out = tw
			}
			if err := tmpl.Execute(out, v); err != nil {
				return fmt.Errorf("template: %w", err)
			}
			_ = tw.Flush()
			return srvErr
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

// InfoView is what `berth info --format` templates see: the daemon's
// Info plus the client's.
type InfoView struct {
	*system.Info
	ClientInfo struct {
		Debug   bool
		Context string
	}
}

func newInfoCmd(env *Env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			res, err := c.Info(context.Background(), client.InfoOptions{})
			if format != "" {
				if err != nil {
					return err
				}
				v := InfoView{Info: &res.Info}
				v.ClientInfo.Context = "default"
				return formatter.Write(env.Out, format, nil, []any{v})
			}
			w := env.Out
			fmt.Fprintln(w, "Client:")
			fmt.Fprintf(w, " Version:    %s\n Context:    default\n Debug Mode: false\n\n", env.Version)
			fmt.Fprintln(w, "Server:")
			if err != nil {
				fmt.Fprintf(w, "ERROR: %v\n", err)
				return StatusError{Code: 1}
			}
			printInfo(w, &res.Info)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func printInfo(w io.Writer, i *system.Info) {
	p := func(k string, v any) { fmt.Fprintf(w, " %s: %v\n", k, v) }
	p("Containers", i.Containers)
	fmt.Fprintf(w, "  Running: %d\n  Paused: %d\n  Stopped: %d\n", i.ContainersRunning, i.ContainersPaused, i.ContainersStopped)
	p("Images", i.Images)
	p("Server Version", i.ServerVersion)
	p("Storage Driver", i.Driver)
	for _, kv := range i.DriverStatus {
		fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
	}
	p("Logging Driver", i.LoggingDriver)
	p("Cgroup Driver", i.CgroupDriver)
	if i.CgroupVersion != "" {
		p("Cgroup Version", i.CgroupVersion)
	}
	fmt.Fprintln(w, " Plugins:")
	fmt.Fprintf(w, "  Volume: %s\n  Network: %s\n  Log: %s\n",
		strings.Join(i.Plugins.Volume, " "), strings.Join(i.Plugins.Network, " "), strings.Join(i.Plugins.Log, " "))
	p("Swarm", orDefault(string(i.Swarm.LocalNodeState), "inactive"))
	if len(i.Runtimes) > 0 {
		var names []string
		for n := range i.Runtimes {
			names = append(names, n)
		}
		sort.Strings(names)
		p("Runtimes", strings.Join(names, " "))
	}
	p("Default Runtime", i.DefaultRuntime)
	p("Init Binary", i.InitBinary)
	p("containerd version", i.ContainerdCommit.ID)
	p("runc version", i.RuncCommit.ID)
	p("init version", i.InitCommit.ID)
	if len(i.SecurityOptions) > 0 {
		// "name=seccomp,profile=builtin" reads as "seccomp / Profile: builtin".
		fmt.Fprintln(w, " Security Options:")
		for _, o := range i.SecurityOptions {
			var name string
			var extra [][2]string
			for _, kv := range strings.Split(o, ",") {
				k, v, _ := strings.Cut(kv, "=")
				if k == "name" {
					name = v
					continue
				}
				extra = append(extra, [2]string{k, v})
			}
			fmt.Fprintf(w, "  %s\n", name)
			for _, kv := range extra {
				fmt.Fprintf(w, "   %s: %s\n", strings.ToUpper(kv[0][:1])+kv[0][1:], kv[1])
			}
		}
	}
	p("Kernel Version", i.KernelVersion)
	p("Operating System", i.OperatingSystem)
	p("OSType", i.OSType)
	p("Architecture", i.Architecture)
	p("CPUs", i.NCPU)
	p("Total Memory", units.BytesSize(float64(i.MemTotal)))
	p("Name", i.Name)
	p("ID", i.ID)
	p("Docker Root Dir", i.DockerRootDir)
	p("Debug Mode", i.Debug)
	if i.HTTPProxy != "" {
		p("HTTP Proxy", i.HTTPProxy)
	}
	if i.HTTPSProxy != "" {
		p("HTTPS Proxy", i.HTTPSProxy)
	}
	if i.NoProxy != "" {
		p("No Proxy", i.NoProxy)
	}
	if len(i.Labels) > 0 {
		fmt.Fprintln(w, " Labels:")
		for _, l := range i.Labels {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	p("Experimental", i.ExperimentalBuild)
	p("Live Restore Enabled", i.LiveRestoreEnabled)
	fmt.Fprintln(w)
	for _, warn := range i.Warnings {
		fmt.Fprintln(w, warn)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func newEventsCmd(env *Env) *cobra.Command {
	var since, until, format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			var tmpl *template.Template
			if format != "" {
				if tmpl, err = formatter.Parse(format); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sigs)
			go func() {
				select {
				case <-sigs:
					cancel()
				case <-ctx.Done():
				}
			}()
			res := c.Events(ctx, client.EventsListOptions{Since: since, Until: until, Filters: f})
			for {
				select {
				case m := <-res.Messages:
					if tmpl != nil {
						if err := tmpl.Execute(env.Out, m); err != nil {
							return fmt.Errorf("template: %w", err)
						}
						fmt.Fprintln(env.Out)
						continue
					}
					printEvent(env.Out, m)
				case err := <-res.Err:
					if err == io.EOF || ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "Show all events created since timestamp")
	cmd.Flags().StringVar(&until, "until", "", "Stream events until this timestamp")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	cmd.Flags().StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

// rfc3339NanoFixed is docker's event timestamp layout (fixed 9 digits).
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// printEvent writes one event like docker's default output:
// "<time> <type> <action> <id> (k=v, ...)".
func printEvent(w io.Writer, m events.Message) {
	switch {
	case m.TimeNano != 0:
		fmt.Fprintf(w, "%s ", time.Unix(0, m.TimeNano).Format(rfc3339NanoFixed))
	case m.Time != 0:
		fmt.Fprintf(w, "%s ", time.Unix(m.Time, 0).Format(rfc3339NanoFixed))
	}
	fmt.Fprintf(w, "%s %s %s", m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, 0, len(keys))
		for _, k := range keys {
			attrs = append(attrs, k+"="+m.Actor.Attributes[k])
		}
		fmt.Fprintf(w, " (%s)", strings.Join(attrs, ", "))
	}
	fmt.Fprintln(w)
}
