package volume

import "golang.org/x/sys/unix"

type unixStatfs = unix.Statfs_t

func statfs(p string, st *unix.Statfs_t) error { return unix.Statfs(p, st) }
