package web

import (
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki"
)

// The certificate pages use the pki package's commands on the preliminary
// configuration, exactly like the API and the CLI do, then store it.

func (s *server) certRoutes(rt *admin.Routes) {
	rt.Page("GET /basic/certificates", s.auth(s.certsPage))
	rt.Page("GET /basic/certificates/view", s.auth(s.certView))
	rt.Page("GET /basic/certificates/download", s.auth(s.certDownload))
	rt.Page("GET /basic/ca/download", s.auth(s.caDownload))
	rt.Page("POST /basic/certificates/new", s.auth(s.certChange(func(ctx context.Context, c *pki.Certs, cfg *config.Config, r *http.Request) (string, string, error) {
		o := pki.NewOptions{KeyType: r.PostFormValue("key"), SelfSigned: r.PostFormValue("self_signed") == "on"}
		o.CN, o.C, o.ST, o.L = r.PostFormValue("cn"), r.PostFormValue("c"), r.PostFormValue("st"), r.PostFormValue("l")
		o.O, o.OU, o.Email = r.PostFormValue("o"), r.PostFormValue("ou"), r.PostFormValue("email")
		o.SANs = lines(r.PostFormValue("sans"))
		name := strings.TrimSpace(r.PostFormValue("name"))
		_, err := c.New(ctx, cfg, name, o)
		done := "csr"
		if o.SelfSigned {
			done = "selfsigned"
		}
		return "/basic/certificates/view?name=" + url.QueryEscape(name), done, err
	})))
	rt.Page("POST /basic/certificates/import", s.auth(s.certChange(func(ctx context.Context, c *pki.Certs, cfg *config.Config, r *http.Request) (string, string, error) {
		name := r.FormValue("name")
		files, err := uploads(r, "files")
		if err != nil {
			return "", "", err
		}
		_, err = c.Import(ctx, cfg, name, files)
		return "/basic/certificates/view?name=" + url.QueryEscape(name), "imported", err
	})))
	rt.Page("POST /basic/certificates/delete", s.auth(s.certChange(func(ctx context.Context, c *pki.Certs, cfg *config.Config, r *http.Request) (string, string, error) {
		return "/basic/certificates", "deleted", c.Delete(cfg, r.FormValue("name"))
	})))
	rt.Page("POST /basic/ca/import", s.auth(s.certChange(func(ctx context.Context, c *pki.Certs, cfg *config.Config, r *http.Request) (string, string, error) {
		files, err := uploads(r, "file")
		if err != nil {
			return "", "", err
		}
		_, err = c.ImportCA(ctx, cfg, strings.TrimSpace(r.FormValue("name")), files[0])
		return "/basic/certificates", "caimported", err
	})))
	rt.Page("POST /basic/ca/crl", s.auth(s.certChange(func(ctx context.Context, c *pki.Certs, cfg *config.Config, r *http.Request) (string, string, error) {
		files, err := uploads(r, "file")
		if err != nil {
			return "", "", err
		}
		_, err = c.ImportCRL(ctx, cfg, r.FormValue("name"), files[0])
		return "/basic/certificates", "crl", err
	})))
	rt.Page("POST /basic/ca/delete", s.auth(s.certChange(func(ctx context.Context, c *pki.Certs, cfg *config.Config, r *http.Request) (string, string, error) {
		return "/basic/certificates", "deleted", c.DeleteCA(cfg, r.FormValue("name"))
	})))
}

func (s *server) certs() *pki.Certs { return &pki.Certs{Store: s.env.Store} }

// uploads reads the files posted in field (several allowed).
func uploads(r *http.Request, field string) ([][]byte, error) {
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		return nil, errors.New("upload the file(s) with the form: " + err.Error())
	}
	var out [][]byte
	for _, fh := range r.MultipartForm.File[field] {
		b, err := readUpload(fh)
		if err != nil {
			return nil, err
		}
		if len(b) > 0 {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("choose a file first")
	}
	return out, nil
}

func readUpload(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4<<20))
}

// certData is the certificate list page's data.
type certData struct {
	Private []pki.EntryInfo
	CA      []pki.CAInfo
	Entry   *pki.EntryInfo // the view page's entry
	CSR     string
	Form    map[string]string // the create form's values after an error
}

func (s *server) certsData(ctx context.Context, cfg *config.Config) *certData {
	c := s.certs()
	d := &certData{Form: map[string]string{"key": "ecdsa-p256"}}
	// The request's CN is the unit's FQDN: propose the one configured on
	// the interfaces (the outside one first).
	for _, i := range cfg.Network.Interfaces {
		if i.FQDN != "" && (d.Form["cn"] == "" || i.Name == "outside") {
			d.Form["cn"] = i.FQDN
		}
	}
	d.Private, _ = c.List(ctx, cfg)
	d.CA, _ = c.ListCA(ctx, cfg)
	return d
}

func (s *server) certsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := s.newView(ctx, r, "Certificates")
	cfg, etag, err := s.env.Config.Preliminary(ctx)
	if err != nil {
		v.Problem = err.Error()
		cfg = config.Default()
	}
	v.Cfg, v.ETag, v.Data = cfg, etag, s.certsData(ctx, cfg)
	s.render(w, http.StatusOK, "certificates", v)
}

func (s *server) certView(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := s.newView(ctx, r, "Certificate")
	v.Tab, v.Subs = tab("Basic Configuration").Name, tab("Basic Configuration").Subs
	cfg, _, err := s.env.Config.Preliminary(ctx)
	if err != nil {
		v.Problem = err.Error()
		s.render(w, http.StatusInternalServerError, "certview", v)
		return
	}
	name := r.URL.Query().Get("name")
	d := &certData{}
	c := s.certs()
	if d.Entry, err = c.Show(ctx, cfg, name); err != nil {
		v.Problem = err.Error()
		v.Data = d
		s.render(w, http.StatusNotFound, "certview", v)
		return
	}
	if d.Entry.State == "request" {
		if csr, err := c.CSR(ctx, cfg, name); err == nil {
			d.CSR = string(csr)
		}
	}
	v.Cfg, v.Data = cfg, d
	s.render(w, http.StatusOK, "certview", v)
}

// certChange runs a pki command on the preliminary configuration and stores
// it; problems are shown on the page the form came from.
func (s *server) certChange(fn func(ctx context.Context, c *pki.Certs, cfg *config.Config, r *http.Request) (next, done string, err error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		cfg, etag, err := s.env.Config.Preliminary(ctx)
		if err == nil {
			var next, done string
			next, done, err = fn(ctx, s.certs(), cfg, r)
			if err == nil {
				_, err = s.env.Config.SetPreliminary(ctx, cfg, etag, admin.Author(r))
			}
			if err == nil {
				sep := "?"
				if strings.Contains(next, "?") {
					sep = "&"
				}
				http.Redirect(w, r, next+sep+"done="+done, http.StatusSeeOther)
				return
			}
		}
		v := s.failedChange(r, tab("Basic Configuration"), "Certificates", err)
		cur := v.Cfg
		d := s.certsData(ctx, cur)
		for _, k := range []string{"name", "cn", "c", "st", "l", "o", "ou", "email", "sans", "key"} {
			d.Form[k] = r.FormValue(k)
		}
		v.Data = d
		if name := r.FormValue("name"); strings.HasPrefix(r.URL.Path, "/basic/certificates/import") {
			d.Entry, _ = s.certs().Show(ctx, cur, name)
			s.render(w, http.StatusUnprocessableEntity, "certview", v)
			return
		}
		s.render(w, http.StatusUnprocessableEntity, "certificates", v)
	}
}

func (s *server) certDownload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cfg, _, err := s.env.Config.Preliminary(ctx)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	q := r.URL.Query()
	name, what := q.Get("name"), q.Get("what")
	var data []byte
	ext := ".pem"
	switch what {
	case "csr":
		data, err = s.certs().CSR(ctx, cfg, name)
		ext = ".req"
	case "der":
		data, err = s.certs().Export(ctx, cfg, name, true, false)
		ext = ".cer"
	case "chain":
		data, err = s.certs().Export(ctx, cfg, name, false, true)
	default:
		data, err = s.certs().Export(ctx, cfg, name, false, false)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	sendFile(w, fileName(name)+ext, data)
}

func (s *server) caDownload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cfg, _, err := s.env.Config.Preliminary(ctx)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	name, der := r.URL.Query().Get("name"), r.URL.Query().Get("der") == "1"
	data, err := s.certs().ExportCA(ctx, cfg, name, der)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	ext := ".pem"
	if der {
		ext = ".cer"
	}
	sendFile(w, fileName(name)+ext, data)
}

func sendFile(w http.ResponseWriter, name string, data []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	_, _ = w.Write(data)
}

// fileName makes a certificate name safe as a download file name.
func fileName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "certificate"
	}
	return b.String()
}
