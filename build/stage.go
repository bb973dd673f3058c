package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// state is a stage's position: the image its last step committed (nil
// only for a scratch stage before its first step), that image's config,
// the step key that produced it and the ARGs in scope.
type state struct {
	img  *image.Image
	cfg  dockerspec.DockerOCIImage
	key  digest.Digest
	args []argValue // in declaration order
	// cmdSet records a CMD in this stage: a later ENTRYPOINT keeps it.
	cmdSet bool
}

type argValue struct {
	name, value string
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var defaultShell = []string{"/bin/sh", "-c"}

func (s *state) shell() []string {
	if len(s.cfg.Config.Shell) > 0 {
		return s.cfg.Config.Shell
	}
	return defaultShell
}

// argMap is the ARGs in scope.
func (s *state) argMap() map[string]string {
	m := make(map[string]string, len(s.args))
	for _, a := range s.args {
		m[a.name] = a.value
	}
	return m
}

// expandEnv is what variable substitution sees: ARGs, overridden by ENV.
func (s *state) expandEnv() shell.EnvGetter {
	env := mapEnv(s.argMap())
	env = append(env, s.cfg.Config.Env...)
	return shell.EnvsFromSlice(env)
}

// runEnv is a RUN process's environment: the config's Env plus the ARGs
// in scope that ENV does not set.
func (s *state) runEnv() []string {
	env := append([]string(nil), s.cfg.Config.Env...)
	for _, a := range s.args {
		if !hasEnv(env, a.name) {
			env = append(env, a.name+"="+a.value)
		}
	}
	return env
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			return true
		}
	}
	return false
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// clone deep-copies what steps mutate.
func (s *state) clone() *state {
	n := *s
	raw, _ := json.Marshal(s.cfg)
	n.cfg = dockerspec.DockerOCIImage{}
	json.Unmarshal(raw, &n.cfg)
	n.args = append([]argValue(nil), s.args...)
	return &n
}

func stepKey(parent digest.Digest, parts ...string) digest.Digest {
	h := digest.SHA256.Digester()
	h.Hash().Write([]byte(parent))
	for _, p := range parts {
		h.Hash().Write([]byte{0})
		h.Hash().Write([]byte(p))
	}
	return h.Digest()
}

// step numbers are global across the stages of a build, as the classic
// builder prints them.
func (bd *build) nextStep() int {
	bd.stepMu.Lock()
	defer bd.stepMu.Unlock()
	bd.stepNo++
	return bd.stepNo
}

func (bd *build) runStage(ctx context.Context, sr *stageRun) (*state, error) {
	st, err := bd.from(ctx, sr)
	if err != nil {
		return nil, stepError(bd.df.source, lineOf(sr.st.Location), err)
	}
	// ONBUILD triggers of the base image run right after FROM.
	if triggers := st.cfg.Config.OnBuild; len(triggers) > 0 {
		st.cfg.Config.OnBuild = nil
		for _, t := range triggers {
			cmd, err := parseTrigger(t)
			if err != nil {
				return nil, err
			}
			if st, err = bd.step(ctx, sr, st, cmd, true); err != nil {
				return nil, err
			}
		}
	}
	for _, cmd := range sr.st.Commands {
		next, err := bd.step(ctx, sr, st, cmd, false)
		if err != nil {
			return nil, stepError(bd.df.source, lineOf(cmd.Location()), err)
		}
		st = next
	}
	if st.img == nil {
		// FROM scratch alone: commit an empty image.
		img, err := bd.commit(ctx, st, nil, "", true)
		if err != nil {
			return nil, err
		}
		st.img = img
	}
	if sr.idx == bd.targetIdx && len(bd.opts.Labels) > 0 {
		keys := make([]string, 0, len(bd.opts.Labels))
		for k := range bd.opts.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, k+"="+bd.opts.Labels[k])
		}
		key := stepKey(st.key, "LABELS", strings.Join(kv, "\x00"))
		next := st.clone()
		if next.cfg.Config.Labels == nil {
			next.cfg.Config.Labels = map[string]string{}
		}
		for k, v := range bd.opts.Labels {
			next.cfg.Config.Labels[k] = v
		}
		if id, ok := bd.cachedImage(ctx, key); ok {
			next.img = id
			next.cfg = id.Config
		} else {
			next.key = key
			img, err := bd.commit(ctx, next, nil, `/bin/sh -c #(nop) LABEL `+strings.Join(kv, " "), false)
			if err != nil {
				return nil, err
			}
			next.img = img
		}
		next.key = key
		st = next
	}
	return st, nil
}

func parseTrigger(t string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(t))
	if err != nil || len(res.AST.Children) != 1 {
		return nil, errdefs.InvalidParameterf("invalid ONBUILD trigger %q: %v", t, err)
	}
	c, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		return nil, errdefs.InvalidParameterf("invalid ONBUILD trigger %q: %v", t, err)
	}
	return c, nil
}

// from starts a stage: from scratch, an earlier stage or an image.
func (bd *build) from(ctx context.Context, sr *stageRun) (*state, error) {
	n := bd.nextStep()
	bd.out.printf("Step %d/%d : %s", n, bd.totalStep, sr.st.SourceCode)
	bd.out.printf("\n")
	st := &state{}
	switch j := bd.stageRef(sr.base, sr.idx); {
	case j >= 0:
		dep := bd.all[j].res
		st.img, st.cfg, st.key = dep.img, dep.img.Config, stepKey(dep.key, "FROM-STAGE")
	case strings.EqualFold(sr.base, "scratch"):
		st.cfg.RootFS.Type = "layers"
		st.cfg.OS, st.cfg.Architecture, st.cfg.Variant = bd.platform.targetOS, bd.platform.targetArch, bd.platform.targetVariant
		st.key = stepKey("", cacheVersion, "FROM scratch", bd.platform.String())
		st.cfg.Config.Env = []string{"PATH=" + defaultPath}
		bd.out.printf(" ---> \n")
		sr.steps++
		return st, nil
	default:
		img, err := bd.baseImage(ctx, sr.base)
		if err != nil {
			return nil, err
		}
		st.img, st.cfg, st.key = img, img.Config, stepKey("", cacheVersion, "FROM", img.ID.String())
	}
	bd.hold(st.img.ID)
	if !hasEnv(st.cfg.Config.Env, "PATH") {
		// As both Docker builders do: a base without PATH gets the default.
		st.cfg.Config.Env = append([]string{"PATH=" + defaultPath}, st.cfg.Config.Env...)
	}
	bd.out.printf(" ---> %s\n", short(st.img.ID))
	sr.steps++
	return st, nil
}

func (bd *build) baseImage(ctx context.Context, ref string) (*image.Image, error) {
	if bd.opts.Pull && bd.b.puller != nil {
		if err := bd.b.puller.Pull(ctx, ref, bd.opts.Platform, bd.out); err != nil {
			return nil, err
		}
	}
	img, err := bd.b.store.Get(ctx, ref)
	if errdefs.IsNotFound(err) && bd.b.puller != nil && !bd.opts.Pull {
		if perr := bd.b.puller.Pull(ctx, ref, bd.opts.Platform, bd.out); perr != nil {
			return nil, perr
		}
		img, err = bd.b.store.Get(ctx, ref)
	}
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, errdefs.NotFoundf("pull access denied for %s, repository does not exist or may require 'docker login': image not found locally and no registry reachable", ref)
		}
		return nil, err
	}
	return img, nil
}

// cachedImage looks a step key up in the build cache.
func (bd *build) cachedImage(ctx context.Context, key digest.Digest) (*image.Image, bool) {
	if bd.opts.NoCache {
		return nil, false
	}
	id, ok := bd.b.cache.get(key)
	if !ok {
		return nil, false
	}
	img, err := bd.b.store.Get(ctx, id.String())
	if err != nil {
		bd.b.cache.drop(key)
		return nil, false
	}
	bd.hold(img.ID)
	return img, true
}

// commit stores st's config (plus a layer, when layer is not nil) as a new
// image on top of st.img, records it under st.key and returns it.
func (bd *build) commit(ctx context.Context, st *state, layer *layerFile, createdBy string, emptyHistory bool) (*image.Image, error) {
	var layers []image.Layer
	if st.img != nil {
		v, err := bd.b.store.View(ctx, st.img.ID.String())
		if err != nil {
			return nil, err
		}
		if layers, err = v.Layers(); err != nil {
			return nil, err
		}
	}
	cfg := st.cfg
	created := time.Now().UTC()
	if bd.epoch != nil {
		created = *bd.epoch
	}
	cfg.Created = &created
	cfg.History = append([]ocispec.History(nil), st.cfg.History...)
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = append([]digest.Digest(nil), st.cfg.RootFS.DiffIDs...)
	var size int64
	if layer != nil {
		l := image.NewLayer(layer.open, ocispec.MediaTypeImageLayer)
		diffID, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		layers = append(layers, l)
		size = layer.size
	}
	if !emptyHistory || layer != nil {
		cfg.History = append(cfg.History, ocispec.History{Created: &created, CreatedBy: createdBy, EmptyLayer: layer == nil})
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	v, err := image.NewView(raw, layers)
	if err != nil {
		return nil, err
	}
	img, err := bd.b.store.Put(ctx, v, image.PutOptions{})
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	bd.hold(img.ID)
	bd.b.cache.put(st.key, img.ID, size)
	return img, nil
}

// layerFile is a layer tar written to the builder's temp area.
type layerFile struct {
	path string
	size int64
}

func (l *layerFile) open() (io.ReadCloser, error) { return os.Open(l.path) }

// resolveWorkdir makes p absolute against the current WORKDIR.
func resolveWorkdir(cur, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	if cur == "" {
		cur = "/"
	}
	return path.Join(cur, p)
}

// cacheVersion salts every step key: bump it when a change to the builder
// makes older cache entries wrong.
const cacheVersion = "berth-build-2"
