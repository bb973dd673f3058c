package build

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// memContextLimit bounds the contexts unpacked into tmpfs: a context
// up to this size is read into memory first, and if it ends there it is
// unpacked on tmpfs (creating hundreds of small files on a disk costs far
// more than the build itself); larger ones go to disk.
const memContextLimit = 64 << 20

// LoadContext reads a build context (see the package function) into a new
// directory, on tmpfs when it is small and a tmpfs is available. cleanup
// removes it.
func (b *Builder) LoadContext(ctx context.Context, body io.Reader, remote string) (dir string, cleanup func(), err error) {
	head := make([]byte, 0, 1<<20)
	buf := bytes.NewBuffer(head)
	n, err := io.CopyN(buf, body, memContextLimit+1)
	if err != nil && err != io.EOF {
		return "", nil, fmt.Errorf("read build context: %w", err)
	}
	parent := filepath.Join(b.root, "tmp")
	if n <= memContextLimit && b.scratch != "" {
		parent = b.scratch
	}
	if dir, err = os.MkdirTemp(parent, "context-"); err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	var r io.Reader = buf
	if n > memContextLimit {
		r = io.MultiReader(buf, body)
	}
	if err := LoadContext(ctx, r, remote, dir); err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, cleanup, nil
}

// tmpfsDir returns the first candidate directory that is (or can be made)
// on tmpfs, or "".
func tmpfsDir(candidates ...string) string {
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if err := os.MkdirAll(c, 0o700); err != nil {
			continue
		}
		var st unix.Statfs_t
		if unix.Statfs(c, &st) == nil && st.Type == unix.TMPFS_MAGIC {
			return c
		}
	}
	return ""
}

// LoadContext unpacks a build context into dir: the request body (a tar,
// possibly compressed), or, when the body is empty and remote is set, the
// tarball or Dockerfile that remote's URL serves.
func LoadContext(ctx context.Context, body io.Reader, remote, dir string) error {
	br := bufio.NewReaderSize(body, 64<<10)
	if _, err := br.Peek(1); err == io.EOF {
		if remote == "" {
			return errdefs.InvalidParameterf("build context is empty")
		}
		return loadRemote(ctx, remote, dir)
	}
	rc, _, err := archive.Decompress(br)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("build context: %w", err))
	}
	defer rc.Close()
	return untarContext(ctx, rc, dir)
}

func loadRemote(ctx context.Context, remote, dir string) error {
	if !isURL(remote) {
		return errdefs.InvalidParameterf("remote context %q is not supported: only http(s) URLs of a tarball or a Dockerfile", remote)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, remote, nil)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("remote context: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("remote context %s: %s", remote, resp.Status)
	}
	f, err := os.CreateTemp(filepath.Dir(dir), "remote-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		return fmt.Errorf("remote context: %w", err)
	}
	if isArchive(f.Name()) {
		f.Seek(0, 0)
		_, err := archive.Apply(ctx, dir, f, archive.ApplyOptions{})
		return err
	}
	f.Seek(0, 0)
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(data)) == "" {
		return errdefs.InvalidParameterf("remote context %s is empty", remote)
	}
	return os.WriteFile(filepath.Join(dir, "Dockerfile"), data, 0o644)
}
