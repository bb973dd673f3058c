// Package volume is berth's local volume driver: volumes are directories
// under <root>/<name>/_data with their metadata beside them, optionally
// backed by a tmpfs or bind mount made on first use. The store counts which
// containers refer to each volume (a volume in use cannot be removed) and
// which have it mounted (a backing mount is undone when the last one stops).
// It also parses the mount specifications of the API (-v strings and
// --mount structures).
package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// LocalDriver is the only driver: Docker's name for it.
const LocalDriver = "local"

// AnonymousLabel marks volumes created for a container (VOLUME, -v /path).
const AnonymousLabel = "com.docker.volume.anonymous"

const (
	dataDir  = "_data"
	metaFile = "opts.json"
	trashDir = ".trash" // volume names cannot start with "."
)

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Volume is one volume's persisted description.
type Volume struct {
	Name      string
	Driver    string
	Labels    map[string]string
	Options   map[string]string
	CreatedAt time.Time
	// Mountpoint is the host directory containers mount (not persisted:
	// derived from the store's root).
	Mountpoint string `json:"-"`
}

// Anonymous reports whether v was created for a container rather than by name.
func (v *Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

// needsMount reports whether v is backed by a mount made on first use.
func (v *Volume) needsMount() bool {
	return v.Options["type"] != "" || v.Options["device"] != ""
}

// Store is the local driver's set of volumes.
type Store struct {
	root string
	log  *slog.Logger

	mu   sync.Mutex
	vols map[string]*Volume
	// refs: volume name -> containers whose configuration uses it.
	refs map[string]map[string]bool
	// active: volume name -> containers that have it mounted right now.
	active map[string]map[string]bool
}

// Open loads the volumes under root, finishing removals a crash interrupted.
func Open(root string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	s := &Store{root: root, log: log, vols: map[string]*Volume{}, refs: map[string]map[string]bool{}, active: map[string]map[string]bool{}}
	// Removals move the volume to the trash first; finish any a crash cut.
	trash := filepath.Join(root, trashDir)
	if entries, err := os.ReadDir(trash); err == nil {
		for _, e := range entries {
			s.removeTree(filepath.Join(trash, e.Name()))
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !validName.MatchString(e.Name()) {
			continue
		}
		v, err := s.load(e.Name())
		if err != nil {
			log.Warn("skipping volume", "name", e.Name(), "err", err)
			continue
		}
		s.vols[v.Name] = v
	}
	return s, nil
}

// Root is the directory holding the volumes.
func (s *Store) Root() string { return s.root }

func (s *Store) dir(name string) string { return filepath.Join(s.root, name) }

// load reads a volume's metadata. A directory without it (a create cut
// short after mkdir, or a volume put there by hand) is a plain volume
// dated by the directory's modification time, as Docker treats it.
func (s *Store) load(name string) (*Volume, error) {
	v := &Volume{}
	data, err := os.ReadFile(filepath.Join(s.dir(name), metaFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(data, v); err != nil {
			return nil, fmt.Errorf("load volume %s: %w", name, err)
		}
	case os.IsNotExist(err):
		fi, err := os.Stat(s.dir(name))
		if err != nil {
			return nil, err
		}
		v.CreatedAt = fi.ModTime().UTC()
	default:
		return nil, err
	}
	v.Name = name
	if v.Driver == "" {
		v.Driver = LocalDriver
	}
	v.Mountpoint = filepath.Join(s.dir(name), dataDir)
	if err := os.MkdirAll(v.Mountpoint, 0o755); err != nil {
		return nil, err
	}
	return v, nil
}

// save writes v's metadata atomically: written to a temporary file,
// synced, then renamed over the old one, and the directory synced.
func (s *Store) save(v *Volume) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dir := s.dir(v.Name)
	tmp, err := os.CreateTemp(dir, metaFile+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, metaFile)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ValidateName checks a volume name the way Docker's local driver does.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return errdefs.InvalidParameterf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name)
	}
	return nil
}

// NewAnonymousName returns a fresh 64-hex volume name.
func NewAnonymousName() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// CreateOptions describe a new volume.
type CreateOptions struct {
	Name    string // empty: an anonymous name is generated
	Driver  string // empty or "local"
	Options map[string]string
	Labels  map[string]string
	// Ref, when set, records this container as a user in the same step,
	// so that no removal can slip in between creation and use.
	Ref string
}

// Create makes a volume, or returns the existing one of that name (as
// Docker does; created is then false).
func (s *Store) Create(ctx context.Context, o CreateOptions) (v *Volume, created bool, err error) {
	if o.Driver != "" && o.Driver != LocalDriver {
		return nil, false, errdefs.NotFoundf("error looking up volume plugin %s: plugin %q not found", o.Driver, o.Driver)
	}
	if o.Name == "" {
		o.Name = NewAnonymousName()
	}
	if err := ValidateName(o.Name); err != nil {
		return nil, false, err
	}
	if err := validateOptions(o.Options); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vols[o.Name]; ok {
		s.ref(v.Name, o.Ref)
		return v, false, nil
	}
	v = &Volume{
		Name:       o.Name,
		Driver:     LocalDriver,
		Labels:     maps.Clone(o.Labels),
		Options:    maps.Clone(o.Options),
		CreatedAt:  time.Now().UTC().Truncate(time.Second),
		Mountpoint: filepath.Join(s.dir(o.Name), dataDir),
	}
	if err := os.MkdirAll(v.Mountpoint, 0o755); err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	if err := s.save(v); err != nil {
		os.RemoveAll(s.dir(o.Name))
		return nil, false, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	s.vols[v.Name] = v
	s.ref(v.Name, o.Ref)
	return v, true, nil
}

// Get returns the named volume.
func (s *Store) Get(name string) (*Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(name)
}

func (s *Store) get(name string) (*Volume, error) {
	v, ok := s.vols[name]
	if !ok {
		return nil, errdefs.NotFoundf("get %s: no such volume", name)
	}
	return v, nil
}

// List returns every volume, sorted by name.
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

// Users returns the containers that use the named volume, sorted.
func (s *Store) Users(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users(name)
}

func (s *Store) users(name string) []string {
	out := slices.Collect(maps.Keys(s.refs[name]))
	sort.Strings(out)
	return out
}

// Ref records that container uses the named volume.
func (s *Store) Ref(name, container string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.get(name); err != nil {
		return err
	}
	s.ref(name, container)
	return nil
}

func (s *Store) ref(name, container string) {
	if container == "" {
		return
	}
	if s.refs[name] == nil {
		s.refs[name] = map[string]bool{}
	}
	s.refs[name][container] = true
}

// Unref forgets that container uses the named volume (and that it has it
// mounted, undoing the backing mount if it was the last).
func (s *Store) Unref(name, container string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deactivate(name, container)
	delete(s.refs[name], container)
	if len(s.refs[name]) == 0 {
		delete(s.refs, name)
	}
}

// Remove deletes the named volume; one in use is a conflict, even with
// force (Docker's rule: force only ignores a missing volume).
func (s *Store) Remove(ctx context.Context, name string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.get(name)
	if err != nil {
		if force {
			return nil
		}
		return err
	}
	if users := s.users(name); len(users) > 0 {
		return errdefs.Conflictf("remove %s: volume is in use - [%s]", name, joinIDs(users))
	}
	return s.remove(v)
}

func joinIDs(ids []string) string {
	out := ""
	for i, id := range ids {
		if i > 0 {
			out += ", "
		}
		out += id
	}
	return out
}

// remove deletes v: a backing mount is undone first (deleting through it
// would destroy the data of a bind's device), then the directory moves to
// the trash in one rename, so a crash never leaves half a volume, and is
// deleted there. Caller holds s.mu.
func (s *Store) remove(v *Volume) error {
	if err := unmountData(v.Mountpoint); err != nil {
		return fmt.Errorf("remove %s: %w", v.Name, err)
	}
	trash := filepath.Join(s.root, trashDir)
	if err := os.MkdirAll(trash, 0o700); err != nil {
		return fmt.Errorf("remove %s: %w", v.Name, err)
	}
	dst := filepath.Join(trash, v.Name+"-"+NewAnonymousName()[:8])
	if err := os.Rename(s.dir(v.Name), dst); err != nil {
		return fmt.Errorf("remove %s: %w", v.Name, err)
	}
	delete(s.vols, v.Name)
	delete(s.active, v.Name)
	s.removeTree(dst)
	return nil
}

// removeTree deletes a trashed volume unless something is still mounted in
// it, which is left for a later attempt rather than deleted through.
func (s *Store) removeTree(dir string) {
	if err := unmountData(filepath.Join(dir, dataDir)); err != nil {
		s.log.Warn("trashed volume still mounted; not deleting", "dir", dir, "err", err)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		s.log.Warn("delete trashed volume", "dir", dir, "err", err)
	}
}

// Activate makes the named volume ready for container to mount: the
// backing mount is made for the first active user. It returns the host
// directory to mount.
func (s *Store) Activate(name, container string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.get(name)
	if err != nil {
		return "", err
	}
	if v.needsMount() && len(s.active[name]) == 0 {
		if err := mountData(v); err != nil {
			return "", fmt.Errorf("mount volume %s: %w", name, err)
		}
	}
	if s.active[name] == nil {
		s.active[name] = map[string]bool{}
	}
	s.active[name][container] = true
	return v.Mountpoint, nil
}

// Deactivate records that container no longer has the volume mounted; the
// backing mount goes with the last user.
func (s *Store) Deactivate(name, container string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deactivate(name, container)
}

func (s *Store) deactivate(name, container string) {
	users := s.active[name]
	if !users[container] {
		return
	}
	delete(users, container)
	if len(users) > 0 {
		return
	}
	delete(s.active, name)
	if v, ok := s.vols[name]; ok && v.needsMount() {
		if err := unmountData(v.Mountpoint); err != nil {
			s.log.Warn("unmount volume", "name", name, "err", err)
		}
	}
}

// Reconcile undoes backing mounts no active user holds: after a daemon
// crash, mounts of volumes whose containers are gone are left behind.
// Call it once the running containers have been activated again.
func (s *Store) Reconcile() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, v := range s.vols {
		if v.needsMount() && len(s.active[name]) == 0 {
			if err := unmountData(v.Mountpoint); err != nil {
				s.log.Warn("unmount stale volume mount", "name", name, "err", err)
			}
		}
	}
}

// RefCount returns how many containers use the named volume.
func (s *Store) RefCount(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.refs[name])
}
