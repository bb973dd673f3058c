package daemon

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/distribution"
	"github.com/berth-dev/berth/errdefs"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
)

var _ api.DistributionBackend = (*Daemon)(nil)

// distService is the daemon's registry client.
type distService struct {
	client *distribution.Client
}

func newDistService(cfg Config) (*distService, error) {
	c, err := distribution.New(distribution.Options{
		InsecureRegistries: cfg.InsecureRegistries,
		Mirrors:            cfg.RegistryMirrors,
		UserAgent:          "berth/" + cfg.Version,
		Log:                cfg.Log.With("component", "distribution"),
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: registry client: %w", err)
	}
	cleanLoadTmp(cfg)
	return &distService{client: c}, nil
}

// PullImage implements api.DistributionBackend.
func (d *Daemon) PullImage(ctx context.Context, opts api.PullOptions, out io.Writer) error {
	ref, err := distribution.WithTag(opts.Image, opts.Tag)
	if err != nil {
		return err
	}
	creds, err := distribution.DecodeAuthHeader(opts.Auth)
	if err != nil {
		return err
	}
	res, err := d.dist.client.Pull(ctx, d.images, ref, distribution.PullOptions{
		Platform: opts.Platform,
		Keychain: distribution.Static(creds),
		Progress: distribution.NewProgress(out),
	})
	if err != nil {
		return err
	}
	d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionPull, ref.Familiar(), map[string]string{"name": ref.FamiliarName()})
	_ = res
	return nil
}

// PushImage implements api.DistributionBackend.
func (d *Daemon) PushImage(ctx context.Context, opts api.PushOptions, out io.Writer) error {
	name := opts.Name
	repo, err := distribution.ParseRef(name)
	if err != nil {
		return err
	}
	creds, err := distribution.DecodeAuthHeader(opts.Auth)
	if err != nil {
		return err
	}
	p := distribution.NewProgress(out)
	p.Status("", "The push refers to repository ["+repo.Name()+"]")
	var tags []distribution.Ref
	switch {
	case opts.Tag != "":
		r, err := distribution.WithTag(repo.Name(), opts.Tag)
		if err != nil {
			return err
		}
		tags = append(tags, r)
	case strings.Contains(name, ":") && repo.Tag != "" && strings.HasSuffix(name, ":"+repo.Tag):
		tags = append(tags, repo)
	default:
		imgs, err := d.images.List(ctx)
		if err != nil {
			return err
		}
		for _, img := range imgs {
			for _, t := range img.RepoTags {
				if r, err := distribution.ParseRef(t); err == nil && r.Name() == repo.Name() {
					tags = append(tags, r)
				}
			}
		}
		if len(tags) == 0 {
			return fmt.Errorf("An image does not exist locally with the tag: %s", repo.FamiliarName())
		}
	}
	for _, ref := range tags {
		img, err := d.images.Get(ctx, ref.String())
		if err != nil {
			if errdefs.IsNotFound(err) {
				return fmt.Errorf("An image does not exist locally with the tag: %s", ref.FamiliarName())
			}
			return err
		}
		view, err := d.images.View(ctx, img.ID.String())
		if err != nil {
			return err
		}
		res, err := d.dist.client.Push(ctx, view, ref, d.images, distribution.PushOptions{
			Keychain:  distribution.Static(creds),
			Progress:  p,
			MountFrom: img.RepoDigests,
		})
		if err != nil {
			return err
		}
		if err := d.images.Tag(ctx, img.ID, ref.Name()+"@"+res.Digest.String()); err != nil {
			d.log.Warn("record pushed digest", "ref", ref.String(), "err", err)
		}
		d.events.Publish(eventtypes.ImageEventType, eventtypes.ActionPush, ref.Familiar(), map[string]string{"name": ref.FamiliarName()})
	}
	return nil
}

// RegistryLogin implements api.DistributionBackend: it checks the
// credentials against the registry; the client stores them.
func (d *Daemon) RegistryLogin(ctx context.Context, cfg registry.AuthConfig) (registry.AuthResponse, error) {
	server := cfg.ServerAddress
	if server == "" || strings.Contains(server, "index.docker.io") {
		server = "docker.io"
	}
	user, pass := cfg.Username, cfg.Password
	if cfg.Auth != "" && user == "" {
		raw, err := base64.StdEncoding.DecodeString(cfg.Auth)
		if err != nil {
			return registry.AuthResponse{}, errdefs.InvalidParameterf("invalid auth field: %v", err)
		}
		user, pass, _ = strings.Cut(string(raw), ":")
	}
	tok, err := d.dist.client.Login(ctx, server, distribution.Credentials{Username: user, Password: pass, IdentityToken: cfg.IdentityToken})
	if err != nil {
		return registry.AuthResponse{}, err
	}
	return registry.AuthResponse{Status: "Login Succeeded", IdentityToken: tok}, nil
}
