// Package initproc is the tiny init `docker run --init` puts at PID 1: it
// starts the command, forwards the signals it gets to it, reaps every
// zombie re-parented to it, and exits with the command's status. The berth
// binary runs as this init when invoked as docker-init (it is bind-mounted
// at /sbin/docker-init, as Docker mounts its tini).
package initproc

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Main runs args (after an optional "--") and returns the exit status.
func Main(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "docker-init: no command given")
		return 1
	}
	sigs := make(chan os.Signal, 32)
	// All signals: SIGCHLD wakes the reaper, the rest go to the child.
	signal.Notify(sigs)
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: %v\n", err)
		return 127
	}
	cmd := exec.Command(path, args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// The child keeps this process group so a terminal's job control
	// reaches it, as with tini's default.
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: %v\n", err)
		return 126
	}
	child := cmd.Process.Pid
	for sig := range sigs {
		s, _ := sig.(syscall.Signal)
		switch s {
		case unix.SIGCHLD:
		case unix.SIGURG, unix.SIGPIPE:
			// SIGURG is the Go runtime's own preemption signal.
			continue
		default:
			unix.Kill(child, s)
			continue
		}
		if code, done := reap(child); done {
			return code
		}
	}
	return 0
}

// reap collects every exited process; it reports the child's status once
// the child is among them.
func reap(child int) (int, bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != child {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}
