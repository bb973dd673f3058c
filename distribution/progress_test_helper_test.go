package distribution

import (
	"io"

	"github.com/moby/moby/client/pkg/progress"
	"github.com/moby/moby/client/pkg/streamformatter"
)

type progressOutput = progress.Output

func newJSONOut(w io.Writer) progress.Output { return streamformatter.NewJSONProgressOutput(w, false) }
