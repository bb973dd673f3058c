package build

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/opencontainers/go-digest"
)

// Builder builds images from Dockerfiles. It is safe for concurrent builds.
type Builder struct {
	store   ImageStore
	runner  Runner
	puller  Puller
	root    string
	scratch string // tmpfs dir for small contexts, "" if none
	log     *slog.Logger
	cache   *cache

	pruneMu  sync.Mutex
	activeMu sync.Mutex
	active   map[digest.Digest]int
}

// New opens the builder's state under cfg.Root.
func New(cfg Config) (*Builder, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheLimit == 0 {
		cfg.CacheLimit = DefaultCacheLimit
	}
	for _, d := range []string{cfg.Root, filepath.Join(cfg.Root, "tmp"), filepath.Join(cfg.Root, "mounts")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("builder: %w", err)
		}
	}
	// Leftovers of builds a crash interrupted.
	for _, d := range append([]string{filepath.Join(cfg.Root, "tmp")}, cfg.ScratchDirs...) {
		if ents, err := os.ReadDir(d); err == nil {
			for _, e := range ents {
				os.RemoveAll(filepath.Join(d, e.Name()))
			}
		}
	}
	c, err := openCache(cachePath(cfg.Root), cfg.CacheLimit)
	if err != nil {
		return nil, err
	}
	return &Builder{
		store: cfg.Store, runner: cfg.Runner, puller: cfg.Puller,
		root: cfg.Root, log: cfg.Log, cache: c,
		scratch: tmpfsDir(cfg.ScratchDirs...),
		active:  map[digest.Digest]int{},
	}, nil
}

// TempDir makes a directory for one build's context under the builder's
// root, removed by the caller.
func (b *Builder) TempDir(prefix string) (string, error) {
	return os.MkdirTemp(filepath.Join(b.root, "tmp"), prefix)
}

// build is the state of one Build call.
type build struct {
	b        *Builder
	opts     Options
	df       *dockerfile
	out      *output
	epoch    *time.Time // SOURCE_DATE_EPOCH
	platform platformArgs

	metaArgs  map[string]string // global ARGs after build-arg overrides
	usedArgs  sync.Map          // build-arg names consumed
	stages    []*stageRun       // the needed ones, in Dockerfile order
	all       []*stageRun       // every stage, by index
	targetIdx int
	totalStep int
	stepMu    sync.Mutex
	stepNo    int

	cleanMu  sync.Mutex
	cleanups map[string][]func()

	holdMu sync.Mutex
	held   []digest.Digest
}

// Build runs one build.
func (b *Builder) Build(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	src := opts.DockerfileContent
	if src == nil {
		name := opts.Dockerfile
		if name == "" {
			name = "Dockerfile"
		}
		p, err := secureJoin(opts.ContextDir, name)
		if err != nil {
			return nil, err
		}
		if src, err = os.ReadFile(p); err != nil {
			if os.IsNotExist(err) {
				return nil, errdefs.InvalidParameterf("Cannot locate specified Dockerfile: %s", name)
			}
			return nil, fmt.Errorf("read Dockerfile: %w", err)
		}
	}
	df, err := parseDockerfile(src)
	if err != nil {
		return nil, err
	}
	bd := &build{b: b, opts: opts, df: df, out: newOutput(opts.Output, opts.Quiet)}
	defer bd.release()
	defer bd.runCleanups("")
	if bd.platform, err = parsePlatformArgs(opts.Platform); err != nil {
		return nil, err
	}
	if v, ok := opts.BuildArgs["SOURCE_DATE_EPOCH"]; ok && v != nil && *v != "" {
		sec, err := strconv.ParseInt(*v, 10, 64)
		if err != nil {
			return nil, errdefs.InvalidParameterf("invalid SOURCE_DATE_EPOCH %q: %v", *v, err)
		}
		t := time.Unix(sec, 0).UTC()
		bd.epoch = &t
		bd.usedArgs.Store("SOURCE_DATE_EPOCH", true)
	}
	if err := bd.resolveMetaArgs(); err != nil {
		return nil, err
	}
	if err := bd.plan(); err != nil {
		return nil, err
	}
	final, err := bd.run(ctx)
	if err != nil {
		return nil, err
	}
	bd.warnUnusedArgs()
	res := &Result{ID: final.img.ID, Duration: time.Since(start)}
	for _, s := range bd.stages {
		res.Steps += s.steps
		res.CachedSteps += s.cached
	}
	if opts.Built != nil {
		opts.Built(final.img.ID)
	}
	bd.out.printf("Successfully built %s\n", short(final.img.ID))
	for _, t := range opts.Tags {
		if err := b.store.Tag(ctx, final.img.ID, t); err != nil {
			return nil, fmt.Errorf("tag %s: %w", t, err)
		}
		bd.out.printf("Successfully tagged %s\n", normalizeTag(t))
		res.Tags = append(res.Tags, t)
	}
	if err := b.cache.save(); err != nil {
		b.log.Warn("save build cache", "err", err)
	}
	go b.evictOverLimit()
	return res, nil
}

func (b *Builder) evictOverLimit() {
	if _, err := b.evict(context.Background(), b.cache.limit); err != nil {
		b.log.Warn("build cache eviction", "err", err)
	}
}

// hold protects an image from eviction while this build uses it.
func (bd *build) hold(id digest.Digest) {
	bd.b.activeMu.Lock()
	bd.b.active[id]++
	bd.b.activeMu.Unlock()
	bd.holdMu.Lock()
	bd.held = append(bd.held, id)
	bd.holdMu.Unlock()
}

func (bd *build) release() {
	bd.b.activeMu.Lock()
	defer bd.b.activeMu.Unlock()
	for _, id := range bd.held {
		if bd.b.active[id]--; bd.b.active[id] <= 0 {
			delete(bd.b.active, id)
		}
	}
}

// resolveMetaArgs evaluates the ARGs before the first FROM, in order, with
// build-arg overrides and the built-in platform args in scope.
func (bd *build) resolveMetaArgs() error {
	bd.metaArgs = map[string]string{}
	lex := shell.NewLex(bd.df.escape)
	env := bd.platform.env()
	for _, a := range bd.df.metaArgs {
		for _, kv := range a.Args {
			val := ""
			has := false
			if kv.Value != nil {
				v, _, err := lex.ProcessWord(*kv.Value, shell.EnvsFromSlice(mapEnv(mergeMaps(env, bd.metaArgs))))
				if err != nil {
					return stepError(bd.df.source, lineOf(a.Location()), errdefs.InvalidParameter(err))
				}
				val, has = v, true
			}
			if o, ok := bd.opts.BuildArgs[kv.Key]; ok && o != nil {
				val, has = *o, true
				bd.usedArgs.Store(kv.Key, true)
			} else if ok {
				bd.usedArgs.Store(kv.Key, true)
			}
			if has {
				bd.metaArgs[kv.Key] = val
			} else {
				bd.metaArgs[kv.Key] = ""
				if _, set := env[kv.Key]; set {
					bd.metaArgs[kv.Key] = env[kv.Key]
				}
			}
		}
	}
	return nil
}

func (bd *build) warnUnusedArgs() {
	var unused []string
	for k := range bd.opts.BuildArgs {
		if _, ok := bd.usedArgs.Load(k); ok || builtinArgs[k] {
			continue
		}
		unused = append(unused, k)
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		bd.out.printf("[Warning] One or more build-args [%s] were not consumed\n", strings.Join(unused, " "))
	}
}

// builtinArgs are the args every build accepts without an ARG line
// (Docker's predefined proxy args and the platform args).
var builtinArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true, "SOURCE_DATE_EPOCH": true,
}

// platformArgs are BuildKit's automatic platform args.
type platformArgs struct {
	targetOS, targetArch, targetVariant string
}

func parsePlatformArgs(p string) (platformArgs, error) {
	if p == "" {
		return platformArgs{targetOS: runtime.GOOS, targetArch: runtime.GOARCH}, nil
	}
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platformArgs{}, errdefs.InvalidParameterf("invalid platform %q: want os/arch[/variant]", p)
	}
	pa := platformArgs{targetOS: parts[0], targetArch: parts[1]}
	if len(parts) == 3 {
		pa.targetVariant = parts[2]
	}
	if pa.targetOS != runtime.GOOS || pa.targetArch != runtime.GOARCH {
		return platformArgs{}, errdefs.InvalidParameterf("platform %q is not supported: this daemon builds for %s/%s only", p, runtime.GOOS, runtime.GOARCH)
	}
	return pa, nil
}

func (p platformArgs) String() string {
	s := p.targetOS + "/" + p.targetArch
	if p.targetVariant != "" {
		s += "/" + p.targetVariant
	}
	return s
}

func (p platformArgs) env() map[string]string {
	build := runtime.GOOS + "/" + runtime.GOARCH
	return map[string]string{
		"TARGETPLATFORM": p.String(), "TARGETOS": p.targetOS, "TARGETARCH": p.targetArch, "TARGETVARIANT": p.targetVariant,
		"BUILDPLATFORM": build, "BUILDOS": runtime.GOOS, "BUILDARCH": runtime.GOARCH, "BUILDVARIANT": "",
	}
}

func mergeMaps(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func mapEnv(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func short(id digest.Digest) string {
	e := id.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// normalizeTag adds ":latest" as "Successfully tagged" prints it.
func normalizeTag(t string) string {
	if i := strings.LastIndex(t, ":"); i > strings.LastIndex(t, "/") || strings.Contains(t, "@") {
		return t
	}
	return t + ":latest"
}
