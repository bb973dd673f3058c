package distribution

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
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// archiveManifest is one entry of a docker-archive's manifest.json.
type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Save writes images as one tar that is both a docker-archive (manifest.json,
// read by every docker load) and an OCI image layout (index.json, blobs/),
// as Docker 25+ writes. Blobs are stored as they are in the store, so the
// manifests keep their digests.
func Save(ctx context.Context, store *image.Store, names []string, w io.Writer) error {
	type entry struct {
		view image.View
		id   digest.Digest
		tags []string
	}
	var entries []*entry
	byID := map[digest.Digest]*entry{}
	for _, name := range names {
		img, err := store.Get(ctx, name)
		if err != nil {
			return err
		}
		e := byID[img.ID]
		if e == nil {
			v, err := store.View(ctx, img.ID.String())
			if err != nil {
				return err
			}
			e = &entry{view: v, id: img.ID}
			byID[img.ID] = e
			entries = append(entries, e)
		}
		// A name that is the image ID or a digest saves every tag;
		// a tag saves just that tag, as docker save does.
		if named, err := reference.ParseNormalizedNamed(name); err == nil && !strings.HasPrefix(img.ID.Encoded(), strings.TrimPrefix(name, "sha256:")) {
			if _, dg := named.(reference.Digested); !dg {
				e.tags = appendUnique(e.tags, reference.FamiliarString(reference.TagNameOnly(named)))
				continue
			}
		}
		for _, t := range img.RepoTags {
			if n, err := reference.ParseNormalizedNamed(t); err == nil {
				e.tags = appendUnique(e.tags, reference.FamiliarString(n))
			}
		}
	}
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	writeFile := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(b)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	writeBlob := func(d digest.Digest, size int64, open func() (io.ReadCloser, error)) error {
		if written[d] {
			return nil
		}
		written[d] = true
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + d.Encoded(), Mode: 0o444, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err = io.CopyN(tw, rc, size)
		return err
	}
	bytesOpener := func(b []byte) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	var index ocispec.Index
	index.SchemaVersion = 2
	index.MediaType = ocispec.MediaTypeImageIndex
	var manifests []archiveManifest
	repos := map[string]map[string]string{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		layers, err := e.view.Layers()
		if err != nil {
			return err
		}
		am := archiveManifest{Config: "blobs/sha256/" + e.id.Encoded(), RepoTags: e.tags}
		for _, l := range layers {
			d, _ := l.Digest()
			size, _ := l.Size()
			am.Layers = append(am.Layers, "blobs/sha256/"+d.Encoded())
			if err := writeBlob(d, size, l.Compressed); err != nil {
				return fmt.Errorf("save %s: layer %s: %w", e.id, d, err)
			}
		}
		rawConfig, err := e.view.RawConfigFile()
		if err != nil {
			return err
		}
		if err := writeBlob(e.id, int64(len(rawConfig)), bytesOpener(rawConfig)); err != nil {
			return err
		}
		rawManifest, err := e.view.RawManifest()
		if err != nil {
			return err
		}
		md := digest.FromBytes(rawManifest)
		if err := writeBlob(md, int64(len(rawManifest)), bytesOpener(rawManifest)); err != nil {
			return err
		}
		doc, err := DecodeManifest(rawManifest, "")
		if err != nil {
			return err
		}
		desc := ocispec.Descriptor{MediaType: doc.mediaType, Digest: md, Size: int64(len(rawManifest))}
		if len(e.tags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, t := range e.tags {
			n, _ := reference.ParseNormalizedNamed(t)
			d := desc
			tag := ""
			if tg, ok := n.(reference.Tagged); ok {
				tag = tg.Tag()
			}
			d.Annotations = map[string]string{"io.containerd.image.name": n.String(), ocispec.AnnotationRefName: tag}
			index.Manifests = append(index.Manifests, d)
			if repos[reference.FamiliarName(n)] == nil {
				repos[reference.FamiliarName(n)] = map[string]string{}
			}
			if len(layers) > 0 {
				top, _ := layers[len(layers)-1].DiffID()
				repos[reference.FamiliarName(n)][tag] = top.Encoded()
			}
		}
		manifests = append(manifests, am)
	}
	idx, _ := json.Marshal(index)
	mj, _ := json.Marshal(manifests)
	if err := writeFile("index.json", idx); err != nil {
		return err
	}
	if err := writeFile("manifest.json", mj); err != nil {
		return err
	}
	if err := writeFile(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if len(repos) > 0 {
		rj, _ := json.Marshal(repos)
		if err := writeFile("repositories", rj); err != nil {
			return err
		}
	}
	return tw.Close()
}

func appendUnique(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}

// LoadResult is one image a load stored.
type LoadResult struct {
	ID   digest.Digest
	Tags []string // familiar names, e.g. "busybox:latest"
}

// Load reads a docker-archive (any docker save) or an OCI image layout tar
// from r and stores its images. The tar is spooled under tmpDir (it may
// list its manifest last), then the images are put into the store, their
// blobs verified like pulled ones.
func Load(ctx context.Context, store *image.Store, r io.Reader, tmpDir string, loaded func(LoadResult)) error {
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(tmpDir, "load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fsys, err := spool(ctx, r, dir)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("load: %w", err))
	}
	_, hasIndex := fsys.files["index.json"]
	_, hasManifest := fsys.files["manifest.json"]
	switch {
	case hasManifest:
		return loadDockerArchive(ctx, store, fsys, loaded)
	case hasIndex:
		return loadOCILayout(ctx, store, fsys, loaded)
	}
	return errdefs.InvalidParameterf("load: neither manifest.json nor index.json found: not a docker save or OCI layout archive")
}

// spooled is a tar unpacked into a directory: regular files by cleaned
// name, and links resolved to the file they name.
type spooled struct {
	dir   string
	files map[string]string // name -> path on disk
}

func (s *spooled) read(name string, max int64) ([]byte, error) {
	p, ok := s.files[path.Clean(name)]
	if !ok {
		return nil, fmt.Errorf("%s: not in the archive", name)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, max)
	}
	return b, nil
}

func (s *spooled) opener(name string) (func() (io.ReadCloser, error), error) {
	p, ok := s.files[path.Clean(name)]
	if !ok {
		return nil, fmt.Errorf("%s: not in the archive", name)
	}
	return func() (io.ReadCloser, error) { return os.Open(p) }, nil
}

func spool(ctx context.Context, r io.Reader, dir string) (*spooled, error) {
	s := &spooled{dir: dir, files: map[string]string{}}
	links := map[string]string{}
	tr := tar.NewReader(r)
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if name == "." || strings.HasPrefix(name, "../") || path.IsAbs(name) || name == ".." {
			return nil, fmt.Errorf("tar entry %q: path outside the archive", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			n++
			p := filepath.Join(dir, fmt.Sprintf("f%06d", n))
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return nil, err
			}
			s.files[name] = p
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			links[name] = path.Clean(strings.TrimPrefix(target, "/"))
		case tar.TypeLink:
			links[name] = path.Clean(strings.TrimPrefix(hdr.Linkname, "/"))
		}
	}
	for name, target := range links {
		for i := 0; i < 16; i++ { // chains of links, bounded
			if t, ok := links[target]; ok {
				target = t
				continue
			}
			break
		}
		if p, ok := s.files[target]; ok {
			s.files[name] = p
		}
	}
	return s, nil
}

// layerMediaType names a layer file's compression from its first bytes.
func layerMediaType(open func() (io.ReadCloser, error)) (string, error) {
	rc, err := open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var magic [4]byte
	n, _ := io.ReadFull(rc, magic[:])
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return ocispec.MediaTypeImageLayerGzip, nil
	case n >= 4 && bytes.Equal(magic[:], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return ocispec.MediaTypeImageLayer, nil
}

func loadDockerArchive(ctx context.Context, store *image.Store, fsys *spooled, loaded func(LoadResult)) error {
	raw, err := fsys.read("manifest.json", maxManifestSize)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("load: %w", err))
	}
	var ms []archiveManifest
	if err := json.Unmarshal(raw, &ms); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("load: manifest.json: %w", err))
	}
	// When the archive is also an OCI layout, its manifests are kept so
	// that digests survive the round trip.
	ociByConfig := map[digest.Digest][]byte{}
	if idx, err := fsys.read("index.json", maxManifestSize); err == nil {
		var index ocispec.Index
		if json.Unmarshal(idx, &index) == nil {
			for _, d := range index.Manifests {
				if d.Digest.Validate() != nil {
					continue
				}
				if mb, err := fsys.read("blobs/sha256/"+d.Digest.Encoded(), maxManifestSize); err == nil && digest.FromBytes(mb) == d.Digest {
					if doc, err := DecodeManifest(mb, d.MediaType); err == nil && doc.manifest != nil {
						ociByConfig[doc.manifest.Config.Digest] = mb
					}
				}
			}
		}
	}
	for _, m := range ms {
		rawConfig, err := fsys.read(m.Config, maxConfigSize)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("load: config: %w", err))
		}
		var layers []image.Layer
		for _, lp := range m.Layers {
			open, err := fsys.opener(lp)
			if err != nil {
				return errdefs.InvalidParameter(fmt.Errorf("load: layer: %w", err))
			}
			mt, err := layerMediaType(open)
			if err != nil {
				return err
			}
			layers = append(layers, image.NewLayer(open, mt))
		}
		var view image.View
		if mb, ok := ociByConfig[digest.FromBytes(rawConfig)]; ok {
			view, err = ociView(fsys, mb, rawConfig)
		} else {
			view, err = image.NewView(rawConfig, layers)
		}
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("load: %w", err))
		}
		if err := putLoaded(ctx, store, view, m.RepoTags, loaded); err != nil {
			return err
		}
	}
	return nil
}

func putLoaded(ctx context.Context, store *image.Store, view image.View, tags []string, loaded func(LoadResult)) error {
	var first string
	if len(tags) > 0 {
		first = tags[0]
	}
	img, err := store.Put(ctx, view, image.PutOptions{Ref: first})
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	res := LoadResult{ID: img.ID}
	for i, t := range tags {
		if i > 0 {
			if err := store.Tag(ctx, img.ID, t); err != nil {
				return err
			}
		}
		if n, err := reference.ParseNormalizedNamed(t); err == nil {
			res.Tags = append(res.Tags, reference.FamiliarString(reference.TagNameOnly(n)))
		}
	}
	if loaded != nil {
		loaded(res)
	}
	return nil
}

// ociView is an image of an OCI layout, manifest kept byte for byte.
func ociView(fsys *spooled, rawManifest, rawConfig []byte) (image.View, error) {
	doc, err := DecodeManifest(rawManifest, "")
	if err != nil {
		return nil, err
	}
	if doc.manifest == nil {
		return nil, errors.New("not an image manifest")
	}
	cfg, err := decodeConfig(rawConfig)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(doc.manifest.Layers) {
		return nil, fmt.Errorf("manifest has %d layers but the config %d diff IDs", len(doc.manifest.Layers), len(cfg.RootFS.DiffIDs))
	}
	var layers []image.Layer
	for i, l := range doc.manifest.Layers {
		open, err := fsys.opener("blobs/sha256/" + l.Digest.Encoded())
		if err != nil {
			return nil, err
		}
		layers = append(layers, &fileLayer{desc: l, diffID: cfg.RootFS.DiffIDs[i], open: open})
	}
	return &remoteView{raw: rawManifest, manifest: doc.manifest, rawConfig: rawConfig, layers: layers}, nil
}

type fileLayer struct {
	desc   ocispec.Descriptor
	diffID digest.Digest
	open   func() (io.ReadCloser, error)
}

func (l *fileLayer) Digest() (digest.Digest, error)     { return l.desc.Digest, nil }
func (l *fileLayer) DiffID() (digest.Digest, error)     { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)               { return l.desc.Size, nil }
func (l *fileLayer) MediaType() (string, error)         { return l.desc.MediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error) { return l.open() }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("archive layer: uncompressed reads are not supported")
}

func loadOCILayout(ctx context.Context, store *image.Store, fsys *spooled, loaded func(LoadResult)) error {
	raw, err := fsys.read("index.json", maxManifestSize)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("load: %w", err))
	}
	doc, err := DecodeManifest(raw, ocispec.MediaTypeImageIndex)
	if err != nil || doc.index == nil {
		return errdefs.InvalidParameter(fmt.Errorf("load: index.json: %v", err))
	}
	for _, d := range doc.index.Manifests {
		if err := loadOCIEntry(ctx, store, fsys, d, 0, loaded); err != nil {
			return err
		}
	}
	return nil
}

func loadOCIEntry(ctx context.Context, store *image.Store, fsys *spooled, d ocispec.Descriptor, depth int, loaded func(LoadResult)) error {
	if depth > 4 {
		return errdefs.InvalidParameterf("load: indexes nested too deep")
	}
	mb, err := fsys.read("blobs/sha256/"+d.Digest.Encoded(), maxManifestSize)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("load: %w", err))
	}
	if digest.FromBytes(mb) != d.Digest {
		return errdefs.InvalidParameterf("load: manifest %s does not match its digest", d.Digest)
	}
	doc, err := DecodeManifest(mb, d.MediaType)
	if err != nil {
		return err
	}
	if doc.index != nil {
		sel, err := selectManifest(doc.index, HostPlatform())
		if err != nil {
			return err
		}
		sel.Annotations = d.Annotations
		return loadOCIEntry(ctx, store, fsys, sel, depth+1, loaded)
	}
	rawConfig, err := fsys.read("blobs/sha256/"+doc.manifest.Config.Digest.Encoded(), maxConfigSize)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("load: config: %w", err))
	}
	if digest.FromBytes(rawConfig) != doc.manifest.Config.Digest {
		return errdefs.InvalidParameterf("load: config %s does not match its digest", doc.manifest.Config.Digest)
	}
	view, err := ociView(fsys, mb, rawConfig)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("load: %w", err))
	}
	var tags []string
	if n := d.Annotations["io.containerd.image.name"]; n != "" {
		tags = append(tags, n)
	} else if n := d.Annotations[ocispec.AnnotationRefName]; n != "" {
		if _, err := reference.ParseNormalizedNamed(n); err == nil && strings.ContainsAny(n, "/:") {
			tags = append(tags, n)
		}
	}
	return putLoaded(ctx, store, view, tags, loaded)
}

var _ = dockerspec.DockerOCIImage{}
