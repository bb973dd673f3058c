package distribution

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// AuthConfig is a registry credential as the docker CLI sends it in
// X-Registry-Auth and POST /auth, and as config.json stores it.
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"` // base64("user:password")
	Email         string `json:"email,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// Empty reports whether a carries no credential at all.
func (a AuthConfig) Empty() bool {
	return a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == ""
}

// userPass returns the basic credentials, decoding Auth when needed.
func (a AuthConfig) userPass() (string, string) {
	if a.Username != "" || a.Password != "" {
		return a.Username, a.Password
	}
	if a.Auth != "" {
		if raw, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
			u, p, _ := strings.Cut(string(raw), ":")
			return u, p
		}
	}
	return "", ""
}

// DecodeAuthHeader decodes an X-Registry-Auth header: base64url JSON (the
// docker CLI), padded or not. An empty header is no credential.
func DecodeAuthHeader(h string) (AuthConfig, error) {
	var a AuthConfig
	if h == "" {
		return a, nil
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if raw, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return a, fmt.Errorf("invalid X-Registry-Auth header: %w", err)
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("invalid X-Registry-Auth header: %w", err)
	}
	return a, nil
}

// EncodeAuthHeader is the inverse of DecodeAuthHeader.
func EncodeAuthHeader(a AuthConfig) string {
	b, _ := json.Marshal(a)
	return base64.URLEncoding.EncodeToString(b)
}

// ConfigFile is the part of ~/.docker/config.json that holds credentials.
type ConfigFile struct {
	path        string
	raw         map[string]json.RawMessage
	Auths       map[string]AuthConfig `json:"auths"`
	CredsStore  string                `json:"credsStore,omitempty"`
	CredHelpers map[string]string     `json:"credHelpers,omitempty"`
}

// DefaultConfigPath is $DOCKER_CONFIG/config.json or ~/.docker/config.json.
func DefaultConfigPath() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker", "config.json")
}

// LoadConfigFile reads path; a missing file is an empty config.
func LoadConfigFile(path string) (*ConfigFile, error) {
	c := &ConfigFile{path: path, raw: map[string]json.RawMessage{}, Auths: map[string]AuthConfig{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c.raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Auths == nil {
		c.Auths = map[string]AuthConfig{}
	}
	return c, nil
}

// configKey is how config.json names a registry: Docker Hub by its
// historical index URL, others by host[:port].
func configKey(host string) string {
	if host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io" {
		return "https://index.docker.io/v1/"
	}
	return host
}

// normalizeHost turns a login argument ("https://host/v2/", "host") into host[:port].
func normalizeHost(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	if s == "index.docker.io" || s == "registry-1.docker.io" || s == "" {
		return "docker.io"
	}
	return s
}

func (c *ConfigFile) helperFor(host string) string {
	if h, ok := c.CredHelpers[configKey(host)]; ok {
		return h
	}
	if h, ok := c.CredHelpers[host]; ok {
		return h
	}
	return c.CredsStore
}

// Get returns the credential for a registry host, asking a credential
// helper when one is configured.
func (c *ConfigFile) Get(host string) (AuthConfig, error) {
	host = normalizeHost(host)
	key := configKey(host)
	if helper := c.helperFor(host); helper != "" {
		out, err := runHelper(helper, "get", key)
		if err != nil {
			if strings.Contains(err.Error(), "credentials not found") {
				return AuthConfig{}, nil
			}
			return AuthConfig{}, err
		}
		var resp struct{ ServerURL, Username, Secret string }
		if err := json.Unmarshal(out, &resp); err != nil {
			return AuthConfig{}, fmt.Errorf("credential helper %s: %w", helper, err)
		}
		a := AuthConfig{ServerAddress: key}
		if resp.Username == "<token>" {
			a.IdentityToken = resp.Secret
		} else {
			a.Username, a.Password = resp.Username, resp.Secret
		}
		return a, nil
	}
	for _, k := range []string{key, host, "https://" + host, "http://" + host} {
		if a, ok := c.Auths[k]; ok {
			if a.Username == "" && a.Auth != "" {
				a.Username, a.Password = a.userPass()
			}
			a.ServerAddress = k
			return a, nil
		}
	}
	return AuthConfig{}, nil
}

// Store saves a credential for host (in a helper when configured).
func (c *ConfigFile) Store(host string, a AuthConfig) error {
	host = normalizeHost(host)
	key := configKey(host)
	if helper := c.helperFor(host); helper != "" {
		secret, user := a.Password, a.Username
		if a.IdentityToken != "" {
			secret, user = a.IdentityToken, "<token>"
		}
		b, _ := json.Marshal(map[string]string{"ServerURL": key, "Username": user, "Secret": secret})
		if _, err := runHelperInput(helper, "store", b); err != nil {
			return err
		}
		c.Auths[key] = AuthConfig{}
		return c.save()
	}
	u, p := a.userPass()
	entry := AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte(u + ":" + p))}
	if a.IdentityToken != "" {
		entry = AuthConfig{IdentityToken: a.IdentityToken, Auth: base64.StdEncoding.EncodeToString([]byte(u + ":"))}
	}
	c.Auths[key] = entry
	return c.save()
}

// Erase forgets the credential for host; false when there was none.
func (c *ConfigFile) Erase(host string) (bool, error) {
	host = normalizeHost(host)
	key := configKey(host)
	_, had := c.Auths[key]
	if helper := c.helperFor(host); helper != "" {
		if _, err := runHelperInput(helper, "erase", []byte(key)); err == nil {
			had = true
		}
	}
	if !had {
		return false, nil
	}
	delete(c.Auths, key)
	return true, c.save()
}

// save rewrites the file, keeping keys berth does not know about.
func (c *ConfigFile) save() error {
	auths, _ := json.Marshal(c.Auths)
	c.raw["auths"] = auths
	b, err := json.MarshalIndent(c.raw, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.path)
}

// Path is the file's location.
func (c *ConfigFile) Path() string { return c.path }

func runHelper(helper, action, arg string) ([]byte, error) {
	return runHelperInput(helper, action, []byte(arg))
}

func runHelperInput(helper, action string, in []byte) ([]byte, error) {
	cmd := exec.Command("docker-credential-"+helper, action)
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String() + " " + errb.String())
		return nil, fmt.Errorf("credential helper docker-credential-%s %s: %v: %s", helper, action, err, msg)
	}
	return out.Bytes(), nil
}
