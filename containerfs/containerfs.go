// Package containerfs reads and writes a container's files from the host,
// as docker cp does: paths are resolved inside the container's view (its
// root filesystem plus the host directories and files bound into it), and
// symbolic links are followed without ever leaving that view.
package containerfs

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
	"sort"
	"strings"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
)

// Mount is a host directory or file seen at Dest inside the container.
type Mount struct {
	Source, Dest string
	ReadOnly     bool
}

// FS is a container's filesystem as seen from the host.
type FS struct {
	Root   string // the host path of the container's mounted root
	Mounts []Mount
	Name   string // the container's name, for error messages
	// ReadOnly refuses extraction into the root (--read-only).
	ReadOnly bool
}

// ErrNotDir is returned when the extraction point is not a directory.
var ErrNotDir = errors.New("extraction point is not a directory")

// resolve maps the container path p to a host path. Symbolic links are
// followed inside the mount that holds p, the last component only when
// followLast. It also returns whether that mount is read-only.
func (f FS) resolve(p string, followLast bool) (string, bool, error) {
	clean := path.Clean("/" + p)
	root, rel, ro := f.Root, clean, f.ReadOnly
	mounts := append([]Mount(nil), f.Mounts...)
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Dest) > len(mounts[j].Dest) })
	for _, m := range mounts {
		d := path.Clean(m.Dest)
		if clean == d || strings.HasPrefix(clean, d+"/") {
			root, rel, ro = m.Source, strings.TrimPrefix(clean, d), m.ReadOnly
			break
		}
	}
	if rel == "" || rel == "/" {
		return root, ro, nil
	}
	dir, base := path.Split(rel)
	if followLast {
		dir, base = rel, ""
	}
	host, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return "", false, fmt.Errorf("resolve %s: %w", p, err)
	}
	if base != "" {
		host = filepath.Join(host, base)
	}
	return host, ro, nil
}

// containerPath turns a host path under the root back into a container path.
func (f FS) containerPath(host string) string {
	rel, err := filepath.Rel(f.Root, host)
	if err != nil || strings.HasPrefix(rel, "..") {
		return host
	}
	return "/" + strings.TrimPrefix(rel, ".")
}

func (f FS) notFound(p string) error {
	return errdefs.NotFoundf("Could not find the file %s in container %s", p, f.Name)
}

// Stat describes the container path p without following a last symlink
// (its target is in LinkTarget), like Docker's HEAD archive.
func (f FS) Stat(p string) (*container.PathStat, error) {
	host, _, err := f.resolve(p, false)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(host)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
			return nil, f.notFound(p)
		}
		return nil, err
	}
	if strings.HasSuffix(p, "/") && !fi.IsDir() && fi.Mode()&os.ModeSymlink == 0 {
		return nil, errdefs.InvalidParameterf("%s: not a directory", p)
	}
	st := &container.PathStat{Name: fi.Name(), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if path.Clean(p) == "/" {
		st.Name = "/"
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		if target, _, err := f.resolve(p, true); err == nil {
			st.LinkTarget = f.containerPath(target)
		}
	}
	return st, nil
}

// Archive returns a tar of the container path p, its root entry renamed to
// p's base name ("." for a path ending in "/." : the content only).
func (f FS) Archive(ctx context.Context, p string) (io.ReadCloser, *container.PathStat, error) {
	st, err := f.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	host, _, err := f.resolve(p, false)
	if err != nil {
		return nil, nil, err
	}
	name := path.Base(path.Clean(p))
	if strings.HasSuffix(p, "/.") || path.Clean(p) == "/" {
		name = "."
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeTar(ctx, pw, host, name))
	}()
	return pr, st, nil
}

func writeTar(ctx context.Context, w io.Writer, host, name string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(host, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(hp); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil // sockets and the like are skipped, as by Docker
		}
		rel, _ := filepath.Rel(host, hp)
		hdr.Name = path.Join(name, filepath.ToSlash(rel))
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			fh, err := os.Open(hp)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, fh)
			fh.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// Extract unpacks the tar stream r into the container directory p, which
// must exist. Without copyUIDGID the files belong to the container's root,
// as with Docker. The unpacking cannot write outside that directory.
func (f FS) Extract(ctx context.Context, p string, r io.Reader, copyUIDGID bool) error {
	host, ro, err := f.resolve(p, true)
	if err != nil {
		return err
	}
	fi, err := os.Stat(host)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return f.notFound(p)
		}
		return err
	}
	if !fi.IsDir() {
		return errdefs.InvalidParameter(ErrNotDir)
	}
	if ro {
		return errdefs.InvalidParameterf("container rootfs is marked read-only")
	}
	if !copyUIDGID {
		r = rootOwned(r)
	}
	if _, err := archive.ApplyTar(ctx, host, r, archive.ApplyOptions{}); err != nil {
		var ae *archive.Error
		if errors.As(err, &ae) {
			return errdefs.InvalidParameter(err)
		}
		return fmt.Errorf("extract to %s: %w", p, err)
	}
	return nil
}

// rootOwned rewrites a tar stream so that every entry belongs to 0:0.
func rootOwned(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(r)
		tw := tar.NewWriter(pw)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}
