package image

import dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

// ApplyChanges applies Dockerfile instructions (docker commit --change) to
// cfg, as import does.
func ApplyChanges(cfg *dockerspec.DockerOCIImageConfig, changes []string) error {
	return applyChanges(cfg, changes)
}
