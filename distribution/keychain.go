package distribution

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/registry"
)

// ConfigKeychain returns a Keychain reading a docker config.json (path ""
// means $DOCKER_CONFIG/config.json or ~/.docker/config.json): its "auths"
// entries, or the credential helper named by "credHelpers" or
// "credsStore" (docker-credential-<name> get). A missing or unreadable
// file gives no credentials.
func ConfigKeychain(path string) func(host string) registry.AuthConfig {
	if path == "" {
		if d := os.Getenv("DOCKER_CONFIG"); d != "" {
			path = filepath.Join(d, "config.json")
		} else if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, ".docker", "config.json")
		}
	}
	return func(host string) registry.AuthConfig {
		var cf struct {
			Auths       map[string]registry.AuthConfig `json:"auths"`
			CredsStore  string                         `json:"credsStore"`
			CredHelpers map[string]string              `json:"credHelpers"`
		}
		data, err := os.ReadFile(path)
		if err != nil || json.Unmarshal(data, &cf) != nil {
			return registry.AuthConfig{}
		}
		key := host
		if host == "docker.io" {
			key = "https://index.docker.io/v1/"
		}
		helper := cf.CredsStore
		if h, ok := cf.CredHelpers[key]; ok {
			helper = h
		}
		if helper != "" {
			return fromHelper(helper, key)
		}
		for _, k := range []string{key, "https://" + host, "http://" + host} {
			if a, ok := cf.Auths[k]; ok {
				if a.Username == "" && a.Auth != "" {
					if raw, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
						a.Username, a.Password, _ = strings.Cut(string(raw), ":")
					}
				}
				a.ServerAddress = k
				return a
			}
		}
		return registry.AuthConfig{}
	}
}

// fromHelper asks docker-credential-<helper> for server's credential.
func fromHelper(helper, server string) registry.AuthConfig {
	cmd := exec.Command("docker-credential-"+helper, "get")
	cmd.Stdin = strings.NewReader(server)
	var out bytes.Buffer
	cmd.Stdout = &out
	if cmd.Run() != nil {
		return registry.AuthConfig{}
	}
	var r struct{ Username, Secret string }
	if json.Unmarshal(out.Bytes(), &r) != nil {
		return registry.AuthConfig{}
	}
	if r.Username == "<token>" {
		return registry.AuthConfig{IdentityToken: r.Secret, ServerAddress: server}
	}
	return registry.AuthConfig{Username: r.Username, Password: r.Secret, ServerAddress: server}
}
