package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
)

// FuzzPutPreliminary feeds arbitrary bodies to the endpoints that decode
// outside JSON: the handler must answer, never panic, and never with a 5xx.
func FuzzPutPreliminary(f *testing.F) {
	doc, _ := config.Encode(config.Default())
	for _, seed := range [][]byte{doc, []byte(`{}`), []byte(`{"schema":1,"sip":{"listeners":[{"port":70000}]}}`),
		[]byte(`[`), []byte(`{"unit":{"name":"x","name":"y"}}`), []byte(`null`), []byte(`"\u0000"`)} {
		f.Add(seed)
	}
	fx := newFixture(f) // one handler for every input: the password hash is costly
	f.Fuzz(func(t *testing.T, body []byte) {
		fx.t = t
		for _, ep := range []struct{ method, path string }{
			{"PUT", "/api/v1/config/preliminary"},
			{"PUT", "/api/v1/config/preliminary/path/sip.listeners[0]"},
			{"POST", "/api/v1/config/apply"},
			{"POST", "/api/v1/tokens"},
			{"POST", "/api/v1/login"},
		} {
			r := fx.doLocal(ep.method, ep.path, body, nil)
			if r.status >= http.StatusInternalServerError {
				t.Fatalf("%s %s with %q: %d %s", ep.method, ep.path, body, r.status, r.body)
			}
		}
	})
}

// FuzzUploads feeds arbitrary upload bodies, as JSON (base64 files) or as
// multipart/form-data, to the endpoints that import certificates, CA
// certificates and CRLs: whatever arrives is refused with a 4xx or
// imported, never a 5xx or a panic.
func FuzzUploads(f *testing.F) {
	root := pkitest.NewRoot(f, "Fuzz Root CA", "Palisade Fuzz")
	leaf := root.Issue(f, pkitest.NewKey(f).Public(), pkitest.Leaf{CN: "sbc.example.com"})
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	files := [][]byte{
		pemOf("CERTIFICATE", leaf.Raw), pemOf("CERTIFICATE", root.Cert.Raw), root.Cert.Raw,
		pemOf("X509 CRL", root.CRL(f, leaf).Raw), root.CRL(f).Raw, []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"),
	}
	for _, file := range files {
		j, _ := json.Marshal(UploadRequest{Files: []UploadFile{{Name: "f.pem", Data: base64.StdEncoding.EncodeToString(file)}}})
		f.Add(false, j)
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.SetBoundary(fuzzBoundary)
		w, _ := mw.CreateFormFile("file", "f.pem")
		w.Write(file)
		mw.Close()
		f.Add(true, b.Bytes())
	}
	f.Add(false, []byte(`{"files":[{"data":"!!"}]}`))
	f.Add(false, []byte(`{"files":[]}`))
	f.Add(true, []byte("--"+fuzzBoundary+"\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--"+fuzzBoundary+"--\r\n"))

	fx := newFixture(f)
	// A pending certificate request, so that an import gets past the name.
	if r := fx.doLocal("POST", "/api/v1/certificates", []byte(`{"name":"fuzz","cn":"sbc.example.com"}`), nil); r.status != http.StatusOK && r.status != http.StatusCreated {
		f.Fatalf("new certificate request: %d %s", r.status, r.body)
	}
	f.Fuzz(func(t *testing.T, isMultipart bool, body []byte) {
		fx.t = t
		ct := "application/json"
		if isMultipart {
			ct = "multipart/form-data; boundary=" + fuzzBoundary
		}
		for _, path := range []string{"/api/v1/certificates/fuzz/import", "/api/v1/ca/fuzz-ca", "/api/v1/ca/fuzz-ca/crl"} {
			r := fx.doLocal("POST", path, body, map[string]string{"Content-Type": ct})
			if r.status >= http.StatusInternalServerError {
				t.Fatalf("POST %s (%s) with %q: %d %s", path, ct, body, r.status, r.body)
			}
		}
	})
}

const fuzzBoundary = "palisade-fuzz-boundary"
