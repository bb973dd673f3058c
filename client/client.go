// Package client is a small Go client of the Docker Engine API, enough for
// berth's CLI. It is hand-written on net/http and the moby API types rather
// than moby's client module, whose dependencies (and their package init
// work) would otherwise load into every container start: the shim and the
// container init are the same binary.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// APIVersion is the version the client speaks (and the most it asks for).
const APIVersion = "1.50"

// Client talks to one daemon.
type Client struct {
	host    string // scheme://addr as given
	proto   string // unix or tcp
	addr    string
	tls     *tls.Config
	http    *http.Client
	version string
}

// Error is an error answer of the daemon.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// New returns a client for host ("unix:///path" or "tcp://host:port").
func New(host string, tlsConfig *tls.Config) (*Client, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("invalid host %q: %w", host, err)
	}
	c := &Client{host: host, tls: tlsConfig, version: APIVersion}
	switch u.Scheme {
	case "unix":
		c.proto, c.addr = "unix", u.Path
	case "tcp", "http", "https":
		c.proto, c.addr = "tcp", u.Host
	default:
		return nil, fmt.Errorf("invalid host %q: unsupported scheme %q", host, u.Scheme)
	}
	tr := &http.Transport{DialContext: c.dial, TLSClientConfig: tlsConfig, DisableCompression: true}
	c.http = &http.Client{Transport: tr}
	return c, nil
}

func (c *Client) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.proto, c.addr)
	if err != nil {
		return nil, fmt.Errorf("Cannot connect to the berth daemon at %s. Is the daemon running?", c.host)
	}
	if c.tls != nil {
		tc := tls.Client(conn, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
	return conn, nil
}

func (c *Client) scheme() string {
	if c.tls != nil {
		return "https"
	}
	return "http"
}

// Negotiate lowers the client's version to the daemon's when it is older.
func (c *Client) Negotiate(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, c.scheme()+"://berth/_ping", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if v := resp.Header.Get("Api-Version"); v != "" && versionLess(v, c.version) {
		c.version = v
	}
	return nil
}

func versionLess(a, b string) bool {
	var a1, a2, b1, b2 int
	fmt.Sscanf(a, "%d.%d", &a1, &a2)
	fmt.Sscanf(b, "%d.%d", &b1, &b2)
	return a1 < b1 || (a1 == b1 && a2 < b2)
}

func (c *Client) url(path string, q url.Values) string {
	u := c.scheme() + "://berth/v" + c.version + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Do sends a request and returns the response of a 2xx answer; other
// answers become *Error. body may be nil, an io.Reader, or a value sent as JSON.
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body any, header http.Header) (*http.Response, error) {
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd, ct = b, "application/x-tar"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd, ct = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), rd)
	if err != nil {
		return nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, ue.Err
		}
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &m) != nil || m.Message == "" {
			m.Message = strings.TrimSpace(string(data))
			if m.Message == "" {
				m.Message = fmt.Sprintf("request returned %s for API route and version %s", resp.Status, req.URL.Path)
			}
		}
		return nil, &Error{Status: resp.StatusCode, Message: m.Message}
	}
	return resp, nil
}

// JSON sends a request and decodes a JSON answer into out (if non-nil).
func (c *Client) JSON(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.Do(ctx, method, path, q, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s answer: %w", path, err)
	}
	return nil
}

// Hijack sends a request asking to upgrade the connection and returns the
// raw connection with any bytes the server already sent buffered.
func (c *Client) Hijack(ctx context.Context, path string, q url.Values) (net.Conn, *bufio.Reader, error) {
	conn, err := c.dial(ctx, "", "")
	if err != nil {
		return nil, nil, err
	}
	req, _ := http.NewRequest(http.MethodPost, c.url(path, q), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	req.Header.Set("Content-Type", "text/plain")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var m struct {
			Message string `json:"message"`
		}
		json.Unmarshal(data, &m)
		if m.Message == "" {
			m.Message = resp.Status
		}
		return nil, nil, &Error{Status: resp.StatusCode, Message: m.Message}
	}
	return conn, br, nil
}

// Timeout is a convenience for contexts of short calls.
const Timeout = 30 * time.Second

// NewNotFound makes a 404 error, for callers that treat "not looked up"
// like "not found".
func NewNotFound(name string) error {
	return &Error{Status: http.StatusNotFound, Message: "No such object: " + name}
}
