package distribution

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/errdefs"
)

// Credentials authenticate to one registry. Zero means anonymous.
type Credentials struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// IdentityToken is a refresh token (OAuth2) from a previous login.
	IdentityToken string `json:"identitytoken,omitempty"`
	// RegistryToken is a bearer token used as is.
	RegistryToken string `json:"registrytoken,omitempty"`
}

func (c Credentials) anonymous() bool {
	return c.Username == "" && c.Password == "" && c.IdentityToken == "" && c.RegistryToken == ""
}

// Keychain finds the credentials for a registry domain ("docker.io",
// "host:5000"); it returns zero Credentials when it has none.
type Keychain interface {
	Resolve(ctx context.Context, domain string) (Credentials, error)
}

// Static is a Keychain that answers the same credentials for every registry.
type Static Credentials

// Resolve implements Keychain.
func (s Static) Resolve(context.Context, string) (Credentials, error) { return Credentials(s), nil }

// authConfig is the JSON of the X-Registry-Auth header and of config.json entries.
type authConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	Email         string `json:"email,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

func (a authConfig) credentials() (Credentials, error) {
	c := Credentials{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	if a.Auth != "" && c.Username == "" {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return Credentials{}, fmt.Errorf("auth field: %w", err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return Credentials{}, errors.New("auth field: want user:password")
		}
		c.Username, c.Password = user, pass
	}
	return c, nil
}

// DecodeAuthHeader decodes the X-Registry-Auth header the docker CLI sends
// (base64url JSON; "" and "e30=" mean none).
func DecodeAuthHeader(h string) (Credentials, error) {
	if h == "" {
		return Credentials{}, nil
	}
	raw, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		if raw, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(h, "=")); err != nil {
			return Credentials{}, errdefs.InvalidParameter(fmt.Errorf("X-Registry-Auth: %w", err))
		}
	}
	var a authConfig
	if err := json.Unmarshal(raw, &a); err != nil {
		return Credentials{}, errdefs.InvalidParameter(fmt.Errorf("X-Registry-Auth: %w", err))
	}
	return a.credentials()
}

// EncodeAuthHeader is the inverse of DecodeAuthHeader (for clients).
func EncodeAuthHeader(c Credentials, server string) string {
	b, _ := json.Marshal(authConfig{Username: c.Username, Password: c.Password, IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken, ServerAddress: server})
	return base64.URLEncoding.EncodeToString(b)
}

// DockerConfig is ~/.docker/config.json: stored logins and credential helpers.
type DockerConfig struct {
	// Path of the file; DefaultConfigPath() when empty.
	Path string
	// HelperDir, if set, is searched for docker-credential-* before $PATH (tests).
	HelperDir string

	raw  map[string]json.RawMessage
	file struct {
		Auths       map[string]authConfig `json:"auths,omitempty"`
		CredsStore  string                `json:"credsStore,omitempty"`
		CredHelpers map[string]string     `json:"credHelpers,omitempty"`
	}
}

// DefaultConfigPath is $DOCKER_CONFIG/config.json or ~/.docker/config.json.
func DefaultConfigPath() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker", "config.json")
}

// LoadDockerConfig reads path ("" for the default); a missing file is empty.
func LoadDockerConfig(path string) (*DockerConfig, error) {
	if path == "" {
		path = DefaultConfigPath()
	}
	c := &DockerConfig{Path: path, raw: map[string]json.RawMessage{}}
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
	if err := json.Unmarshal(b, &c.file); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// helperFor names the credential helper for domain, "" if none.
func (c *DockerConfig) helperFor(key string) string {
	if h := c.file.CredHelpers[key]; h != "" {
		return h
	}
	return c.file.CredsStore
}

// Resolve implements Keychain.
func (c *DockerConfig) Resolve(ctx context.Context, domain string) (Credentials, error) {
	key := authKey(domain)
	if h := c.helperFor(key); h != "" {
		var out struct{ Username, Secret string }
		b, err := c.runHelper(ctx, h, "get", []byte(key))
		if err != nil {
			if strings.Contains(err.Error(), "credentials not found") {
				return Credentials{}, nil
			}
			return Credentials{}, err
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return Credentials{}, fmt.Errorf("credential helper %s: %w", h, err)
		}
		if out.Username == "<token>" {
			return Credentials{IdentityToken: out.Secret}, nil
		}
		return Credentials{Username: out.Username, Password: out.Secret}, nil
	}
	for k, a := range c.file.Auths {
		if normalizeAuthKey(k) == normalizeAuthKey(key) {
			return a.credentials()
		}
	}
	return Credentials{}, nil
}

// normalizeAuthKey strips the scheme and path config.json keys may carry
// ("https://host:5000/v1/" is host:5000).
func normalizeAuthKey(k string) string {
	if k == "https://index.docker.io/v1/" {
		return k
	}
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	h, _, _ := strings.Cut(k, "/")
	return h
}

// Store records credentials for domain (in its helper when one is set).
func (c *DockerConfig) Store(ctx context.Context, domain string, cred Credentials) error {
	key := authKey(domain)
	if h := c.helperFor(key); h != "" {
		user, secret := cred.Username, cred.Password
		if cred.IdentityToken != "" {
			user, secret = "<token>", cred.IdentityToken
		}
		in, _ := json.Marshal(map[string]string{"ServerURL": key, "Username": user, "Secret": secret})
		_, err := c.runHelper(ctx, h, "store", in)
		return err
	}
	if c.file.Auths == nil {
		c.file.Auths = map[string]authConfig{}
	}
	a := authConfig{IdentityToken: cred.IdentityToken}
	if cred.IdentityToken == "" {
		a.Auth = base64.StdEncoding.EncodeToString([]byte(cred.Username + ":" + cred.Password))
	}
	c.file.Auths[key] = a
	return c.save()
}

// Erase forgets the credentials for domain; false if there were none.
func (c *DockerConfig) Erase(ctx context.Context, domain string) (bool, error) {
	key := authKey(domain)
	found := false
	for k := range c.file.Auths {
		if normalizeAuthKey(k) == normalizeAuthKey(key) {
			delete(c.file.Auths, k)
			found = true
		}
	}
	if h := c.helperFor(key); h != "" {
		if _, err := c.runHelper(ctx, h, "erase", []byte(key)); err == nil {
			found = true
		}
	}
	if !found {
		return false, nil
	}
	return true, c.save()
}

func (c *DockerConfig) save() error {
	if c.raw == nil {
		c.raw = map[string]json.RawMessage{}
	}
	auths, err := json.Marshal(c.file.Auths)
	if err != nil {
		return err
	}
	c.raw["auths"] = auths
	b, err := json.MarshalIndent(c.raw, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
		return err
	}
	tmp := c.Path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.Path)
}

func (c *DockerConfig) runHelper(ctx context.Context, name, action string, in []byte) ([]byte, error) {
	bin := "docker-credential-" + name
	if c.HelperDir != "" {
		if p := filepath.Join(c.HelperDir, bin); fileExists(p) {
			bin = p
		}
	}
	cmd := exec.CommandContext(ctx, bin, action)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stdout.String() + " " + stderr.String())
		return nil, fmt.Errorf("credential helper %s %s: %w: %s", bin, action, err, msg)
	}
	return stdout.Bytes(), nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Chain tries keychains in order and returns the first non-anonymous answer.
type Chain []Keychain

// Resolve implements Keychain.
func (ch Chain) Resolve(ctx context.Context, domain string) (Credentials, error) {
	for _, k := range ch {
		if k == nil {
			continue
		}
		c, err := k.Resolve(ctx, domain)
		if err != nil {
			return Credentials{}, err
		}
		if !c.anonymous() {
			return c, nil
		}
	}
	return Credentials{}, nil
}
