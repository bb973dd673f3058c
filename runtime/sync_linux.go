package runtime

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Messages on the SOCK_SEQPACKET sync socket between Start and the init.
// Each message is one packet: a kind byte followed by a body, optionally
// with one descriptor attached (SCM_RIGHTS).
const (
	msgEOF     byte = 0   // not sent: the peer closed its end
	msgStdio   byte = 's' // parent → preboot init, before the plan: body "0"-"2", the descriptor to put there
	msgMountNS byte = 'm' // parent → preboot init, before the plan: make your mount namespace now
	msgPlan    byte = 'p' // parent → init: the init plan
	msgGo      byte = 'g' // parent → init: in the cgroup, limits set
	msgConsole byte = 'c' // init → parent: pty master attached
	msgError   byte = 'e' // init → parent: setup failed, body is the message
	msgExec    byte = 'x' // parent → init: an exec plan (join a running container)
)

func sendMsg(sock int, kind byte, body []byte, fd int) error {
	buf := append([]byte{kind}, body...)
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	for {
		err := unix.Sendmsg(sock, buf, oob, nil, unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sync send: %w", err)
		}
		return nil
	}
}

// recvMsg reads one message; kind is msgEOF when the peer closed its end.
// fd is -1 when no descriptor came with the message.
func recvMsg(sock int) (kind byte, body string, fd int, err error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	fd = -1
	var n, oobn int
	for {
		n, oobn, _, _, err = unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, "", -1, fmt.Errorf("sync receive: %w", err)
	}
	if oobn > 0 {
		msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
		if perr == nil {
			for _, m := range msgs {
				if fds, rerr := unix.ParseUnixRights(&m); rerr == nil {
					for _, f := range fds {
						if fd < 0 {
							fd = f
						} else {
							unix.Close(f)
						}
					}
				}
			}
		}
	}
	if n == 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return msgEOF, "", -1, nil
	}
	return buf[0], string(buf[1:n]), fd, nil
}
