package setup

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an admin URL like https://10.0.0.5:8443", s)
	}
	return nil
}

// uploader talks to a running unit's admin API as a logged-in administrator.
type uploader struct {
	base   string
	client *http.Client
	csrf   string
	log    io.Writer
}

// newUploader returns an API client for base; caFile (PEM) is trusted in
// addition to the system roots, insecure skips verification.
func newUploader(base, caFile string, insecure bool, log io.Writer) (*uploader, error) {
	if err := checkURL(base); err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // explicit --insecure
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read --ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	jar, _ := cookiejar.New(nil)
	return &uploader{
		base: strings.TrimRight(base, "/"), log: log,
		client: &http.Client{Jar: jar, Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: tc}},
	}, nil
}

// apiError is an error answer of the admin API.
type apiError struct {
	Status int
	Msg    string              `json:"error"`
	Errors []config.FieldError `json:"errors"`
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the unit answered %d: %s", e.Status, e.Msg)
	for _, fe := range e.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", fe.Path, fe.Message)
	}
	return b.String()
}

// call sends a JSON request and decodes the JSON answer into out.
func (u *uploader) call(ctx context.Context, method, path string, hdr map[string]string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if u.csrf != "" {
		req.Header.Set("X-CSRF-Token", u.csrf)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		ae := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || ae.Msg == "" {
			ae.Msg = strings.TrimSpace(string(data))
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, ae)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%s %s: bad answer: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// Upload is the seed's "log on to the web GUI and apply settings": log in,
// put cfg as preliminary (keeping the unit's admin listener, access list and
// certificate entries, so the session survives and no key is orphaned),
// apply it and confirm it.
func Upload(ctx context.Context, base string, passwords []string, caFile string, insecure bool, cfg *config.Config, a Answers, log io.Writer) error {
	u, err := newUploader(base, caFile, insecure, log)
	if err != nil {
		return err
	}
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	if len(passwords) == 0 {
		return errors.New("no password to log in to the unit with (--upload-password)")
	}
	for i, pw := range passwords {
		_, err = u.call(ctx, "POST", "/api/v1/login", nil, map[string]string{"password": pw}, &login)
		var ae *apiError
		if err == nil || !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || i == len(passwords)-1 {
			break
		}
	}
	if err != nil {
		if strings.Contains(err.Error(), "certificate") && !insecure {
			err = fmt.Errorf("%w (a new unit's certificate is self-signed: pass --ca DATA/admin.crt or --insecure)", err)
		}
		return fmt.Errorf("log in to %s: %w", base, err)
	}
	u.csrf = login.CSRF
	fmt.Fprintf(log, "Logged in to %s.\n", base)
	if err := u.ensureCert(ctx, a, log); err != nil {
		return err
	}

	var cur config.Config
	h, err := u.call(ctx, "GET", "/api/v1/config/preliminary", nil, nil, &cur)
	if err != nil {
		return err
	}
	next, err := keepUnitSettings(&cur, cfg)
	if err != nil {
		return err
	}
	etag := h.Get("ETag")
	if _, err := u.call(ctx, "PUT", "/api/v1/config/preliminary", map[string]string{"If-Match": etag}, next, nil); err != nil {
		return fmt.Errorf("upload the configuration: %w", err)
	}
	fmt.Fprintln(log, "Uploaded the configuration as preliminary.")
	var st struct {
		Deadline time.Time `json:"confirm_deadline"`
	}
	if _, err := u.call(ctx, "POST", "/api/v1/config/apply", nil, map[string]string{"confirm_within": "120s"}, &st); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	fmt.Fprintln(log, "Applied; confirming.")
	var v struct {
		Number int `json:"number"`
	}
	if _, err := u.call(ctx, "POST", "/api/v1/config/confirm", nil, nil, &v); err != nil {
		return fmt.Errorf("confirm (the unit reverts by itself when the window runs out): %w", err)
	}
	fmt.Fprintf(log, "Configuration applied and saved as version %s.\n", strconv.Itoa(v.Number))
	return nil
}

// ensureCert makes the --certificate on the unit (self-signed for the
// outside FQDN, in its preliminary configuration) when it has none of that
// name; see ensureCert in write.go.
func (u *uploader) ensureCert(ctx context.Context, a Answers, log io.Writer) error {
	name := a.Certificate
	if name == "" || name == "default" {
		return nil
	}
	var cur config.Config
	if _, err := u.call(ctx, "GET", "/api/v1/config/preliminary", nil, nil, &cur); err != nil {
		return err
	}
	for _, p := range cur.Certificates.Private {
		if p.Name == name {
			return nil
		}
	}
	if a.OutsideFQDN == "" {
		return fmt.Errorf("the unit has no certificate %q; setup makes it self-signed for the outside FQDN: give --outside-fqdn", name)
	}
	req := map[string]any{"name": name, "cn": a.OutsideFQDN, "self_signed": true}
	if _, err := u.call(ctx, "POST", "/api/v1/certificates", nil, req, nil); err != nil {
		return fmt.Errorf("make the certificate %s on the unit: %w", name, err)
	}
	fmt.Fprintf(log, "Made the self-signed certificate %q for %s on the unit.\n", name, a.OutsideFQDN)
	return nil
}
