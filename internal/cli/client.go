package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
)

// APIError is an error answer of the admin API.
type APIError struct {
	Status  int
	Message string
	Errors  []config.FieldError // every field problem of a rejected document
}

func (e *APIError) Error() string {
	if len(e.Errors) == 0 {
		return e.Message
	}
	parts := make([]string, 0, len(e.Errors))
	for _, fe := range e.Errors {
		parts = append(parts, fe.Error())
	}
	return e.Message + ": " + strings.Join(parts, "; ")
}

// Client talks to the admin API of one unit (or of its data directory).
type Client struct {
	hc    *http.Client
	base  string
	token string
	// Mode says how: "socket", "server" or "offline" (in-process on the
	// data directory of a stopped unit).
	Mode  string
	close func() error
}

// Response is an API answer with status < 400.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Client returns the connection to the unit, opening it on first use:
// --server when given, else DATA/admin.sock when a unit answers there, else
// the data directory itself.
func (c *Context) Client() (*Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	var cl *Client
	var err error
	sock := filepath.Join(c.Data, admin.SocketFile)
	switch {
	case c.Server != "":
		cl, err = c.serverClient()
	case socketAnswers(sock):
		cl = socketClient(sock)
	default:
		cl, err = offlineClient(c.ctx, c.Data)
	}
	if err != nil {
		return nil, err
	}
	c.client = cl
	return cl, nil
}

// Running reports whether the command reaches a running unit.
func (c *Context) Running() (bool, error) {
	cl, err := c.Client()
	if err != nil {
		return false, err
	}
	return cl.Mode != "offline", nil
}

func (c *Context) close() {
	if c.client != nil && c.client.close != nil {
		_ = c.client.close()
	}
}

func socketAnswers(path string) bool {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func socketClient(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{hc: &http.Client{Transport: tr}, base: "http://palisade", Mode: "socket",
		close: func() error { tr.CloseIdleConnections(); return nil }}
}

func (c *Context) serverClient() (*Client, error) {
	if !strings.HasPrefix(c.Server, "https://") {
		return nil, fmt.Errorf("--server must be an https:// URL, not %q", c.Server)
	}
	if c.Token == "" {
		return nil, errors.New("--server needs an API token (--token or PALISADE_TOKEN; make one with POST /api/v1/tokens)")
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case c.Insecure:
		tcfg.InsecureSkipVerify = true
	case c.CA != "":
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s holds no PEM certificate", c.CA)
		}
		tcfg.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: tcfg, TLSHandshakeTimeout: 10 * time.Second}
	return &Client{hc: &http.Client{Transport: tr, Timeout: 5 * time.Minute},
		base: strings.TrimRight(c.Server, "/"), token: c.Token, Mode: "server",
		close: func() error { tr.CloseIdleConnections(); return nil }}, nil
}

// handlerTransport serves requests with an in-process handler as the local
// user (the same authority admin.sock gives).
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	req = req.WithContext(admin.WithLocal(req.Context(), os.Getuid()))
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// Do sends one request; body is nil, []byte (sent as is) or a value sent as
// JSON. hdr may be nil. An answer with status >= 400 is an *APIError.
func (cl *Client) Do(ctx context.Context, method, path string, hdr http.Header, body any) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if rd != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	resp, err := cl.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the unit: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode >= 400 {
		var eb struct {
			Error  string              `json:"error"`
			Errors []config.FieldError `json:"errors"`
		}
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(data)))
		}
		return nil, &APIError{Status: resp.StatusCode, Message: eb.Error, Errors: eb.Errors}
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// Call sends body (see Do) and decodes a JSON answer into out (when not nil).
func (c *Context) Call(method, path string, body, out any) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	resp, err := cl.Do(c.ctx, method, path, nil, body)
	if err != nil {
		return err
	}
	if out == nil || len(resp.Body) == 0 {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = resp.Body
		return nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("unexpected answer from the unit: %w", err)
	}
	return nil
}
