package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/sys/mountinfo"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Container rootfs: overlay/<cid>/{diff,work,merged}, the lowers being the
// image's layer snapshots. The record is written before the directories, so
// a crash leaves either nothing or a record MountRootfs can complete.

func (s *Store) containerDir(cid string) string { return filepath.Join(s.overlayDir(), cid) }

func validCID(cid string) error {
	if cid == "" || strings.ContainsAny(cid, "/\x00") || cid == "." || cid == ".." || strings.HasPrefix(cid, "tmp-") {
		return errdefs.InvalidParameterf("invalid container ID %q", cid)
	}
	return nil
}

// CreateRootfs makes the writable layer of container cid on top of img's
// layers and mounts the overlay; it returns the mounted path.
func (s *Store) CreateRootfs(ctx context.Context, cid string, img *Image) (string, error) {
	if err := validCID(cid); err != nil {
		return "", err
	}
	s.mu.Lock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSnapshots).Get([]byte("sha256:"+cid)) != nil {
			return errdefs.Conflictf("container ID %s clashes with a layer", cid)
		}
		if tx.Bucket(bucketRootfs).Get([]byte(cid)) != nil {
			return errdefs.Conflictf("rootfs of container %s already exists", cid)
		}
		rec, err := getImageRecord(tx, img.ID)
		if err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketRootfs), cid, rootfsRecord{Image: img.ID, Chain: rec.Chain})
	})
	s.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("create rootfs %s: %w", cid, err)
	}
	return s.MountRootfs(ctx, cid)
}

// MountRootfs mounts container cid's rootfs if it is not mounted (after a
// reboot or an unmount) and returns its path.
func (s *Store) MountRootfs(ctx context.Context, cid string) (string, error) {
	if err := validCID(cid); err != nil {
		return "", err
	}
	var rec rootfsRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bucketRootfs), cid, &rec)
		if err == nil && !ok {
			err = errdefs.NotFoundf("no rootfs for container %s", cid)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	dir := s.containerDir(cid)
	merged := filepath.Join(dir, "merged")
	if mounted, err := mountinfo.Mounted(merged); err == nil && mounted {
		return merged, nil
	}
	lowers := make([]string, 0, len(rec.Chain)+1)
	for i := len(rec.Chain) - 1; i >= 0; i-- {
		lowers = append(lowers, filepath.Join(s.snapshotDir(rec.Chain[i]), "diff"))
	}
	upper := filepath.Join(dir, "diff")
	_, statErr := os.Lstat(upper)
	for _, d := range []string{"diff", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", fmt.Errorf("mount rootfs %s: %w", cid, err)
		}
	}
	if os.IsNotExist(statErr) && len(lowers) > 0 {
		// The root of the merged view takes the upper dir's attributes:
		// give it those of the base layer's root.
		copyDirAttrs(lowers[len(lowers)-1], upper)
	}
	if len(lowers) == 0 {
		// overlay needs a lower; an image without layers gets an empty one.
		empty := filepath.Join(dir, "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return "", err
		}
		lowers = append(lowers, empty)
	}
	if err := mountOverlay(merged, lowers, filepath.Join(dir, "diff"), filepath.Join(dir, "work")); err != nil {
		return "", fmt.Errorf("mount rootfs %s: %w", cid, err)
	}
	return merged, nil
}

// mountOverlay mounts with the classic mount(2) options string while it
// fits a page, and with fsconfig's one-lowerdir-at-a-time "lowerdir+"
// (Linux 6.8+) for images with more layers than that allows.
func mountOverlay(target string, lowers []string, upper, work string) error {
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(opts) < os.Getpagesize()-1 {
		if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
			return fmt.Errorf("mount overlay on %s: %w", target, err)
		}
		return nil
	}
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	for _, l := range lowers {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
			return fmt.Errorf("overlay lowerdir+ %s (needs Linux 6.8): %w", l, err)
		}
	}
	if err := unix.FsconfigSetString(fsfd, "upperdir", upper); err != nil {
		return fmt.Errorf("overlay upperdir: %w", err)
	}
	if err := unix.FsconfigSetString(fsfd, "workdir", work); err != nil {
		return fmt.Errorf("overlay workdir: %w", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("overlay create: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move mount to %s: %w", target, err)
	}
	return nil
}

// UnmountRootfs unmounts container cid's rootfs; not mounted is not an error.
func (s *Store) UnmountRootfs(ctx context.Context, cid string) error {
	if err := validCID(cid); err != nil {
		return err
	}
	return unmount(filepath.Join(s.containerDir(cid), "merged"))
}

func unmount(target string) error {
	for {
		err := unix.Unmount(target, unix.MNT_DETACH)
		switch {
		case err == nil:
			continue // stacked mounts: unmount until none is left
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// RemoveRootfs unmounts and deletes container cid's writable layer.
func (s *Store) RemoveRootfs(ctx context.Context, cid string) error {
	if err := validCID(cid); err != nil {
		return err
	}
	dir := s.containerDir(cid)
	if err := unmount(filepath.Join(dir, "merged")); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var layer bool
	if err := s.db.View(func(tx *bolt.Tx) error {
		layer = tx.Bucket(bucketSnapshots).Get([]byte("sha256:"+cid)) != nil
		return nil
	}); err != nil {
		return err
	}
	if layer {
		return nil // never a container's: a shared layer snapshot
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove rootfs %s: %w", cid, err)
	}
	imageGone := false
	if err := s.db.Update(func(tx *bolt.Tx) error {
		var rec rootfsRecord
		if ok, _ := getJSON(tx.Bucket(bucketRootfs), cid, &rec); ok {
			imageGone = tx.Bucket(bucketImages).Get([]byte(rec.Image)) == nil
		}
		return tx.Bucket(bucketRootfs).Delete([]byte(cid))
	}); err != nil {
		return fmt.Errorf("remove rootfs %s: %w", cid, err)
	}
	if imageGone {
		// The image was deleted while this container used it: its layers
		// may now be unused.
		return s.collect(ctx)
	}
	return nil
}

// RootfsSize returns the size of container cid's writable layer and of the
// whole rootfs (writable layer plus image layers).
func (s *Store) RootfsSize(ctx context.Context, cid string) (rw, total int64, err error) {
	if err := validCID(cid); err != nil {
		return 0, 0, err
	}
	var rec rootfsRecord
	var lowers int64
	err = s.db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bucketRootfs), cid, &rec)
		if err != nil {
			return err
		}
		if !ok {
			return errdefs.NotFoundf("no rootfs for container %s", cid)
		}
		for _, c := range rec.Chain {
			if snap, err := getSnapshot(tx, c); err == nil {
				lowers += snap.Size
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	rw, err = dirSize(filepath.Join(s.containerDir(cid), "diff"))
	return rw, rw + lowers, err
}

// dirSize sums the sizes of regular files under dir, each inode once.
func dirSize(dir string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += fi.Size()
		return nil
	})
	return total, err
}

func copyDirAttrs(from, to string) {
	var st unix.Stat_t
	if unix.Lstat(from, &st) != nil {
		return
	}
	unix.Lchown(to, int(st.Uid), int(st.Gid))
	unix.Chmod(to, st.Mode&0o7777)
}

// DiffRootfs writes the changes made in container cid's writable layer as
// an uncompressed OCI layer tar (whiteouts for deletions), ready for
// Commit with the container's image as parent: docker commit and build.
func (s *Store) DiffRootfs(ctx context.Context, cid string, w io.Writer) error {
	if err := validCID(cid); err != nil {
		return err
	}
	var rec rootfsRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bucketRootfs), cid, &rec)
		if err == nil && !ok {
			err = errdefs.NotFoundf("no rootfs for container %s", cid)
		}
		return err
	})
	if err != nil {
		return err
	}
	lowers := make([]string, 0, len(rec.Chain))
	for i := len(rec.Chain) - 1; i >= 0; i-- {
		lowers = append(lowers, filepath.Join(s.snapshotDir(rec.Chain[i]), "diff"))
	}
	if err := archive.Diff(ctx, w, filepath.Join(s.containerDir(cid), "diff"), lowers); err != nil {
		return fmt.Errorf("diff rootfs %s: %w", cid, err)
	}
	return nil
}
