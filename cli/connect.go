package cli

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/go-connections/sockets"
	"github.com/docker/go-connections/tlsconfig"
	"github.com/moby/moby/client"
)

// DefaultHost is where berth's daemon listens unless told otherwise.
const DefaultHost = "unix:///run/berth/berth.sock"

// ConnOptions are the global connection flags (docker's names).
type ConnOptions struct {
	Hosts     []string
	TLS       bool
	TLSVerify bool
	CACert    string
	Cert      string
	Key       string
}

// ResolveHost picks the daemon address: -H, then BERTH_HOST, then
// DOCKER_HOST, then the default socket.
func ResolveHost(flagHosts []string, getenv func(string) string) (string, error) {
	switch {
	case len(flagHosts) > 1:
		return "", fmt.Errorf("specify only one -H")
	case len(flagHosts) == 1 && flagHosts[0] != "":
		return normalizeHost(flagHosts[0])
	case getenv("BERTH_HOST") != "":
		return normalizeHost(getenv("BERTH_HOST"))
	case getenv("DOCKER_HOST") != "":
		return normalizeHost(getenv("DOCKER_HOST"))
	}
	return DefaultHost, nil
}

// normalizeHost accepts docker's shorthands: a bare path is a unix socket,
// host:port is tcp.
func normalizeHost(h string) (string, error) {
	h = strings.TrimSpace(h)
	switch {
	case strings.HasPrefix(h, "/"):
		return "unix://" + h, nil
	case !strings.Contains(h, "://"):
		return "tcp://" + h, nil
	}
	u, err := client.ParseHostURL(h)
	if err != nil {
		return "", fmt.Errorf("invalid daemon host %q: %w", h, err)
	}
	switch u.Scheme {
	case "unix", "tcp", "http", "https":
	default:
		return "", fmt.Errorf("invalid daemon host %q: unsupported protocol %q", h, u.Scheme)
	}
	return h, nil
}

// tlsOptions resolves the TLS settings like docker does: --tlsverify (or
// DOCKER_TLS_VERIFY) implies --tls; certificate paths default to
// DOCKER_CERT_PATH, then ~/.docker. Returns nil when TLS is off.
func (o ConnOptions) tlsOptions(getenv func(string) string) *tlsconfig.Options {
	verify := o.TLSVerify || getenv("DOCKER_TLS_VERIFY") != ""
	if !o.TLS && !verify {
		return nil
	}
	dir := getenv("DOCKER_CERT_PATH")
	if dir == "" {
		if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, ".docker")
		}
	}
	pick := func(flag, name string) string {
		if flag != "" {
			return flag
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		return ""
	}
	opts := &tlsconfig.Options{
		CAFile:             pick(o.CACert, "ca.pem"),
		CertFile:           pick(o.Cert, "cert.pem"),
		KeyFile:            pick(o.Key, "key.pem"),
		InsecureSkipVerify: !verify,
		ExclusiveRootPools: true,
		MinVersion:         tls.VersionTLS12,
	}
	if !verify {
		opts.CAFile = ""
	}
	return opts
}

// NewClient builds an Engine API client with API version negotiation.
func NewClient(o ConnOptions, getenv func(string) string, userAgent string) (*client.Client, error) {
	host, err := ResolveHost(o.Hosts, getenv)
	if err != nil {
		return nil, err
	}
	opts := []client.Opt{client.WithUserAgent(userAgent)}
	if v := getenv("DOCKER_API_VERSION"); v != "" {
		opts = append(opts, client.WithAPIVersion(v))
	}
	if to := o.tlsOptions(getenv); to != nil {
		u, err := client.ParseHostURL(host)
		if err != nil {
			return nil, err
		}
		cfg, err := tlsconfig.Client(*to)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tr := &http.Transport{TLSClientConfig: cfg}
		if err := sockets.ConfigureTransport(tr, u.Scheme, u.Host); err != nil {
			return nil, err
		}
		opts = append(opts, client.WithHTTPClient(&http.Client{Transport: tr, CheckRedirect: client.CheckRedirect}), client.WithScheme("https"))
	}
	opts = append(opts, client.WithHost(host))
	return client.New(opts...)
}
