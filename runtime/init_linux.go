package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// initMain runs in the re-executed berth binary, inside the container's
// new namespaces: it finishes the container from within and execs the user
// process. Any failure goes back to Start over the sync socket.
func initMain() {
	// Namespaces joined with setns, the seccomp filter, credentials and
	// capabilities are all per thread: everything happens on this one,
	// which is also the one that execs.
	goruntime.LockOSThread()
	err := containerInit()
	if err == nil {
		err = errors.New("container init returned without exec")
	}
	_ = sendMsg(syncFd, msgError, []byte(err.Error()), -1)
	os.Exit(1)
}

func containerInit() error {
	// Keep other users of the host (and the container later) from
	// ptrace-ing or reading /proc of this root process while it sets up.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	kind, body, fd, err := recvMsg(syncFd)
	// A preboot's stdio and mount namespace come first.
	for err == nil && (kind == msgStdio || kind == msgMountNS) {
		if kind == msgStdio {
			err = receiveStdio(body, fd) // closes fd
		} else if err = unix.Unshare(unix.CLONE_NEWNS); err != nil {
			err = fmt.Errorf("container init: unshare mount namespace: %w", err)
		}
		fd = -1
		if err == nil {
			kind, body, fd, err = recvMsg(syncFd)
		}
	}
	if fd >= 0 {
		unix.Close(fd)
	}
	if err != nil {
		return err
	}
	if kind != msgPlan && kind != msgExec {
		return errors.New("container init: start aborted")
	}
	p, err := decodePlan([]byte(body))
	if err != nil {
		return err
	}
	if kind == msgExec {
		return execInit(p)
	}
	if err := joinNamespaces(p.Joins); err != nil {
		return err
	}
	unix.Umask(0)
	if p.MountNS {
		if err := prepareRoot(p, waitCgroup); err != nil {
			return err
		}
		if err := pivotRoot(p.Root); err != nil {
			return fmt.Errorf("pivot root %s: %w", p.Root, err)
		}
	} else {
		if err := waitCgroup(p); err != nil {
			return err
		}
		if err := unix.Chroot(p.Root); err != nil {
			return fmt.Errorf("chroot %s: %w", p.Root, err)
		}
		if err := unix.Chdir("/"); err != nil {
			return err
		}
	}
	if p.UTSNS {
		if p.Hostname != "" {
			if err := unix.Sethostname([]byte(p.Hostname)); err != nil {
				return fmt.Errorf("sethostname: %w", err)
			}
		}
		if p.Domainname != "" {
			if err := unix.Setdomainname([]byte(p.Domainname)); err != nil {
				return fmt.Errorf("setdomainname: %w", err)
			}
		}
	}
	if p.Terminal {
		if err := setupConsole(p); err != nil {
			return fmt.Errorf("console: %w", err)
		}
	}
	for i := 0; i+1 < len(p.Sysctls); i += 2 {
		if err := writeSysctl(p.Sysctls[i], p.Sysctls[i+1]); err != nil {
			return err
		}
	}
	if p.MountNS {
		for _, path := range p.ReadonlyPaths {
			if err := readonlyPath(path); err != nil {
				return err
			}
		}
		for _, path := range p.MaskedPaths {
			if err := maskPath(path); err != nil {
				return err
			}
		}
		if p.RootReadonly {
			if err := remountBind("/", unix.MS_RDONLY); err != nil {
				return fmt.Errorf("make rootfs read-only: %w", err)
			}
		}
	}
	return execProcess(p)
}

// waitCgroup blocks until Start has put the init in its cgroup (Start does
// that while the init mounts), then creates the cgroup namespace, whose
// root is the cgroup current at its creation.
func waitCgroup(p *initPlan) error {
	kind, _, fd, err := recvMsg(syncFd)
	if fd >= 0 {
		unix.Close(fd)
	}
	if err != nil {
		return err
	}
	if kind != msgGo {
		return errors.New("container init: start aborted")
	}
	if p.NewCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	return nil
}

// joinNamespaces enters the namespaces the spec gives by path. They are all
// per-thread namespaces, and this thread is the one that will exec.
func joinNamespaces(joins []nsJoin) error {
	for _, j := range joins {
		fd, err := unix.Open(j.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open namespace: %w", err)
		}
		err = unix.Setns(fd, int(j.Flag))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join namespace %s: %w", j.Path, err)
		}
	}
	return nil
}

// setupConsole creates a pty in the container's devpts, sends its master
// to Start, and makes the slave this session's controlling terminal and
// the process's stdio.
func setupConsole(p *initPlan) error { return openConsole(p, true) }

// openConsole is setupConsole; bindConsole also makes the pty the
// container's /dev/console (at start, not for an exec).
func openConsole(p *initPlan, bindConsole bool) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("ptsname: %w", err)
	}
	slavePath := "/dev/pts/" + strconv.Itoa(n)
	slave, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", slavePath, err)
	}
	if p.ConsoleH != 0 || p.ConsoleW != 0 {
		ws := &unix.Winsize{Row: uint16(p.ConsoleH), Col: uint16(p.ConsoleW)}
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set console size: %w", err)
		}
	}
	if err := unix.Fchown(slave, int(p.UID), -1); err != nil {
		return fmt.Errorf("chown %s: %w", slavePath, err)
	}
	// /dev/console is the container's terminal too.
	if bindConsole {
		if err := ensureMountpoint("/dev/console", false); err == nil {
			_ = unix.Mount(slavePath, "/dev/console", "", unix.MS_BIND, "")
		}
	}
	if err := sendMsg(syncFd, msgConsole, nil, master); err != nil {
		return err
	}
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("dup pty to fd %d: %w", fd, err)
		}
	}
	if slave > 2 {
		unix.Close(slave)
	}
	return nil
}

// execProcess drops to the user's credentials and capabilities, installs
// the seccomp filter and rlimits, and execs the user process. The order
// follows runc: without no_new_privs the filter must be loaded while the
// thread still has CAP_SYS_ADMIN; with it, as late as possible so that the
// filter sees as few of our own syscalls as possible.
func execProcess(p *initPlan) error {
	if p.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if p.SeccompConfigured && !p.NoNewPrivs {
		if err := loadSeccomp(p); err != nil {
			return err
		}
	}
	caps := &processCaps{
		bounding: capSet(p.Caps[0]), effective: capSet(p.Caps[1]), permitted: capSet(p.Caps[2]),
		inheritable: capSet(p.Caps[3]), ambient: capSet(p.Caps[4]), last: lastCap(),
	}
	if err := caps.dropBounding(); err != nil {
		return err
	}
	if err := setUser(p.UID, p.GID, p.Gids); err != nil {
		return err
	}
	if err := caps.apply(); err != nil {
		return err
	}
	if err := unix.Chdir(p.Cwd); err != nil {
		return fmt.Errorf("chdir to cwd (%q) set in config.json failed: %w", p.Cwd, err)
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return err
	}
	if p.SeccompConfigured && p.NoNewPrivs {
		if err := loadSeccomp(p); err != nil {
			return err
		}
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	unix.Umask(int(p.Umask))
	// Every descriptor but stdio closes on exec, the sync socket included:
	// Start reads that EOF as "exec succeeded".
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close descriptors: %w", err)
	}
	err = syscall.Exec(path, p.Args, p.Env)
	return fmt.Errorf("exec %s: %w", p.Args[0], err)
}

// loadSeccomp installs the filter Start compiled (with seccomp.Compile) on
// the calling thread, as seccomp.Load would.
func loadSeccomp(p *initPlan) error {
	prog := p.seccompProgram()
	if len(prog) == 0 {
		return errors.New("load seccomp filter: empty program")
	}
	filters := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filters[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filters)), Filter: &filters[0]}
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(p.SeccompFlags), uintptr(unsafe.Pointer(&fprog)))
	goruntime.KeepAlive(filters)
	if e != 0 {
		return fmt.Errorf("load seccomp filter: %w", e)
	}
	return nil
}

// setUser switches the thread to the spec's uid, gid and groups, keeping
// its capabilities for the capset that follows.
func setUser(uid, gid uint64, groups []uint64) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities: %w", err)
	}
	gids := make([]uint32, len(groups))
	for i, g := range groups {
		gids[i] = uint32(g)
	}
	var gp uintptr
	if len(gids) > 0 {
		gp = uintptr(unsafe.Pointer(&gids[0]))
	}
	// Raw per-thread syscalls: Go's wrappers change every thread, which is
	// slower and not needed as only this thread execs.
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), gp, 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	goruntime.KeepAlive(gids)
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fmt.Errorf("setgid %d: %w", gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fmt.Errorf("setuid %d: %w", uid, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keep capabilities: %w", err)
	}
	return nil
}

// rlimitTypes maps OCI rlimit names to resources.
var rlimitTypes = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

// setRlimits applies the plan's rlimits (resource, soft, hard triples),
// clamped to the current hard limits: raising a hard limit needs
// CAP_SYS_RESOURCE, which hosts (this one included) may not have.
// syscall.Setrlimit is used on purpose: it also stops Go from restoring
// its startup RLIMIT_NOFILE at exec.
func setRlimits(rls []uint64) error {
	for i := 0; i+2 < len(rls); i += 3 {
		res := int(rls[i])
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(res, &cur); err != nil {
			return fmt.Errorf("getrlimit %d: %w", res, err)
		}
		want := clampRlimit(rls[i+1], rls[i+2], cur.Max)
		if err := syscall.Setrlimit(res, &want); err != nil {
			return fmt.Errorf("setrlimit %d: %w", res, err)
		}
	}
	return nil
}

// clampRlimit keeps hard at most max and soft at most hard.
func clampRlimit(soft, hard, max uint64) syscall.Rlimit {
	if hard > max {
		hard = max
	}
	if soft > hard {
		soft = hard
	}
	return syscall.Rlimit{Cur: soft, Max: hard}
}

// lookPath resolves the process's args[0] like execvp with the container's
// PATH, returning errors with the words Docker's clients look for.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := checkExecutable(file); err != nil {
			return "", fmt.Errorf("exec: %q: %w", file, err)
		}
		return file, nil
	}
	pathEnv := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", file)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return syscall.EISDIR
	}
	if err := unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS); err != nil {
		return os.ErrPermission
	}
	return nil
}
