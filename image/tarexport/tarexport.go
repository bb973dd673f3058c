// Package tarexport writes images as tar archives and reads them back:
// `docker save` and `docker load`. An archive is an OCI image layout
// (oci-layout, index.json, blobs/sha256/...) with Docker's manifest.json
// beside it, as Docker 25 and later write it; Docker 20.10 reads it through
// manifest.json. Loading takes that, older docker-archive files (layer.tar
// directories) and plain OCI layouts.
package tarexport

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// manifestItem is one entry of Docker's manifest.json.
type manifestItem struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Save writes the images refs name (tags or IDs) to w.
func Save(ctx context.Context, store *image.Store, refs []string, w io.Writer) error {
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	var items []manifestItem
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	mtime := time.Unix(0, 0)
	writeDir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
	}
	writeBytes := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	blobPath := func(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }
	if err := writeDir("blobs/"); err != nil {
		return err
	}
	if err := writeDir("blobs/sha256/"); err != nil {
		return err
	}
	for _, ref := range refs {
		img, err := store.Get(ctx, ref)
		if err != nil {
			return err
		}
		view, err := store.View(ctx, ref)
		if err != nil {
			return err
		}
		rawManifest, err := view.RawManifest()
		if err != nil {
			return err
		}
		rawConfig, err := view.RawConfigFile()
		if err != nil {
			return err
		}
		layers, err := view.Layers()
		if err != nil {
			return err
		}
		item := manifestItem{Config: blobPath(img.ID)}
		if !written[img.ID] {
			if err := writeBytes(blobPath(img.ID), rawConfig); err != nil {
				return err
			}
			written[img.ID] = true
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return err
			}
			item.Layers = append(item.Layers, blobPath(d))
			if written[d] {
				continue
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			err = tw.WriteHeader(&tar.Header{Name: blobPath(d), Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: mtime})
			if err == nil {
				_, err = io.CopyN(tw, rc, size)
			}
			rc.Close()
			if err != nil {
				return fmt.Errorf("save layer %s: %w", d, err)
			}
			written[d] = true
		}
		md := digest.FromBytes(rawManifest)
		if !written[md] {
			if err := writeBytes(blobPath(md), rawManifest); err != nil {
				return err
			}
			written[md] = true
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(rawManifest))}
		if named, err := reference.ParseNormalizedNamed(ref); err == nil {
			if tagged, ok := reference.TagNameOnly(named).(reference.NamedTagged); ok && !isID(ref, img) {
				item.RepoTags = append(item.RepoTags, reference.FamiliarString(tagged))
				desc.Annotations = map[string]string{
					"io.containerd.image.name": tagged.String(),
					ocispec.AnnotationRefName:  tagged.Tag(),
				}
			}
		}
		index.Manifests = append(index.Manifests, desc)
		items = append(items, item)
	}
	mj, _ := json.Marshal(items)
	ij, _ := json.Marshal(index)
	for _, f := range []struct {
		name string
		data []byte
	}{{"index.json", ij}, {"manifest.json", mj}, {ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)}} {
		if err := writeBytes(f.name, f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// isID tells whether ref named the image by ID rather than by name.
func isID(ref string, img *image.Image) bool {
	if ref == img.ID.String() || ref == img.ID.Encoded() {
		return true
	}
	return len(ref) >= 12 && len(ref) <= 64 && bytes.HasPrefix([]byte(img.ID.Encoded()), []byte(ref))
}

// Loaded is one image read from an archive.
type Loaded struct {
	ID   digest.Digest
	Tags []string // familiar names
}

// Load reads an archive into the store. The archive is unpacked to a
// temporary directory first (safely: no entry can escape it), since
// manifest.json may come after the blobs it names.
func Load(ctx context.Context, store *image.Store, r io.Reader, tmpRoot string) ([]Loaded, error) {
	dir, err := os.MkdirTemp(tmpRoot, "load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if _, err := archive.Apply(ctx, dir, r, archive.ApplyOptions{}); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("load: %w", err))
	}
	open := func(name string) (*os.File, error) {
		p, err := securejoin.SecureJoin(dir, name)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("load: archive entry %s: %w", name, err))
		}
		return f, nil
	}
	readAll := func(name string) ([]byte, error) {
		f, err := open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, 64<<20))
	}
	if data, err := readAll("manifest.json"); err == nil {
		var items []manifestItem
		if err := json.Unmarshal(data, &items); err != nil {
			return nil, errdefs.InvalidParameterf("load: manifest.json: %v", err)
		}
		var out []Loaded
		for _, it := range items {
			rawConfig, err := readAll(it.Config)
			if err != nil {
				return nil, err
			}
			var layers []image.Layer
			for _, lp := range it.Layers {
				lp := lp
				mt, err := sniffLayer(open, lp)
				if err != nil {
					return nil, err
				}
				layers = append(layers, image.NewLayer(func() (io.ReadCloser, error) { return open(lp) }, mt))
			}
			view, err := image.NewView(rawConfig, layers)
			if err != nil {
				return nil, err
			}
			l, err := put(ctx, store, view, it.RepoTags)
			if err != nil {
				return nil, err
			}
			out = append(out, l)
		}
		return out, nil
	}
	data, err := readAll("index.json")
	if err != nil {
		return nil, errdefs.InvalidParameterf("load: neither manifest.json nor index.json in the archive")
	}
	return loadOCI(ctx, store, data, readAll, open)
}

// sniffLayer tells a layer file's media type from its first bytes.
func sniffLayer(open func(string) (*os.File, error), name string) (string, error) {
	f, err := open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	switch archive.Detect(head[:n]) {
	case archive.Gzip:
		return ocispec.MediaTypeImageLayerGzip, nil
	case archive.Zstd:
		return ocispec.MediaTypeImageLayerZstd, nil
	case archive.Uncompressed:
		return ocispec.MediaTypeImageLayer, nil
	}
	return "", errdefs.InvalidParameterf("load: layer %s: unsupported compression", name)
}

func put(ctx context.Context, store *image.Store, view image.View, tags []string) (Loaded, error) {
	ref := ""
	if len(tags) > 0 {
		ref = tags[0]
	}
	img, err := store.Put(ctx, view, image.PutOptions{Ref: ref})
	if err != nil {
		return Loaded{}, fmt.Errorf("load: %w", err)
	}
	l := Loaded{ID: img.ID}
	for i, t := range tags {
		if i > 0 {
			if err := store.Tag(ctx, img.ID, t); err != nil {
				return Loaded{}, err
			}
		}
		if n, err := reference.ParseNormalizedNamed(t); err == nil {
			l.Tags = append(l.Tags, reference.FamiliarString(reference.TagNameOnly(n)))
		}
	}
	return l, nil
}

// loadOCI loads the images of an OCI layout's index.json.
func loadOCI(ctx context.Context, store *image.Store, indexJSON []byte, readAll func(string) ([]byte, error), open func(string) (*os.File, error)) ([]Loaded, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(indexJSON, &idx); err != nil {
		return nil, errdefs.InvalidParameterf("load: index.json: %v", err)
	}
	blob := func(d digest.Digest) string { return path.Join("blobs", d.Algorithm().String(), d.Encoded()) }
	var out []Loaded
	for _, desc := range idx.Manifests {
		if err := desc.Digest.Validate(); err != nil {
			return nil, errdefs.InvalidParameterf("load: index.json: %v", err)
		}
		raw, err := readAll(blob(desc.Digest))
		if err != nil {
			return nil, err
		}
		if digest.FromBytes(raw) != desc.Digest {
			return nil, errdefs.InvalidParameterf("load: manifest %s does not match its digest", desc.Digest)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil || m.Config.Digest == "" {
			// A nested index (multi-platform): not supported here.
			return nil, errdefs.InvalidParameterf("load: %s is not an image manifest", desc.Digest)
		}
		rawConfig, err := readAll(blob(m.Config.Digest))
		if err != nil {
			return nil, err
		}
		var layers []image.Layer
		var cfg dockerspec.DockerOCIImage
		if err := json.Unmarshal(rawConfig, &cfg); err != nil {
			return nil, errdefs.InvalidParameterf("load: config: %v", err)
		}
		for _, ld := range m.Layers {
			if err := ld.Digest.Validate(); err != nil {
				return nil, errdefs.InvalidParameterf("load: layer: %v", err)
			}
			p := blob(ld.Digest)
			layers = append(layers, image.NewLayer(func() (io.ReadCloser, error) { return open(p) }, ld.MediaType))
		}
		view := &fileView{raw: raw, m: &m, rawConfig: rawConfig, cfg: &cfg, layers: layers}
		var tags []string
		if name := desc.Annotations["io.containerd.image.name"]; name != "" {
			tags = append(tags, name)
		} else if name := desc.Annotations[ocispec.AnnotationRefName]; strings.ContainsAny(name, "/:") {
			// Only a full reference names the image; a bare "latest" or
			// "v1" (what OCI layout writers put there) is just a tag.
			if _, err := reference.ParseNormalizedNamed(name); err == nil {
				tags = append(tags, name)
			}
		}
		l, err := put(ctx, store, view, tags)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errors.New("load: the archive holds no image")
	}
	return out, nil
}

// fileView is an image of an OCI layout, keeping its manifest.
type fileView struct {
	raw       []byte
	m         *ocispec.Manifest
	rawConfig []byte
	cfg       *dockerspec.DockerOCIImage
	layers    []image.Layer
}

func (v *fileView) Digest() (digest.Digest, error)                  { return digest.FromBytes(v.raw), nil }
func (v *fileView) Manifest() (*ocispec.Manifest, error)            { return v.m, nil }
func (v *fileView) RawManifest() ([]byte, error)                    { return v.raw, nil }
func (v *fileView) ConfigName() (digest.Digest, error)              { return v.m.Config.Digest, nil }
func (v *fileView) ConfigFile() (*dockerspec.DockerOCIImage, error) { return v.cfg, nil }
func (v *fileView) RawConfigFile() ([]byte, error)                  { return v.rawConfig, nil }
func (v *fileView) Layers() ([]image.Layer, error)                  { return v.layers, nil }
