package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
)

// CommitOptions are the parameters of POST /commit.
type CommitOptions struct {
	Repo, Tag       string
	Comment, Author string
	Changes         []string
	Pause           bool
	// Config overrides the container's config in the new image (the body).
	Config *container.Config
}

// ContainerSecBackend serves rename, update, commit and the archive
// endpoints (docker cp).
type ContainerSecBackend interface {
	ContainerRename(ctx context.Context, name, newName string) error
	ContainerUpdate(ctx context.Context, name string, cfg *container.UpdateConfig) (container.UpdateResponse, error)
	// ContainerCommit returns the new image's ID.
	ContainerCommit(ctx context.Context, name string, opts CommitOptions) (string, error)
	ContainerStatPath(ctx context.Context, name, path string) (*container.PathStat, error)
	// ContainerArchivePath returns a tar of path, its root entry named
	// after path's base name.
	ContainerArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *container.PathStat, error)
	// ContainerExtractToDir unpacks the tar content into the directory path.
	ContainerExtractToDir(ctx context.Context, name, path string, copyUIDGID, noOverwriteDirNonDir bool, content io.Reader) error
}

func (s *Server) containerSecRoutes() {
	b, ok := s.backend.(ContainerSecBackend)
	if !ok {
		return
	}
	s.route("POST /containers/{name}/rename", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.ContainerRename(r.Context(), r.PathValue("name"), r.URL.Query().Get("name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.route("POST /containers/{name}/update", func(w http.ResponseWriter, r *http.Request) error {
		if err := checkJSONContentType(r); err != nil {
			return err
		}
		var cfg container.UpdateConfig
		if err := decodeJSONBody(r.Body, &cfg); err != nil {
			return err
		}
		resp, err := b.ContainerUpdate(r.Context(), r.PathValue("name"), &cfg)
		if err != nil {
			return err
		}
		if resp.Warnings == nil {
			resp.Warnings = []string{}
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	})
	s.route("POST /commit", func(w http.ResponseWriter, r *http.Request) error {
		if err := checkJSONContentType(r); err != nil {
			return err
		}
		q := r.URL.Query()
		opts := CommitOptions{
			Repo: q.Get("repo"), Tag: q.Get("tag"), Comment: q.Get("comment"), Author: q.Get("author"),
			Changes: q["changes"], Pause: q.Get("pause") == "" || boolValue(r, "pause"),
		}
		// The body is the config to apply; the CLI sends it (possibly null).
		data, err := io.ReadAll(io.LimitReader(r.Body, maxBodySize+1))
		if err != nil {
			return errdefs.InvalidParameterf("read request body: %v", err)
		}
		if len(data) > 0 && string(data) != "null" && string(data) != "null\n" {
			var cfg container.Config
			if err := json.Unmarshal(data, &cfg); err != nil {
				return errdefs.InvalidParameterf("invalid JSON: %v", err)
			}
			opts.Config = &cfg
		}
		id, err := b.ContainerCommit(r.Context(), q.Get("container"), opts)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
		return nil
	})
	archivePath := func(r *http.Request) (string, error) {
		p := r.URL.Query().Get("path")
		if p == "" {
			return "", errdefs.InvalidParameterf("path cannot be empty")
		}
		return p, nil
	}
	setStat := func(w http.ResponseWriter, st *container.PathStat) error {
		data, err := json.Marshal(st)
		if err != nil {
			return err
		}
		w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(data))
		return nil
	}
	s.route("HEAD /containers/{name}/archive", func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePath(r)
		if err != nil {
			return err
		}
		st, err := b.ContainerStatPath(r.Context(), r.PathValue("name"), p)
		if err != nil {
			return err
		}
		if err := setStat(w, st); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.route("GET /containers/{name}/archive", func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePath(r)
		if err != nil {
			return err
		}
		rc, st, err := b.ContainerArchivePath(r.Context(), r.PathValue("name"), p)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := setStat(w, st); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		io.Copy(w, rc)
		return nil
	})
	s.route("PUT /containers/{name}/archive", func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePath(r)
		if err != nil {
			return err
		}
		err = b.ContainerExtractToDir(r.Context(), r.PathValue("name"), p,
			boolValue(r, "copyUIDGID"), boolValue(r, "noOverwriteDirNonDir"), r.Body)
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
}
