package cli

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/client"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newRunCommand(g *globals) *cobra.Command {
	o := &containerOpts{}
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContainer(cmd.Context(), g, o, detach, args, cmd.Flags().Changed)
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "Run container in background and print container ID")
	o.addFlags(cmd.Flags())
	return cmd
}

func newCreateCommand(g *globals) *cobra.Command {
	o := &containerOpts{}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return statusErr(err, 125)
			}
			id, err := createContainer(ctx, g, c, o, args, cmd.Flags().Changed)
			if err != nil {
				return statusErr(err, 125)
			}
			fmt.Fprintln(g.stdout, id)
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// statusErr wraps a failure with the exit code docker's CLI uses.
func statusErr(err error, code int) error {
	return StatusError{Status: daemonError(err).Error(), Code: code}
}

func createContainer(ctx context.Context, g *globals, c *client.Client, o *containerOpts, args []string, changed func(string) bool) (string, error) {
	req, err := o.request(args[0], args[1:], changed)
	if err != nil {
		return "", err
	}
	if o.interactive && (len(o.attach) == 0 || contains(o.attach, "stdin")) {
		req.Config.AttachStdin = true
		req.Config.StdinOnce = true
	}
	q := url.Values{}
	if o.name != "" {
		q.Set("name", o.name)
	}
	var res container.CreateResponse
	if err := c.JSON(ctx, "POST", "/containers/create", q, req, &res); err != nil {
		if client.IsNotFound(err) && strings.Contains(err.Error(), "image") {
			fmt.Fprintf(g.stderr, "Unable to find image '%s' locally\n", args[0])
		}
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(g.stderr, "WARNING:", w)
	}
	return res.ID, nil
}

func runContainer(ctx context.Context, g *globals, o *containerOpts, detach bool, args []string, changed func(string) bool) error {
	c, err := g.client(ctx)
	if err != nil {
		return statusErr(err, 125)
	}
	id, err := createContainer(ctx, g, c, o, args, changed)
	if err != nil {
		return statusErr(err, 125)
	}
	if detach {
		if _, err := c.Do(ctx, "POST", "/containers/"+id+"/start", nil, nil, nil); err != nil {
			return startErr(err)
		}
		fmt.Fprintln(g.stdout, id)
		return nil
	}
	attachOut := len(o.attach) == 0 || contains(o.attach, "stdout")
	attachErr := len(o.attach) == 0 || contains(o.attach, "stderr")
	attachIn := o.interactive && (len(o.attach) == 0 || contains(o.attach, "stdin"))
	q := url.Values{"stream": {"1"}}
	if attachOut {
		q.Set("stdout", "1")
	}
	if attachErr {
		q.Set("stderr", "1")
	}
	if attachIn {
		q.Set("stdin", "1")
	}
	conn, br, err := c.Hijack(ctx, "/containers/"+id+"/attach", q)
	if err != nil {
		return statusErr(err, 125)
	}
	defer conn.Close()
	cond := "next-exit"
	if o.rm {
		cond = "removed"
	}
	// The wait must be registered (its headers received) before the start.
	waitResp, err := c.Do(ctx, "POST", "/containers/"+id+"/wait", url.Values{"condition": {cond}}, nil, nil)
	if err != nil {
		return statusErr(err, 125)
	}
	defer waitResp.Body.Close()

	var restore func()
	if o.tty && attachIn {
		restore = makeRaw(int(os.Stdin.Fd()))
		defer func() {
			if restore != nil {
				restore()
			}
		}()
	}
	outDone := make(chan error, 1)
	go func() { outDone <- copyOutput(g, br, o.tty) }()
	if attachIn {
		go func() {
			io.Copy(conn, g.stdin)
			closeWrite(conn)
		}()
	}
	if _, err := c.Do(ctx, "POST", "/containers/"+id+"/start", nil, nil, nil); err != nil {
		if restore != nil {
			restore()
			restore = nil
		}
		return startErr(err)
	}
	if o.tty {
		resizeTTY(ctx, c, id)
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				resizeTTY(ctx, c, id)
			}
		}()
	}
	var wr container.WaitResponse
	if err := json.NewDecoder(waitResp.Body).Decode(&wr); err != nil {
		return StatusError{Status: "error waiting for container: " + err.Error(), Code: 125}
	}
	<-outDone
	if wr.Error != nil && wr.Error.Message != "" {
		return StatusError{Status: "error waiting for container: " + wr.Error.Message, Code: 125}
	}
	if wr.StatusCode != 0 {
		return StatusError{Code: int(wr.StatusCode)}
	}
	return nil
}

// startErr maps a failed start to docker's exit codes.
func startErr(err error) error {
	msg := err.Error()
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		code = 127
	case strings.Contains(msg, "permission denied"):
		code = 126
	}
	return statusErr(err, code)
}

func closeWrite(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// copyOutput copies an attach or logs stream: raw for a TTY, else
// demultiplexed from stdcopy frames.
func copyOutput(g *globals, r io.Reader, tty bool) error {
	if tty {
		_, err := io.Copy(g.stdout, r)
		return ignoreClosed(err)
	}
	return demux(r, g.stdout, g.stderr)
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// demux splits stdcopy frames: 8-byte header (stream, 0, 0, 0, length).
func demux(r io.Reader, stdout, stderr io.Writer) error {
	br := bufio.NewReader(r)
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return ignoreClosed(err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		var w io.Writer
		switch hdr[0] {
		case 0, 1:
			w = stdout
		case 2:
			w = stderr
		case 3:
			msg, _ := io.ReadAll(io.LimitReader(br, n))
			return errors.New(string(msg))
		default:
			return fmt.Errorf("unexpected stream id %d", hdr[0])
		}
		if _, err := io.CopyN(w, br, n); err != nil {
			return ignoreClosed(err)
		}
	}
}

func resizeTTY(ctx context.Context, c *client.Client, id string) {
	ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 {
		return
	}
	q := url.Values{"h": {strconv.Itoa(int(ws.Row))}, "w": {strconv.Itoa(int(ws.Col))}}
	if resp, err := c.Do(ctx, "POST", "/containers/"+id+"/resize", q, nil, nil); err == nil {
		resp.Body.Close()
	}
}

// makeRaw puts a terminal in raw mode and returns how to restore it.
func makeRaw(fd int) func() {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// forEach runs fn for each named container, printing the name on success
// like docker does, and fails at the end if any failed.
func forEach(ctx context.Context, g *globals, names []string, fn func(c *client.Client, name string) error) error {
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	var failed bool
	for _, n := range names {
		if err := fn(c, n); err != nil {
			fmt.Fprintln(g.stderr, daemonError(err))
			failed = true
			continue
		}
		fmt.Fprintln(g.stdout, n)
	}
	if failed {
		return StatusError{Code: 1}
	}
	return nil
}

func newStartCommand(g *globals) *cobra.Command {
	var attach, interactive bool
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if attach && len(args) == 1 {
				return startAttached(ctx, g, args[0], interactive)
			}
			return forEach(ctx, g, args, func(c *client.Client, n string) error {
				_, err := c.Do(ctx, "POST", "/containers/"+n+"/start", nil, nil, nil)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	return cmd
}

func startAttached(ctx context.Context, g *globals, name string, interactive bool) error {
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	var insp container.InspectResponse
	if err := c.JSON(ctx, "GET", "/containers/"+name+"/json", nil, nil, &insp); err != nil {
		return daemonError(err)
	}
	q := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
	if interactive {
		q.Set("stdin", "1")
	}
	conn, br, err := c.Hijack(ctx, "/containers/"+insp.ID+"/attach", q)
	if err != nil {
		return daemonError(err)
	}
	defer conn.Close()
	waitResp, err := c.Do(ctx, "POST", "/containers/"+insp.ID+"/wait", url.Values{"condition": {"next-exit"}}, nil, nil)
	if err != nil {
		return daemonError(err)
	}
	defer waitResp.Body.Close()
	tty := insp.Config != nil && insp.Config.Tty
	outDone := make(chan error, 1)
	go func() { outDone <- copyOutput(g, br, tty) }()
	if interactive {
		go func() { io.Copy(conn, g.stdin); closeWrite(conn) }()
	}
	if _, err := c.Do(ctx, "POST", "/containers/"+insp.ID+"/start", nil, nil, nil); err != nil {
		return startErr(err)
	}
	var wr container.WaitResponse
	json.NewDecoder(waitResp.Body).Decode(&wr)
	<-outDone
	if wr.StatusCode != 0 {
		return StatusError{Code: int(wr.StatusCode)}
	}
	return nil
}

func newStopCommand(g *globals) *cobra.Command {
	var timeout int
	var sig string
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if cmd.Flags().Changed("time") {
				q.Set("t", strconv.Itoa(timeout))
			}
			if sig != "" {
				q.Set("signal", sig)
			}
			return forEach(cmd.Context(), g, args, func(c *client.Client, n string) error {
				_, err := c.Do(cmd.Context(), "POST", "/containers/"+n+"/stop", q, nil, nil)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 0, "Seconds to wait before killing the container")
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func newRestartCommand(g *globals) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if cmd.Flags().Changed("time") {
				q.Set("t", strconv.Itoa(timeout))
			}
			return forEach(cmd.Context(), g, args, func(c *client.Client, n string) error {
				_, err := c.Do(cmd.Context(), "POST", "/containers/"+n+"/restart", q, nil, nil)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 0, "Seconds to wait before killing the container")
	return cmd
}

func newKillCommand(g *globals) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if sig != "" {
				q.Set("signal", sig)
			}
			return forEach(cmd.Context(), g, args, func(c *client.Client, n string) error {
				_, err := c.Do(cmd.Context(), "POST", "/containers/"+n+"/kill", q, nil, nil)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func newRmCommand(g *globals) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more containers",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if force {
				q.Set("force", "1")
			}
			if volumes {
				q.Set("v", "1")
			}
			return forEach(cmd.Context(), g, args, func(c *client.Client, n string) error {
				_, err := c.Do(cmd.Context(), "DELETE", "/containers/"+n, q, nil, nil)
				if force && client.IsNotFound(err) {
					return nil
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

func newWaitCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			failed := false
			for _, n := range args {
				var wr container.WaitResponse
				if err := c.JSON(ctx, "POST", "/containers/"+n+"/wait", nil, nil, &wr); err != nil {
					fmt.Fprintln(g.stderr, daemonError(err))
					failed = true
					continue
				}
				fmt.Fprintln(g.stdout, wr.StatusCode)
			}
			if failed {
				return StatusError{Code: 1}
			}
			return nil
		},
	}
}

func newAttachCommand(g *globals) *cobra.Command {
	var noStdin bool
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			var insp container.InspectResponse
			if err := c.JSON(ctx, "GET", "/containers/"+args[0]+"/json", nil, nil, &insp); err != nil {
				return daemonError(err)
			}
			if insp.State == nil || !insp.State.Running {
				return fmt.Errorf("You cannot attach to a stopped container, start it first")
			}
			q := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
			stdin := !noStdin && insp.Config.OpenStdin
			if stdin {
				q.Set("stdin", "1")
			}
			conn, br, err := c.Hijack(ctx, "/containers/"+insp.ID+"/attach", q)
			if err != nil {
				return daemonError(err)
			}
			defer conn.Close()
			if stdin {
				go func() { io.Copy(conn, g.stdin); closeWrite(conn) }()
			}
			copyOutput(g, br, insp.Config.Tty)
			var wr container.WaitResponse
			if err := c.JSON(ctx, "POST", "/containers/"+insp.ID+"/wait", nil, nil, &wr); err == nil && wr.StatusCode != 0 {
				return StatusError{Code: int(wr.StatusCode)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	return cmd
}

func newLogsCommand(g *globals) *cobra.Command {
	var follow, timestamps bool
	var tail, since, until string
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			var insp container.InspectResponse
			if err := c.JSON(ctx, "GET", "/containers/"+args[0]+"/json", nil, nil, &insp); err != nil {
				return daemonError(err)
			}
			q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "tail": {tail}}
			if follow {
				q.Set("follow", "1")
			}
			if timestamps {
				q.Set("timestamps", "1")
			}
			if since != "" {
				q.Set("since", since)
			}
			if until != "" {
				q.Set("until", until)
			}
			resp, err := c.Do(ctx, "GET", "/containers/"+insp.ID+"/logs", q, nil, nil)
			if err != nil {
				return daemonError(err)
			}
			defer resp.Body.Close()
			return copyOutput(g, resp.Body, insp.Config != nil && insp.Config.Tty)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "Follow log output")
	fl.BoolVarP(&timestamps, "timestamps", "t", false, "Show timestamps")
	fl.StringVarP(&tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	fl.StringVar(&since, "since", "", "Show logs since timestamp or relative (e.g. 42m)")
	fl.StringVar(&until, "until", "", "Show logs before a timestamp or relative")
	return cmd
}

func newContainerPruneCommand(g *globals) *cobra.Command {
	var force bool
	var filterArgs []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if !force {
				fmt.Fprint(g.stdout, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
				ans, _ := bufio.NewReader(g.stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(ans)); a != "y" && a != "yes" {
					return nil
				}
			}
			c, err := g.client(ctx)
			if err != nil {
				return err
			}
			var rep container.PruneReport
			if err := c.JSON(ctx, "POST", "/containers/prune", filterQuery(filterArgs), nil, &rep); err != nil {
				return daemonError(err)
			}
			if len(rep.ContainersDeleted) > 0 {
				fmt.Fprintln(g.stdout, "Deleted Containers:")
				for _, id := range rep.ContainersDeleted {
					fmt.Fprintln(g.stdout, id)
				}
				fmt.Fprintln(g.stdout)
			}
			fmt.Fprintf(g.stdout, "Total reclaimed space: %s\n", humanSize(int64(rep.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filterArgs, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}

// filterQuery encodes --filter key=value flags as the filters parameter.
func filterQuery(fs []string) url.Values {
	if len(fs) == 0 {
		return nil
	}
	m := map[string]map[string]bool{}
	for _, f := range fs {
		k, v, _ := strings.Cut(f, "=")
		if m[k] == nil {
			m[k] = map[string]bool{}
		}
		m[k][v] = true
	}
	data, _ := json.Marshal(m)
	return url.Values{"filters": {string(data)}}
}
