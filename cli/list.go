package cli

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
)

// psRow is what `ps --format` templates see, with docker's field names.
type psRow struct {
	s       container.Summary
	noTrunc bool
}

func (r psRow) ID() string {
	if r.noTrunc {
		return r.s.ID
	}
	return shortID(r.s.ID)
}
func (r psRow) Image() string { return r.s.Image }
func (r psRow) Command() string {
	c := strconv.Quote(r.s.Command)
	if r.noTrunc {
		return c
	}
	return strconv.Quote(ellipsis(r.s.Command, 20))
}
func (r psRow) CreatedAt() string {
	return time.Unix(r.s.Created, 0).Format("2006-01-02 15:04:05 -0700 MST")
}
func (r psRow) RunningFor() string { return ago(time.Unix(r.s.Created, 0)) }
func (r psRow) Status() string     { return r.s.Status }
func (r psRow) State() string      { return string(r.s.State) }
func (r psRow) Ports() string      { return "" }
func (r psRow) Names() string {
	var names []string
	for _, n := range r.s.Names {
		n = strings.TrimPrefix(n, "/")
		if !strings.Contains(n, "/") {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}
func (r psRow) Labels() string {
	var kv []string
	for k, v := range r.s.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
func (r psRow) Label(k string) string { return r.s.Labels[k] }
func (r psRow) Size() string {
	if r.s.SizeRw == 0 && r.s.SizeRootFs == 0 {
		return "0B"
	}
	return fmt.Sprintf("%s (virtual %s)", humanSize(r.s.SizeRw), humanSize(r.s.SizeRootFs))
}
func (r psRow) Mounts() string   { return "" }
func (r psRow) Networks() string { return string(r.s.HostConfig.NetworkMode) }

var psHeader = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
	"Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES", "Labels": "LABELS", "Size": "SIZE",
	"Mounts": "MOUNTS", "Networks": "NETWORKS",
}

func newPsCommand(g *globals) *cobra.Command {
	var all, quiet, latest, size, noTrunc bool
	var last int
	var format string
	var filterArgs []string
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
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
			if all {
				q.Set("all", "1")
			}
			if latest {
				last = 1
			}
			if last > 0 {
				q.Set("limit", strconv.Itoa(last))
			}
			if size {
				q.Set("size", "1")
			}
			var list []container.Summary
			if err := c.JSON(ctx, "GET", "/containers/json", q, nil, &list); err != nil {
				return daemonError(err)
			}
			if quiet {
				format = "{{.ID}}"
			}
			if format == "" {
				format = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
				if size {
					format += "\t{{.Size}}"
				}
			}
			rows := make([]any, len(list))
			for i, s := range list {
				rows[i] = psRow{s: s, noTrunc: noTrunc}
			}
			return render(g.stdout, format, psHeader, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fl.BoolVarP(&latest, "latest", "l", false, "Show the latest created container")
	fl.IntVarP(&last, "last", "n", -1, "Show n last created containers")
	fl.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringVar(&format, "format", "", "Format output using a Go template")
	fl.StringArrayVarP(&filterArgs, "filter", "f", nil, "Filter output based on conditions provided")
	return cmd
}

// imageRow is what `images --format` templates see.
type imageRow struct {
	repo, tag, digest string
	s                 image.Summary
	noTrunc           bool
}

func (r imageRow) Repository() string { return r.repo }
func (r imageRow) Tag() string        { return r.tag }
func (r imageRow) Digest() string     { return r.digest }
func (r imageRow) ID() string {
	if r.noTrunc {
		return r.s.ID
	}
	return shortID(r.s.ID)
}
func (r imageRow) CreatedSince() string { return ago(time.Unix(r.s.Created, 0)) }
func (r imageRow) CreatedAt() string {
	return time.Unix(r.s.Created, 0).Format("2006-01-02 15:04:05 -0700 MST")
}
func (r imageRow) Size() string { return humanSize(r.s.Size) }

var imageHeader = map[string]string{
	"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID", "CreatedSince": "CREATED",
	"CreatedAt": "CREATED AT", "Size": "SIZE",
}

func newImagesCommand(g *globals) *cobra.Command {
	var all, quiet, digests, noTrunc bool
	var format string
	var filterArgs []string
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				filterArgs = append(filterArgs, "reference="+args[0])
			}
			q := filterQuery(filterArgs)
			if q == nil {
				q = url.Values{}
			}
			if all {
				q.Set("all", "1")
			}
			var list []image.Summary
			if err := c.JSON(ctx, "GET", "/images/json", q, nil, &list); err != nil {
				return daemonError(err)
			}
			var rows []any
			seen := map[string]bool{}
			for _, s := range list {
				if quiet {
					id := imageRow{s: s, noTrunc: noTrunc}.ID()
					if !seen[id] {
						seen[id] = true
						rows = append(rows, imageRow{s: s, noTrunc: noTrunc})
					}
					continue
				}
				tags := s.RepoTags
				if len(tags) == 0 {
					tags = []string{"<none>:<none>"}
				}
				for _, t := range tags {
					i := strings.LastIndex(t, ":")
					repo, tag := t[:i], t[i+1:]
					dg := "<none>"
					for _, d := range s.RepoDigests {
						if strings.HasPrefix(d, repo+"@") {
							dg = strings.TrimPrefix(d, repo+"@")
						}
					}
					rows = append(rows, imageRow{repo: repo, tag: tag, digest: dg, s: s, noTrunc: noTrunc})
				}
			}
			if quiet {
				format = "{{.ID}}"
			}
			if format == "" {
				format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
				if digests {
					format = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
				}
			}
			return render(g.stdout, format, imageHeader, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.BoolVar(&digests, "digests", false, "Show digests")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringVar(&format, "format", "", "Format output using a Go template")
	fl.StringArrayVarP(&filterArgs, "filter", "f", nil, "Filter output based on conditions provided")
	return cmd
}
