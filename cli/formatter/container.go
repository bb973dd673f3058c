package formatter

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
)

// Default container list formats, as docker's.
const (
	ContainerTable     = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	ContainerTableSize = ContainerTable + "\t{{.Size}}"
)

// ContainerHeader maps container fields to their column titles.
var ContainerHeader = map[string]string{
	"ID":           "CONTAINER ID",
	"Names":        "NAMES",
	"Image":        "IMAGE",
	"Command":      "COMMAND",
	"CreatedAt":    "CREATED AT",
	"RunningFor":   "CREATED",
	"Ports":        "PORTS",
	"State":        "STATE",
	"Status":       "STATUS",
	"Size":         "SIZE",
	"Labels":       "LABELS",
	"Mounts":       "MOUNTS",
	"LocalVolumes": "LOCAL VOLUMES",
	"Networks":     "NETWORKS",
}

// Container is one `ps` row; its methods are the --format fields.
type Container struct {
	C     container.Summary
	Trunc bool
	Now   time.Time
}

func (c Container) ID() string {
	if c.Trunc {
		return TruncateID(c.C.ID)
	}
	return c.C.ID
}

func (c Container) Names() string {
	var names []string
	for _, n := range c.C.Names {
		names = append(names, strings.TrimPrefix(n, "/"))
	}
	if c.Trunc {
		// Hide link names (a/b): show the container's own name.
		for _, n := range names {
			if !strings.Contains(n, "/") {
				return n
			}
		}
	}
	return strings.Join(names, ",")
}

func (c Container) Image() string {
	img := c.C.Image
	if img == "" {
		return "<no image>"
	}
	if !c.Trunc {
		return img
	}
	if t := TruncateID(c.C.ImageID); t == TruncateID(img) {
		return t
	}
	ref, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return img
	}
	if nt, ok := ref.(reference.NamedTagged); ok {
		if tagged, err := reference.WithTag(reference.TrimNamed(nt), nt.Tag()); err == nil {
			return reference.FamiliarString(tagged)
		}
		return img
	}
	return reference.FamiliarString(reference.TrimNamed(ref))
}

func (c Container) Command() string {
	cmd := c.C.Command
	if c.Trunc {
		cmd = Ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

func (c Container) CreatedAt() string { return time.Unix(c.C.Created, 0).String() }

func (c Container) RunningFor() string { return Since(c.Now, time.Unix(c.C.Created, 0)) }

func (c Container) Ports() string { return Ports(c.C.Ports) }

func (c Container) State() string { return string(c.C.State) }

func (c Container) Status() string { return c.C.Status }

func (c Container) Size() string {
	s := units.HumanSizeWithPrecision(float64(c.C.SizeRw), 3)
	if c.C.SizeRootFs > 0 {
		s = fmt.Sprintf("%s (virtual %s)", s, units.HumanSizeWithPrecision(float64(c.C.SizeRootFs), 3))
	}
	return s
}

func (c Container) Labels() string { return joinLabels(c.C.Labels) }

// Label returns the value of one label.
func (c Container) Label(name string) string { return c.C.Labels[name] }

func (c Container) Mounts() string {
	var out []string
	for _, m := range c.C.Mounts {
		name := m.Name
		if name == "" {
			name = m.Source
		}
		if c.Trunc {
			name = Ellipsis(name, 15)
		}
		out = append(out, name)
	}
	return strings.Join(out, ",")
}

func (c Container) LocalVolumes() string {
	n := 0
	for _, m := range c.C.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

func (c Container) Networks() string {
	if c.C.NetworkSettings == nil {
		return ""
	}
	var out []string
	for k := range c.C.NetworkSettings.Networks {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// MarshalJSON gives `{{json .}}` every field, as docker does.
func (c Container) MarshalJSON() ([]byte, error) {
	var platform any // null unless the daemon reports the image's platform
	if d := c.C.ImageManifestDescriptor; d != nil && d.Platform != nil {
		platform = d.Platform
	}
	return json.Marshal(map[string]any{
		"Platform": platform, "ID": c.ID(), "Names": c.Names(), "Image": c.Image(), "Command": c.Command(),
		"CreatedAt": c.CreatedAt(), "RunningFor": c.RunningFor(), "Ports": c.Ports(),
		"State": c.State(), "Status": c.Status(), "Size": c.Size(), "Labels": c.Labels(),
		"Mounts": c.Mounts(), "LocalVolumes": c.LocalVolumes(), "Networks": c.Networks(),
	})
}

func joinLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return strings.Join(out, ",")
}

// Since renders a past time as docker does: "2 seconds ago".
func Since(now, t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return ""
	}
	return units.HumanDuration(now.Sub(t)) + " ago"
}

// Ports renders published ports like "0.0.0.0:8080->80/tcp, 443/tcp".
func Ports(ports []container.PortSummary) string {
	ps := append([]container.PortSummary(nil), ports...)
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].PrivatePort != ps[j].PrivatePort {
			return ps[i].PrivatePort < ps[j].PrivatePort
		}
		if ps[i].Type != ps[j].Type {
			return ps[i].Type < ps[j].Type
		}
		return ps[i].IP.Less(ps[j].IP)
	})
	var out []string
	for _, p := range ps {
		if p.PublicPort == 0 {
			out = append(out, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
			continue
		}
		ip := ""
		if p.IP.IsValid() {
			ip = p.IP.String()
			if p.IP.Is6() {
				ip = "[" + ip + "]"
			}
		}
		if p.IP == netip.IPv6Unspecified() {
			ip = "[::]"
		}
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", ip, p.PublicPort, p.PrivatePort, p.Type))
	}
	return strings.Join(out, ", ")
}
