// Package build turns Dockerfiles into images: it parses with BuildKit's
// Dockerfile parser packages, runs the stages the target needs as a DAG
// (independent stages in parallel), executes each instruction with Docker's
// semantics on overlay snapshots of the image store, and keeps a bounded,
// content-keyed build cache.
//
// Every step commits an image (as Docker's classic builder does), so a
// cache entry is simply "step key -> image ID". A step key hashes the parent
// step's key, the instruction after variable expansion, the build args in
// scope and, for COPY and ADD, the content checksums of the copied files.
package build

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/berth-dev/berth/image"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ImageStore is what the builder needs from the image store.
type ImageStore interface {
	Get(ctx context.Context, ref string) (*image.Image, error)
	View(ctx context.Context, ref string) (image.View, error)
	Put(ctx context.Context, src image.View, opts image.PutOptions) (*image.Image, error)
	Tag(ctx context.Context, id digest.Digest, ref string) error
	Delete(ctx context.Context, ref string, force, prune bool, inUse func(digest.Digest) bool) ([]image.DeleteResult, error)
	CreateRootfs(ctx context.Context, cid string, img *image.Image) (string, error)
	DiffRootfs(ctx context.Context, cid string, w io.Writer) error
	RemoveRootfs(ctx context.Context, cid string) error
}

// Process is one RUN step's process.
type Process struct {
	ID      string // unique; also the hostname's source
	Rootfs  string // mounted root filesystem
	Args    []string
	Env     []string
	Cwd     string
	User    string
	Network string // "host" or "none"
	Mounts  []specs.Mount
	Output  io.Writer // stdout and stderr, combined
}

// Runner runs a RUN step's process to completion and returns its exit code.
type Runner interface {
	Run(ctx context.Context, p Process) (exitCode int, err error)
}

// Puller fetches an image that is not present locally (FROM, --pull).
// Optional: nil means only local images can be used.
type Puller interface {
	Pull(ctx context.Context, ref string, platform string, out io.Writer) error
}

// Config wires a Builder.
type Config struct {
	Store  ImageStore
	Runner Runner
	Puller Puller
	// Root holds the cache index, cache mounts and temporary files.
	Root string
	// ScratchDirs are candidate tmpfs directories for small build
	// contexts (the first on tmpfs is used; none means disk under Root).
	ScratchDirs []string
	// CacheLimit bounds the bytes of layers the build cache keeps; least
	// recently used entries are evicted past it. 0 means DefaultCacheLimit.
	CacheLimit int64
	Log        *slog.Logger
}

// DefaultCacheLimit is the build cache's default size bound.
const DefaultCacheLimit = 10 << 30

// Options describe one build.
type Options struct {
	// ContextDir is the build context, already unpacked.
	ContextDir string
	// Dockerfile is the Dockerfile's path inside the context ("" is
	// "Dockerfile"); DockerfileContent, when set, is used instead.
	Dockerfile        string
	DockerfileContent []byte
	Tags              []string
	BuildArgs         map[string]*string
	Labels            map[string]string
	Target            string
	NoCache           bool
	Pull              bool
	Platform          string
	// NetworkMode for RUN: "", "default", "host" run on the host network
	// (berth has no bridge for builds yet); "none" isolates.
	NetworkMode string
	// Secrets are the contents of RUN --mount=type=secret sources by id.
	Secrets map[string][]byte
	// Output receives the classic builder's text ("Step 1/3 : ...").
	Output io.Writer
	// Built, when set, is called with the image ID before "Successfully
	// built" is printed (the API's aux message).
	Built func(digest.Digest)
	// Quiet suppresses RUN output and step lines (the final ID is still
	// returned).
	Quiet bool
}

// Result is a finished build.
type Result struct {
	ID   digest.Digest
	Tags []string // normalised as given
	// CachedSteps and Steps count the executed steps and those served
	// from the cache.
	Steps, CachedSteps int
	Duration           time.Duration
}
