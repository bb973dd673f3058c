package seccomp

import "sort"

//go:generate go run gen_tables.go

// syscallTable maps syscall names to numbers for one architecture, sorted
// by name. A sorted slice of constants is laid out by the linker and costs
// nothing at startup, unlike a map.
type syscallTable []struct {
	name string
	nr   uint32
}

func (t syscallTable) lookup(name string) (uint32, bool) {
	i := sort.Search(len(t), func(i int) bool { return t[i].name >= name })
	if i < len(t) && t[i].name == name {
		return t[i].nr, true
	}
	return 0, false
}
