package compose

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"

	"github.com/berth-dev/berth/errdefs"
	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Compose runs compose commands against one engine.
type Compose struct {
	API API
	Out io.Writer // command output: tables, logs
	Err io.Writer // progress and warnings
	TTY bool      // Err is a terminal
	Log *slog.Logger

	prog *progress
}

// New returns a Compose writing output to out and progress to errw.
func New(api API, out, errw io.Writer, tty bool, log *slog.Logger) *Compose {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Compose{API: api, Out: out, Err: errw, TTY: tty, Log: log, prog: &progress{w: errw, tty: tty}}
}

func isNotFound(err error) bool {
	return err != nil && (cerrdefs.IsNotFound(err) || errdefs.IsNotFound(err))
}

// projectFilter selects the project's containers (or networks, volumes).
func projectFilter(project string, more ...string) client.Filters {
	f := client.Filters{}.Add("label", LabelProject+"="+project)
	for _, m := range more {
		f.Add("label", m)
	}
	return f
}

// containers lists the project's containers, optionally for some services
// only; oneoff selects `run` containers (nil: both).
func (c *Compose) containers(ctx context.Context, project string, all bool, oneoff *bool, services ...string) ([]container.Summary, error) {
	var more []string
	if oneoff != nil {
		more = append(more, LabelOneoff+"="+pyBool(*oneoff))
	}
	res, err := c.API.ContainerList(ctx, client.ContainerListOptions{All: all, Filters: projectFilter(project, more...)})
	if err != nil {
		return nil, fmt.Errorf("list containers of project %s: %w", project, err)
	}
	want := map[string]bool{}
	for _, s := range services {
		want[s] = true
	}
	var out []container.Summary
	for _, ct := range res.Items {
		if len(want) > 0 && !want[ct.Labels[LabelService]] {
			continue
		}
		out = append(out, ct)
	}
	sort.Slice(out, func(i, j int) bool {
		si, sj := out[i].Labels[LabelService], out[j].Labels[LabelService]
		if si != sj {
			return si < sj
		}
		ni, _ := strconv.Atoi(out[i].Labels[LabelNumber])
		nj, _ := strconv.Atoi(out[j].Labels[LabelNumber])
		return ni < nj
	})
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// containerName is the summary's name without the leading slash.
func containerName(ct container.Summary) string {
	if len(ct.Names) == 0 {
		return ct.ID[:12]
	}
	n := ct.Names[0]
	if len(n) > 0 && n[0] == '/' {
		n = n[1:]
	}
	return n
}

// selectServices checks the named services exist (all when none named).
func selectServices(p *types.Project, names []string) ([]string, error) {
	if len(names) == 0 {
		return p.ServiceNames(), nil
	}
	for _, n := range names {
		if _, ok := p.Services[n]; !ok {
			return nil, errdefs.NotFound(fmt.Errorf("no such service: %s", n))
		}
	}
	return names, nil
}
