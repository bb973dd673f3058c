package build

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	source   []byte
	escape   rune
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
}

// parseDockerfile parses src; errors carry the line number and a snippet
// of the Dockerfile with the offending line marked, as BuildKit prints them.
func parseDockerfile(src []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, locatedError(src, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, locatedError(src, err)
	}
	if len(stages) == 0 {
		return nil, errdefs.InvalidParameterf("dockerfile parse error: file with no instructions")
	}
	return &dockerfile{source: src, escape: res.EscapeToken, stages: stages, metaArgs: metaArgs}, nil
}

// locatedError turns a parser error into "dockerfile parse error on line N:
// msg" followed by the surrounding lines with the bad one marked.
func locatedError(src []byte, err error) error {
	var loc *parser.LocationError
	line := 0
	if errors.As(err, &loc) && len(loc.Locations) > 0 && len(loc.Locations[0]) > 0 {
		line = loc.Locations[0][0].Start.Line
	}
	msg := err.Error()
	if line == 0 {
		// instructions.Parse's errors name the line themselves.
		if _, rest, ok := strings.Cut(msg, "dockerfile parse error on line "); ok {
			fmt.Sscanf(rest, "%d", &line)
		}
	}
	if !strings.HasPrefix(msg, "dockerfile parse error") {
		if line > 0 {
			msg = fmt.Sprintf("dockerfile parse error on line %d: %s", line, msg)
		} else {
			msg = "dockerfile parse error: " + msg
		}
	}
	if line == 0 {
		return errdefs.InvalidParameter(errors.New(msg))
	}
	return errdefs.InvalidParameterf("%s\nDockerfile:%d\n%s", msg, line, snippet(src, line))
}

// snippet renders lines around line (1-based) with ">>>" on it.
func snippet(src []byte, line int) string {
	lines := strings.Split(string(src), "\n")
	var b strings.Builder
	b.WriteString("--------------------\n")
	for i := max(1, line-2); i <= min(len(lines), line+2); i++ {
		mark := "    "
		if i == line {
			mark = ">>> "
		}
		fmt.Fprintf(&b, " %3d | %s%s\n", i, mark, lines[i-1])
	}
	b.WriteString("--------------------")
	return b.String()
}

// stepError attaches a Dockerfile location to a failing step's error.
func stepError(src []byte, line int, err error) error {
	if line <= 0 || !errdefs.IsInvalidParameter(err) {
		return err
	}
	return fmt.Errorf("%w\nDockerfile:%d\n%s", err, line, snippet(src, line))
}

// lineOf is the first line of a command or stage location.
func lineOf(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}
