package compose

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// listContainers returns the project's containers (all states), for the
// given services only when any are named; one-off (run) containers only
// when oneoff is set.
func (c *Service) listContainers(ctx context.Context, project string, oneoff bool, services ...string) ([]container.Summary, error) {
	f := client.Filters{}.Add("label", LabelProject+"="+project)
	if !oneoff {
		f = f.Add("label", LabelOneoff+"=False")
	}
	res, err := c.API.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers of project %s: %w", project, err)
	}
	var out []container.Summary
	for _, s := range res.Items {
		// Filter here too: a daemon may ignore label filters it does not know.
		if s.Labels[LabelProject] != project {
			continue
		}
		if !oneoff && s.Labels[LabelOneoff] == "True" {
			continue
		}
		if len(services) > 0 && !slices.Contains(services, s.Labels[LabelService]) {
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b container.Summary) int {
		if d := strings.Compare(a.Labels[LabelService], b.Labels[LabelService]); d != 0 {
			return d
		}
		return number(a) - number(b)
	})
	return out, nil
}

func number(s container.Summary) int {
	n, _ := strconv.Atoi(s.Labels[LabelNumber])
	return n
}

// name is a container's name without the leading slash.
func name(s container.Summary) string {
	if len(s.Names) == 0 {
		return s.ID[:min(12, len(s.ID))]
	}
	return strings.TrimPrefix(s.Names[0], "/")
}

// selectServices returns the named services (all when none), erroring on
// unknown names.
func selectServices(p *types.Project, names []string) ([]string, error) {
	if len(names) == 0 {
		return p.ServiceNames(), nil
	}
	for _, n := range names {
		if _, ok := p.Services[n]; !ok {
			return nil, fmt.Errorf("no such service: %s", n)
		}
	}
	return names, nil
}
