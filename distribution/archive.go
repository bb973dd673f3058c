package distribution

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// archiveManifest is one entry of a docker-archive's manifest.json.
type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Annotations naming an image in an OCI layout's index.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = ocispec.AnnotationRefName
)

// SaveImages writes refs as one tar that is both a docker-archive
// (manifest.json, what `docker load` of every version reads) and an OCI
// image layout (oci-layout, index.json, blobs/), the format of Docker 25+.
// Blobs go in as stored, so manifests keep their digests.
func SaveImages(ctx context.Context, store *image.Store, refs []string, w io.Writer) error {
	type entry struct {
		view image.View
		tags []string // normalised references to record
	}
	var entries []*entry
	byID := map[digest.Digest]*entry{}
	for _, r := range refs {
		img, err := store.Get(ctx, r)
		if err != nil {
			return err
		}
		e := byID[img.ID]
		if e == nil {
			v, err := store.View(ctx, img.ID.String())
			if err != nil {
				return err
			}
			e = &entry{view: v}
			byID[img.ID] = e
			entries = append(entries, e)
		}
		// A name saves that tag; an ID saves the image untagged.
		if ref, err := ParseRef(r); err == nil && !strings.HasPrefix(img.ID.Encoded(), strings.TrimPrefix(r, "sha256:")) {
			if ref.Tag != "" && ref.Digest == "" {
				e.tags = appendUnique(e.tags, ref.String())
			} else {
				for _, t := range img.RepoTags {
					if tr, err := ParseRef(t); err == nil && tr.Name() == ref.Name() {
						e.tags = appendUnique(e.tags, t)
					}
				}
			}
		}
	}
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	mtime := time.Unix(0, 0)
	dirs := map[string]bool{}
	writeDir := func(name string) error {
		if dirs[name] {
			return nil
		}
		dirs[name] = true
		return tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
	}
	writeFile := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: mtime}); err != nil {
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
		if err := writeDir("blobs"); err != nil {
			return err
		}
		if err := writeDir("blobs/sha256"); err != nil {
			return err
		}
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + d.Encoded(), Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: mtime}); err != nil {
			return err
		}
		n, err := io.Copy(tw, rc)
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("blob %s: wrote %d of %d bytes", d, n, size)
		}
		return ctx.Err()
	}
	bytesOpener := func(b []byte) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(b))), nil }
	}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	var manifests []archiveManifest
	for _, e := range entries {
		rawManifest, err := e.view.RawManifest()
		if err != nil {
			return err
		}
		m, err := e.view.Manifest()
		if err != nil {
			return err
		}
		rawConfig, err := e.view.RawConfigFile()
		if err != nil {
			return err
		}
		layers, err := e.view.Layers()
		if err != nil {
			return err
		}
		am := archiveManifest{Config: "blobs/sha256/" + m.Config.Digest.Encoded(), RepoTags: []string{}}
		for i, l := range layers {
			if err := writeBlob(m.Layers[i].Digest, m.Layers[i].Size, l.Compressed); err != nil {
				return fmt.Errorf("save: %w", err)
			}
			am.Layers = append(am.Layers, "blobs/sha256/"+m.Layers[i].Digest.Encoded())
		}
		if err := writeBlob(m.Config.Digest, int64(len(rawConfig)), bytesOpener(rawConfig)); err != nil {
			return err
		}
		md := digest.FromBytes(rawManifest)
		if err := writeBlob(md, int64(len(rawManifest)), bytesOpener(rawManifest)); err != nil {
			return err
		}
		mt := m.MediaType
		if mt == "" {
			mt = ocispec.MediaTypeImageManifest
		}
		desc := ocispec.Descriptor{MediaType: mt, Digest: md, Size: int64(len(rawManifest))}
		if len(e.tags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, t := range e.tags {
			r, _ := ParseRef(t)
			d := desc
			d.Annotations = map[string]string{annotationImageName: r.String(), annotationRefName: r.Tag}
			index.Manifests = append(index.Manifests, d)
			am.RepoTags = append(am.RepoTags, r.Familiar())
		}
		manifests = append(manifests, am)
	}
	if err := writeFile(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	ib, _ := json.Marshal(index)
	if err := writeFile("index.json", ib); err != nil {
		return err
	}
	mb, _ := json.Marshal(manifests)
	if err := writeFile("manifest.json", mb); err != nil {
		return err
	}
	return tw.Close()
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// LoadResult names what a load stored.
type LoadResult struct {
	ID   digest.Digest
	Tags []string // familiar references
}

// LoadImages reads a docker-archive (any Docker version) or an OCI image
// layout tar, unpacked under tmpDir first (the formats need random
// access), and stores every image in it. Each message line is sent to p.
func LoadImages(ctx context.Context, store *image.Store, r io.Reader, tmpDir string, p *Progress) ([]LoadResult, error) {
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmpDir, "load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	fsys, err := unpackArchive(ctx, r, dir)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("load: %w", err))
	}
	var results []LoadResult
	// Prefer the OCI index (it keeps manifest digests); docker-archives
	// without one get a manifest made from manifest.json.
	views, err := fsys.ociViews()
	if err != nil {
		return nil, err
	}
	if views == nil {
		if views, err = fsys.dockerViews(); err != nil {
			return nil, err
		}
	}
	if len(views) == 0 {
		return nil, errdefs.InvalidParameterf("load: no manifest.json or index.json in the archive")
	}
	for _, v := range views {
		img, err := store.Put(ctx, v.view, image.PutOptions{})
		if err != nil {
			return results, fmt.Errorf("load: %w", err)
		}
		res := LoadResult{ID: img.ID}
		for _, t := range v.tags {
			if err := store.Tag(ctx, img.ID, t); err != nil {
				return results, fmt.Errorf("load: tag %s: %w", t, err)
			}
			if r, err := ParseRef(t); err == nil {
				res.Tags = append(res.Tags, r.Familiar())
			}
		}
		if len(res.Tags) == 0 {
			p.StreamLine("Loaded image ID: " + img.ID.String() + "\n")
		}
		for _, t := range res.Tags {
			p.StreamLine("Loaded image: " + t + "\n")
		}
		results = append(results, res)
	}
	return results, nil
}

// unpacked is an archive unpacked to a directory; symlinks are kept as a
// table and resolved inside the directory only.
type unpacked struct {
	dir   string
	links map[string]string // cleaned name -> cleaned target
}

func cleanArchiveName(name string) (string, error) {
	n := path.Clean("/" + strings.TrimPrefix(name, "./"))
	if n == "/" {
		return "", nil
	}
	return n[1:], nil
}

func unpackArchive(ctx context.Context, r io.Reader, dir string) (*unpacked, error) {
	u := &unpacked{dir: dir, links: map[string]string{}}
	rc, _, err := archive.Decompress(bufio.NewReaderSize(r, 1<<20))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
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
		name, _ := cleanArchiveName(hdr.Name)
		if name == "" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return nil, err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(name), target)
			}
			t, _ := cleanArchiveName(target)
			u.links[name] = t
		case tar.TypeLink:
			t, _ := cleanArchiveName(hdr.Linkname)
			u.links[name] = t
		}
	}
	return u, nil
}

// path resolves an archive name to a file in the unpacked dir.
func (u *unpacked) path(name string) (string, error) {
	n, _ := cleanArchiveName(name)
	for hops := 0; hops < 16; hops++ {
		if t, ok := u.links[n]; ok {
			n = t
			continue
		}
		// A link may also sit on a parent directory.
		resolved := false
		for dir := path.Dir(n); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if t, ok := u.links[dir]; ok {
				n = path.Join(t, strings.TrimPrefix(n, dir+"/"))
				resolved = true
				break
			}
		}
		if !resolved {
			return filepath.Join(u.dir, filepath.FromSlash(n)), nil
		}
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", name)
}

func (u *unpacked) read(name string, limit int64) ([]byte, error) {
	p, err := u.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: %w", name, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errdefs.InvalidParameterf("archive: %s is too large", name)
	}
	return b, nil
}

func (u *unpacked) opener(name string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		p, err := u.path(name)
		if err != nil {
			return nil, err
		}
		return os.Open(p)
	}
}

type loadView struct {
	view image.View
	tags []string
}

// ociViews reads index.json; nil when the archive has none.
func (u *unpacked) ociViews() ([]loadView, error) {
	raw, err := u.read("index.json", maxManifestSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	idx, err := ParseIndex(raw)
	if err != nil {
		return nil, err
	}
	// Docker's archives tag in manifest.json; take tags from there when present.
	tagsByConfig := map[digest.Digest][]string{}
	if mraw, err := u.read("manifest.json", maxManifestSize); err == nil {
		var ams []archiveManifest
		if json.Unmarshal(mraw, &ams) == nil {
			for _, am := range ams {
				if d, err := digest.Parse("sha256:" + path.Base(am.Config)); err == nil {
					for _, t := range am.RepoTags {
						if r, err := ParseRef(t); err == nil {
							tagsByConfig[d] = appendUnique(tagsByConfig[d], r.String())
						}
					}
				}
			}
		}
	}
	host, _ := ParsePlatform("")
	var out []loadView
	byManifest := map[digest.Digest]int{}
	var walk func(descs []ocispec.Descriptor, depth int) error
	walk = func(descs []ocispec.Descriptor, depth int) error {
		for _, d := range descs {
			if err := checkDescriptor(d, "manifest"); err != nil {
				return err
			}
			switch d.MediaType {
			case ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList:
				if depth > 4 {
					return errdefs.InvalidParameterf("load: indexes nested too deep")
				}
				raw, err := u.blob(d)
				if err != nil {
					return err
				}
				child, err := ParseIndex(raw)
				if err != nil {
					return err
				}
				sel, err := selectManifest(child, host)
				if err != nil {
					return err
				}
				if d.Annotations != nil {
					sel.Annotations = d.Annotations
				}
				if err := walk([]ocispec.Descriptor{sel}, depth+1); err != nil {
					return err
				}
				continue
			case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest, "":
			default:
				continue
			}
			i, seen := byManifest[d.Digest]
			if !seen {
				v, err := u.manifestView(d)
				if err != nil {
					return err
				}
				cfgDigest, _ := v.ConfigName()
				out = append(out, loadView{view: v, tags: tagsByConfig[cfgDigest]})
				i = len(out) - 1
				byManifest[d.Digest] = i
			}
			if name := d.Annotations[annotationImageName]; name != "" {
				if r, err := ParseRef(name); err == nil {
					out[i].tags = appendUnique(out[i].tags, r.String())
				}
			} else if rn := d.Annotations[annotationRefName]; rn != "" && strings.ContainsAny(rn, "/:") {
				if r, err := ParseRef(rn); err == nil {
					out[i].tags = appendUnique(out[i].tags, r.String())
				}
			}
		}
		return nil
	}
	if err := walk(idx.Manifests, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// blob reads a small blob and verifies it.
func (u *unpacked) blob(d ocispec.Descriptor) ([]byte, error) {
	b, err := u.read("blobs/"+d.Digest.Algorithm().String()+"/"+d.Digest.Encoded(), maxConfigSize)
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(b); got != d.Digest {
		return nil, errdefs.InvalidParameterf("load: blob %s has digest %s", d.Digest, got)
	}
	return b, nil
}

func (u *unpacked) manifestView(d ocispec.Descriptor) (image.View, error) {
	raw, err := u.blob(d)
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, err
	}
	rawConfig, err := u.blob(m.Config)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(rawConfig, len(m.Layers))
	if err != nil {
		return nil, err
	}
	v := &fileView{raw: raw, m: m, rawConfig: rawConfig, cfg: cfg}
	for i, l := range m.Layers {
		v.layers = append(v.layers, &fileLayer{open: u.opener("blobs/sha256/" + l.Digest.Encoded()), desc: l, diffID: cfg.RootFS.DiffIDs[i]})
	}
	return v, nil
}

// dockerViews reads a docker-archive's manifest.json (Docker before 25:
// <id>/layer.tar files, uncompressed or compressed).
func (u *unpacked) dockerViews() ([]loadView, error) {
	raw, err := u.read("manifest.json", maxManifestSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ams []archiveManifest
	if err := json.Unmarshal(raw, &ams); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("load: manifest.json: %w", err))
	}
	var out []loadView
	for _, am := range ams {
		rawConfig, err := u.read(am.Config, maxConfigSize)
		if err != nil {
			return nil, err
		}
		cfg, err := ParseConfig(rawConfig, len(am.Layers))
		if err != nil {
			return nil, err
		}
		var layers []image.Layer
		for i, lp := range am.Layers {
			mt, err := u.sniffLayer(lp)
			if err != nil {
				return nil, err
			}
			if mt == ocispec.MediaTypeImageLayer {
				// An uncompressed tar's digest is its diff ID: no need to read it twice.
				layers = append(layers, &fileLayer{open: u.opener(lp), diffID: cfg.RootFS.DiffIDs[i], desc: ocispec.Descriptor{MediaType: mt, Digest: cfg.RootFS.DiffIDs[i], Size: u.size(lp)}})
				continue
			}
			layers = append(layers, image.NewLayer(u.opener(lp), mt))
		}
		v, err := image.NewView(rawConfig, layers)
		if err != nil {
			return nil, err
		}
		lv := loadView{view: v}
		for _, t := range am.RepoTags {
			r, err := ParseRef(t)
			if err != nil {
				return nil, err
			}
			lv.tags = append(lv.tags, r.String())
		}
		_ = cfg
		out = append(out, lv)
	}
	return out, nil
}

func (u *unpacked) size(name string) int64 {
	p, err := u.path(name)
	if err != nil {
		return 0
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// sniffLayer names a layer file's media type from its first bytes.
func (u *unpacked) sniffLayer(name string) (string, error) {
	rc, err := u.opener(name)()
	if err != nil {
		return "", fmt.Errorf("load: layer %s: %w", name, err)
	}
	defer rc.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(rc, head)
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

type fileView struct {
	raw, rawConfig []byte
	m              *ocispec.Manifest
	cfg            *dockerspec.DockerOCIImage
	layers         []image.Layer
}

func (v *fileView) Digest() (digest.Digest, error)                  { return digest.FromBytes(v.raw), nil }
func (v *fileView) Manifest() (*ocispec.Manifest, error)            { return v.m, nil }
func (v *fileView) RawManifest() ([]byte, error)                    { return v.raw, nil }
func (v *fileView) ConfigName() (digest.Digest, error)              { return v.m.Config.Digest, nil }
func (v *fileView) ConfigFile() (*dockerspec.DockerOCIImage, error) { return v.cfg, nil }
func (v *fileView) RawConfigFile() ([]byte, error)                  { return v.rawConfig, nil }
func (v *fileView) Layers() ([]image.Layer, error)                  { return v.layers, nil }

type fileLayer struct {
	open   func() (io.ReadCloser, error)
	desc   ocispec.Descriptor
	diffID digest.Digest
}

func (l *fileLayer) Digest() (digest.Digest, error)     { return l.desc.Digest, nil }
func (l *fileLayer) DiffID() (digest.Digest, error)     { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)               { return l.desc.Size, nil }
func (l *fileLayer) MediaType() (string, error)         { return l.desc.MediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error) { return l.open() }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("file layer: only the blob is available")
}
