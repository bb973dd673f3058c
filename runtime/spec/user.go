package spec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxUserFile caps how much of an image's /etc/passwd or /etc/group is read.
const maxUserFile = 16 << 20

// resolveUser turns Docker's --user into ids using the rootfs's own
// /etc/passwd and /etc/group. Numeric ids need no entry. The primary gid
// comes first in AdditionalGids, as Docker puts it there.
func resolveUser(rootfs, spec string) (specs.User, string, error) {
	passwd, closeP := openInRoot(rootfs, "etc/passwd")
	defer closeP()
	group, closeG := openInRoot(rootfs, "etc/group")
	defer closeG()

	eu, err := user.GetExecUser(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return specs.User{}, "", errdefs.InvalidParameter(err)
	}
	u := specs.User{
		UID:            uint32(eu.Uid),
		GID:            uint32(eu.Gid),
		AdditionalGids: []uint32{uint32(eu.Gid)},
	}
	for _, g := range eu.Sgids {
		if !slices.Contains(u.AdditionalGids, uint32(g)) {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	return u, eu.Home, nil
}

// openInRoot opens name inside root with root acting as "/" for every
// symlink on the way (openat2 RESOLVE_IN_ROOT), so an image cannot make us
// read a host file. A missing file gives a nil reader, which
// GetExecUser treats as "no entries".
func openInRoot(root, name string) (io.Reader, func()) {
	noop := func() {}
	if root == "" {
		return nil, noop
	}
	f, err := openat2InRoot(root, name)
	if errors.Is(err, unix.ENOSYS) {
		f, err = openOSRoot(root, name)
	}
	if err != nil {
		return nil, noop
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, noop
	}
	return io.LimitReader(f, maxUserFile), func() { f.Close() }
}

func openat2InRoot(root, name string) (*os.File, error) {
	dirfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", root, err)
	}
	defer unix.Close(dirfd)
	fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// openOSRoot is the fallback for kernels without openat2: os.Root refuses
// any path that leaves root.
func openOSRoot(root, name string) (*os.File, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Open(name)
}
