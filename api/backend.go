// Package api is the HTTP server of the Docker Engine API: routing with
// versioned and unversioned paths, version negotiation headers, request
// decoding, error to status mapping, streams (JSON messages, stdcopy
// multiplexing, hijacked connections). Routes only decode HTTP, call a
// backend and encode the answer; the daemon implements the backends.
//
// CONTRACT (agreed with daemon/): the backend interfaces in this file and
// the Server constructor are what the daemon implements and calls.
package api

import (
	"context"
	"io"
	"time"

	"github.com/berth-dev/berth/filters"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

// Backend is everything the routes need.
type Backend interface {
	SystemBackend
	ImageBackend
	ContainerBackend
}

// SystemBackend serves /info, /version and /events.
type SystemBackend interface {
	// Info answers GET /info.
	Info(ctx context.Context) (*system.Info, error)
	// Version answers GET /version; the server fills ApiVersion and MinAPIVersion.
	Version(ctx context.Context) system.VersionResponse
	// SubscribeEvents returns the stored events between since and until
	// (zero: unbounded) that match ef, and, when until is zero or in the
	// future, a channel of new matching events. cancel ends the subscription.
	SubscribeEvents(since, until time.Time, ef filters.Args) (past []events.Message, live <-chan events.Message, cancel func())
}

// ImportOptions are the parameters of POST /images/create?fromSrc=-.
type ImportOptions struct {
	Repo     string
	Tag      string
	Changes  []string
	Message  string
	Platform string
}

// ImageBackend serves the image endpoints.
type ImageBackend interface {
	// ImportImage creates an image from a rootfs tarball; it returns the image ID.
	ImportImage(ctx context.Context, src io.Reader, opts ImportOptions) (string, error)
	Images(ctx context.Context, all bool, ef filters.Args) ([]image.Summary, error)
	ImageInspect(ctx context.Context, name string) (*image.InspectResponse, error)
	ImageHistory(ctx context.Context, name string) ([]image.HistoryResponseItem, error)
	TagImage(ctx context.Context, name, repo, tag string) error
	ImageDelete(ctx context.Context, name string, force, prune bool) ([]image.DeleteResponse, error)
}

// AttachConfig describes one attach request. The backend validates the
// container first (so a missing one is a plain 404), then calls GetStreams,
// which hijacks the connection and returns the client's streams. multiplexed
// tells whether output must be framed with stdcopy headers (not a TTY).
type AttachConfig struct {
	GetStreams func(multiplexed bool) (stdin io.ReadCloser, stdout, stderr io.Writer, err error)
	UseStdin   bool
	UseStdout  bool
	UseStderr  bool
	Logs       bool   // replay the log first
	Stream     bool   // then stream live output
	DetachKeys string // e.g. "ctrl-p,ctrl-q"
}

// LogsOptions are the parameters of GET /containers/{id}/logs.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Timestamps     bool
	Tail           string // "all" or a number
	Since, Until   time.Time
}

// LogMessage is one line of a container's log.
type LogMessage struct {
	Stream string // "stdout" or "stderr"
	Line   []byte
	Time   time.Time
	Err    error // a read error ends the stream
}

// ContainerBackend serves the container endpoints.
type ContainerBackend interface {
	ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error)
	// ContainerStart returns an errdefs.NotModified error if the container is running.
	ContainerStart(ctx context.Context, name string) error
	// ContainerStop returns errdefs.NotModified if the container is not running.
	// signal "" means the container's stop signal; timeout nil means its stop timeout.
	ContainerStop(ctx context.Context, name, signal string, timeout *int) error
	ContainerKill(ctx context.Context, name, signal string) error
	ContainerRestart(ctx context.Context, name, signal string, timeout *int) error
	// ContainerWait checks the container and condition synchronously (errors
	// are answered as HTTP errors); the channel yields the result later.
	ContainerWait(ctx context.Context, name string, condition container.WaitCondition) (<-chan container.WaitResponse, error)
	ContainerAttach(ctx context.Context, name string, cfg AttachConfig) error
	// ContainerResize sets the terminal size of a TTY container.
	ContainerResize(ctx context.Context, name string, height, width uint16) error
	// ContainerLogs returns the log lines and whether the container has a TTY
	// (then the API writes them raw, else stdcopy-framed).
	ContainerLogs(ctx context.Context, name string, opts LogsOptions) (msgs <-chan LogMessage, tty bool, err error)
	Containers(ctx context.Context, all bool, limit int, size bool, ef filters.Args) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error)
	ContainerRemove(ctx context.Context, name string, force, removeVolumes bool) error
	ContainersPrune(ctx context.Context, ef filters.Args) (*container.PruneReport, error)
}
