package acme

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/acme/acmetest"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// badCA stands in front of pebble and, by mode, passes everything, answers
// a new order with malformed JSON, or hands out a certificate for the key
// the unit sent but for another name.
type badCA struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	mode  string // pass | malformed | othername
	csr   *x509.CertificateRequest
	dir   string
	calls map[string]int
}

func startBadCA(t *testing.T, ca *acmetest.Pebble) *badCA {
	b := &badCA{t: t, mode: "pass", calls: map[string]int{}}
	pool := x509.NewCertPool()
	pool.AddCert(acmetest.CA(t).Cert)
	target, _ := url.Parse("https://" + ca.Addr)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = r.In.Host; b.sawRequest(r.Out) },
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	b.srv = httptest.NewUnstartedServer(rp)
	certFile, keyFile := acmetest.ServerCert(t, t.TempDir(), "proxy")
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	b.srv.TLS = &tls.Config{Certificates: []tls.Certificate{kp}}
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	self := strings.TrimPrefix(b.srv.URL, "https://")
	rp.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		// Pebble builds URLs from the Host header (the proxy's); any left
		// with its own address point back through the proxy as well.
		body = bytes.ReplaceAll(body, []byte(ca.Addr), []byte(self))
		for _, h := range []string{"Location", "Link"} {
			for i, v := range resp.Header.Values(h) {
				resp.Header[h][i] = strings.ReplaceAll(v, ca.Addr, self)
			}
		}
		b.mu.Lock()
		mode, csr := b.mode, b.csr
		b.mu.Unlock()
		path := resp.Request.URL.Path
		switch {
		case mode == "malformed" && strings.HasPrefix(path, "/order-plz"):
			body = []byte(`{"status": "pending", "identifiers": [{"type": "dns", "val`)
		case mode == "othername" && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/pem-certificate-chain") && csr != nil:
			other := acmetest.CA(t).Issue(t, csr.PublicKey, pkitest.Leaf{CN: "other.palisade.test"})
			body = pki.EncodeCertificatesPEM(other, acmetest.CA(t).Cert)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	b.dir = b.srv.URL + "/dir"
	return b
}

// sawRequest keeps the CSR of a finalize request (a JWS whose payload is
// {"csr": base64url DER}).
func (b *badCA) sawRequest(r *http.Request) {
	b.mu.Lock()
	b.calls[strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]]++
	b.mu.Unlock()
	if !strings.HasPrefix(r.URL.Path, "/finalize-order/") || r.Body == nil {
		return
	}
	raw, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var jws struct{ Payload string }
	var fin struct{ CSR string }
	if json.Unmarshal(raw, &jws) != nil {
		return
	}
	p, _ := base64.RawURLEncoding.DecodeString(jws.Payload)
	if json.Unmarshal(p, &fin) != nil {
		return
	}
	der, _ := base64.RawURLEncoding.DecodeString(fin.CSR)
	if csr, err := x509.ParseCertificateRequest(der); err == nil {
		b.mu.Lock()
		b.csr = csr
		b.mu.Unlock()
	}
}

func (b *badCA) set(mode string) {
	b.mu.Lock()
	b.mode = mode
	b.mu.Unlock()
}

// TestBadAnswersKeepTheCertificate: a CA answering malformed JSON, or
// sending a certificate for another name, is refused with the reason, and
// the certificate in use stays.
func TestBadAnswersKeepTheCertificate(t *testing.T) {
	ca := acmetest.Start(t, false)
	bad := startBadCA(t, ca)
	u := newUnit(t, ca.RootPEM, config.ACME{DirectoryURL: bad.dir, Challenge: "http-01",
		ChallengeListen: "127.0.0.1:" + itoa(ca.Chal)})
	var first *tlsLeaf
	waitFor(t, "certificate through the proxy", func() bool {
		first = u.served(t)
		return first.fromCA()
	})
	renew := first.notBefore.Add(first.notAfter.Sub(first.notBefore) * 2 / 3)

	for _, c := range []struct{ mode, want string }{
		{"othername", "is not for " + acmetest.Domain},
		{"malformed", "unexpected end of JSON input"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			bad.set(c.mode)
			before := testutil.ToFloat64(failures.WithLabelValues("public"))
			setNow(u.mgr, renew.Add(time.Hour))
			waitFor(t, "refusal", func() bool { return testutil.ToFloat64(failures.WithLabelValues("public")) > before })
			if st := u.mgr.Status()[0]; !strings.Contains(st.LastError, c.want) {
				t.Errorf("last error %q, want it to say %q", st.LastError, c.want)
			}
			if got := u.served(t); got.fp != first.fp {
				t.Errorf("served certificate changed to %+v", got)
			}
			chain, err := pki.NewestChain(t.Context(), u.st, "public")
			if err != nil || pki.Fingerprint(chain[0]) != first.fp {
				t.Errorf("the store's newest certificate changed: %v", err)
			}
		})
	}
	if t.Failed() {
		t.Logf("requests through the proxy: %v", bad.calls)
	}
}
