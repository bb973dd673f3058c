package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// untarContext unpacks a build context tar into the empty directory dir.
// It is a lean extractor for this one job: owners are not kept (COPY sets
// its own), and safety comes from bookkeeping rather than per-entry
// lookups: every parent of an entry must be a directory this archive
// created (or an implicit one), so no entry can reach through a symlink.
func untarContext(ctx context.Context, r io.Reader, dir string) error {
	kinds := map[string]byte{"": tar.TypeDir} // clean rel path -> type written
	type dirTime struct {
		p string
		t time.Time
	}
	var dirTimes []dirTime
	ensureParents := func(rel string) error {
		var missing []string
		for p := path.Dir(rel); p != "."; p = path.Dir(p) {
			k, ok := kinds[p]
			if ok {
				if k != tar.TypeDir {
					return errdefs.InvalidParameterf("build context: %s: parent %s is not a directory", rel, p)
				}
				break
			}
			missing = append(missing, p)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			if err := os.Mkdir(filepath.Join(dir, missing[i]), 0o755); err != nil && !os.IsExist(err) {
				return err
			}
			kinds[missing[i]] = tar.TypeDir
		}
		return nil
	}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if n%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("build context: %w", err))
		}
		rel := path.Clean(strings.TrimLeft(h.Name, "/"))
		if rel == "." {
			continue
		}
		if rel == ".." || strings.HasPrefix(rel, "../") || strings.IndexByte(rel, 0) >= 0 {
			return errdefs.InvalidParameterf("build context: invalid name %q", h.Name)
		}
		if err := ensureParents(rel); err != nil {
			return err
		}
		full := filepath.Join(dir, rel)
		if k, ok := kinds[rel]; ok && !(k == tar.TypeDir && h.Typeflag == tar.TypeDir) {
			os.RemoveAll(full) // a later entry replaces an earlier one
			delete(kinds, rel)
		}
		mode := os.FileMode(h.Mode & 0o777)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(full, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
			os.Chmod(full, mode|os.FileMode(h.Mode)&0o7000)
			dirTimes = append(dirTimes, dirTime{full, h.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			f, err := os.OpenFile(full, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return fmt.Errorf("build context: %s: %w", rel, err)
			}
			if err := f.Chmod(mode); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			os.Chtimes(full, h.ModTime, h.ModTime)
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, full); err != nil {
				return err
			}
		case tar.TypeLink:
			target := path.Clean(strings.TrimLeft(h.Linkname, "/"))
			if kinds[target] != tar.TypeReg {
				return errdefs.InvalidParameterf("build context: hard link %s to %s, not an earlier file", rel, h.Linkname)
			}
			if err := os.Link(filepath.Join(dir, target), full); err != nil {
				return err
			}
			kinds[rel] = tar.TypeReg
			continue
		default:
			continue // devices, fifos: never part of a context
		}
		if h.Typeflag == tar.TypeDir {
			kinds[rel] = tar.TypeDir
		} else if h.Typeflag == tar.TypeSymlink {
			kinds[rel] = tar.TypeSymlink
		} else {
			kinds[rel] = tar.TypeReg
		}
	}
	for i := len(dirTimes) - 1; i >= 0; i-- {
		os.Chtimes(dirTimes[i].p, dirTimes[i].t, dirTimes[i].t)
	}
	return nil
}
