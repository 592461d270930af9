package web

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/store"
)

// The certificate page's upload refuses a device certificate made for
// another key, even into an entry that holds its signed certificate: the
// page names both keys and nothing is stored.
func TestCertImportForeignKeyRefused(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	csrf := u.login(t, c)
	ctx := context.Background()
	const name = "SBC at HQ"
	u.post(t, c, "/basic/certificates/new", url.Values{"csrf_token": {csrf}, "name": {name}, "cn": {"sbc.example.com"}, "key": {pki.KeyECDSAP256}}, http.StatusSeeOther)
	csr := u.get(t, c, "/basic/certificates/download?what=csr&name="+url.QueryEscape(name), http.StatusOK)
	ca := pkitest.NewRoot(t, "Web Test Root", "Web Test")
	leaf := ca.IssueCSR(t, []byte(csr))
	upload := func(cert []byte, want int) string {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("csrf_token", csrf)
		mw.WriteField("name", name)
		fw, _ := mw.CreateFormFile("files", "device.pem")
		fw.Write(cert)
		mw.Close()
		req, _ := http.NewRequest("POST", u.srv.URL+"/basic/certificates/import", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		page, _ := u.check(t, "import", want)(c.Do(req))
		return page
	}
	upload(pki.EncodeCertificatesPEM(leaf), http.StatusSeeOther)

	foreign := ca.Issue(t, pkitest.NewKey(t).Public(), pkitest.Leaf{CN: "sbc.example.com"})
	foreignKey, _ := pki.KeyID(foreign.PublicKey)
	entryKey, _ := pki.KeyID(leaf.PublicKey)
	pkiBefore, _ := u.st.List(ctx, "pki/")
	cfgBefore, etagBefore, _ := u.mgr.Preliminary(ctx)
	page := upload(pki.EncodeCertificatesPEM(foreign), http.StatusUnprocessableEntity)
	if !strings.Contains(page, foreignKey) || !strings.Contains(page, entryKey) {
		t.Errorf("the page does not name both keys (%s, %s): %s", foreignKey, entryKey, excerpt(page, "problem"))
	}
	pkiAfter, _ := u.st.List(ctx, "pki/")
	cfgAfter, etagAfter, _ := u.mgr.Preliminary(ctx)
	a, _ := json.Marshal(cfgBefore)
	b, _ := json.Marshal(cfgAfter)
	if etagAfter != etagBefore || !bytes.Equal(a, b) || !slices.EqualFunc(pkiBefore, pkiAfter, func(x, y store.KV) bool {
		return x.Key == y.Key && bytes.Equal(x.Value, y.Value)
	}) {
		t.Error("a refused foreign certificate changed the store or the preliminary configuration")
	}
}
