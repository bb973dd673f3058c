// Package volume is the local volume driver: named and anonymous volumes,
// each a directory <root>/<name>/_data with its metadata beside it, and
// optionally backed by a filesystem of its own (Docker's `type`, `device`
// and `o` options: a tmpfs, a bind of a host directory, a block device),
// mounted on _data while a container uses the volume.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Driver is the only driver there is.
const Driver = "local"

// AnonymousLabel marks volumes made for one container (an image's VOLUME,
// `-v /path`), which `rm -v` and a plain prune remove.
const AnonymousLabel = "com.docker.volume.anonymous"

// Volume is one volume's metadata.
type Volume struct {
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
}

// Anonymous tells whether the volume was made for one container.
func (v *Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

// backed tells whether the volume has a filesystem of its own to mount.
func (v *Volume) backed() bool { return v.Options["type"] != "" || v.Options["device"] != "" }

// Store is the local driver's volumes under one root.
type Store struct {
	root string
	log  *slog.Logger

	mu    sync.Mutex
	vols  map[string]*Volume
	users map[string]map[string]bool // backed volume -> containers that mounted it
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

const metaFile = "meta.json"

// Open loads the volumes under root. A directory without metadata is a
// create interrupted by a crash: it is removed.
func Open(root string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	s := &Store{root: root, log: log, vols: map[string]*Volume{}, users: map[string]map[string]bool{}}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		data, err := os.ReadFile(filepath.Join(dir, metaFile))
		var v Volume
		if err == nil {
			err = json.Unmarshal(data, &v)
		}
		if err != nil || v.Name != e.Name() {
			log.Warn("removing incomplete volume", "dir", dir, "err", err)
			unix.Unmount(filepath.Join(dir, "_data"), unix.MNT_DETACH)
			os.RemoveAll(dir)
			continue
		}
		// A backed volume a previous daemon mounted stays mounted: running
		// containers may use it (they register again with Mount).
		s.vols[v.Name] = &v
	}
	return s, nil
}

// Path is where volume name's data lives (its mount point when backed).
func (s *Store) Path(name string) string { return filepath.Join(s.root, name, "_data") }

// Create makes a volume; name "" makes an anonymous one. Creating a
// volume that exists returns it (created false), as Docker does.
func (s *Store) Create(name string, opts, labels map[string]string) (v *Volume, created bool, err error) {
	anonymous := name == ""
	if anonymous {
		b := make([]byte, 32)
		rand.Read(b)
		name = hex.EncodeToString(b)
	}
	if !validName.MatchString(name) {
		return nil, false, errdefs.InvalidParameterf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name)
	}
	if err := validateOpts(opts); err != nil {
		return nil, false, errdefs.InvalidParameter(fmt.Errorf("create %s: %w", name, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vols[name]; ok {
		return v, false, nil
	}
	v = &Volume{Name: name, Options: copyMap(opts), Labels: copyMap(labels), CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if anonymous {
		if v.Labels == nil {
			v.Labels = map[string]string{}
		}
		v.Labels[AnonymousLabel] = ""
	}
	dir := filepath.Join(s.root, name)
	if err := os.MkdirAll(filepath.Join(dir, "_data"), 0o755); err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	data, err := json.Marshal(v)
	if err == nil {
		err = writeFileAtomic(filepath.Join(dir, metaFile), data)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	s.vols[name] = v
	return v, true, nil
}

// validateOpts accepts the local driver's options.
func validateOpts(opts map[string]string) error {
	for k := range opts {
		switch k {
		case "type", "device", "o":
		default:
			return fmt.Errorf("invalid option key: %q", k)
		}
	}
	if opts["type"] != "" && opts["device"] == "" {
		return fmt.Errorf("missing required option: \"device\"")
	}
	if opts["device"] != "" && opts["type"] == "" {
		return fmt.Errorf("missing required option: \"type\"")
	}
	return nil
}

// Get returns volume name.
func (s *Store) Get(name string) (*Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return nil, errdefs.NotFoundf("get %s: no such volume", name)
	}
	return v, nil
}

// List returns every volume, by name.
func (s *Store) List() []*Volume {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Volume, 0, len(s.vols))
	for _, v := range s.vols {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Remove deletes volume name and its data. Whether containers still use
// it is the caller's business (it knows the containers).
func (s *Store) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vols[name]; !ok {
		return errdefs.NotFoundf("get %s: no such volume", name)
	}
	dir := filepath.Join(s.root, name)
	unix.Unmount(filepath.Join(dir, "_data"), unix.MNT_DETACH)
	// The metadata goes first: a crash half way leaves a directory that
	// Open sweeps, never a volume without its data.
	if err := os.Remove(filepath.Join(dir, metaFile)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	delete(s.vols, name)
	delete(s.users, name)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// Mount makes volume name ready for container user and returns its data
// path: a backed volume is mounted by its first user.
func (s *Store) Mount(name, user string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return "", errdefs.NotFoundf("get %s: no such volume", name)
	}
	path := s.Path(name)
	if !v.backed() {
		return path, nil
	}
	users := s.users[name]
	if len(users) == 0 {
		if mounted, _ := mountinfo.Mounted(path); !mounted {
			if err := mountBacking(v, path); err != nil {
				return "", fmt.Errorf("mount volume %s: %w", name, err)
			}
		}
		users = map[string]bool{}
		s.users[name] = users
	}
	users[user] = true
	return path, nil
}

// Unmount releases user's use of volume name; a backed volume is unmounted
// when its last user leaves.
func (s *Store) Unmount(name, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	users := s.users[name]
	if users == nil || !users[user] {
		return
	}
	delete(users, user)
	if len(users) == 0 {
		delete(s.users, name)
		if err := unix.Unmount(s.Path(name), unix.MNT_DETACH); err != nil {
			s.log.Warn("unmount volume", "name", name, "err", err)
		}
	}
}

// mountBacking mounts a volume's own filesystem, as `mount -t type -o o
// device path` would. A bind (o has bind) of a host directory is allowed.
func mountBacking(v *Volume, path string) error {
	typ, dev, o := v.Options["type"], v.Options["device"], v.Options["o"]
	var flags uintptr
	var data []string
	for _, opt := range strings.Split(o, ",") {
		switch opt {
		case "":
		case "bind":
			flags |= unix.MS_BIND
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		case "ro":
			flags |= unix.MS_RDONLY
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "nodev":
			flags |= unix.MS_NODEV
		case "noexec":
			flags |= unix.MS_NOEXEC
		default:
			data = append(data, opt)
		}
	}
	if err := unix.Mount(dev, path, typ, flags, strings.Join(data, ",")); err != nil {
		return fmt.Errorf("mount -t %s -o %s %s: %w", typ, o, dev, err)
	}
	return nil
}

// Size is the disk usage of volume name's data in bytes.
func (s *Store) Size(name string) int64 {
	var n int64
	filepath.WalkDir(s.Path(name), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// Empty tells whether volume name holds no data yet.
func (s *Store) Empty(name string) bool {
	entries, err := os.ReadDir(s.Path(name))
	return err == nil && len(entries) == 0
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
