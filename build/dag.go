package build

import (
	"context"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// stageRun is one stage of a build: its dependencies on earlier stages and,
// once done, its final state.
type stageRun struct {
	idx    int
	st     *instructions.Stage
	base   string // FROM after expansion
	deps   []int  // earlier stages this one needs
	done   chan struct{}
	res    *state
	err    error
	steps  int // executed
	cached int
}

// stageRef resolves a name used by FROM, COPY --from or RUN --mount from=
// to an earlier stage's index (names are case-insensitive, numbers are
// positions); -1 means an image.
func (bd *build) stageRef(name string, before int) int {
	if n, err := strconv.Atoi(name); err == nil {
		if n >= 0 && n < before {
			return n
		}
		return -1
	}
	lname := strings.ToLower(name)
	for i := before - 1; i >= 0; i-- {
		if strings.ToLower(bd.df.stages[i].Name) == lname {
			return i
		}
	}
	return -1
}

// plan expands every FROM, finds each stage's dependencies and keeps the
// stages the target needs.
func (bd *build) plan() error {
	lex := shell.NewLex(bd.df.escape)
	env := shell.EnvsFromSlice(mapEnv(mergeMaps(bd.platform.env(), bd.metaArgs)))
	all := make([]*stageRun, len(bd.df.stages))
	target := len(bd.df.stages) - 1
	if bd.opts.Target != "" {
		target = -1
		for i, s := range bd.df.stages {
			if strings.EqualFold(s.Name, bd.opts.Target) {
				target = i
			}
		}
		if target < 0 {
			return errdefs.InvalidParameterf("failed to reach build target %s in Dockerfile", bd.opts.Target)
		}
	}
	for i := range bd.df.stages {
		st := &bd.df.stages[i]
		base, _, err := lex.ProcessWord(st.BaseName, env)
		if err != nil {
			return stepError(bd.df.source, lineOf(st.Location), errdefs.InvalidParameter(err))
		}
		if base == "" {
			return stepError(bd.df.source, lineOf(st.Location), errdefs.InvalidParameterf("base name (%s) should not be blank", st.BaseName))
		}
		if st.Name != "" && strings.EqualFold(base, st.Name) {
			return stepError(bd.df.source, lineOf(st.Location), errdefs.InvalidParameterf("circular dependency detected on stage: %s", st.Name))
		}
		sr := &stageRun{idx: i, st: st, base: base, done: make(chan struct{})}
		add := func(name string) {
			if j := bd.stageRef(name, i); j >= 0 && !containsInt(sr.deps, j) {
				sr.deps = append(sr.deps, j)
			}
		}
		add(base)
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				if c.From != "" {
					add(c.From)
				}
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) {
					if m.From != "" {
						add(m.From)
					}
				}
			}
		}
		all[i] = sr
	}
	need := map[int]bool{}
	var visit func(i int)
	visit = func(i int) {
		if need[i] {
			return
		}
		need[i] = true
		for _, d := range all[i].deps {
			visit(d)
		}
	}
	visit(target)
	for i, sr := range all {
		if need[i] {
			bd.stages = append(bd.stages, sr)
			bd.totalStep += 1 + len(sr.st.Commands)
		}
	}
	bd.targetIdx = target
	bd.all = all
	return nil
}

// run builds the needed stages, each as soon as the stages it depends on
// are done, and returns the target's final state.
func (bd *build) run(ctx context.Context) (*state, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, sr := range bd.stages {
		go func(sr *stageRun) {
			defer close(sr.done)
			for _, d := range sr.deps {
				select {
				case <-bd.all[d].done:
					if bd.all[d].err != nil {
						sr.err = context.Canceled
						return
					}
				case <-ctx.Done():
					sr.err = ctx.Err()
					return
				}
			}
			sr.res, sr.err = bd.runStage(ctx, sr)
			if sr.err != nil {
				cancel()
			}
		}(sr)
	}
	var firstErr error
	for _, sr := range bd.stages {
		<-sr.done
		if sr.err != nil && (firstErr == nil || firstErr == context.Canceled) {
			firstErr = sr.err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return bd.all[bd.targetIdx].res, nil
}

func containsInt(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}
