package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/store"
)

// multipartBody builds a multipart/form-data upload of files.
func multipartBody(t *testing.T, files map[string][]byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for name, data := range files {
		w, err := mw.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func TestCertificateAPI(t *testing.T) {
	f := newFixture(t)
	// new request
	r := f.doLocal("POST", "/api/v1/certificates", `{"name":"SBC at HQ","cn":"sbc.example.com","o":"Contoso","sans":["sbc2.example.com"]}`, nil)
	if r.status != http.StatusOK || r.header.Get("ETag") == "" {
		t.Fatalf("new: %d %s", r.status, r.body)
	}
	var info pki.EntryInfo
	r.decode(t, &info)
	if info.State != "request" || info.Request.CN != "sbc.example.com" {
		t.Fatalf("%+v", info)
	}
	// empty CN: 400, nothing changes
	etag := r.header.Get("ETag")
	if r := f.doLocal("POST", "/api/v1/certificates", `{"name":"x","cn":""}`, nil); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "common name") {
		t.Errorf("empty CN: %d %s", r.status, r.body)
	}
	// CSR download
	r = f.doLocal("GET", "/api/v1/certificates/SBC%20at%20HQ/csr", nil, nil)
	if r.status != http.StatusOK || !bytes.HasPrefix(r.body, []byte("-----BEGIN CERTIFICATE REQUEST-----")) {
		t.Fatalf("csr: %d %s", r.status, r.body)
	}
	ca := pkitest.NewRoot(t, "API Test Root", "API Test")
	leaf, root := ca.IssueCSR(t, r.body), ca.Cert

	// bad uploads: 413 for 10 MB, 400 for a private key; nothing changes
	big, ct := multipartBody(t, map[string][]byte{"big.pem": bytes.Repeat([]byte("A"), 10<<20)})
	if r := f.doLocal("POST", "/api/v1/certificates/SBC%20at%20HQ/import", big, map[string]string{"Content-Type": ct}); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("10 MB: %d %s", r.status, r.body)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	body, ct := multipartBody(t, map[string][]byte{"key.pem": keyPEM})
	if r := f.doLocal("POST", "/api/v1/certificates/SBC%20at%20HQ/import", body, map[string]string{"Content-Type": ct}); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "private key") {
		t.Errorf("key upload: %d %s", r.status, r.body)
	}
	if _, cur, _ := f.mgr.Preliminary(t.Context()); cur != strings.Trim(etag, `"`) {
		t.Errorf("a refused request changed the preliminary configuration (%s → %s)", etag, cur)
	}

	// import the signed certificate with the root by mistake (multipart, DER + PEM)
	body, ct = multipartBody(t, map[string][]byte{"device.cer": leaf.Raw, "root.pem": pki.EncodeCertificatesPEM(root)})
	r = f.doLocal("POST", "/api/v1/certificates/SBC%20at%20HQ/import", body, map[string]string{"Content-Type": ct})
	if r.status != http.StatusOK {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	r.decode(t, &info)
	if info.State != "certificate" || len(info.Notes) == 0 || !strings.Contains(info.Notes[0], "root") {
		t.Errorf("import: %+v", info)
	}
	cfg, _, _ := f.mgr.Preliminary(t.Context())
	if e := cfg.Certificates.Private[1]; e.Name != "SBC at HQ" || e.Fingerprint != pki.Fingerprint(leaf) || e.Material == "" {
		t.Errorf("preliminary entry %+v", e)
	}

	// a device certificate for another key into the signed entry: 400 naming
	// both keys, the store and the preliminary configuration unchanged
	foreign := ca.Issue(t, pkitest.NewKey(t).Public(), pkitest.Leaf{CN: "sbc.example.com"})
	foreignKey, _ := pki.KeyID(foreign.PublicKey)
	entryKey, _ := pki.KeyID(leaf.PublicKey)
	pkiBefore, _ := f.h.env.Store.List(t.Context(), "pki/")
	_, etagBefore, _ := f.mgr.Preliminary(t.Context())
	body, ct = multipartBody(t, map[string][]byte{"other.pem": pki.EncodeCertificatesPEM(foreign)})
	r = f.doLocal("POST", "/api/v1/certificates/SBC%20at%20HQ/import", body, map[string]string{"Content-Type": ct})
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), foreignKey) || !strings.Contains(string(r.body), entryKey) {
		t.Errorf("foreign certificate: %d %s, want 400 naming %s and %s", r.status, r.body, foreignKey, entryKey)
	}
	pkiAfter, _ := f.h.env.Store.List(t.Context(), "pki/")
	if _, etagAfter, _ := f.mgr.Preliminary(t.Context()); etagAfter != etagBefore || !slices.EqualFunc(pkiBefore, pkiAfter, func(a, b store.KV) bool {
		return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
	}) {
		t.Error("a refused foreign certificate changed the store or the preliminary configuration")
	}

	// CA store via JSON base64; export DER
	up, _ := json.Marshal(UploadRequest{Files: []UploadFile{{Name: "root.cer", Data: base64.StdEncoding.EncodeToString(root.Raw)}}})
	if r := f.doLocal("POST", "/api/v1/ca/API%20Root", up, nil); r.status != http.StatusOK {
		t.Fatalf("ca import: %d %s", r.status, r.body)
	}
	r = f.doLocal("GET", "/api/v1/certificates/SBC%20at%20HQ", nil, nil)
	r.decode(t, &info)
	if !info.ChainStatus.Complete {
		t.Errorf("chain status %+v", info.ChainStatus)
	}
	if r := f.doLocal("GET", "/api/v1/ca/API%20Root/export?format=der", nil, nil); !bytes.Equal(r.body, root.Raw) {
		t.Errorf("ca export: %d", r.status)
	}
	if r := f.doLocal("GET", "/api/v1/certificates/SBC%20at%20HQ/export?chain=true", nil, nil); r.status != http.StatusOK || !bytes.Contains(r.body, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("cert export: %d", r.status)
	}
	// unknown names are 404; delete works
	if r := f.doLocal("GET", "/api/v1/certificates/nope", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown: %d", r.status)
	}
	if r := f.doLocal("DELETE", "/api/v1/ca/API%20Root", nil, nil); r.status != http.StatusOK {
		t.Errorf("ca delete: %d %s", r.status, r.body)
	}
	if r := f.doLocal("GET", "/api/v1/ca", nil, nil); r.status != http.StatusOK || strings.Contains(string(r.body), "API Root") {
		t.Errorf("ca list after delete: %s", r.body)
	}
}
