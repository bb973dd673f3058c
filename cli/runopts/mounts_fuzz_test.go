package runopts

import (
	"testing"

	"github.com/moby/moby/api/types/mount"
)

// FuzzParseMountFlag: any --mount value parses to a mount with a target
// and only the options of its type, or fails with an error; never a panic.
func FuzzParseMountFlag(f *testing.F) {
	for _, s := range []string{"type=bind,src=/a,dst=/b,ro", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1777",
		"dst=/v,volume-opt=o=x,volume-nocopy", `"a=b,c"`, "type=volume", "type=bind,src=/a,dst=/b,bind-propagation=rshared"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMountFlag(s)
		if err != nil {
			return
		}
		if m.Target == "" {
			t.Fatalf("ParseMountFlag(%q) = %+v without a target", s, m)
		}
		if m.VolumeOptions != nil && m.Type != mount.TypeVolume || m.BindOptions != nil && m.Type != mount.TypeBind ||
			m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs {
			t.Fatalf("ParseMountFlag(%q) = %+v mixes options of other types", s, m)
		}
	})
}
