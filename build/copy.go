package build

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sys/unix"
)

type copyFlags struct {
	name         string // COPY or ADD
	from         string
	chown, chmod string
	link, add    bool
	unpack       *bool
}

// copySource is one resolved source of a COPY or ADD.
type copySource struct {
	rel    string // path inside the source root (or "" for inline data)
	base   string // name the destination file gets when dest is a dir
	data   *string
	url    string
	file   string // downloaded file for a URL
	mtime  time.Time
	isDir  bool
	unpack bool
}

// sourceImage resolves a --from or bind-mount from= name: an earlier
// stage's result or an image.
func (bd *build) sourceImage(ctx context.Context, from string) (*image.Image, error) {
	if j := bd.stageRef(from, len(bd.df.stages)); j >= 0 {
		if bd.all[j].res == nil {
			return nil, errdefs.InvalidParameterf("stage %s is not built before it is used", from)
		}
		return bd.all[j].res.img, nil
	}
	img, err := bd.baseImage(ctx, from)
	if err != nil {
		return nil, err
	}
	bd.hold(img.ID)
	return img, nil
}

// prepareCopy resolves a COPY or ADD's sources and checksums them, so the
// cache key reflects file contents.
func (bd *build) prepareCopy(ctx context.Context, st *state, sd instructions.SourcesAndDest, fl copyFlags) (*preparedStep, error) {
	var srcImg *image.Image
	root := bd.opts.ContextDir
	if fl.from != "" {
		var err error
		if srcImg, err = bd.sourceImage(ctx, fl.from); err != nil {
			return nil, err
		}
		root = ""
	}
	var srcs []copySource
	hash := sha256.New()
	for _, c := range sd.SourceContents {
		d := c.Data
		srcs = append(srcs, copySource{base: path.Base(c.Path), data: &d})
		fmt.Fprintf(hash, "inline:%s:%s\x00", c.Path, d)
	}
	scratch := ""
	for _, s := range sd.SourcePaths {
		if fl.add && isURL(s) {
			if scratch == "" {
				var err error
				if scratch, err = bd.b.TempDir("add-"); err != nil {
					return nil, err
				}
				bd.deferBuildCleanup(func() { os.RemoveAll(scratch) })
			}
			cs, err := download(ctx, s, scratch, len(srcs))
			if err != nil {
				return nil, err
			}
			sum, err := fileSum(cs.file)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(hash, "url:%s:%s\x00", s, sum)
			srcs = append(srcs, cs)
			continue
		}
		rel := filepath.Clean(s)
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, errdefs.InvalidParameterf("%s failed: forbidden path outside the build context: %s ()", fl.name, s)
		}
		rel = strings.TrimPrefix(filepath.Clean("/"+rel), "/")
		if srcImg != nil {
			// Image sources are immutable: the image ID keys them.
			srcs = append(srcs, copySource{rel: rel, base: path.Base("/" + rel)})
			continue
		}
		matches, err := expandSource(root, rel)
		if err != nil {
			return nil, errdefs.InvalidParameterf("%s failed: %v", fl.name, err)
		}
		if len(matches) == 0 {
			if hasWildcard(rel) {
				return nil, errdefs.InvalidParameterf("%s failed: no source files were specified", fl.name)
			}
			return nil, errdefs.InvalidParameterf("%s failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", fl.name, s)
		}
		for _, m := range matches {
			full := filepath.Join(root, m)
			fi, err := os.Stat(full)
			if err != nil {
				return nil, errdefs.InvalidParameterf("%s failed: %v", fl.name, err)
			}
			cs := copySource{rel: m, base: path.Base("/" + m), isDir: fi.IsDir()}
			if fl.add && !fi.IsDir() && (fl.unpack == nil || *fl.unpack) {
				cs.unpack = isArchive(full)
			}
			if err := treeSum(hash, root, m); err != nil {
				return nil, err
			}
			srcs = append(srcs, cs)
		}
	}
	if len(srcs) == 0 {
		return nil, errdefs.InvalidParameterf("%s failed: no source files were specified", fl.name)
	}
	dest := sd.DestPath
	destIsDir := strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, "/.") || dest == "."
	if len(srcs) > 1 && !destIsDir {
		return nil, errdefs.InvalidParameterf("When using %s with more than one source file, the destination must be a directory and end with a /", fl.name)
	}
	destAbs := resolveWorkdir(st.cfg.Config.WorkingDir, dest)
	sum := hex.EncodeToString(hash.Sum(nil))
	kind := "file"
	if len(srcs) > 1 {
		kind = "multi"
	} else if srcs[0].isDir {
		kind = "dir"
	}
	createdBy := fmt.Sprintf("/bin/sh -c #(nop) %s %s:%s in %s ", fl.name, kind, sum, destAbs)
	parts := []string{"src:" + sum, "chown:" + fl.chown, "chmod:" + fl.chmod, "srcs:" + strings.Join(sd.SourcePaths, "\x00")}
	if srcImg != nil {
		parts = append(parts, "from:"+srcImg.ID.String())
		createdBy = fmt.Sprintf("/bin/sh -c #(nop) %s --from=%s %s in %s ", fl.name, fl.from, strings.Join(sd.SourcePaths, " "), destAbs)
	}
	exec := func(ctx context.Context, st *state) (*layerFile, error) {
		return bd.execCopy(ctx, st, srcImg, srcs, destAbs, destIsDir, fl)
	}
	return &preparedStep{createdBy: createdBy, keyParts: parts, exec: exec}, nil
}

// deferBuildCleanup runs fn when the build ends.
func (bd *build) deferBuildCleanup(fn func()) { bd.deferCleanup("", fn) }

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }

func hasWildcard(p string) bool { return strings.ContainsAny(p, "*?[") }

// expandSource returns the paths (relative to root) a source names:
// itself, or its wildcard matches, sorted.
func expandSource(root, rel string) ([]string, error) {
	if !hasWildcard(rel) {
		full, err := secureJoin(root, rel)
		if err != nil {
			return nil, err
		}
		if _, err := os.Lstat(full); err != nil {
			return nil, nil
		}
		r, err := filepath.Rel(root, full)
		if err != nil {
			return nil, err
		}
		if r == "." {
			r = ""
		}
		return []string{r}, nil
	}
	matches, err := filepath.Glob(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		r, err := filepath.Rel(root, m)
		if err != nil || strings.HasPrefix(r, "..") {
			continue
		}
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

// treeSum hashes the tree at rel: names, modes, link targets and file
// contents, not timestamps or owners.
func treeSum(h io.Writer, root, rel string) error {
	start := filepath.Join(root, rel)
	return filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%o\x00", r, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			fmt.Fprintf(h, "%s\x00", t)
		case fi.Mode().IsRegular():
			sum, err := fileSum(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00", sum)
		}
		return nil
	})
}

func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// isArchive reports whether a local ADD source is a tar (possibly
// compressed), which ADD unpacks.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	rc, _, err := archive.Decompress(f)
	if err != nil {
		return false
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	head, _ := br.Peek(512)
	return len(head) == 512 && string(head[257:262]) == "ustar"
}

// download fetches an ADD URL into dir.
func download(ctx context.Context, u, dir string, n int) (copySource, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return copySource{}, errdefs.InvalidParameter(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return copySource{}, fmt.Errorf("ADD %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return copySource{}, fmt.Errorf("ADD failed: error downloading %s: %s", u, resp.Status)
	}
	f := filepath.Join(dir, fmt.Sprintf("url-%d", n))
	out, err := os.Create(f)
	if err != nil {
		return copySource{}, err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return copySource{}, fmt.Errorf("ADD %s: %w", u, err)
	}
	if err := out.Close(); err != nil {
		return copySource{}, err
	}
	base := "__unnamed__"
	if pu, err := url.Parse(u); err == nil && path.Base(pu.Path) != "/" && path.Base(pu.Path) != "." {
		base = path.Base(pu.Path)
	}
	cs := copySource{url: u, file: f, base: base}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		cs.mtime = lm
	}
	return cs, nil
}

// execCopy copies the sources into a writable snapshot of st's image and
// returns the layer of the changes.
func (bd *build) execCopy(ctx context.Context, st *state, srcImg *image.Image, srcs []copySource, dest string, destIsDir bool, fl copyFlags) (*layerFile, error) {
	if st.img == nil {
		img, err := bd.commit(ctx, st, nil, "", true)
		if err != nil {
			return nil, err
		}
		st.img = img
	}
	cid := randomID()
	rootfs, err := bd.b.store.CreateRootfs(ctx, cid, st.img)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fl.name, err)
	}
	defer bd.b.store.RemoveRootfs(context.WithoutCancel(ctx), cid)
	srcRoot := bd.opts.ContextDir
	if srcImg != nil {
		scid := randomID()
		if srcRoot, err = bd.b.store.CreateRootfs(ctx, scid, srcImg); err != nil {
			return nil, fmt.Errorf("%s --from: %w", fl.name, err)
		}
		defer bd.b.store.RemoveRootfs(context.WithoutCancel(ctx), scid)
	}
	uid, gid := 0, 0
	if fl.chown != "" {
		if uid, gid, err = resolveOwner(rootfs, fl.chown); err != nil {
			return nil, err
		}
	}
	chmod := -1
	if fl.chmod != "" {
		m, err := strconv.ParseUint(fl.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return nil, errdefs.InvalidParameterf("invalid chmod parameter: %s", fl.chmod)
		}
		chmod = int(m)
	}
	if srcImg != nil {
		if srcs, err = resolveImageSources(srcRoot, srcs, fl.name); err != nil {
			return nil, err
		}
		if len(srcs) > 1 && !destIsDir {
			return nil, errdefs.InvalidParameterf("When using %s with more than one source file, the destination must be a directory and end with a /", fl.name)
		}
	}
	c := &copier{uid: uid, gid: gid, chmod: chmod}
	// The destination, resolved inside the new rootfs.
	for _, s := range srcs {
		target := dest
		if s.isDir || s.unpack {
			if err := c.mkdirAll(rootfs, dest); err != nil {
				return nil, err
			}
		} else {
			full, err := secureJoin(rootfs, dest)
			if err != nil {
				return nil, err
			}
			fi, statErr := os.Stat(full)
			if destIsDir || (statErr == nil && fi.IsDir()) {
				if err := c.mkdirAll(rootfs, dest); err != nil {
					return nil, err
				}
				target = path.Join(dest, s.base)
			} else if err := c.mkdirAll(rootfs, path.Dir(dest)); err != nil {
				return nil, err
			}
		}
		full, err := secureJoin(rootfs, target)
		if err != nil {
			return nil, err
		}
		switch {
		case s.data != nil:
			if err := c.writeFile(full, strings.NewReader(*s.data), 0o644, time.Time{}); err != nil {
				return nil, err
			}
		case s.file != "":
			f, err := os.Open(s.file)
			if err != nil {
				return nil, err
			}
			err = c.writeFile(full, f, 0o600, s.mtime)
			f.Close()
			if err != nil {
				return nil, err
			}
		case s.unpack:
			src, err := secureJoin(srcRoot, s.rel)
			if err != nil {
				return nil, err
			}
			f, err := os.Open(src)
			if err != nil {
				return nil, err
			}
			_, err = archive.Apply(ctx, full, f, archive.ApplyOptions{})
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("ADD %s: unpack: %w", s.rel, err)
			}
		default:
			src, err := secureJoin(srcRoot, s.rel)
			if err != nil {
				return nil, err
			}
			if err := c.copyTree(src, full, s.isDir); err != nil {
				return nil, fmt.Errorf("%s %s: %w", fl.name, s.rel, err)
			}
		}
	}
	c.finish()
	return bd.diffLayer(ctx, cid)
}

// copier copies files into a rootfs with the step's owner and mode.
type copier struct {
	uid, gid int
	chmod    int // -1: keep the source's
	dirTimes []dirTime
}

type dirTime struct {
	path string
	t    time.Time
}

// mkdirAll creates dir inside root; directories it creates belong to the
// step's owner.
func (c *copier) mkdirAll(root, dir string) error {
	full, err := secureJoin(root, dir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(full); err == nil {
		if !fi.IsDir() {
			return errdefs.InvalidParameterf("cannot copy to %s: not a directory", dir)
		}
		return nil
	}
	if err := c.mkdirAll(root, path.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(full, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return os.Lchown(full, c.uid, c.gid)
}

func (c *copier) mode(m fs.FileMode) uint32 {
	if c.chmod >= 0 {
		return uint32(c.chmod)
	}
	return uint32(m.Perm() | m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

func unixMode(m uint32) uint32 {
	out := m & 0o777
	if m&uint32(fs.ModeSetuid) != 0 {
		out |= unix.S_ISUID
	}
	if m&uint32(fs.ModeSetgid) != 0 {
		out |= unix.S_ISGID
	}
	if m&uint32(fs.ModeSticky) != 0 {
		out |= unix.S_ISVTX
	}
	if m <= 0o7777 {
		return m
	}
	return out
}

func (c *copier) writeFile(dst string, r io.Reader, perm uint32, mtime time.Time) error {
	if c.chmod >= 0 {
		perm = uint32(c.chmod)
	}
	os.Remove(dst)
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Lchown(dst, c.uid, c.gid); err != nil {
		return err
	}
	if err := unix.Chmod(dst, unixMode(perm)); err != nil {
		return err
	}
	if !mtime.IsZero() {
		return os.Chtimes(dst, mtime, mtime)
	}
	return nil
}

// copyTree copies src to dst; a directory's contents go into dst.
func (c *copier) copyTree(src, dst string, isDir bool) error {
	if !isDir {
		return c.copyEntry(src, dst)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if rel == "." {
			// The directory itself is not copied, only its contents;
			// an existing destination keeps its attributes.
			return nil
		}
		return c.copyEntry(p, target)
	})
}

func (c *copier) copyEntry(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(src)
		if err != nil {
			return err
		}
		os.RemoveAll(dst)
		if err := os.Symlink(t, dst); err != nil {
			return err
		}
		if err := os.Lchown(dst, c.uid, c.gid); err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(fi.ModTime().UnixNano()), unix.NsecToTimespec(fi.ModTime().UnixNano())}
		unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
		return nil
	case fi.IsDir():
		if dfi, err := os.Lstat(dst); err != nil || !dfi.IsDir() {
			os.RemoveAll(dst)
			if err := os.Mkdir(dst, 0o755); err != nil {
				return err
			}
		}
		if err := os.Lchown(dst, c.uid, c.gid); err != nil {
			return err
		}
		if err := unix.Chmod(dst, unixMode(c.mode(fi.Mode()))); err != nil {
			return err
		}
		c.dirTimes = append(c.dirTimes, dirTime{dst, fi.ModTime()})
		return nil
	case fi.Mode().IsRegular():
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		if dfi, err := os.Lstat(dst); err == nil && dfi.IsDir() {
			os.RemoveAll(dst)
		}
		return c.writeFile(dst, f, c.mode(fi.Mode()), fi.ModTime())
	default:
		return nil // devices, sockets and pipes are not copied
	}
}

// finish sets directory times once their contents are written.
func (c *copier) finish() {
	for i := len(c.dirTimes) - 1; i >= 0; i-- {
		os.Chtimes(c.dirTimes[i].path, c.dirTimes[i].t, c.dirTimes[i].t)
	}
}

// resolveOwner parses --chown's user[:group] against the rootfs's
// /etc/passwd and /etc/group.
func resolveOwner(rootfs, spec string) (int, int, error) {
	user, group, hasGroup := strings.Cut(spec, ":")
	uid, gid := -1, -1
	if n, err := strconv.Atoi(user); err == nil {
		uid = n
	} else {
		u, g, ok := lookupDB(rootfs, "/etc/passwd", user)
		if !ok {
			return 0, 0, errdefs.InvalidParameterf("unable to convert uid/gid chown string to host mapping: can't find uid for user %s: no such user: %s", user, user)
		}
		uid, gid = u, g
	}
	if !hasGroup {
		if gid < 0 {
			gid = uid
		}
		return uid, gid, nil
	}
	if n, err := strconv.Atoi(group); err == nil {
		return uid, n, nil
	}
	g, _, ok := lookupDB(rootfs, "/etc/group", group)
	if !ok {
		return 0, 0, errdefs.InvalidParameterf("unable to convert uid/gid chown string to host mapping: can't find gid for group %s: no such group: %s", group, group)
	}
	return uid, g, nil
}

// lookupDB finds name in a passwd- or group-format file: the third field
// and, for passwd, the fourth.
func lookupDB(rootfs, file, name string) (int, int, bool) {
	p, err := secureJoin(rootfs, file)
	if err != nil {
		return 0, 0, false
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 || f[0] != name {
			continue
		}
		a, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		b := a
		if len(f) > 3 {
			if n, err := strconv.Atoi(f[3]); err == nil {
				b = n
			}
		}
		return a, b, true
	}
	return 0, 0, false
}

// resolveImageSources expands --from sources against the mounted source
// image: wildcards and whether each is a directory.
func resolveImageSources(root string, srcs []copySource, name string) ([]copySource, error) {
	var out []copySource
	for _, s := range srcs {
		matches, err := expandSource(root, s.rel)
		if err != nil {
			return nil, errdefs.InvalidParameterf("%s failed: %v", name, err)
		}
		if len(matches) == 0 {
			return nil, errdefs.InvalidParameterf("%s failed: stat %s: file does not exist", name, "/"+s.rel)
		}
		for _, m := range matches {
			full, err := secureJoin(root, m)
			if err != nil {
				return nil, err
			}
			fi, err := os.Stat(full)
			if err != nil {
				return nil, errdefs.InvalidParameterf("%s failed: %v", name, err)
			}
			out = append(out, copySource{rel: m, base: path.Base("/" + m), isDir: fi.IsDir()})
		}
	}
	return out, nil
}
