package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/errdefs"
)

// Generate takes user-supplied strings (--user, --security-opt with a whole
// seccomp profile, capability names) and the image's passwd and group
// files: none of them may panic it, and every refusal is InvalidParameter.
func FuzzGenerate(f *testing.F) {
	f.Add("alice:wheel", "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}", "NET_ADMIN", "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n", "wheel:x:10:alice\n")
	f.Add("1000:1000", "no-new-privileges", "ALL", "", "")
	f.Add("x", "seccomp={\"syscalls\":[{\"name\":\"read\",\"names\":[\"write\"]}]}", "cap_chown", "x:x:a:b\n", "::::\n")
	f.Fuzz(func(t *testing.T, user, secopt, capAdd, passwd, group string) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(passwd), 0o644)
		os.WriteFile(filepath.Join(root, "etc/group"), []byte(group), 0o644)
		o := baseOpts(root)
		o.User, o.SecurityOpt, o.CapAdd = user, []string{secopt}, []string{capAdd}
		s, err := generate(o, fakeHost())
		if err != nil {
			if !errdefs.IsInvalidParameter(err) {
				t.Fatalf("error not classified as invalid parameter: %v", err)
			}
			return
		}
		if s.Process == nil || s.Linux == nil || len(s.Process.Args) == 0 {
			t.Fatal("incomplete spec")
		}
	})
}
