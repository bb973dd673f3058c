package image

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
)

// FuzzApplyChanges: --change strings come straight from API clients; any
// input either applies or is refused as a bad parameter, never panics.
func FuzzApplyChanges(f *testing.F) {
	for _, s := range []string{`CMD ["a"]`, `ENV A="b c" D=e`, `LABEL 'k'=v`, `EXPOSE 1-65535/udp`, `WORKDIR ../x`, `VOLUME ["/a"`, `ENV A\`, `USER "`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, change string) {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(change)), "EXPOSE") && len(change) > 64 {
			return // huge port ranges are valid and slow, not interesting
		}
		var img Image
		if err := applyChanges(&img.Config.Config, []string{change}); err != nil && !errdefs.IsInvalidParameter(err) {
			t.Fatalf("%q: unclassified error %v", change, err)
		}
	})
}
