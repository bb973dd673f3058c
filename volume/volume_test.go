package volume

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/mount"
)

func TestCreateGetListRemove(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, created, err := s.Create("data", nil, map[string]string{"a": "b"})
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if v.Anonymous() {
		t.Error("a named volume is anonymous")
	}
	if _, created, _ := s.Create("data", nil, nil); created {
		t.Error("creating an existing volume made a new one")
	}
	if err := os.WriteFile(filepath.Join(s.Path("data"), "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := s.Size("data"); got != 5 {
		t.Errorf("size %d, want 5", got)
	}
	anon, _, err := s.Create("", nil, nil)
	if err != nil || !anon.Anonymous() || len(anon.Name) != 64 {
		t.Fatalf("anonymous volume %+v: %v", anon, err)
	}
	// A second store on the same root sees both, with their metadata.
	s2, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if list := s2.List(); len(list) != 2 {
		t.Fatalf("reopened store lists %d volumes, want 2", len(list))
	}
	if got, err := s2.Get("data"); err != nil || got.Labels["a"] != "b" {
		t.Errorf("reopened volume %+v: %v", got, err)
	}
	if err := s2.Remove("data"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "data")); !os.IsNotExist(err) {
		t.Errorf("removed volume's directory is still there: %v", err)
	}
	if _, err := s2.Get("data"); !errdefs.IsNotFound(err) {
		t.Errorf("get of a removed volume: %v, want not found", err)
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts map[string]string
	}{
		{"a/b", nil}, {"-x", nil}, {"x", nil}, {"../etc", nil},
		{"ok1", map[string]string{"bogus": "1"}},
		{"ok2", map[string]string{"type": "tmpfs"}},
	} {
		if _, _, err := s.Create(tc.name, tc.opts, nil); !errdefs.IsInvalidParameter(err) {
			t.Errorf("create %q %v: %v, want invalid parameter", tc.name, tc.opts, err)
		}
	}
	if len(s.List()) != 0 {
		t.Errorf("refused creates left volumes: %v", s.List())
	}
}

func TestOpenSweepsIncompleteVolumes(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "half", "_data"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.List()) != 0 {
		t.Error("a directory without metadata became a volume")
	}
	if _, err := os.Stat(filepath.Join(root, "half")); !os.IsNotExist(err) {
		t.Error("the incomplete volume's directory was kept")
	}
}

func TestTmpfsBackedVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs-backed volume needs root")
	}
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create("mem", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, nil); err != nil {
		t.Fatal(err)
	}
	p, err := s.Mount("mem", "c1")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := s.Mount("mem", "c2")
	if err != nil || p2 != p {
		t.Fatal(err)
	}
	var st, parent unixStatfs
	if err := statfs(p, &st); err != nil || statfs(filepath.Dir(p), &parent) != nil {
		t.Fatal(err)
	}
	if st.Type == parent.Type {
		t.Fatal("the volume's data is not on a filesystem of its own")
	}
	s.Unmount("mem", "c1")
	if err := statfs(p, &st); err != nil || st.Type == parent.Type {
		t.Error("unmounted while a user remains")
	}
	s.Unmount("mem", "c2")
	if err := statfs(p, &st); err != nil || st.Type != parent.Type {
		t.Error("still mounted after its last user left")
	}
}

func TestParseBind(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want MountPoint
		err  bool
	}{
		{spec: "/data", want: MountPoint{Type: mount.TypeVolume, Destination: "/data", RW: true, Anonymous: true}},
		{spec: "/data:ro", want: MountPoint{Type: mount.TypeVolume, Destination: "/data", Mode: "ro", Anonymous: true}},
		{spec: "vol:/data", want: MountPoint{Type: mount.TypeVolume, Name: "vol", Destination: "/data", RW: true}},
		{spec: "vol:/data:ro,nocopy", want: MountPoint{Type: mount.TypeVolume, Name: "vol", Destination: "/data", Mode: "ro,nocopy", NoCopy: true}},
		{spec: "/host/:/data/:rw,z", want: MountPoint{Type: mount.TypeBind, Source: "/host", Destination: "/data", RW: true, Mode: "rw,z", Propagation: "rprivate", CreateSource: true}},
		{spec: "/host:/data:rshared", want: MountPoint{Type: mount.TypeBind, Source: "/host", Destination: "/data", RW: true, Mode: "rshared", Propagation: "rshared", CreateSource: true}},
		{spec: "vol:data", err: true},
		{spec: "/host:/", err: true},
		{spec: "vol:/data:bogus", err: true},
		{spec: "vol:/data:rshared", err: true},
		{spec: "a:b:c:d", err: true},
		{spec: "", err: true},
	} {
		got, err := ParseBind(tc.spec)
		if tc.err {
			if !errdefs.IsInvalidParameter(err) {
				t.Errorf("%q: %v, want an invalid parameter error", tc.spec, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if got.Type != tc.want.Type || got.Name != tc.want.Name || got.Source != tc.want.Source || got.Destination != tc.want.Destination ||
			got.RW != tc.want.RW || got.Mode != tc.want.Mode || got.NoCopy != tc.want.NoCopy || got.Propagation != tc.want.Propagation ||
			got.Anonymous != tc.want.Anonymous || got.CreateSource != tc.want.CreateSource {
			t.Errorf("%q: got %+v, want %+v", tc.spec, got, tc.want)
		}
	}
}

func TestParseMount(t *testing.T) {
	tm, err := ParseMount(mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777}})
	if err != nil || tm.Tmpfs != "nosuid,nodev,noexec,size=1024k,mode=1777" {
		t.Errorf("tmpfs: %+v %v", tm, err)
	}
	v, err := ParseMount(mount.Mount{Type: mount.TypeVolume, Source: "v", Target: "/d", ReadOnly: true,
		VolumeOptions: &mount.VolumeOptions{NoCopy: true, Subpath: "sub/dir", DriverConfig: &mount.Driver{Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}}})
	if err != nil || v.RW || !v.NoCopy || v.Subpath != "sub/dir" || v.VolumeOptions["type"] != "tmpfs" {
		t.Errorf("volume: %+v %v", v, err)
	}
	for _, bad := range []mount.Mount{
		{Type: mount.TypeBind, Target: "/d"},
		{Type: mount.TypeBind, Source: "rel", Target: "/d"},
		{Type: mount.TypeTmpfs, Source: "x", Target: "/d"},
		{Type: mount.TypeVolume, Target: "d"},
		{Type: mount.TypeVolume, Target: "/d", VolumeOptions: &mount.VolumeOptions{Subpath: "../x"}},
		{Type: "weird", Target: "/d"},
		{Type: mount.TypeBind, Source: "/x", Target: "/d", BindOptions: &mount.BindOptions{Propagation: "sideways"}},
	} {
		if _, err := ParseMount(bad); err == nil {
			t.Errorf("%+v was accepted", bad)
		}
	}
	if _, err := ParseMount(mount.Mount{Type: mount.TypeVolume, Target: "/d", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "nfsplugin"}}}); !errdefs.IsNotFound(err) {
		t.Errorf("unknown driver: %v, want not found", err)
	}
}

func FuzzParseBind(f *testing.F) {
	for _, s := range []string{"/data", "vol:/data:ro", "/h:/c:rshared,z", "a:b:c:d", ":::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		m, err := ParseBind(spec)
		if err != nil {
			var e interface{ InvalidParameter() }
			if !errors.As(err, &e) {
				t.Fatalf("%q: error %v is not an invalid parameter", spec, err)
			}
			return
		}
		if m.Destination == "" || m.Destination[0] != '/' || m.Destination == "/" {
			t.Fatalf("%q: accepted destination %q", spec, m.Destination)
		}
		if m.Type == mount.TypeBind && (m.Source == "" || m.Source[0] != '/') {
			t.Fatalf("%q: accepted bind source %q", spec, m.Source)
		}
	})
}
