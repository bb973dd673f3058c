package formatter

import (
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/volume"
)

// VolumeTable is docker's default `volume ls` format.
const VolumeTable = "table {{.Driver}}\t{{.Name}}"

// VolumeHeader maps volume fields to their column titles.
var VolumeHeader = map[string]string{
	"Name":       "VOLUME NAME",
	"Driver":     "DRIVER",
	"Scope":      "SCOPE",
	"Mountpoint": "MOUNTPOINT",
	"Labels":     "LABELS",
	"Links":      "LINKS",
	"Size":       "SIZE",
}

// Volume is one `volume ls` row.
type Volume struct{ V volume.Volume }

// VolumeRows sorts volumes by name, as docker lists them.
func VolumeRows(vols []volume.Volume) []any {
	sort.Slice(vols, func(i, j int) bool { return vols[i].Name < vols[j].Name })
	rows := make([]any, 0, len(vols))
	for _, v := range vols {
		rows = append(rows, Volume{V: v})
	}
	return rows
}

func (v Volume) Name() string       { return v.V.Name }
func (v Volume) Driver() string     { return v.V.Driver }
func (v Volume) Scope() string      { return v.V.Scope }
func (v Volume) Mountpoint() string { return v.V.Mountpoint }

// Labels renders "k=v,k2=v2" sorted.
func (v Volume) Labels() string {
	var out []string
	for k, val := range v.V.Labels {
		out = append(out, k+"="+val)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Label returns one label's value.
func (v Volume) Label(name string) string { return v.V.Labels[name] }

// Links is the number of containers using the volume, when known.
func (v Volume) Links() string {
	if v.V.UsageData == nil {
		return "N/A"
	}
	return strconv.FormatInt(v.V.UsageData.RefCount, 10)
}

// Size is the volume's disk usage, when known.
func (v Volume) Size() string {
	if v.V.UsageData == nil || v.V.UsageData.Size < 0 {
		return "N/A"
	}
	return units.HumanSize(float64(v.V.UsageData.Size))
}
