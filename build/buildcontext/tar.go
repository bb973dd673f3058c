// Package buildcontext packs a build context directory into the tar the
// build endpoint takes, leaving out what .dockerignore excludes (matched
// with github.com/moby/patternmatcher, as the docker CLI does). Excluded
// directories without exception patterns below them are not walked at
// all, so large ignored trees (node_modules, .git) cost nothing.
package buildcontext

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ReadIgnore returns the patterns of dir/.dockerignore (none if absent).
func ReadIgnore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ignorefile.ReadAll(f)
}

// Options control Write.
type Options struct {
	// Excludes are .dockerignore patterns.
	Excludes []string
	// Keep are context-relative paths always sent even when excluded
	// (the Dockerfile and .dockerignore, as docker does).
	Keep []string
	// Extra are files added under the given names (a Dockerfile from
	// outside the context or stdin).
	Extra map[string][]byte
}

// Write writes the context under dir as a tar stream to w.
func Write(w io.Writer, dir string, opts Options) error {
	pm, err := patternmatcher.New(opts.Excludes)
	if err != nil {
		return fmt.Errorf("invalid .dockerignore: %w", err)
	}
	keep := map[string]bool{}
	for _, k := range opts.Keep {
		keep[filepath.ToSlash(filepath.Clean(k))] = true
	}
	tw := tar.NewWriter(w)
	parents := map[string]patternmatcher.MatchInfo{}
	inodes := map[uint64]string{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		excluded := false
		if len(opts.Excludes) > 0 {
			parent := parents[filepath.ToSlash(filepath.Dir(rel))]
			m, info, err := pm.MatchesUsingParentResults(rel, parent)
			if err != nil {
				return err
			}
			if d.IsDir() {
				parents[rel] = info
			}
			excluded = m
		}
		if excluded && !keep[rel] {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if d.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		h.Format = tar.FormatPAX
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		if ino, nlink, ok := inodeOf(fi); ok && fi.Mode().IsRegular() && nlink > 1 {
			if first, seen := inodes[ino]; seen {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
				return tw.WriteHeader(h)
			}
			inodes[ino] = rel
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for name, data := range opts.Extra {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// Excluded reports whether rel (slash-separated, context-relative) is
// excluded by patterns: for checking that a -f Dockerfile is kept.
func Excluded(rel string, patterns []string) bool {
	m, err := patternmatcher.MatchesOrParentMatches(rel, patterns)
	return err == nil && m && !strings.HasPrefix(rel, "..")
}
