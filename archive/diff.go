package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Tar writes the tree under dir as an uncompressed tar stream with names
// relative to dir. Output is deterministic for a given tree: entries are in
// lexical order, mtimes rounded to seconds, no user names or atimes.
func Tar(ctx context.Context, w io.Writer, dir string) error {
	return writeTree(ctx, w, dir, nil, false)
}

// Diff writes the changes recorded in an overlay upper dir as an OCI layer:
// overlay whiteouts (0:0 character devices) become .wh.<name> entries and
// opaque directories get a .wh..wh..opq entry. lowers are the layer dirs
// below upper, top first; a whiteout hiding nothing in them is left out.
// A nil lowers keeps every whiteout.
func Diff(ctx context.Context, w io.Writer, upper string, lowers []string) error {
	return writeTree(ctx, w, upper, lowers, true)
}

type inode struct{ dev, ino uint64 }

func writeTree(ctx context.Context, w io.Writer, dir string, lowers []string, overlay bool) error {
	tw := tar.NewWriter(w)
	links := map[inode]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if overlay && isWhiteout(fi, st) {
			if lowers != nil && !existsInLowers(lowers, rel) {
				return nil
			}
			return writeEmpty(tw, path.Join(path.Dir(rel), WhiteoutPrefix+path.Base(rel)), fi.ModTime())
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("tar %s: %w", p, err)
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatUnknown
		if st != nil {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := inode{uint64(st.Dev), st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = rel
				}
			}
		}
		if err := addXattrs(hdr, p); err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar %s: %w", p, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.CopyN(tw, f, hdr.Size)
			f.Close()
			if err != nil {
				return fmt.Errorf("tar %s: %w", p, err)
			}
		}
		if overlay && fi.IsDir() && isOpaque(p) {
			return writeEmpty(tw, path.Join(rel, WhiteoutOpaque), fi.ModTime())
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func writeEmpty(tw *tar.Writer, name string, mtime time.Time) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, ModTime: mtime})
}

func isWhiteout(fi os.FileInfo, st *syscall.Stat_t) bool {
	return fi.Mode()&os.ModeCharDevice != 0 && st != nil && st.Rdev == 0
}

func isOpaque(p string) bool {
	for _, name := range []string{overlayOpaqueXattr, userOverlayOpaqueXattr} {
		buf := make([]byte, 4)
		n, err := unix.Lgetxattr(p, name, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

func existsInLowers(lowers []string, rel string) bool {
	for _, l := range lowers {
		if _, err := os.Lstat(filepath.Join(l, filepath.FromSlash(rel))); err == nil {
			return true
		}
	}
	return false
}

// addXattrs records p's extended attributes as PAX records, leaving out
// overlayfs' own bookkeeping.
func addXattrs(hdr *tar.Header, p string) error {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		if err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("list xattrs of %s: %w", p, err)
		}
		return nil
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(p, buf)
	if err != nil {
		return fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		vsize, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Lgetxattr(p, name, val); err != nil {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+name] = string(val[:vsize])
	}
	return nil
}
