package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// WhiteoutPrefix marks a deleted file in an OCI layer.
	WhiteoutPrefix = ".wh."
	// WhiteoutOpaque marks a directory whose lower contents are hidden.
	WhiteoutOpaque = WhiteoutPrefix + WhiteoutPrefix + ".opq"

	overlayOpaqueXattr     = "trusted.overlay.opaque"
	userOverlayOpaqueXattr = "user.overlay.opaque" // for rootless overlay (userxattr)
)

// ApplyOptions controls ApplyTar.
type ApplyOptions struct {
	// Overlay writes whiteouts in overlayfs form (a 0:0 character device for
	// a deleted file, trusted.overlay.opaque=y on an opaque directory, or
	// user.overlay.opaque=y when not root, for rootless overlay's userxattr),
	// for applying into an overlay layer dir. Otherwise whiteouts delete.
	Overlay bool
	// Parallel > 1 creates small regular files on that many goroutines
	// while the archive is read on (everything else stays in archive
	// order): layers of many small files unpack faster on busy disks.
	Parallel int
}

// Stats describes what an apply wrote.
type Stats struct {
	Entries int   // tar entries applied
	Size    int64 // bytes of regular file content
}

// Error is a refusal of a hostile or malformed tar entry.
type Error struct {
	Name   string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("tar entry %q: %s", e.Name, e.Reason) }

// Apply decompresses r (gzip, zstd, bzip2 or none) and applies it to dir.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (Stats, error) {
	rc, _, err := Decompress(r)
	if err != nil {
		return Stats{}, err
	}
	defer rc.Close()
	return ApplyTar(ctx, dir, rc, opts)
}

// ApplyTar applies the uncompressed tar stream r to dir. No entry can create
// or change anything outside dir: names are confined to dir, and symlinks on
// the way are resolved as if dir were the root of the filesystem.
func ApplyTar(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (Stats, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return Stats{}, err
	}
	if fi, err := os.Lstat(root); err != nil {
		return Stats{}, err
	} else if !fi.IsDir() {
		return Stats{}, fmt.Errorf("apply: %s is not a directory", root)
	}
	a := &applier{
		ctx:     ctx,
		root:    root,
		opts:    opts,
		isRoot:  os.Geteuid() == 0,
		written: map[string]bool{},
	}
	if opts.Parallel > 1 {
		a.startWorkers(opts.Parallel)
		defer a.waitWorkers()
	}
	tr := tar.NewReader(r)
	var st Stats
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := a.workerErr(); err != nil {
			return st, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("read tar: %w", err)
		}
		n, err := a.entry(hdr, tr)
		if err != nil {
			return st, err
		}
		st.Entries++
		st.Size += n
	}
	if err := a.waitWorkers(); err != nil {
		return st, err
	}
	if err := a.finishDirs(); err != nil {
		return st, err
	}
	return st, nil
}

type dirMeta struct {
	host  string
	mode  uint32
	mtime time.Time
	atime time.Time
}

type applier struct {
	ctx     context.Context
	root    string
	opts    ApplyOptions
	isRoot  bool
	written map[string]bool // in-root paths created by this archive
	dirs    []dirMeta
	// dirCache maps in-root parent paths to their resolved host dirs.
	dirCache map[string]string

	// Parallel file creation (opts.Parallel > 1).
	jobs    []chan fileJob
	wg      sync.WaitGroup
	errMu   sync.Mutex
	err     error
	running bool
}

// fileJob is a small regular file read ahead, for a worker to create.
type fileJob struct {
	host string
	hdr  *tar.Header
	data []byte
}

// maxParallelFile is the largest file handed to a worker; bigger ones are
// written in order, streaming.
const maxParallelFile = 256 << 10

// workerQueue is how many files a worker may have waiting.
const workerQueue = 64

func (a *applier) startWorkers(n int) {
	a.jobs = make([]chan fileJob, n)
	a.running = true
	for i := range a.jobs {
		ch := make(chan fileJob, workerQueue)
		a.jobs[i] = ch
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			for j := range ch {
				if a.workerErr() != nil {
					continue
				}
				if err := a.writeSmall(j); err != nil {
					a.errMu.Lock()
					if a.err == nil {
						a.err = err
					}
					a.errMu.Unlock()
				}
			}
		}()
	}
}

// dispatch queues a file for the worker of its directory: creations in
// one directory serialise on its lock in the kernel, in different ones
// they run in parallel.
func (a *applier) dispatch(j fileJob) {
	h := fnv.New32a()
	h.Write([]byte(filepath.Dir(j.host)))
	a.jobs[h.Sum32()%uint32(len(a.jobs))] <- j
}

func (a *applier) workerErr() error {
	if a.jobs == nil {
		return nil
	}
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.err
}

// waitWorkers lets the workers finish what they were given.
func (a *applier) waitWorkers() error {
	if !a.running {
		return a.workerErr()
	}
	a.running = false
	for _, ch := range a.jobs {
		close(ch)
	}
	a.wg.Wait()
	return a.workerErr()
}

// barrier waits for files in flight before an entry that may depend on
// them (a path written twice, a hard link, a whiteout).
func (a *applier) barrier() error {
	if !a.running {
		return nil
	}
	n := len(a.jobs)
	if err := a.waitWorkers(); err != nil {
		return err
	}
	a.startWorkers(n)
	return nil
}

func (a *applier) writeSmall(j fileJob) error {
	f, err := os.OpenFile(j.host, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("tar entry %q: %w", j.hdr.Name, err)
	}
	_, err = f.Write(j.data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tar entry %q: write: %w", j.hdr.Name, err)
	}
	return a.metadata(j.host, j.hdr, true)
}

// cleanName turns a tar name into a clean in-root path ("/a/b"), refusing
// names that climb out with "..". Absolute names are taken relative to root.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", &Error{name, "name contains NUL"}
	}
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", &Error{name, "path escapes the root"}
	}
	if rel == "." {
		return "/", nil
	}
	return "/" + rel, nil
}

// resolve returns the host path for the in-root path p, following symlinks
// in every component (the last one too when followLast) with root as "/".
// Components that do not exist are taken as they are.
func (a *applier) resolve(p string, followLast bool) (string, error) {
	return secureJoin(a.root, p, followLast)
}

func secureJoin(root, p string, followLast bool) (string, error) {
	resolved := "" // clean in-root path, "" is the root
	remaining := p
	hops := 0
	for remaining != "" {
		remaining = strings.TrimLeft(remaining, "/")
		part, rest, _ := strings.Cut(remaining, "/")
		remaining = rest
		switch part {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			if resolved == "/" || resolved == "." {
				resolved = ""
			}
			continue
		}
		next := resolved + "/" + part
		if !followLast && strings.Trim(remaining, "/") == "" {
			resolved = next
			break
		}
		fi, err := os.Lstat(root + next)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				resolved = next
				continue
			}
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if hops++; hops > 255 {
			return "", &Error{p, "too many levels of symbolic links"}
		}
		target, err := os.Readlink(root + next)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = ""
		}
		remaining = target + "/" + remaining
	}
	return root + resolved, nil
}

// parentDir resolves and creates the parent directory of in-root path p and
// returns it as a host path; it is a real directory inside root.
//
// Resolutions are cached until an entry replaces or removes something
// (only then can a resolved directory stop being one): most entries of a
// layer share their parents, and resolving walks every component.
func (a *applier) parentDir(name, p string) (string, error) {
	dir := path.Dir(p)
	if h, ok := a.dirCache[dir]; ok {
		return h, nil
	}
	parent, err := a.resolve(dir, true)
	if err != nil {
		return "", err
	}
	if err := a.mkdirAll(parent); err != nil {
		return "", fmt.Errorf("tar entry %q: %w", name, err)
	}
	if a.dirCache == nil {
		a.dirCache = map[string]string{}
	}
	a.dirCache[dir] = parent
	return parent, nil
}

// mkdirAll creates host dir (inside root, free of symlinks by resolve).
func (a *applier) mkdirAll(host string) error {
	if !strings.HasPrefix(host+"/", a.root+"/") {
		return fmt.Errorf("internal: %s outside %s", host, a.root)
	}
	fi, err := os.Lstat(host)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", strings.TrimPrefix(host, a.root))
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := a.mkdirAll(filepath.Dir(host)); err != nil {
		return err
	}
	if err := unix.Mkdir(host, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mkdir", Path: host, Err: err}
	}
	return nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) (int64, error) {
	p, err := cleanName(hdr.Name)
	if err != nil {
		return 0, err
	}
	base := path.Base(p)
	if p == "/" {
		if hdr.Typeflag != tar.TypeDir {
			return 0, &Error{hdr.Name, "the root can only be a directory"}
		}
		a.dirs = append(a.dirs, dirMeta{a.root, uint32(hdr.Mode) & 0o7777, hdr.ModTime, hdr.AccessTime})
		return 0, a.owner(a.root, hdr)
	}
	parent, err := a.parentDir(hdr.Name, p)
	if err != nil {
		return 0, err
	}
	if strings.HasPrefix(base, WhiteoutPrefix) {
		if err := a.barrier(); err != nil {
			return 0, err
		}
		a.dirCache = nil
		return 0, a.whiteout(hdr, p, parent, base)
	}
	host := filepath.Join(parent, base)
	if a.running && (a.written[strings.TrimPrefix(host, a.root)] || hdr.Typeflag == tar.TypeLink) {
		if err := a.barrier(); err != nil {
			return 0, err
		}
	}
	a.written[strings.TrimPrefix(host, a.root)] = true

	fi, err := os.Lstat(host)
	exists := err == nil
	if exists && !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
		if hdr.Typeflag == tar.TypeLink {
			if same, _ := a.sameAsLinkTarget(hdr, fi); same {
				return 0, nil
			}
		}
		a.dirCache = nil
		if err := os.RemoveAll(host); err != nil {
			return 0, fmt.Errorf("tar entry %q: replace: %w", hdr.Name, err)
		}
	}

	var size int64
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists || !fi.IsDir() {
			if err := unix.Mkdir(host, 0o700); err != nil {
				return 0, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
			}
		}
		a.dirs = append(a.dirs, dirMeta{host, uint32(hdr.Mode) & 0o7777, hdr.ModTime, hdr.AccessTime})
		return 0, a.metadata(host, hdr, false)
	case tar.TypeReg, tar.TypeRegA:
		if a.running && hdr.Size <= maxParallelFile && !exists {
			data := make([]byte, hdr.Size)
			if _, err := io.ReadFull(r, data); err != nil {
				return 0, fmt.Errorf("tar entry %q: read: %w", hdr.Name, err)
			}
			a.dispatch(fileJob{host: host, hdr: hdr, data: data})
			return hdr.Size, nil
		}
		f, err := os.OpenFile(host, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return 0, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
		n, err := a.copyFile(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, fmt.Errorf("tar entry %q: write: %w", hdr.Name, err)
		}
		size = n
	case tar.TypeSymlink:
		if strings.IndexByte(hdr.Linkname, 0) >= 0 || hdr.Linkname == "" {
			return 0, &Error{hdr.Name, "bad symlink target"}
		}
		if err := unix.Symlink(hdr.Linkname, host); err != nil {
			return 0, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	case tar.TypeLink:
		target, err := a.linkTarget(hdr)
		if err != nil {
			return 0, err
		}
		if err := unix.Linkat(unix.AT_FDCWD, target, unix.AT_FDCWD, host, 0); err != nil {
			return 0, fmt.Errorf("tar entry %q: link to %q: %w", hdr.Name, hdr.Linkname, err)
		}
		return 0, nil // a hard link shares its target's metadata
	case tar.TypeChar, tar.TypeBlock:
		if !a.isRoot {
			delete(a.written, strings.TrimPrefix(host, a.root))
			return 0, nil // device nodes need root; skipped like a rootless engine does
		}
		mode := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(host, mode|0o600, int(dev)); err != nil {
			return 0, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	case tar.TypeFifo:
		if err := unix.Mkfifo(host, 0o600); err != nil {
			return 0, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	default:
		return 0, &Error{hdr.Name, fmt.Sprintf("unsupported entry type %q", hdr.Typeflag)}
	}
	return size, a.metadata(host, hdr, true)
}

// linkTarget resolves a hard link's target inside root; it must exist and
// must not be a directory.
func (a *applier) linkTarget(hdr *tar.Header) (string, error) {
	tp, err := cleanName(hdr.Linkname)
	if err != nil || tp == "/" {
		return "", &Error{hdr.Name, fmt.Sprintf("hard link target %q escapes the root", hdr.Linkname)}
	}
	target, err := a.resolve(tp, false)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(target)
	if err != nil {
		return "", &Error{hdr.Name, fmt.Sprintf("hard link target %q does not exist", hdr.Linkname)}
	}
	if fi.IsDir() {
		return "", &Error{hdr.Name, fmt.Sprintf("hard link target %q is a directory", hdr.Linkname)}
	}
	return target, nil
}

func (a *applier) sameAsLinkTarget(hdr *tar.Header, fi os.FileInfo) (bool, error) {
	target, err := a.linkTarget(hdr)
	if err != nil {
		return false, err
	}
	tfi, err := os.Lstat(target)
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, tfi), nil
}

func (a *applier) whiteout(hdr *tar.Header, p, parent, base string) error {
	if base == WhiteoutOpaque {
		if a.opts.Overlay {
			name := overlayOpaqueXattr
			if !a.isRoot {
				name = userOverlayOpaqueXattr
			}
			if err := unix.Lsetxattr(parent, name, []byte("y"), 0); err != nil {
				return fmt.Errorf("tar entry %q: opaque dir: %w", hdr.Name, err)
			}
			return nil
		}
		entries, err := os.ReadDir(parent)
		if err != nil {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
		for _, e := range entries {
			host := filepath.Join(parent, e.Name())
			if !a.written[strings.TrimPrefix(host, a.root)] {
				if err := os.RemoveAll(host); err != nil {
					return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
				}
			}
		}
		return nil
	}
	name := strings.TrimPrefix(base, WhiteoutPrefix)
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return &Error{hdr.Name, "bad whiteout"}
	}
	host := filepath.Join(parent, name)
	if err := os.RemoveAll(host); err != nil {
		return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
	}
	if !a.opts.Overlay {
		return nil
	}
	if err := unix.Mknod(host, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("tar entry %q: whiteout: %w", hdr.Name, err)
	}
	a.written[strings.TrimPrefix(host, a.root)] = true
	return a.owner(host, hdr)
}

func (a *applier) owner(host string, hdr *tar.Header) error {
	if !a.isRoot {
		return nil
	}
	if err := unix.Lchown(host, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("tar entry %q: chown: %w", hdr.Name, err)
	}
	return nil
}

// metadata sets owner, xattrs, mode and (for non-directories) times. The
// order matters: chown clears set-id bits, so chmod comes after it.
func (a *applier) metadata(host string, hdr *tar.Header, times bool) error {
	if err := a.owner(host, hdr); err != nil {
		return err
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue // overlay's own xattrs from an archive could redirect lookups
		}
		if err := unix.Lsetxattr(host, name, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) {
				continue // best effort where the filesystem or privileges do not allow it
			}
			return fmt.Errorf("tar entry %q: xattr %s: %w", hdr.Name, name, err)
		}
	}
	if hdr.Typeflag == tar.TypeSymlink {
		return setTimes(host, hdr.AccessTime, hdr.ModTime)
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil // mode and times are set once the directory is complete
	}
	if err := unix.Chmod(host, uint32(hdr.Mode)&0o7777); err != nil {
		return fmt.Errorf("tar entry %q: chmod: %w", hdr.Name, err)
	}
	if times {
		return setTimes(host, hdr.AccessTime, hdr.ModTime)
	}
	return nil
}

func setTimes(host string, atime, mtime time.Time) error {
	if atime.IsZero() {
		atime = mtime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, host, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: host, Err: err}
	}
	return nil
}

// finishDirs sets directory modes and times last, deepest first, so that
// adding entries neither changes mtimes nor trips over read-only modes.
func (a *applier) finishDirs() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		if fi, err := os.Lstat(d.host); err != nil || !fi.IsDir() {
			continue // replaced or removed later in the archive
		}
		if err := unix.Chmod(d.host, d.mode); err != nil {
			return &os.PathError{Op: "chmod", Path: d.host, Err: err}
		}
		if err := setTimes(d.host, d.atime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies a file's content, leaving holes for all-zero blocks (so an
// archive with huge sparse files does not fill the disk) and stopping when
// the context ends.
func (a *applier) copyFile(f *os.File, r io.Reader) (int64, error) {
	buf := make([]byte, 128<<10)
	var n int64
	hole := false
	for {
		if err := a.ctx.Err(); err != nil {
			return n, err
		}
		m, err := fill(r, buf)
		if m > 0 {
			chunk := buf[:m]
			if allZero(chunk) {
				if _, serr := f.Seek(int64(m), io.SeekCurrent); serr != nil {
					return n, serr
				}
				hole = true
			} else {
				if _, werr := f.Write(chunk); werr != nil {
					return n, werr
				}
				hole = false
			}
			n += int64(m)
		}
		if err == io.EOF {
			if hole {
				return n, f.Truncate(n)
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// fill reads until buf is full or r fails; unlike io.ReadFull it keeps a
// truncated archive's io.ErrUnexpectedEOF apart from a clean end.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
