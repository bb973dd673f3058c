package runtime

import (
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is an OCI mount's option list split the way mount(2) wants it.
type mountOptions struct {
	flags       uintptr   // MS_* flags for the mount itself
	propagation []uintptr // MS_SHARED/MS_PRIVATE/... applied after mounting
	data        string    // filesystem-specific options, comma separated
}

type flagOpt struct {
	clear bool
	flag  uintptr
}

var mountFlagOptions = map[string]flagOpt{
	"defaults":      {false, 0},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"suid":          {true, unix.MS_NOSUID},
	"nosuid":        {false, unix.MS_NOSUID},
	"dev":           {true, unix.MS_NODEV},
	"nodev":         {false, unix.MS_NODEV},
	"exec":          {true, unix.MS_NOEXEC},
	"noexec":        {false, unix.MS_NOEXEC},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	"async":         {true, unix.MS_SYNCHRONOUS},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"remount":       {false, unix.MS_REMOUNT},
	"mand":          {false, unix.MS_MANDLOCK},
	"nomand":        {true, unix.MS_MANDLOCK},
	"atime":         {true, unix.MS_NOATIME},
	"noatime":       {false, unix.MS_NOATIME},
	"diratime":      {true, unix.MS_NODIRATIME},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"bind":          {false, unix.MS_BIND},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"norelatime":    {true, unix.MS_RELATIME},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"nolazytime":    {true, unix.MS_LAZYTIME},
}

var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// ignoredOptions are runtime extensions that carry no meaning here.
var ignoredOptions = map[string]bool{"tmpcopyup": true}

// parseMountOptions splits OCI mount options into flags, propagation and
// filesystem data. Unknown words go to data, as runc does, so the kernel
// judges them.
func parseMountOptions(options []string) mountOptions {
	var mo mountOptions
	var data []string
	for _, o := range options {
		if o == "" || ignoredOptions[o] {
			continue
		}
		if f, ok := mountFlagOptions[o]; ok {
			if f.clear {
				mo.flags &^= f.flag
			} else {
				mo.flags |= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			mo.propagation = append(mo.propagation, p)
			continue
		}
		data = append(data, o)
	}
	mo.data = strings.Join(data, ",")
	return mo
}
