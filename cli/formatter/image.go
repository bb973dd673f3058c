package formatter

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
)

// Default image list formats, as docker's.
const (
	ImageTable        = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	ImageTableDigests = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	HistoryTable      = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
)

// ImageHeader maps image fields to their column titles.
var ImageHeader = map[string]string{
	"ID":           "IMAGE ID",
	"Repository":   "REPOSITORY",
	"Tag":          "TAG",
	"Digest":       "DIGEST",
	"CreatedSince": "CREATED",
	"CreatedAt":    "CREATED AT",
	"Size":         "SIZE",
	"Containers":   "CONTAINERS",
	"VirtualSize":  "VIRTUAL SIZE",
	"SharedSize":   "SHARED SIZE",
	"UniqueSize":   "UNIQUE SIZE",
}

// Image is one `images` row (an image appears once per repository:tag).
type Image struct {
	I          image.Summary
	Repo       string
	TagName    string
	DigestName string
	Trunc      bool
	Now        time.Time
}

// ImageRows expands summaries into rows: one per tag, or one <none> row.
func ImageRows(imgs []image.Summary, trunc bool, now time.Time) []Image {
	var rows []Image
	for _, img := range imgs {
		digests := map[string][]string{}
		for _, d := range img.RepoDigests {
			if d == "<none>@<none>" {
				continue
			}
			ref, err := reference.ParseNormalizedNamed(d)
			if err != nil {
				continue
			}
			if c, ok := ref.(reference.Canonical); ok {
				name := reference.FamiliarName(ref)
				digests[name] = append(digests[name], c.Digest().String())
			}
		}
		seen := map[string]bool{}
		for _, t := range img.RepoTags {
			if t == "<none>:<none>" {
				continue
			}
			ref, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				continue
			}
			name := reference.FamiliarName(ref)
			tag := "<none>"
			if tagged, ok := ref.(reference.Tagged); ok {
				tag = tagged.Tag()
			}
			dg := "<none>"
			if d := digests[name]; len(d) > 0 {
				dg = d[0]
			}
			seen[name] = true
			rows = append(rows, Image{I: img, Repo: name, TagName: tag, DigestName: dg, Trunc: trunc, Now: now})
		}
		names := make([]string, 0, len(digests))
		for n := range digests {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if seen[n] {
				continue
			}
			for _, d := range digests[n] {
				rows = append(rows, Image{I: img, Repo: n, TagName: "<none>", DigestName: d, Trunc: trunc, Now: now})
			}
		}
		if len(rows) == 0 || rows[len(rows)-1].I.ID != img.ID {
			rows = append(rows, Image{I: img, Repo: "<none>", TagName: "<none>", DigestName: "<none>", Trunc: trunc, Now: now})
		}
	}
	return rows
}

func (i Image) ID() string {
	if i.Trunc {
		return TruncateID(i.I.ID)
	}
	return i.I.ID
}
func (i Image) Repository() string   { return i.Repo }
func (i Image) Tag() string          { return i.TagName }
func (i Image) Digest() string       { return i.DigestName }
func (i Image) CreatedSince() string { return Since(i.Now, time.Unix(i.I.Created, 0)) }
func (i Image) CreatedAt() string    { return time.Unix(i.I.Created, 0).String() }
func (i Image) Size() string         { return units.HumanSizeWithPrecision(float64(i.I.Size), 3) }
func (i Image) VirtualSize() string  { return units.HumanSize(float64(i.I.Size)) }
func (i Image) SharedSize() string {
	if i.I.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSizeWithPrecision(float64(i.I.SharedSize), 3)
}
func (i Image) UniqueSize() string {
	if i.I.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSizeWithPrecision(float64(i.I.Size-i.I.SharedSize), 3)
}
func (i Image) Containers() string {
	if i.I.Containers == -1 {
		return "N/A"
	}
	return strconv.FormatInt(i.I.Containers, 10)
}

// MarshalJSON gives `{{json .}}` every field, as docker does.
func (i Image) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"ID": i.ID(), "Repository": i.Repo, "Tag": i.TagName, "Digest": i.DigestName,
		"CreatedSince": i.CreatedSince(), "CreatedAt": i.CreatedAt(), "Size": i.Size(),
		"VirtualSize": i.VirtualSize(), "SharedSize": i.SharedSize(), "UniqueSize": i.UniqueSize(),
		"Containers": i.Containers(),
	})
}

// HistoryHeader maps history fields to their column titles.
var HistoryHeader = map[string]string{
	"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
}

// History is one `history` row.
type History struct {
	H     image.HistoryResponseItem
	Trunc bool
	Human bool
	Now   time.Time
}

func (h History) ID() string {
	if h.H.ID == "" || h.H.ID == "<missing>" {
		return "<missing>"
	}
	if h.Trunc {
		return TruncateID(h.H.ID)
	}
	return h.H.ID
}
func (h History) CreatedSince() string {
	if !h.Human {
		return h.CreatedAt()
	}
	return Since(h.Now, time.Unix(h.H.Created, 0))
}
func (h History) CreatedAt() string { return time.Unix(h.H.Created, 0).Format(time.RFC3339) }
func (h History) CreatedBy() string {
	s := strings.ReplaceAll(h.H.CreatedBy, "\t", " ")
	if h.Trunc {
		s = Ellipsis(s, 45)
	}
	return s
}
func (h History) Size() string {
	if !h.Human {
		return strconv.FormatInt(h.H.Size, 10)
	}
	return units.HumanSizeWithPrecision(float64(h.H.Size), 3)
}
func (h History) Comment() string { return h.H.Comment }

// MarshalJSON gives `{{json .}}` every field.
func (h History) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"ID": h.ID(), "CreatedSince": h.CreatedSince(), "CreatedAt": h.CreatedAt(),
		"CreatedBy": h.CreatedBy(), "Size": h.Size(), "Comment": h.Comment(),
	})
}
