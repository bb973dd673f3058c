package build

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
)

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
	if _, err := archive.Apply(ctx, dir, br, archive.ApplyOptions{}); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("build context: %w", err))
	}
	return nil
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
