package spec

import specs "github.com/opencontainers/runtime-spec/specs-go"

// ResolveUser turns Docker's --user ("name", "uid", "uid:gid",
// "name:group") into ids with the rootfs's own /etc/passwd and /etc/group,
// as for a container's process; it also returns the user's home. An
// unknown name is an errdefs.InvalidParameter error with Docker's words
// ("unable to find user x: no matching entries in passwd file").
func ResolveUser(rootfs, user string) (specs.User, string, error) {
	return resolveUser(rootfs, user)
}

// HostCaps lists the capabilities in this process's bounding set: "all
// capabilities" for a privileged exec, as for --privileged.
func HostCaps() []string { return hostBoundingCaps() }
