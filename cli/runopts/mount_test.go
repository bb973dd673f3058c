package runopts

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
)

func TestParseMount(t *testing.T) {
	m, err := ParseMount("type=bind,src=/a,dst=/b,readonly,bind-propagation=rshared,bind-nonrecursive")
	if err != nil || m.Type != mount.TypeBind || m.Source != "/a" || m.Target != "/b" || !m.ReadOnly ||
		m.BindOptions == nil || m.BindOptions.Propagation != mount.PropagationRShared || !m.BindOptions.NonRecursive {
		t.Fatalf("bind = %+v, %v", m, err)
	}
	m, err = ParseMount("source=v,target=/d,volume-nocopy,volume-subpath=sub,volume-label=a=b,volume-driver=local,volume-opt=type=tmpfs,ro=false")
	if err != nil || m.Type != mount.TypeVolume || m.ReadOnly || m.VolumeOptions == nil || !m.VolumeOptions.NoCopy ||
		m.VolumeOptions.Subpath != "sub" || m.VolumeOptions.Labels["a"] != "b" || m.VolumeOptions.DriverConfig.Options["type"] != "tmpfs" {
		t.Fatalf("volume = %+v, %v", m, err)
	}
	m, err = ParseMount("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770")
	if err != nil || m.TmpfsOptions == nil || m.TmpfsOptions.SizeBytes != 64<<20 || m.TmpfsOptions.Mode != 0o1770 {
		t.Fatalf("tmpfs = %+v, %v", m, err)
	}
	for _, bad := range []struct{ in, msg string }{
		{"type=bind,src=/a", "target is required"},
		{"type=bind,src=/a,dst=/b,junk", "must be a key=value pair"},
		{"type=bind,dst=/b,foo=bar", "unexpected key 'foo'"},
		{"type=bind,dst=/b,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"},
		{"type=volume,dst=/b,tmpfs-size=1m", "cannot mix 'tmpfs-*'"},
		{"type=tmpfs,dst=/b,tmpfs-mode=999", "invalid value for tmpfs-mode"},
		{"type=tmpfs,dst=/b,tmpfs-size=lots", "invalid value for tmpfs-size"},
		{"dst=/b,readonly=maybe", "invalid value for readonly"},
		{`dst="/b`, "quote"},
	} {
		if _, err := ParseMount(bad.in); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("ParseMount(%q) error = %v, want %q", bad.in, err, bad.msg)
		}
	}
}

// FuzzParseMount: any --mount value parses to a mount with a target and
// options matching its type, or fails with an error; it never panics.
func FuzzParseMount(f *testing.F) {
	for _, s := range []string{"type=bind,src=/a,dst=/b,ro", "type=tmpfs,dst=/t,tmpfs-size=1m", "dst=/v,volume-opt=o=x", `"a=b,c"`, "type=volume"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMount(s)
		if err != nil {
			return
		}
		if m.Target == "" || m.Type == "" {
			t.Fatalf("ParseMount(%q) = %+v without target or type", s, m)
		}
		if m.VolumeOptions != nil && m.Type != mount.TypeVolume || m.BindOptions != nil && m.Type != mount.TypeBind ||
			m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs {
			t.Fatalf("ParseMount(%q) = %+v mixes options", s, m)
		}
	})
}
