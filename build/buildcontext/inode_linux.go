package buildcontext

import (
	"io/fs"
	"syscall"
)

func inodeOf(fi fs.FileInfo) (ino uint64, nlink uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return st.Ino, uint64(st.Nlink), true
}
