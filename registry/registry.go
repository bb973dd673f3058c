// Package registry assembles `berth registry serve`: configuration, the
// store, authentication, the HTTP API, TLS and background maintenance.
package registry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/registry/api"
	"github.com/berth-dev/berth/registry/auth"
	"github.com/berth-dev/berth/registry/storage"
)

// Config is the registry configuration; the YAML file and the flags set
// the same fields (flags win).
type Config struct {
	Addr         string   `yaml:"addr"`
	Root         string   `yaml:"root"`
	ReadOnly     bool     `yaml:"readOnly"`
	EnableDelete bool     `yaml:"delete"`
	LogLevel     string   `yaml:"logLevel"`
	LogFormat    string   `yaml:"logFormat"` // text or json
	UploadTTL    Duration `yaml:"uploadTTL"`
	TLS          struct {
		Cert     string `yaml:"cert"`
		Key      string `yaml:"key"`
		ClientCA string `yaml:"clientCA"` // require client certificates signed by this CA
	} `yaml:"tls"`
	Auth struct {
		Htpasswd      string      `yaml:"htpasswd"`
		AnonymousPull bool        `yaml:"anonymousPull"`
		Rules         []auth.Rule `yaml:"rules"`
		Token         struct {
			Enabled bool     `yaml:"enabled"`
			Realm   string   `yaml:"realm"`
			Service string   `yaml:"service"`
			KeyFile string   `yaml:"keyFile"`
			Expiry  Duration `yaml:"expiry"`
		} `yaml:"token"`
	} `yaml:"auth"`
	GC struct {
		Interval Duration `yaml:"interval"` // 0 disables periodic GC
		Grace    Duration `yaml:"grace"`
	} `yaml:"gc"`
}

// Duration is a time.Duration written as "90s", "1h" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// DefaultConfig is the configuration without a file or flags.
func DefaultConfig() Config {
	var c Config
	c.Addr = "127.0.0.1:5000"
	c.Root = "/var/lib/berth/registry"
	c.LogLevel = "info"
	c.LogFormat = "text"
	c.UploadTTL = Duration(24 * time.Hour)
	c.Auth.Token.Service = "berth-registry"
	c.Auth.Token.Expiry = Duration(5 * time.Minute)
	c.GC.Grace = Duration(time.Hour)
	return c
}

// LoadConfig reads a YAML file over the defaults. Unknown keys are errors,
// so that typos do not silently disable a setting.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	f, err := os.Open(path)
	if err != nil {
		return c, fmt.Errorf("registry config: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("registry config %s: %w", path, err)
	}
	return c, nil
}

// NewLogger builds the logger the config asks for.
func NewLogger(c Config) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.LogLevel, err)
	}
	o := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, o)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, o)), nil
}

// tokenPath is where the built-in token service answers.
const tokenPath = "/token"

// NewHandler opens the store and builds the HTTP handler.
func NewHandler(c Config, log *slog.Logger) (http.Handler, *storage.Store, error) {
	store, err := storage.Open(c.Root, log, storage.Options{UploadTTL: time.Duration(c.UploadTTL), CleanTemp: true})
	if err != nil {
		return nil, nil, err
	}
	opts := api.Options{ReadOnly: c.ReadOnly, EnableDelete: c.EnableDelete, Logger: log}
	var users *auth.Htpasswd
	if c.Auth.Htpasswd != "" {
		if users, err = auth.LoadHtpasswd(c.Auth.Htpasswd); err != nil {
			return nil, nil, err
		}
	}
	policy := auth.Policy{Rules: c.Auth.Rules, AnonymousPull: c.Auth.AnonymousPull}
	switch {
	case c.Auth.Token.Enabled:
		key, err := loadOrCreateKey(c.Auth.Token.KeyFile, filepath.Join(c.Root, "token.key"))
		if err != nil {
			return nil, nil, err
		}
		tok := &auth.Token{
			Realm: c.Auth.Token.Realm, Path: tokenPath, Service: c.Auth.Token.Service,
			Key: key, Expiry: time.Duration(c.Auth.Token.Expiry), Users: users, Policy: policy,
		}
		opts.Authorizer, opts.TokenHandler, opts.TokenPath = tok, tok, tokenPath
	case users != nil:
		opts.Authorizer = &auth.Basic{Users: users, Policy: policy}
	}
	return api.New(store, opts), store, nil
}

// loadOrCreateKey reads the token signing key, creating a random one the
// first time so that tokens survive restarts.
func loadOrCreateKey(path, fallback string) ([]byte, error) {
	if path == "" {
		path = fallback
	}
	if k, err := os.ReadFile(path); err == nil {
		if len(k) < 32 {
			return nil, fmt.Errorf("token key %s: need at least 32 bytes", path)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("token key: %w", err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, k, 0o600); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return k, nil
}

// TLSConfig builds the server TLS configuration, or nil without a cert.
func TLSConfig(c Config) (*tls.Config, error) {
	if c.TLS.Cert == "" && c.TLS.Key == "" {
		if c.TLS.ClientCA != "" {
			return nil, errors.New("tls: a client CA needs a server certificate and key")
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.TLS.ClientCA != "" {
		pem, err := os.ReadFile(c.TLS.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client CA %s: no certificates", c.TLS.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Serve runs the registry until ctx is done. ready, if not nil, receives
// the bound address once listening.
func Serve(ctx context.Context, c Config, log *slog.Logger, ready func(addr string)) error {
	h, store, err := NewHandler(c, log)
	if err != nil {
		return err
	}
	tc, err := TLSConfig(c)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("registry listen: %w", err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if tc == nil && (c.Auth.Htpasswd != "" || c.Auth.Token.Enabled) {
		log.Warn("authentication without TLS: passwords and tokens cross the network in clear text")
	}
	go maintain(ctx, store, c, log)
	log.Info("registry listening", "addr", ln.Addr().String(), "root", c.Root, "tls", tc != nil,
		"mtls", tc != nil && tc.ClientCAs != nil, "readOnly", c.ReadOnly, "delete", c.EnableDelete)
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// maintain expires abandoned uploads hourly and runs periodic GC if asked.
func maintain(ctx context.Context, store *storage.Store, c Config, log *slog.Logger) {
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	var gcC <-chan time.Time
	if c.GC.Interval > 0 {
		t := time.NewTicker(time.Duration(c.GC.Interval))
		defer t.Stop()
		gcC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-purge.C:
			if n := store.PurgeUploads(ctx); n > 0 {
				log.Info("expired upload sessions", "count", n)
			}
		case <-gcC:
			res, err := store.GC(ctx, storage.GCOptions{Grace: time.Duration(c.GC.Grace)})
			if err != nil {
				log.Error("registry gc", "err", err)
				continue
			}
			log.Info("registry gc", "manifests", len(res.Manifests), "blobs", len(res.Blobs), "bytes", res.Bytes)
		}
	}
}
