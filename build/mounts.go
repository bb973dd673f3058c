package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/berth-dev/berth/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runMounts turns RUN --mount flags into OCI mounts. Sources that need
// a mounted image (bind from a stage or image) are mounted for the step
// and released by the caller's deferred cleanups registered on ctx.
func (bd *build) runMounts(ctx context.Context, st *state, rootfs, scratch, network string, mounts []*instructions.Mount) ([]specs.Mount, error) {
	var out []specs.Mount
	for i, m := range mounts {
		target := m.Target
		if target != "" && !path.IsAbs(target) {
			target = resolveWorkdir(st.cfg.Config.WorkingDir, target)
		}
		switch m.Type {
		case instructions.MountTypeCache:
			if target == "" {
				return nil, errdefs.InvalidParameterf("RUN --mount=type=cache needs a target")
			}
			id := m.CacheID
			if id == "" {
				id = target
			}
			dir := filepath.Join(bd.b.root, "mounts", "cache-"+digest.FromString(id).Encoded()[:24])
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				mode := os.FileMode(0o755)
				if m.Mode != nil {
					mode = os.FileMode(*m.Mode)
				}
				if err := os.MkdirAll(dir, mode); err != nil {
					return nil, err
				}
				os.Chmod(dir, mode)
				if m.UID != nil || m.GID != nil {
					os.Chown(dir, int(ptrOr(m.UID, 0)), int(ptrOr(m.GID, 0)))
				}
			}
			opts := []string{"rbind", "rw"}
			if m.ReadOnly {
				opts[1] = "ro"
			}
			out = append(out, specs.Mount{Destination: target, Type: "bind", Source: dir, Options: opts})
		case instructions.MountTypeTmpfs:
			if target == "" {
				return nil, errdefs.InvalidParameterf("RUN --mount=type=tmpfs needs a target")
			}
			opts := []string{"nosuid", "nodev"}
			if m.SizeLimit > 0 {
				opts = append(opts, "size="+strconv.FormatInt(m.SizeLimit, 10))
			}
			out = append(out, specs.Mount{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: opts})
		case instructions.MountTypeBind:
			if target == "" {
				return nil, errdefs.InvalidParameterf("RUN --mount=type=bind needs a target")
			}
			root := bd.opts.ContextDir
			if m.From != "" {
				img, err := bd.sourceImage(ctx, m.From)
				if err != nil {
					return nil, err
				}
				cid := "build-mnt-" + randomID()[:24]
				if root, err = bd.b.store.CreateRootfs(ctx, cid, img); err != nil {
					return nil, err
				}
				bd.deferCleanup(scratch, func() { bd.b.store.RemoveRootfs(context.Background(), cid) })
			}
			src, err := secureJoin(root, m.Source)
			if err != nil {
				return nil, err
			}
			if _, err := os.Stat(src); err != nil {
				return nil, errdefs.InvalidParameterf("RUN --mount=type=bind: source %s: %v", m.Source, err)
			}
			opts := []string{"rbind", "ro"}
			if !m.ReadOnly {
				// Writes to a bind mount are discarded in BuildKit; here
				// they go to a private copy-on-write... of the source
				// itself, so keep context binds read-only.
				if m.From != "" {
					opts[1] = "rw"
				}
			}
			out = append(out, specs.Mount{Destination: target, Type: "bind", Source: src, Options: opts})
		case instructions.MountTypeSecret:
			id := m.CacheID
			if id == "" && target != "" {
				id = path.Base(target)
			}
			if target == "" {
				target = "/run/secrets/" + id
			}
			data, ok := bd.opts.Secrets[id]
			if !ok {
				if m.Required {
					return nil, errdefs.InvalidParameterf("secret %s not found", id)
				}
				continue
			}
			f := filepath.Join(scratch, fmt.Sprintf("secret-%d", i))
			mode := os.FileMode(0o400)
			if m.Mode != nil {
				mode = os.FileMode(*m.Mode)
			}
			if err := os.WriteFile(f, data, mode); err != nil {
				return nil, err
			}
			os.Chown(f, int(ptrOr(m.UID, 0)), int(ptrOr(m.GID, 0)))
			out = append(out, specs.Mount{Destination: target, Type: "bind", Source: f, Options: []string{"bind", "ro"}})
		default:
			return nil, errdefs.InvalidParameterf("RUN --mount=type=%s is not supported", m.Type)
		}
	}
	if network == "host" || network == "" || network == "default" {
		for _, f := range []string{"/etc/resolv.conf", "/etc/hosts"} {
			if _, err := os.Stat(f); err == nil {
				out = append(out, specs.Mount{Destination: f, Type: "bind", Source: f, Options: []string{"bind", "ro"}})
			}
		}
	}
	return out, nil
}

// deferCleanup runs fn when the step's scratch dir is released.
func (bd *build) deferCleanup(scratch string, fn func()) {
	bd.cleanMu.Lock()
	defer bd.cleanMu.Unlock()
	if bd.cleanups == nil {
		bd.cleanups = map[string][]func(){}
	}
	bd.cleanups[scratch] = append(bd.cleanups[scratch], fn)
}

func (bd *build) runCleanups(scratch string) {
	bd.cleanMu.Lock()
	fns := bd.cleanups[scratch]
	delete(bd.cleanups, scratch)
	bd.cleanMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func ptrOr(p *uint64, def uint64) uint64 {
	if p == nil {
		return def
	}
	return *p
}

// secureJoin resolves p inside root, following symlinks without leaving it.
func secureJoin(root, p string) (string, error) {
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("resolve %s: %w", p, err))
	}
	return full, nil
}

// mkdirInRoot creates dir (absolute inside root) and its parents as root
// with mode 0755.
func mkdirInRoot(root, dir string) error {
	full, err := secureJoin(root, dir)
	if err != nil {
		return err
	}
	return os.MkdirAll(full, 0o755)
}

// clampWriter rewrites a layer tar so no timestamp is later than epoch
// (reproducible layers, as BuildKit's rewrite-timestamp does); without an
// epoch it passes bytes through.
type clampWriter struct {
	w    io.Writer
	pw   *io.PipeWriter
	done chan error
}

func newClampWriter(w io.Writer, epoch *time.Time) *clampWriter {
	if epoch == nil {
		return &clampWriter{w: w}
	}
	pr, pw := io.Pipe()
	c := &clampWriter{pw: pw, done: make(chan error, 1)}
	go func() {
		err := clampTar(pr, w, *epoch)
		pr.CloseWithError(err)
		c.done <- err
	}()
	return c
}

func (c *clampWriter) Write(p []byte) (int, error) {
	if c.pw == nil {
		return c.w.Write(p)
	}
	return c.pw.Write(p)
}

func (c *clampWriter) Close() error {
	if c.pw == nil {
		return nil
	}
	c.pw.Close()
	return <-c.done
}

func clampTar(r io.Reader, w io.Writer, epoch time.Time) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h.ModTime.After(epoch) {
			h.ModTime = epoch
		}
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}
