package volume

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/mount"
)

func TestParseBind(t *testing.T) {
	cases := []struct {
		raw  string
		want Spec
	}{
		{"/srv:/data", Spec{Type: mount.TypeBind, Source: "/srv", Target: "/data", CreateSource: true, FromBind: true}},
		{"/srv/:/data/:ro", Spec{Type: mount.TypeBind, Source: "/srv", Target: "/data", ReadOnly: true, Mode: "ro", CreateSource: true, FromBind: true}},
		{"/srv:/data:ro,rshared", Spec{Type: mount.TypeBind, Source: "/srv", Target: "/data", ReadOnly: true, Mode: "ro,rshared", Propagation: mount.PropagationRShared, CreateSource: true, FromBind: true}},
		{"/srv:/data:z", Spec{Type: mount.TypeBind, Source: "/srv", Target: "/data", Mode: "z", CreateSource: true, FromBind: true}},
		{"vol:/data", Spec{Type: mount.TypeVolume, Source: "vol", Target: "/data", FromBind: true}},
		{"vol:/data:rw,nocopy", Spec{Type: mount.TypeVolume, Source: "vol", Target: "/data", Mode: "rw,nocopy", NoCopy: true, FromBind: true}},
		{"/data", Spec{Type: mount.TypeVolume, Target: "/data", FromBind: true}},
	}
	for _, tc := range cases {
		got, err := ParseBind(tc.raw)
		if err != nil {
			t.Errorf("ParseBind(%q): %v", tc.raw, err)
			continue
		}
		if got.Type != tc.want.Type || got.Source != tc.want.Source || got.Target != tc.want.Target ||
			got.ReadOnly != tc.want.ReadOnly || got.Mode != tc.want.Mode || got.Propagation != tc.want.Propagation ||
			got.NoCopy != tc.want.NoCopy || got.CreateSource != tc.want.CreateSource {
			t.Errorf("ParseBind(%q) = %+v, want %+v", tc.raw, got, tc.want)
		}
	}
}

func TestParseBindErrors(t *testing.T) {
	cases := []struct{ raw, msg string }{
		{"", "invalid volume specification: ''"},
		{":/data", "invalid volume specification"},
		{"/a:/b:rx", "invalid mode: rx"},
		{"/a:/b:ro,rw", "invalid mode: ro,rw"},
		{"/a:/b:ro:x", "invalid volume specification"},
		{"/data:rw", "invalid volume specification: '/data:rw'"},
		{"data:rel", "mount path must be absolute"},
		{"/src:/", "destination can't be '/'"},
		{"bad$name:/d", "includes invalid characters for a local volume name"},
		{"/a:/b:nocopy", "invalid mode: nocopy"},
		{"vol:/b:rshared", "invalid mode: rshared"},
	}
	for _, tc := range cases {
		_, err := ParseBind(tc.raw)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !errdefs.IsInvalidParameter(err) {
			t.Errorf("ParseBind(%q) error = %v, want invalid parameter containing %q", tc.raw, err, tc.msg)
		}
	}
}

func TestFromMount(t *testing.T) {
	good := []struct {
		m    mount.Mount
		want func(Spec) bool
	}{
		{mount.Mount{Type: mount.TypeBind, Source: "/a/", Target: "/b", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave, NonRecursive: true}},
			func(s Spec) bool {
				return s.Source == "/a" && s.ReadOnly && s.Propagation == mount.PropagationRSlave && s.NonRecursive && !s.CreateSource
			}},
		{mount.Mount{Type: mount.TypeVolume, Source: "v", Target: "/b", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Subpath: "x/y", Labels: map[string]string{"a": "b"}}},
			func(s Spec) bool { return s.NoCopy && s.Subpath == "x/y" && s.Labels["a"] == "b" }},
		{mount.Mount{Type: mount.TypeVolume, Target: "/anon"}, func(s Spec) bool { return s.Source == "" }},
		{mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777}},
			func(s Spec) bool { return strings.Join(s.TmpfsOptions, ",") == "size=1048576,mode=1777" }},
	}
	for i, tc := range good {
		s, err := FromMount(tc.m)
		if err != nil || !tc.want(s) {
			t.Errorf("case %d: FromMount = %+v, %v", i, s, err)
		}
	}
	bad := []struct {
		m   mount.Mount
		msg string
	}{
		{mount.Mount{Type: mount.TypeBind, Target: "/b"}, `invalid mount config for type "bind": field Source must not be empty`},
		{mount.Mount{Type: mount.TypeBind, Source: "rel", Target: "/b"}, "mount path must be absolute"},
		{mount.Mount{Type: mount.TypeBind, Source: "/a"}, "field Target must not be empty"},
		{mount.Mount{Type: mount.TypeBind, Source: "/a", Target: "/b", VolumeOptions: &mount.VolumeOptions{}}, "field VolumeOptions must not be specified"},
		{mount.Mount{Type: mount.TypeVolume, Source: "v", Target: "/b", BindOptions: &mount.BindOptions{}}, "field BindOptions must not be specified"},
		{mount.Mount{Type: mount.TypeVolume, Source: "v", Target: "/b", VolumeOptions: &mount.VolumeOptions{Subpath: "../x"}}, "subpath must be a relative path"},
		{mount.Mount{Type: mount.TypeVolume, Target: "/b", VolumeOptions: &mount.VolumeOptions{Subpath: "x"}}, "anonymous"},
		{mount.Mount{Type: mount.TypeTmpfs, Source: "x", Target: "/b"}, "field Source must not be specified"},
		{mount.Mount{Type: mount.TypeTmpfs, Target: "/b", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: -1}}, "invalid tmpfs size"},
		{mount.Mount{Type: "weird", Target: "/b"}, "mount type unknown"},
		{mount.Mount{Type: mount.TypeVolume, Target: "/"}, "destination can't be '/'"},
	}
	for _, tc := range bad {
		_, err := FromMount(tc.m)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !errdefs.IsInvalidParameter(err) {
			t.Errorf("FromMount(%+v) error = %v, want %q", tc.m, err, tc.msg)
		}
	}
}

func TestParseTmpfsAndVolumesFrom(t *testing.T) {
	if o, err := ParseTmpfs("/run", "rw,size=64m,mode=1777"); err != nil || len(o) != 3 {
		t.Errorf("ParseTmpfs = %v, %v", o, err)
	}
	for _, bad := range [][2]string{{"rel", ""}, {"/run", "bogus"}, {"/run", "size="}, {"/", ""}} {
		if _, err := ParseTmpfs(bad[0], bad[1]); !errdefs.IsInvalidParameter(err) {
			t.Errorf("ParseTmpfs(%q, %q) error = %v", bad[0], bad[1], err)
		}
	}
	name, ro, err := ParseVolumesFrom("web:ro")
	if err != nil || name != "web" || ro == nil || !*ro {
		t.Errorf("ParseVolumesFrom = %q %v %v", name, ro, err)
	}
	if name, ro, err := ParseVolumesFrom("web"); err != nil || name != "web" || ro != nil {
		t.Errorf("ParseVolumesFrom(web) = %q %v %v", name, ro, err)
	}
	for _, bad := range []string{":ro", "web:rx", "web:ro,rw"} {
		if _, _, err := ParseVolumesFrom(bad); !errdefs.IsInvalidParameter(err) {
			t.Errorf("ParseVolumesFrom(%q) error = %v", bad, err)
		}
	}
}

// FuzzParseBind: any -v string either parses to an absolute, clean,
// non-root target with a sane source, or fails as an invalid parameter.
func FuzzParseBind(f *testing.F) {
	for _, s := range []string{"/a:/b", "v:/b:ro", "/b", "/a:/b:rw,z,rshared", "::", "a:b:c:d", "/a:/b:nocopy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := ParseBind(raw)
		if err != nil {
			if !errdefs.IsInvalidParameter(err) {
				t.Fatalf("ParseBind(%q): unclassified error %v", raw, err)
			}
			return
		}
		if !strings.HasPrefix(s.Target, "/") || s.Target == "/" || strings.Contains(s.Target, "//") {
			t.Fatalf("ParseBind(%q): bad target %q", raw, s.Target)
		}
		switch s.Type {
		case mount.TypeBind:
			if !strings.HasPrefix(s.Source, "/") {
				t.Fatalf("ParseBind(%q): bind source %q not absolute", raw, s.Source)
			}
		case mount.TypeVolume:
			if s.Source != "" && ValidateName(s.Source) != nil {
				t.Fatalf("ParseBind(%q): bad volume name %q", raw, s.Source)
			}
		default:
			t.Fatalf("ParseBind(%q): type %q", raw, s.Type)
		}
	})
}
