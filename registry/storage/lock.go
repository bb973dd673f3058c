package storage

import (
	"fmt"
	"os"
	"syscall"
)

// The GC lock keeps garbage collection (which may run in another process,
// `berth registry gc`) from sweeping content while a request is making it
// reachable. Writers that add references take it shared; GC takes it
// exclusive. Each holder opens its own descriptor: flock locks belong to the
// open file, so goroutines cannot share one.
func (s *Store) lockFile(how int) (func(), error) {
	f, err := os.OpenFile(s.path("gc.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("gc lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gc lock: %w", err)
	}
	return func() { f.Close() }, nil
}

func (s *Store) sharedLock() (func(), error)    { return s.lockFile(syscall.LOCK_SH) }
func (s *Store) exclusiveLock() (func(), error) { return s.lockFile(syscall.LOCK_EX) }
