package build

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
)

// cacheEntry is one cached step: the image it produced, the bytes of the
// layer it added (what evicting it may reclaim) and when it was last used.
type cacheEntry struct {
	Image    digest.Digest `json:"image"`
	Size     int64         `json:"size"`
	LastUsed time.Time     `json:"lastUsed"`
}

// cache maps step keys to images, persisted as one JSON file (losing it
// only costs rebuilds, so it is written without fsync).
type cache struct {
	path  string
	limit int64

	mu      sync.Mutex
	entries map[digest.Digest]*cacheEntry
	dirty   bool
}

func openCache(path string, limit int64) (*cache, error) {
	c := &cache{path: path, limit: limit, entries: map[digest.Digest]*cacheEntry{}}
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &c.entries); err != nil {
			c.entries = map[digest.Digest]*cacheEntry{} // corrupt: start afresh
		}
	}
	return c, nil
}

func (c *cache) get(key digest.Digest) (digest.Digest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return "", false
	}
	e.LastUsed = time.Now()
	c.dirty = true
	return e.Image, true
}

func (c *cache) put(key, id digest.Digest, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = &cacheEntry{Image: id, Size: size, LastUsed: time.Now()}
	c.dirty = true
}

func (c *cache) drop(key digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
	c.dirty = true
}

func (c *cache) save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	data, err := json.Marshal(c.entries)
	if err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	c.dirty = false
	return nil
}

// victims returns the keys to evict, least recently used first, so that
// what remains fits in keep bytes (keep < 0: everything).
func (c *cache) victims(keep int64) []digest.Digest {
	c.mu.Lock()
	defer c.mu.Unlock()
	var total int64
	keys := make([]digest.Digest, 0, len(c.entries))
	for k, e := range c.entries {
		total += e.Size
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c.entries[keys[i]].LastUsed.Before(c.entries[keys[j]].LastUsed) })
	var out []digest.Digest
	for _, k := range keys {
		if keep >= 0 && total <= keep {
			break
		}
		out = append(out, k)
		total -= c.entries[k].Size
	}
	return out
}

// PruneReport is what POST /build/prune answers.
type PruneReport struct {
	CachesDeleted  []string
	SpaceReclaimed uint64
}

// Prune evicts cache entries, least recently used first, until at most
// keepBytes remain (keepBytes <= 0 with all: everything). Images a cache
// entry made are deleted unless tagged or used by a container.
func (b *Builder) Prune(ctx context.Context, all bool, keepBytes int64) (*PruneReport, error) {
	if keepBytes <= 0 {
		keepBytes = -1
		if !all {
			keepBytes = -1
		}
	}
	return b.evict(ctx, keepBytes)
}

func (b *Builder) evict(ctx context.Context, keep int64) (*PruneReport, error) {
	b.pruneMu.Lock()
	defer b.pruneMu.Unlock()
	rep := &PruneReport{CachesDeleted: []string{}}
	for _, k := range b.cache.victims(keep) {
		b.cache.mu.Lock()
		e := b.cache.entries[k]
		b.cache.mu.Unlock()
		if e == nil {
			continue
		}
		b.cache.drop(k)
		img, err := b.store.Get(ctx, e.Image.String())
		if err != nil {
			continue // already gone
		}
		if len(img.RepoTags) > 0 || b.inUse(e.Image) {
			continue // the user's image now: keep it, forget the entry
		}
		if _, err := b.store.Delete(ctx, e.Image.String(), false, false, nil); err != nil {
			if !errdefs.IsConflict(err) && !errdefs.IsNotFound(err) {
				b.log.Warn("build cache: delete image", "id", e.Image, "err", err)
			}
			continue
		}
		rep.CachesDeleted = append(rep.CachesDeleted, e.Image.String())
		rep.SpaceReclaimed += uint64(e.Size)
	}
	return rep, b.cache.save()
}

// inUse reports whether a running build holds an image (its stages are
// based on it), so eviction does not pull it away mid-build.
func (b *Builder) inUse(id digest.Digest) bool {
	b.activeMu.Lock()
	defer b.activeMu.Unlock()
	return b.active[id] > 0
}

func cachePath(root string) string { return filepath.Join(root, "cache.json") }
