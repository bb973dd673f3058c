package daemon

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	goruntime "runtime"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/containerfs"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/runtime/cgroups"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var _ api.ContainerSecBackend = (*Daemon)(nil)

// ContainerRename implements api.ContainerSecBackend.
func (d *Daemon) ContainerRename(ctx context.Context, name, newName string) error {
	if name == "" || newName == "" {
		return errdefs.InvalidParameterf("Neither old nor new names may be empty")
	}
	c, err := d.containers.get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := strings.TrimPrefix(c.Name, "/")
	if old == strings.TrimPrefix(newName, "/") {
		return errdefs.InvalidParameterf("Renaming a container with the same name as its current name")
	}
	if !validName.MatchString(newName) {
		return errdefs.InvalidParameterf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	newName = strings.TrimPrefix(newName, "/")
	s := d.containers
	s.mu.Lock()
	if other, ok := s.byName[newName]; ok {
		s.mu.Unlock()
		return errdefs.Conflictf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", "/"+newName, other)
	}
	s.byName[newName] = c.ID
	delete(s.byName, old)
	s.mu.Unlock()
	c.Name = "/" + newName
	if err := c.save(); err != nil {
		s.mu.Lock()
		delete(s.byName, newName)
		s.byName[old] = c.ID
		s.mu.Unlock()
		c.Name = "/" + old
		return err
	}
	d.containerEvent(c, eventtypes.ActionRename, map[string]string{"oldName": "/" + old})
	return nil
}

// ContainerUpdate implements api.ContainerSecBackend: it changes the
// resources and restart policy, applying the resources at once to the
// cgroup of a running container.
func (d *Daemon) ContainerUpdate(ctx context.Context, name string, u *container.UpdateConfig) (container.UpdateResponse, error) {
	c, err := d.containers.get(name)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	hc := *c.HostConfig
	r := &hc.Resources
	n := u.Resources
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
			return container.UpdateResponse{}, errdefs.InvalidParameterf("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		if err := validateRestartPolicy(u.RestartPolicy); err != nil {
			return container.UpdateResponse{}, err
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	if n.Memory != 0 {
		if n.Memory < 6*1024*1024 {
			return container.UpdateResponse{}, errdefs.InvalidParameterf("Minimum memory limit allowed is 6MB")
		}
		if n.MemorySwap == 0 && r.MemorySwap > 0 && n.Memory > r.MemorySwap {
			return container.UpdateResponse{}, errdefs.InvalidParameterf("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
		}
		r.Memory = n.Memory
	}
	if n.MemorySwap != 0 {
		if n.MemorySwap > 0 && r.Memory > 0 && n.MemorySwap < r.Memory {
			return container.UpdateResponse{}, errdefs.InvalidParameterf("Minimum memoryswap limit should be larger than memory limit, see usage")
		}
		r.MemorySwap = n.MemorySwap
	}
	if n.MemoryReservation != 0 {
		r.MemoryReservation = n.MemoryReservation
	}
	if n.NanoCPUs != 0 {
		if n.NanoCPUs < 0 || n.NanoCPUs > int64(hostCPUs())*1e9 {
			return container.UpdateResponse{}, errdefs.InvalidParameterf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", hostCPUs(), hostCPUs())
		}
		if r.CPUQuota > 0 || n.CPUQuota > 0 {
			return container.UpdateResponse{}, errdefs.InvalidParameterf("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
		}
		r.NanoCPUs = n.NanoCPUs
	}
	if n.CPUQuota != 0 {
		if r.NanoCPUs > 0 {
			return container.UpdateResponse{}, errdefs.InvalidParameterf("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
		}
		r.CPUQuota = n.CPUQuota
	}
	if n.CPUPeriod != 0 {
		r.CPUPeriod = n.CPUPeriod
	}
	if n.CPUShares != 0 {
		r.CPUShares = n.CPUShares
	}
	if n.CpusetCpus != "" {
		r.CpusetCpus = n.CpusetCpus
	}
	if n.CpusetMems != "" {
		r.CpusetMems = n.CpusetMems
	}
	if n.PidsLimit != nil {
		r.PidsLimit = n.PidsLimit
	}
	if n.BlkioWeight != 0 {
		r.BlkioWeight = n.BlkioWeight
	}
	if c.State.running() && c.State.Status != container.StateRestarting {
		if err := d.applyResources(c, &hc.Resources); err != nil {
			return container.UpdateResponse{}, errdefs.InvalidParameterf("Cannot update container %s: %v", c.ID, err)
		}
	}
	*c.HostConfig = hc
	if err := c.save(); err != nil {
		return container.UpdateResponse{}, err
	}
	d.containerEvent(c, eventtypes.ActionUpdate, nil)
	return container.UpdateResponse{Warnings: []string{}}, nil
}

func validateRestartPolicy(p container.RestartPolicy) error {
	switch p.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if p.MaximumRetryCount != 0 {
			return errdefs.InvalidParameterf("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if p.MaximumRetryCount < 0 {
			return errdefs.InvalidParameterf("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return errdefs.InvalidParameterf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", p.Name)
	}
	return nil
}

// applyResources writes r to the running container's cgroup. Caller holds c.mu.
func (d *Daemon) applyResources(c *Container, r *container.Resources) error {
	m, err := cgroups.New(path.Join(d.cgroupParent(), c.ID))
	if err != nil {
		return err
	}
	lr := &specs.LinuxResources{Memory: &specs.LinuxMemory{}, CPU: &specs.LinuxCPU{}}
	if r.Memory > 0 {
		limit := r.Memory
		lr.Memory.Limit = &limit
		swap := r.MemorySwap
		if swap == 0 {
			swap = 2 * limit
		}
		lr.Memory.Swap = &swap
	}
	if r.MemoryReservation > 0 {
		res := r.MemoryReservation
		lr.Memory.Reservation = &res
	}
	if r.CPUShares > 0 {
		shares := uint64(r.CPUShares)
		lr.CPU.Shares = &shares
	}
	switch {
	case r.NanoCPUs > 0:
		period, quota := uint64(100000), r.NanoCPUs*100000/1e9
		lr.CPU.Period, lr.CPU.Quota = &period, &quota
	case r.CPUQuota != 0:
		quota := r.CPUQuota
		lr.CPU.Quota = &quota
		if r.CPUPeriod > 0 {
			period := uint64(r.CPUPeriod)
			lr.CPU.Period = &period
		}
	}
	lr.CPU.Cpus, lr.CPU.Mems = r.CpusetCpus, r.CpusetMems
	if r.PidsLimit != nil && *r.PidsLimit != 0 {
		limit := *r.PidsLimit
		if limit < 0 {
			limit = -1
		}
		lr.Pids = &specs.LinuxPids{Limit: &limit}
	}
	return m.Set(lr)
}

// ContainerCommit implements api.ContainerSecBackend: a new image made of
// the container's image plus its writable layer, with its config.
func (d *Daemon) ContainerCommit(ctx context.Context, name string, opts api.CommitOptions) (string, error) {
	c, err := d.containers.get(name)
	if err != nil {
		return "", err
	}
	ref := opts.Repo
	if ref != "" {
		if opts.Tag != "" {
			ref += ":" + opts.Tag
		}
		if _, err := reference.ParseNormalizedNamed(ref); err != nil {
			return "", errdefs.InvalidParameter(err)
		}
	} else if opts.Tag != "" {
		return "", errdefs.InvalidParameterf("invalid reference format: repository name must be given with a tag")
	}
	c.mu.Lock()
	cfg := imageConfigFrom(c.Config, opts.Config)
	parent, cid := c.ImageID, c.ID
	createdBy := strings.Join(append([]string{c.Path}, c.Args...), " ")
	c.mu.Unlock()
	if err := image.ApplyChanges(&cfg, opts.Changes); err != nil {
		return "", errdefs.InvalidParameter(err)
	}
	layer, err := d.diffLayer(ctx, cid)
	if err != nil {
		return "", err
	}
	if layer != nil {
		defer layer.Close()
	}
	copts := image.CommitOptions{
		Parent: parent, Config: &cfg,
		CreatedBy: createdBy, Comment: opts.Comment, Author: opts.Author, Ref: ref,
	}
	if layer != nil {
		copts.Layer = layer
	}
	img, err := d.images.Commit(ctx, copts)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", trimSlash(c.Name), err)
	}
	c.mu.Lock()
	d.containerEvent(c, eventtypes.ActionCommit, map[string]string{"comment": opts.Comment, "imageID": img.ID.String(), "imageRef": ref})
	c.mu.Unlock()
	return img.ID.String(), nil
}

// diffLayer writes the container's changes to a temporary file; nil when
// there are none (the image then gets an empty-layer history entry).
func (d *Daemon) diffLayer(ctx context.Context, cid string) (*os.File, error) {
	f, err := os.CreateTemp("", "berth-commit-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if err := d.images.DiffRootfs(ctx, cid, f); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := tar.NewReader(f).Next(); err != nil {
		f.Close()
		return nil, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func hostCPUs() int { return goruntime.NumCPU() }

// imageConfigFrom is Docker's commit merge: the container's config,
// overridden by the non-empty fields of the request's.
func imageConfigFrom(cc, over *container.Config) dockerspec.DockerOCIImageConfig {
	pick := func(a, b []string) []string {
		if len(b) > 0 {
			return b
		}
		return a
	}
	pickS := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	if over == nil {
		over = &container.Config{}
	}
	out := dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
		User:       pickS(cc.User, over.User),
		Env:        pick(cc.Env, over.Env),
		Entrypoint: pick(cc.Entrypoint, over.Entrypoint),
		Cmd:        pick(cc.Cmd, over.Cmd),
		WorkingDir: pickS(cc.WorkingDir, over.WorkingDir),
		StopSignal: pickS(cc.StopSignal, over.StopSignal),
		Labels:     map[string]string{},
	}}
	for k, v := range cc.Labels {
		out.Labels[k] = v
	}
	for k, v := range over.Labels {
		out.Labels[k] = v
	}
	ports := cc.ExposedPorts
	if len(over.ExposedPorts) > 0 {
		ports = over.ExposedPorts
	}
	if len(ports) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for p := range ports {
			out.ExposedPorts[string(p.String())] = struct{}{}
		}
	}
	vols := cc.Volumes
	if len(over.Volumes) > 0 {
		vols = over.Volumes
	}
	if len(vols) > 0 {
		out.Volumes = map[string]struct{}{}
		for v := range vols {
			out.Volumes[v] = struct{}{}
		}
	}
	hcfg := cc.Healthcheck
	if over.Healthcheck != nil {
		hcfg = over.Healthcheck
	}
	if hcfg != nil {
		h := dockerspec.HealthcheckConfig(*hcfg)
		out.Healthcheck = &h
	}
	out.OnBuild = pick(cc.OnBuild, over.OnBuild)
	out.Shell = pick(cc.Shell, over.Shell)
	return out
}

// containerFS mounts c's root if needed and describes its view for docker
// cp; release unmounts it again if the container is not running.
func (d *Daemon) containerFS(ctx context.Context, name string) (containerfs.FS, func(), error) {
	c, err := d.containers.get(name)
	if err != nil {
		return containerfs.FS{}, nil, err
	}
	root, err := d.images.MountRootfs(ctx, c.ID)
	if err != nil {
		return containerfs.FS{}, nil, err
	}
	c.mu.Lock()
	f := containerfs.FS{Root: root, Name: name, ReadOnly: c.HostConfig.ReadonlyRootfs}
	for _, m := range []struct{ src, dst string }{
		{c.hostnamePath(), "/etc/hostname"}, {c.hostsPath(), "/etc/hosts"}, {c.resolvConfPath(), "/etc/resolv.conf"},
	} {
		if _, err := os.Stat(m.src); err == nil { // written at the first start
			f.Mounts = append(f.Mounts, containerfs.Mount{Source: m.src, Dest: m.dst})
		}
	}
	f.Mounts = append(f.Mounts, d.volumeFSMounts(c)...) // volumes.go
	c.mu.Unlock()
	release := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.State.running() && !c.removing {
			d.images.UnmountRootfs(context.WithoutCancel(ctx), c.ID)
		}
	}
	return f, release, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ContainerStatPath implements api.ContainerSecBackend.
func (d *Daemon) ContainerStatPath(ctx context.Context, name, p string) (*container.PathStat, error) {
	f, release, err := d.containerFS(ctx, name)
	if err != nil {
		return nil, err
	}
	defer release()
	return f.Stat(p)
}

// ContainerArchivePath implements api.ContainerSecBackend.
func (d *Daemon) ContainerArchivePath(ctx context.Context, name, p string) (io.ReadCloser, *container.PathStat, error) {
	f, release, err := d.containerFS(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	rc, st, err := f.Archive(ctx, p)
	if err != nil {
		release()
		return nil, nil, err
	}
	return releaseCloser{rc, release}, st, nil
}

type releaseCloser struct {
	io.ReadCloser
	release func()
}

func (r releaseCloser) Close() error {
	err := r.ReadCloser.Close()
	r.release()
	return err
}

// ContainerExtractToDir implements api.ContainerSecBackend.
func (d *Daemon) ContainerExtractToDir(ctx context.Context, name, p string, copyUIDGID, noOverwriteDirNonDir bool, content io.Reader) error {
	f, release, err := d.containerFS(ctx, name)
	if err != nil {
		return err
	}
	defer release()
	return f.Extract(ctx, p, content, copyUIDGID)
}
