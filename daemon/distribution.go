package daemon

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/distribution"
	"github.com/berth-dev/berth/errdefs"
	"github.com/distribution/reference"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var _ api.DistributionBackend = (*Daemon)(nil)

func (d *Daemon) registryClient(authHeader string) (*distribution.Client, error) {
	auth, err := distribution.DecodeAuthHeader(authHeader)
	if err != nil {
		return nil, err
	}
	return distribution.NewClient(distribution.Options{Insecure: d.cfg.InsecureRegistries, Mirrors: d.cfg.RegistryMirrors, Keychain: distribution.ConfigKeychain("")}, auth), nil
}

// PullImage implements api.DistributionBackend.
func (d *Daemon) PullImage(ctx context.Context, ref, tag, platform, authHeader string, progress func(jsonstream.Message)) error {
	if tag != "" {
		if strings.HasPrefix(tag, "sha256:") {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return errdefs.InvalidParameterf("invalid reference format: %v", err)
	}
	opts := distribution.PullOptions{Progress: progress}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		opts.Platform = &p
	}
	c, err := d.registryClient(authHeader)
	if err != nil {
		return err
	}
	img, err := distribution.Pull(ctx, d.images, c, named, opts)
	if err != nil {
		return err
	}
	d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionPull, reference.FamiliarString(reference.TagNameOnly(named)), map[string]string{"name": reference.FamiliarString(reference.TagNameOnly(named))})
	_ = img
	return nil
}

func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, errdefs.InvalidParameterf("invalid platform %q: want os/arch[/variant]", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// PushImage implements api.DistributionBackend: the tag given, the one in
// name, or every tag of the repository.
func (d *Daemon) PushImage(ctx context.Context, name, tag, authHeader string, progress func(jsonstream.Message)) error {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return errdefs.InvalidParameterf("invalid reference format: %v", err)
	}
	if tag != "" {
		if named, err = reference.WithTag(reference.TrimNamed(named), tag); err != nil {
			return errdefs.InvalidParameter(err)
		}
	}
	var targets []reference.NamedTagged
	if t, ok := named.(reference.NamedTagged); ok {
		targets = append(targets, t)
	} else {
		imgs, err := d.images.List(ctx)
		if err != nil {
			return err
		}
		for _, img := range imgs {
			for _, rt := range img.RepoTags {
				n, err := reference.ParseNormalizedNamed(rt)
				if err != nil || n.Name() != named.Name() {
					continue
				}
				if t, ok := n.(reference.NamedTagged); ok {
					targets = append(targets, t)
				}
			}
		}
		if len(targets) == 0 {
			return errdefs.NotFoundf("An image does not exist locally with the tag: %s", reference.FamiliarName(named))
		}
	}
	c, err := d.registryClient(authHeader)
	if err != nil {
		return err
	}
	if progress != nil {
		progress(jsonstream.Message{Status: fmt.Sprintf("The push refers to repository [%s]", named.Name())})
	}
	for _, t := range targets {
		img, err := d.images.Get(ctx, t.String())
		if err != nil {
			return errdefs.NotFoundf("An image does not exist locally with the tag: %s", reference.FamiliarString(t))
		}
		// Other repositories of the same registry holding this image can
		// lend their blobs (cross-repository mount).
		var from []string
		for _, r := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
			if n, err := reference.ParseNormalizedNamed(r); err == nil && reference.Domain(n) == reference.Domain(t) && n.Name() != t.Name() {
				from = append(from, reference.Path(n))
			}
		}
		res, err := distribution.Push(ctx, d.images, c, t, distribution.PushOptions{Progress: progress, MountFrom: from})
		if err != nil {
			return err
		}
		// As Docker does, the image now knows its digest in that repository.
		if err := d.images.Tag(ctx, img.ID, t.Name()+"@"+res.Digest.String()); err != nil {
			d.log.Warn("record pushed digest", "ref", t.String(), "err", err)
		}
		d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionPush, reference.FamiliarString(t), map[string]string{"name": reference.FamiliarString(t)})
	}
	return nil
}

// Login implements api.DistributionBackend.
func (d *Daemon) Login(ctx context.Context, cfg registry.AuthConfig) (registry.AuthResponse, error) {
	c := distribution.NewClient(distribution.Options{Insecure: d.cfg.InsecureRegistries}, cfg)
	if err := c.Ping(ctx, cfg.ServerAddress); err != nil {
		return registry.AuthResponse{}, err
	}
	return registry.AuthResponse{Status: "Login Succeeded"}, nil
}
