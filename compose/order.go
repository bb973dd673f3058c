package compose

import (
	"fmt"
	"sort"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/compose-spec/compose-go/v2/types"
)

// startOrder returns the named services and everything they depend on, each
// after its dependencies (ties broken by name, so the order is stable). A
// dependency cycle is an InvalidParameter error naming the cycle.
func startOrder(p *types.Project, names []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var stack []string
	var visit func(n string) error
	visit = func(n string) error {
		switch state[n] {
		case 2:
			return nil
		case 1:
			i := indexOf(stack, n)
			return errdefs.InvalidParameter(fmt.Errorf("dependency cycle detected: %s -> %s", strings.Join(stack[i:], " -> "), n))
		}
		s, ok := p.Services[n]
		if !ok {
			return errdefs.NotFound(fmt.Errorf("no such service: %s", n))
		}
		state[n] = 1
		stack = append(stack, n)
		deps := make([]string, 0, len(s.DependsOn))
		for d, dep := range s.DependsOn {
			if _, ok := p.Services[d]; !ok && !dep.Required {
				continue // optional dependency on a disabled service
			}
			deps = append(deps, d)
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
		order = append(order, n)
		return nil
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, n := range sorted {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return 0
}

// reverse returns the list backwards (stop order is start order reversed).
func reverse(in []string) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[len(in)-1-i] = v
	}
	return out
}
