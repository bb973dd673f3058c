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

	"github.com/opencontainers/go-digest"
)

// PutManifestResult tells the HTTP layer what was stored.
type PutManifestResult struct {
	Digest  digest.Digest
	Subject *Descriptor
	Tags    []string
}

// PutManifest stores a manifest under repo. ref is a tag or a digest (the
// body must then hash to it); extra tags are applied as well. Referenced
// blobs and child manifests must already be in the repository.
func (s *Store) PutManifest(ctx context.Context, repo, ref, contentType string, body []byte, tags []string) (PutManifestResult, error) {
	var d digest.Digest
	if IsDigest(ref) {
		var err error
		if d, err = ParseDigest(ref); err != nil {
			return PutManifestResult{}, err
		}
		if got := d.Algorithm().FromBytes(body); got != d {
			return PutManifestResult{}, fmt.Errorf("%w: manifest hashes to %s, not %s", ErrDigestInvalid, got, d)
		}
	} else {
		tags = append([]string{ref}, tags...)
		d = digest.SHA256.FromBytes(body)
	}
	for _, t := range tags {
		if err := ValidateTag(t); err != nil {
			return PutManifestResult{}, err
		}
	}
	m, err := ParseManifest(contentType, body)
	if err != nil {
		return PutManifestResult{}, err
	}
	unlock, err := s.sharedLock()
	if err != nil {
		return PutManifestResult{}, err
	}
	defer unlock()
	if err := s.checkReferences(repo, m); err != nil {
		return PutManifestResult{}, err
	}
	// Content first, then the referrers entry, then the revision link and
	// tags: a crash in between leaves only unreferenced content for GC.
	if err := s.putBlobBytes(d, body); err != nil {
		return PutManifestResult{}, fmt.Errorf("put manifest: %w", err)
	}
	if m.Subject != nil {
		desc := Descriptor{
			MediaType:    m.MediaType,
			Digest:       d,
			Size:         int64(len(body)),
			ArtifactType: m.EffectiveArtifactType(),
			Annotations:  m.Annotations,
		}
		raw, _ := json.Marshal(desc)
		if err := s.writeFileAtomic(s.referrerPath(repo, m.Subject.Digest, d), raw); err != nil {
			return PutManifestResult{}, fmt.Errorf("put manifest referrer: %w", err)
		}
	}
	if err := s.writeFileAtomic(s.revisionLink(repo, d), []byte(m.MediaType)); err != nil {
		return PutManifestResult{}, fmt.Errorf("put manifest: %w", err)
	}
	for _, t := range tags {
		if err := s.writeFileAtomic(s.tagPath(repo, t), []byte(d)); err != nil {
			return PutManifestResult{}, fmt.Errorf("tag %s: %w", t, err)
		}
	}
	return PutManifestResult{Digest: d, Subject: m.Subject, Tags: tags}, nil
}

// checkReferences makes sure what the manifest points to is in repo, so
// that a pulled manifest can always be pulled whole. Non-distributable
// layers and the subject are exempt.
func (s *Store) checkReferences(repo string, m *Manifest) error {
	if m.Config != nil && !exists(s.layerLink(repo, m.Config.Digest)) {
		return fmt.Errorf("%w: config %s", ErrManifestBlobUnknown, m.Config.Digest)
	}
	for _, l := range m.Layers {
		if nonDistributable(l) {
			continue
		}
		if !exists(s.layerLink(repo, l.Digest)) {
			return fmt.Errorf("%w: layer %s", ErrManifestBlobUnknown, l.Digest)
		}
	}
	for _, c := range m.Manifests {
		if !exists(s.revisionLink(repo, c.Digest)) {
			return fmt.Errorf("%w: manifest %s", ErrManifestBlobUnknown, c.Digest)
		}
	}
	return nil
}

// putBlobBytes stores small verified content (a manifest) by digest.
func (s *Store) putBlobBytes(d digest.Digest, body []byte) error {
	dst := s.blobPath(d)
	if exists(dst) {
		return nil
	}
	return s.writeFileAtomic(dst, body)
}

func (s *Store) referrerPath(repo string, subject, d digest.Digest) string {
	return s.repoPath(repo, "_referrers", string(subject.Algorithm()), subject.Encoded(),
		string(d.Algorithm())+"-"+d.Encoded())
}

// ManifestInfo describes a stored manifest.
type ManifestInfo struct {
	Digest    digest.Digest
	MediaType string
	Size      int64
}

// resolve turns a tag or digest into a digest present in repo.
func (s *Store) resolve(repo, ref string) (digest.Digest, string, error) {
	var d digest.Digest
	if IsDigest(ref) {
		var err error
		if d, err = ParseDigest(ref); err != nil {
			return "", "", err
		}
	} else {
		if err := ValidateTag(ref); err != nil {
			return "", "", fmt.Errorf("%w: %s", ErrManifestUnknown, ref)
		}
		raw, err := os.ReadFile(s.tagPath(repo, ref))
		if err != nil {
			return "", "", fmt.Errorf("%w: tag %s", ErrManifestUnknown, ref)
		}
		if d, err = ParseDigest(strings.TrimSpace(string(raw))); err != nil {
			return "", "", fmt.Errorf("%w: tag %s is corrupt", ErrManifestUnknown, ref)
		}
	}
	mt, err := os.ReadFile(s.revisionLink(repo, d))
	if err != nil {
		return "", "", fmt.Errorf("%w: %s", ErrManifestUnknown, ref)
	}
	return d, string(mt), nil
}

// GetManifest returns a manifest of repo by tag or digest.
func (s *Store) GetManifest(ctx context.Context, repo, ref string) (ManifestInfo, []byte, error) {
	d, mt, err := s.resolve(repo, ref)
	if err != nil {
		return ManifestInfo{}, nil, err
	}
	body, err := os.ReadFile(s.blobPath(d))
	if err != nil {
		return ManifestInfo{}, nil, fmt.Errorf("%w: %s content missing", ErrManifestUnknown, d)
	}
	return ManifestInfo{Digest: d, MediaType: mt, Size: int64(len(body))}, body, nil
}

// StatManifest is GetManifest without the body.
func (s *Store) StatManifest(ctx context.Context, repo, ref string) (ManifestInfo, error) {
	d, mt, err := s.resolve(repo, ref)
	if err != nil {
		return ManifestInfo{}, err
	}
	fi, err := os.Stat(s.blobPath(d))
	if err != nil {
		return ManifestInfo{}, fmt.Errorf("%w: %s content missing", ErrManifestUnknown, d)
	}
	return ManifestInfo{Digest: d, MediaType: mt, Size: fi.Size()}, nil
}

// DeleteManifest removes a tag, or by digest a manifest with every tag
// pointing at it and its referrers entry.
func (s *Store) DeleteManifest(ctx context.Context, repo, ref string) error {
	if !IsDigest(ref) {
		if err := ValidateTag(ref); err != nil {
			return fmt.Errorf("%w: %s", ErrManifestUnknown, ref)
		}
		if err := os.Remove(s.tagPath(repo, ref)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: tag %s", ErrManifestUnknown, ref)
			}
			return fmt.Errorf("delete tag %s: %w", ref, err)
		}
		return nil
	}
	d, err := ParseDigest(ref)
	if err != nil {
		return err
	}
	if !exists(s.revisionLink(repo, d)) {
		return fmt.Errorf("%w: %s", ErrManifestUnknown, d)
	}
	tags, err := s.Tags(ctx, repo)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if raw, err := os.ReadFile(s.tagPath(repo, t)); err == nil && strings.TrimSpace(string(raw)) == string(d) {
			_ = os.Remove(s.tagPath(repo, t))
		}
	}
	if body, err := os.ReadFile(s.blobPath(d)); err == nil {
		var m Manifest
		if json.Unmarshal(body, &m) == nil && m.Subject != nil {
			if _, err := ParseDigest(string(m.Subject.Digest)); err == nil {
				_ = os.Remove(s.referrerPath(repo, m.Subject.Digest, d))
			}
		}
	}
	if err := os.Remove(s.revisionLink(repo, d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete manifest %s: %w", d, err)
	}
	return nil
}

// Tags lists repo's tags in lexical order; ErrNameUnknown if repo has none
// and never had manifests.
func (s *Store) Tags(ctx context.Context, repo string) ([]string, error) {
	ents, err := os.ReadDir(s.repoPath(repo, "_manifests", "tags"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if s.RepoExists(repo) {
				return []string{}, nil
			}
			return nil, fmt.Errorf("%w: %s", ErrNameUnknown, repo)
		}
		return nil, fmt.Errorf("list tags: %w", err)
	}
	tags := make([]string, 0, len(ents))
	for _, e := range ents {
		if !e.IsDir() && ValidateTag(e.Name()) == nil {
			tags = append(tags, e.Name())
		}
	}
	sort.Strings(tags)
	return tags, nil
}

// Referrers lists the manifests in repo whose subject is d, optionally only
// those of one artifact type.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]Descriptor, error) {
	dir := filepath.Dir(s.referrerPath(repo, d, d))
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list referrers: %w", err)
	}
	out := []Descriptor{}
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var desc Descriptor
		if json.Unmarshal(raw, &desc) != nil {
			continue
		}
		if _, err := ParseDigest(string(desc.Digest)); err != nil {
			continue
		}
		// The entry is written before the revision link; skip leftovers.
		if !exists(s.revisionLink(repo, desc.Digest)) {
			continue
		}
		if artifactType != "" && desc.ArtifactType != artifactType {
			continue
		}
		out = append(out, desc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}
