package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/compose-spec/compose-go/v2/types"
)

// ConfigHash digests the parts of a service that shape its containers, so
// `up` recreates a container only when they change. Fields that only steer
// compose itself (build, pull policy, scale, dependencies' restart flags)
// are left out, as docker compose does.
func ConfigHash(s types.ServiceConfig) (string, error) {
	o := s
	o.Build = nil
	o.PullPolicy = ""
	o.Scale = nil
	o.Develop = nil
	o.Attach = nil
	if o.Deploy != nil {
		d := *o.Deploy
		d.Replicas = nil
		o.Deploy = &d
	}
	o.DependsOn = nil
	o.Profiles = nil
	o.Extends = nil
	b, err := json.Marshal(o)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
