package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addDistributionCommands adds push, login and logout (pull lives with
// the other image commands).
func addDistributionCommands(root, imageCmd *cobra.Command, env *Env) {
	root.AddCommand(newPushCmd(env), newLoginCmd(env), newLogoutCmd(env))
	imageCmd.AddCommand(newPushCmd(env))
	addArchiveCommands(root, imageCmd, env) // dist_archive.go
}

// dockerConfigDir is where the docker CLI keeps config.json.
func dockerConfigDir(env *Env) string {
	if d := env.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker")
}

// configFile is the part of ~/.docker/config.json berth reads and writes;
// other fields are kept as they are.
type configFile struct {
	raw         map[string]json.RawMessage
	Auths       map[string]authEntry
	CredsStore  string
	CredHelpers map[string]string
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

func loadConfigFile(env *Env) (*configFile, error) {
	cf := &configFile{raw: map[string]json.RawMessage{}, Auths: map[string]authEntry{}}
	data, err := os.ReadFile(filepath.Join(dockerConfigDir(env), "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &cf.raw); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dockerConfigDir(env), "config.json"), err)
	}
	json.Unmarshal(cf.raw["auths"], &cf.Auths)
	json.Unmarshal(cf.raw["credsStore"], &cf.CredsStore)
	json.Unmarshal(cf.raw["credHelpers"], &cf.CredHelpers)
	if cf.Auths == nil {
		cf.Auths = map[string]authEntry{}
	}
	return cf, nil
}

func (cf *configFile) save(env *Env) error {
	auths, _ := json.Marshal(cf.Auths)
	cf.raw["auths"] = auths
	data, err := json.MarshalIndent(cf.raw, "", "\t")
	if err != nil {
		return err
	}
	dir := dockerConfigDir(env)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "config.json.tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "config.json"))
}

// registryKey is the config.json key of a registry: Docker Hub has its
// historical URL.
func registryKey(host string) string {
	if host == "" || host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io" {
		return "https://index.docker.io/v1/"
	}
	return host
}

// credentials finds the stored credentials for host: a credential helper
// (credHelpers, then credsStore) or the auths entry.
func (cf *configFile) credentials(host string) registry.AuthConfig {
	key := registryKey(host)
	helper := cf.CredHelpers[host]
	if helper == "" {
		helper = cf.CredsStore
	}
	if helper != "" {
		cmd := exec.Command("docker-credential-"+helper, "get")
		cmd.Stdin = strings.NewReader(key)
		if out, err := cmd.Output(); err == nil {
			var c struct{ Username, Secret string }
			if json.Unmarshal(out, &c) == nil {
				if c.Username == "<token>" {
					return registry.AuthConfig{IdentityToken: c.Secret, ServerAddress: key}
				}
				return registry.AuthConfig{Username: c.Username, Password: c.Secret, ServerAddress: key}
			}
		}
	}
	e, ok := cf.Auths[key]
	if !ok {
		return registry.AuthConfig{}
	}
	ac := registry.AuthConfig{ServerAddress: key, IdentityToken: e.IdentityToken}
	if raw, err := base64.StdEncoding.DecodeString(e.Auth); err == nil {
		ac.Username, ac.Password, _ = strings.Cut(string(raw), ":")
	}
	return ac
}

// encodeAuth is the X-Registry-Auth header value for ac.
func encodeAuth(ac registry.AuthConfig) string {
	if ac == (registry.AuthConfig{}) {
		return ""
	}
	data, _ := json.Marshal(ac)
	return base64.URLEncoding.EncodeToString(data)
}

// registryAuthFor is the X-Registry-Auth header for an image reference.
func registryAuthFor(env *Env, ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	cf, err := loadConfigFile(env)
	if err != nil {
		return ""
	}
	return encodeAuth(cf.credentials(reference.Domain(named)))
}

// showProgress renders a JSON message stream: progress bars on a
// terminal, plain lines otherwise.
func showProgress(env *Env, rc io.Reader) error {
	fd, isTerm := termFd(env.Out)
	return jsonmessage.DisplayJSONMessagesStream(rc, env.Out, uintptr(fd), isTerm, nil)
}

func pullWithProgress(ctx context.Context, env *Env, c *client.Client, ref, platform string, quiet bool) error {
	opts := client.ImagePullOptions{RegistryAuth: registryAuthFor(env, ref)}
	if platform != "" {
		p, err := parsePlatformFlag(platform)
		if err != nil {
			return err
		}
		opts.Platforms = []ocispec.Platform{p}
	}
	rc, err := c.ImagePull(ctx, ref, opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	if quiet {
		return displayJSON(io.Discard, rc)
	}
	return showProgress(env, rc)
}

func newPushCmd(env *Env) *cobra.Command {
	var all, quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client()
			if err != nil {
				return err
			}
			ref := args[0]
			named, err := reference.ParseNormalizedNamed(ref)
			if err != nil {
				return fmt.Errorf("invalid reference format: %w", err)
			}
			if !all {
				if _, tagged := named.(reference.Tagged); !tagged {
					fmt.Fprintln(env.Out, "Using default tag: latest")
					named = reference.TagNameOnly(named)
				}
			}
			rc, err := c.ImagePush(context.Background(), reference.FamiliarString(named), client.ImagePushOptions{All: all, RegistryAuth: registryAuthFor(env, ref)})
			if err != nil {
				return err
			}
			defer rc.Close()
			if quiet {
				if err := displayJSON(io.Discard, rc); err != nil {
					return err
				}
				fmt.Fprintln(env.Out, reference.FamiliarString(named))
				return nil
			}
			return showProgress(env, rc)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-tags", "a", false, "Push all tags of an image to the repository")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

func newLoginCmd(env *Env) *cobra.Command {
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			key := registryKey(strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://"), "/"))
			if passwordStdin {
				if user == "" {
					return errors.New("Must provide --username with --password-stdin")
				}
				data, err := io.ReadAll(env.In)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(data), "\r\n")
			}
			if user == "" {
				fmt.Fprint(env.Out, "Username: ")
				line, _ := readLine(env.In)
				user = strings.TrimSpace(line)
			}
			if password == "" {
				fmt.Fprint(env.Out, "Password: ")
				if fd, ok := termFd(env.In); ok {
					b, err := term.ReadPassword(fd)
					fmt.Fprintln(env.Out)
					if err != nil {
						return err
					}
					password = string(b)
				} else {
					line, _ := readLine(env.In)
					password = strings.TrimRight(line, "\r\n")
				}
			}
			if user == "" || password == "" {
				return errors.New("Error: Non-null Username and Password Required")
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			res, err := c.RegistryLogin(context.Background(), client.RegistryLoginOptions{Username: user, Password: password, ServerAddress: key})
			if err != nil {
				return err
			}
			cf, err := loadConfigFile(env)
			if err != nil {
				return err
			}
			cf.Auths[key] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password)), IdentityToken: res.Auth.IdentityToken}
			if err := cf.save(env); err != nil {
				return err
			}
			fmt.Fprintln(env.Out, "Login Succeeded")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&user, "username", "u", "", "Username")
	fl.StringVarP(&password, "password", "p", "", "Password")
	fl.BoolVar(&passwordStdin, "password-stdin", false, "Take the password from stdin")
	return cmd
}

func readLine(r io.Reader) (string, error) {
	var b bytes.Buffer
	one := make([]byte, 1)
	for {
		n, err := r.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return b.String(), nil
			}
			b.WriteByte(one[0])
		}
		if err != nil {
			return b.String(), err
		}
	}
}

func newLogoutCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			key := registryKey(strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://"), "/"))
			cf, err := loadConfigFile(env)
			if err != nil {
				return err
			}
			if _, ok := cf.Auths[key]; !ok {
				fmt.Fprintf(env.Out, "Not logged in to %s\n", key)
				return nil
			}
			fmt.Fprintf(env.Out, "Removing login credentials for %s\n", key)
			delete(cf.Auths, key)
			return cf.save(env)
		},
	}
}
