package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// GCOptions configures a garbage collection.
type GCOptions struct {
	// DryRun reports what would be removed without removing it.
	DryRun bool
	// Grace spares anything written more recently than this, so that
	// content pushed while GC runs (blobs before their manifest, index
	// children before the index) is not taken for garbage.
	Grace time.Duration
}

// GCResult lists what a collection removed (or would remove).
type GCResult struct {
	Manifests []string // repo@digest
	Links     []string // repo@digest blob links
	Blobs     []digest.Digest
	Bytes     int64
	Uploads   int
}

// GC removes untagged manifests nothing refers to, blob links nothing
// refers to, blobs no repository links to, and abandoned uploads. It runs
// online: it holds the GC lock, which pushes take shared, so a push never
// sees a blob disappear between its check and its commit.
//
// A manifest is kept if it is tagged, younger than the grace period, a
// child of a kept index, or a referrer of a kept manifest.
func (s *Store) GC(ctx context.Context, opts GCOptions) (GCResult, error) {
	unlock, err := s.exclusiveLock()
	if err != nil {
		return GCResult{}, err
	}
	defer unlock()
	var res GCResult
	cutoff := time.Now().Add(-opts.Grace)
	young := func(path string) bool {
		fi, err := os.Stat(path)
		return err == nil && fi.ModTime().After(cutoff)
	}
	marked := map[digest.Digest]bool{}
	repos, err := s.Repositories(ctx)
	if err != nil {
		return res, err
	}
	for _, repo := range repos {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := s.gcRepo(ctx, repo, opts.DryRun, young, marked, &res); err != nil {
			return res, fmt.Errorf("gc %s: %w", repo, err)
		}
	}
	// Repositories with only blob links have no _manifests dir.
	if err := s.markLayerOnlyRepos(repos, marked, young, opts.DryRun, &res); err != nil {
		return res, err
	}
	// Sweep blobs nothing links to.
	err = filepath.WalkDir(s.path("blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		alg := filepath.Base(filepath.Dir(filepath.Dir(p)))
		dg := digest.NewDigestFromEncoded(digest.Algorithm(alg), d.Name())
		if marked[dg] || young(p) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		res.Blobs = append(res.Blobs, dg)
		res.Bytes += fi.Size()
		if !opts.DryRun {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("gc sweep: %w", err)
	}
	if !opts.DryRun {
		res.Uploads = s.PurgeUploads(ctx)
	}
	sort.Slice(res.Blobs, func(i, j int) bool { return res.Blobs[i] < res.Blobs[j] })
	return res, nil
}

// listLinks returns the digests under a links dir (<alg>/<hex>).
func listLinks(dir string) map[digest.Digest]string {
	out := map[digest.Digest]string{}
	algs, _ := os.ReadDir(dir)
	for _, a := range algs {
		ents, _ := os.ReadDir(filepath.Join(dir, a.Name()))
		for _, e := range ents {
			d := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), e.Name())
			if _, err := ParseDigest(string(d)); err == nil {
				out[d] = filepath.Join(dir, a.Name(), e.Name())
			}
		}
	}
	return out
}

func (s *Store) gcRepo(ctx context.Context, repo string, dry bool, young func(string) bool, marked map[digest.Digest]bool, res *GCResult) error {
	revisions := listLinks(s.repoPath(repo, "_manifests", "revisions"))
	manifests := map[digest.Digest]*Manifest{}
	for d := range revisions {
		body, err := os.ReadFile(s.blobPath(d))
		if err != nil {
			continue
		}
		var m Manifest
		if json.Unmarshal(body, &m) == nil {
			manifests[d] = &m
		}
	}
	keep := map[digest.Digest]bool{}
	var queue []digest.Digest
	add := func(d digest.Digest) {
		if _, ok := revisions[d]; ok && !keep[d] {
			keep[d] = true
			queue = append(queue, d)
		}
	}
	tags, _ := s.Tags(ctx, repo)
	for _, t := range tags {
		if raw, err := os.ReadFile(s.tagPath(repo, t)); err == nil {
			if d, err := ParseDigest(strings.TrimSpace(string(raw))); err == nil {
				add(d)
			}
		}
	}
	for d, p := range revisions {
		if young(p) {
			add(d)
		}
	}
	// Referrers by subject, so kept subjects keep their referrers.
	referrersOf := map[digest.Digest][]digest.Digest{}
	for d, m := range manifests {
		if m.Subject != nil {
			referrersOf[m.Subject.Digest] = append(referrersOf[m.Subject.Digest], d)
		}
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if m := manifests[d]; m != nil {
			for _, c := range m.Manifests {
				add(c.Digest)
			}
		}
		for _, r := range referrersOf[d] {
			add(r)
		}
	}
	used := map[digest.Digest]bool{}
	for d := range keep {
		marked[d] = true
		if m := manifests[d]; m != nil {
			for _, b := range m.descriptors() {
				used[b.Digest] = true
			}
		}
	}
	for d := range revisions {
		if keep[d] {
			continue
		}
		res.Manifests = append(res.Manifests, repo+"@"+d.String())
		if dry {
			continue
		}
		if m := manifests[d]; m != nil && m.Subject != nil {
			if _, err := ParseDigest(string(m.Subject.Digest)); err == nil {
				_ = os.Remove(s.referrerPath(repo, m.Subject.Digest, d))
			}
		}
		if err := os.Remove(revisions[d]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return s.gcLinks(repo, used, marked, young, dry, res)
}

// gcLinks drops blob links of repo that no kept manifest uses (unless
// young) and marks the rest.
func (s *Store) gcLinks(repo string, used, marked map[digest.Digest]bool, young func(string) bool, dry bool, res *GCResult) error {
	for d, p := range listLinks(s.repoPath(repo, "_layers")) {
		if used[d] || young(p) {
			marked[d] = true
			continue
		}
		res.Links = append(res.Links, repo+"@"+d.String())
		if !dry {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

func (s *Store) markLayerOnlyRepos(withManifests []string, marked map[digest.Digest]bool, young func(string) bool, dry bool, res *GCResult) error {
	seen := map[string]bool{}
	for _, r := range withManifests {
		seen[r] = true
	}
	base := s.path("repositories")
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if d.Name() == "_layers" {
			repo, _ := filepath.Rel(base, filepath.Dir(p))
			repo = filepath.ToSlash(repo)
			if !seen[repo] {
				if err := s.gcLinks(repo, nil, marked, young, dry, res); err != nil {
					return err
				}
			}
			return filepath.SkipDir
		}
		if strings.HasPrefix(d.Name(), "_") {
			return filepath.SkipDir
		}
		return nil
	})
}
