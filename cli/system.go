package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"text/template"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"github.com/spf13/cobra"
)

func newVersionCommand(g *globals, version string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the berth version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			type clientInfo struct {
				Version, APIVersion, GoVersion, Os, Arch string
			}
			data := struct {
				Client clientInfo
				Server *system.VersionResponse
			}{Client: clientInfo{version, client.APIVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH}}
			c, err := g.client(ctx)
			var sv system.VersionResponse
			if err == nil {
				err = c.JSON(ctx, "GET", "/version", nil, nil, &sv)
			}
			if err == nil {
				data.Server = &sv
			}
			if format != "" {
				if rerr := render(g.stdout, format, nil, []any{data}); rerr != nil {
					return rerr
				}
				return daemonError(err)
			}
			fmt.Fprintf(g.stdout, "Client:\n Version:\t%s\n API version:\t%s\n Go version:\t%s\n OS/Arch:\t%s/%s\n",
				version, client.APIVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if err != nil {
				return daemonError(err)
			}
			fmt.Fprintf(g.stdout, "\nServer:\n Version:\t%s\n API version:\t%s (minimum version %s)\n Go version:\t%s\n OS/Arch:\t%s/%s\n Kernel:\t%s\n",
				sv.Version, sv.APIVersion, sv.MinAPIVersion, sv.GoVersion, sv.Os, sv.Arch, sv.KernelVersion)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a Go template")
	return cmd
}

func newInfoCommand(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Display system-wide information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			var info system.Info
			if err := c.JSON(ctx, "GET", "/info", nil, nil, &info); err != nil {
				return daemonError(err)
			}
			if format != "" {
				return render(g.stdout, format, nil, []any{info})
			}
			fmt.Fprintf(g.stdout, "Server:\n Containers: %d\n  Running: %d\n  Paused: %d\n  Stopped: %d\n Images: %d\n Server Version: %s\n Storage Driver: %s\n Logging Driver: %s\n Cgroup Driver: %s\n Cgroup Version: %s\n Kernel Version: %s\n Operating System: %s\n Architecture: %s\n CPUs: %d\n Total Memory: %s\n Name: %s\n Docker Root Dir: %s\n",
				info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped, info.Images,
				info.ServerVersion, info.Driver, info.LoggingDriver, info.CgroupDriver, info.CgroupVersion,
				info.KernelVersion, info.OperatingSystem, info.Architecture, info.NCPU, humanSize(info.MemTotal),
				info.Name, info.DockerRootDir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a Go template")
	return cmd
}

func newInspectCommand(g *globals) *cobra.Command { return newInspectTypedCommand(g, "") }

// newInspectTypedCommand is `inspect` for one kind ("container", "image")
// or, with kind "", trying containers then images, as docker does.
func newInspectTypedCommand(g *globals, kind string) *cobra.Command {
	var format, typ string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on objects",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			if kind != "" {
				typ = kind
			}
			var results []json.RawMessage
			failed := false
			for _, name := range args {
				var raw json.RawMessage
				err := client.NewNotFound(name)
				if typ == "" || typ == "container" {
					q := url.Values{}
					if size {
						q.Set("size", "1")
					}
					err = c.JSON(ctx, "GET", "/containers/"+name+"/json", q, nil, &raw)
				}
				if (typ == "" && client.IsNotFound(err)) || typ == "image" {
					err = c.JSON(ctx, "GET", "/images/"+name+"/json", nil, nil, &raw)
				}
				if err != nil {
					if client.IsNotFound(err) {
						fmt.Fprintf(g.stderr, "Error: No such object: %s\n", name)
						if typ == "container" {
							fmt.Fprintln(g.stderr, daemonError(err))
						}
					} else {
						fmt.Fprintln(g.stderr, daemonError(err))
					}
					failed = true
					continue
				}
				results = append(results, raw)
			}
			if format != "" {
				tmpl, err := template.New("inspect").Funcs(templateFuncs).Parse(format)
				if err != nil {
					return fmt.Errorf("template parsing error: %w", err)
				}
				for _, raw := range results {
					var v any
					dec := json.NewDecoder(bytes.NewReader(raw))
					dec.UseNumber()
					dec.Decode(&v)
					var sb strings.Builder
					if err := tmpl.Execute(&sb, v); err != nil {
						return fmt.Errorf("template: %w", err)
					}
					fmt.Fprintln(g.stdout, sb.String())
				}
			} else {
				if results == nil {
					results = []json.RawMessage{}
				}
				out, _ := json.MarshalIndent(results, "", "    ")
				fmt.Fprintln(g.stdout, string(out))
			}
			if failed {
				return StatusError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a Go template")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	if kind == "" {
		cmd.Flags().StringVar(&typ, "type", "", "Return JSON for specified type")
	}
	return cmd
}

func newEventsCommand(g *globals) *cobra.Command {
	var since, until, format string
	var filterArgs []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			q := filterQuery(filterArgs)
			if q == nil {
				q = url.Values{}
			}
			if since != "" {
				q.Set("since", since)
			}
			if until != "" {
				q.Set("until", until)
			}
			resp, err := c.Do(ctx, "GET", "/events", q, nil, nil)
			if err != nil {
				return daemonError(err)
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				var m events.Message
				if json.Unmarshal(sc.Bytes(), &m) != nil {
					continue
				}
				if format != "" {
					if err := render(g.stdout, format, nil, []any{m}); err != nil {
						return err
					}
					continue
				}
				var attrs []string
				for k, v := range m.Actor.Attributes {
					attrs = append(attrs, k+"="+v)
				}
				fmt.Fprintf(g.stdout, "%s %s %s %s (%s)\n", time.Unix(0, m.TimeNano).Format("2006-01-02T15:04:05.000000000-07:00"),
					m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "Show all events created since timestamp")
	cmd.Flags().StringVar(&until, "until", "", "Stream events until this timestamp")
	cmd.Flags().StringVar(&format, "format", "", "Format the output using the given Go template")
	cmd.Flags().StringArrayVarP(&filterArgs, "filter", "f", nil, "Filter output based on conditions provided")
	return cmd
}
