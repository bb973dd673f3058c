// Package spec generates OCI runtime configs with Docker's defaults: the
// default capability set, the default seccomp profile, masked and read-only
// paths, the standard /dev, /proc, /sys, /dev/pts, /dev/shm, /dev/mqueue
// mounts, namespaces, rlimits clamped to the host's hard limits, and the
// resource limits a container asks for.
//
// CONTRACT (agreed with daemon/): the exported names and signatures in this
// file are what other packages call.
package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options describe one container's process and limits, already merged
// with its image's config by the caller.
type Options struct {
	ID             string
	Rootfs         string   // absolute path of the prepared root filesystem
	Args           []string // entrypoint + cmd, non-empty
	Env            []string // KEY=VALUE; PATH is added when missing, HOSTNAME always
	Cwd            string   // "" means "/"
	User           string   // Docker's --user: "", name, uid, name:group, uid:gid
	Hostname       string
	Tty            bool
	ReadonlyRootfs bool

	// NetworkMode is "none" (a new empty netns with lo), "host" (share the
	// host's) or a path to an existing netns to join.
	NetworkMode string
	IpcMode     string // "" or "private": new ipc ns; "host": share
	PidMode     string // "" new pid ns; "host": share

	Privileged  bool
	CapAdd      []string // "NET_ADMIN" or "CAP_NET_ADMIN", "ALL"
	CapDrop     []string
	SecurityOpt []string // "no-new-privileges", "seccomp=unconfined", "seccomp=<json profile text>"

	Memory      int64 // bytes, 0 = unlimited
	MemorySwap  int64 // bytes, 0 = default (2x memory), -1 unlimited
	NanoCPUs    int64 // 1e9 = one CPU
	CPUShares   int64
	PidsLimit   int64               // 0 = unlimited
	ShmSize     int64               // bytes of /dev/shm, 0 = 64 MiB
	Ulimits     []specs.POSIXRlimit // overrides for the defaults
	Sysctls     map[string]string
	OomScoreAdj int

	// CgroupsPath is the container's cgroup path, e.g. "/berth/<id>".
	CgroupsPath string

	// Mounts are added after the defaults: bind mounts of the network files
	// (/etc/hostname, /etc/hosts, /etc/resolv.conf), volumes, tmpfs.
	Mounts []specs.Mount
}

// Generate returns the OCI config for opts. It reads the rootfs to resolve
// User (via /etc/passwd and /etc/group inside the root) and fails with an
// errdefs.InvalidParameter error for an unknown user or malformed option.
func Generate(opts Options) (*specs.Spec, error) { return generate(opts, hostFacts()) }
