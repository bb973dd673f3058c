package build

import (
	"strings"
	"testing"
)

// FuzzDockerfile feeds arbitrary text through the front end: parsing,
// meta-arg resolution, stage planning and per-instruction expansion must
// fail cleanly, never panic.
func FuzzDockerfile(f *testing.F) {
	for _, s := range []string{
		"FROM busybox\nRUN echo hi\n",
		"ARG B=busybox\nFROM ${B} AS x\nCOPY --from=x /a /b\nFROM x\n",
		"# escape=`\nFROM scratch\nRUN echo `\n  hi\n",
		"FROM a AS b\nRUN <<EOF\necho\nEOF\nCOPY <<X /f\n$Y\nX\n",
		"FROM x\nRUN --mount=type=cache,target=/c,id=${A} true\nEXPOSE 80-90/udp $P\n",
		"FROM x\nHEALTHCHECK --interval=1s CMD true\nONBUILD RUN x\nSHELL [\"a\"]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		df, err := parseDockerfile([]byte(src))
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error message")
			}
			return
		}
		bd := &build{df: df, out: newOutput(nil, true)}
		if bd.platform, err = parsePlatformArgs(""); err != nil {
			t.Fatal(err)
		}
		if bd.resolveMetaArgs() != nil {
			return
		}
		if bd.plan() != nil {
			return
		}
		for _, sr := range bd.stages {
			for _, c := range sr.st.Commands {
				if _, err := exposedPortsOf(c); err != nil {
					continue
				}
			}
		}
	})
}
