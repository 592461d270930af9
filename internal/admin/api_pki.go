package admin

// Certificate and CA-store endpoints (owned by the pki feature). Changes
// go to the preliminary configuration (the entry in certificates.private or
// certificates.ca) and the key material to the store; see
// docs/certificates.md for the API.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/store"
)

func init() {
	RegisterRoutes(func(rt *Routes) {
		rt.API("GET /api/v1/certificates", pkiList)
		rt.API("POST /api/v1/certificates", pkiNew)
		rt.API("GET /api/v1/certificates/expiry", pkiExpiry)
		rt.API("GET /api/v1/certificates/{name}", pkiShow)
		rt.API("DELETE /api/v1/certificates/{name}", pkiDelete)
		rt.API("GET /api/v1/certificates/{name}/csr", pkiCSR)
		rt.API("POST /api/v1/certificates/{name}/import", pkiImport)
		rt.API("GET /api/v1/certificates/{name}/export", pkiExport)
		rt.API("GET /api/v1/ca", caList)
		rt.API("GET /api/v1/ca/{name}", caShow)
		rt.API("POST /api/v1/ca/{name}", caImport)
		rt.API("PUT /api/v1/ca/{name}", caImport)
		rt.API("DELETE /api/v1/ca/{name}", caDelete)
		rt.API("POST /api/v1/ca/{name}/crl", caCRL)
		rt.API("GET /api/v1/ca/{name}/export", caExport)
		rt.API("POST /api/v1/diagnose/tls", diagnoseTLS)
	})
}

func certsOf(env *Env) *pki.Certs { return &pki.Certs{Store: env.Store} }

// pkiErr maps the pki package's errors to statuses: bad uploads and
// arguments 400, unknown names 404 (store.ErrNotFound, mapped by writeError).
func pkiErr(err error) error {
	if err != nil && pki.IsInputError(err) {
		return Errorf(http.StatusBadRequest, "%s", err.Error())
	}
	return err
}

// configFor returns the document a read request looks at: the preliminary
// one (where changes go), or ?config=running|saved.
func configFor(env *Env, r *http.Request) (*config.Config, error) {
	which := r.URL.Query().Get("config")
	if which == "" {
		which = "preliminary"
	}
	cfg, _, err := loadConfig(env, r, which)
	return cfg, err
}

// editPreliminary runs fn on the preliminary document and stores it (with
// the If-Match check), then answers fn's result with the new ETag.
func editPreliminary(env *Env, w http.ResponseWriter, r *http.Request, action, name string, fn func(ctx context.Context, cfg *config.Config) (any, error)) error {
	ctx := r.Context()
	cfg, etag, err := env.Config.Preliminary(ctx)
	if err != nil {
		return err
	}
	if m := ifMatch(r); m != "" && m != etag {
		return ErrPrecondition
	}
	out, err := fn(ctx, cfg)
	if err != nil {
		return pkiErr(err)
	}
	etag, err = env.Config.SetPreliminary(ctx, cfg, etag, Author(r))
	if err != nil {
		return err
	}
	if aerr := env.Store.Audit(ctx, store.AuditEntry{Time: time.Now().UTC(), Author: Author(r), Action: action, Detail: name}); aerr != nil && env.Log != nil {
		env.Log.Warn("audit entry not written", "action", action, "err", aerr)
	}
	w.Header().Set("ETag", strconv.Quote(etag))
	return JSON(w, http.StatusOK, out)
}

func pkiList(env *Env, w http.ResponseWriter, r *http.Request) error {
	cfg, err := configFor(env, r)
	if err != nil {
		return err
	}
	list, err := certsOf(env).List(r.Context(), cfg)
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, list)
}

// newRequest is the body of POST /api/v1/certificates.
type newRequest struct {
	Name string `json:"name"`
	pki.NewOptions
}

func pkiNew(env *Env, w http.ResponseWriter, r *http.Request) error {
	var req newRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	return editPreliminary(env, w, r, "cert.new", req.Name, func(ctx context.Context, cfg *config.Config) (any, error) {
		return certsOf(env).New(ctx, cfg, req.Name, req.NewOptions)
	})
}

func pkiShow(env *Env, w http.ResponseWriter, r *http.Request) error {
	cfg, err := configFor(env, r)
	if err != nil {
		return err
	}
	info, err := certsOf(env).Show(r.Context(), cfg, r.PathValue("name"))
	if err != nil {
		return pkiErr(err)
	}
	return JSON(w, http.StatusOK, info)
}

func pkiDelete(env *Env, w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	return editPreliminary(env, w, r, "cert.delete", name, func(_ context.Context, cfg *config.Config) (any, error) {
		return map[string]string{"deleted": name}, certsOf(env).Delete(cfg, name)
	})
}

func pkiCSR(env *Env, w http.ResponseWriter, r *http.Request) error {
	cfg, err := configFor(env, r)
	if err != nil {
		return err
	}
	p, err := certsOf(env).CSR(r.Context(), cfg, r.PathValue("name"))
	if err != nil {
		return pkiErr(err)
	}
	return download(w, "application/pkcs10", "certreq.pem", p)
}

func download(w http.ResponseWriter, ctype, file string, b []byte) error {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": file}))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	return err
}

func pkiImport(env *Env, w http.ResponseWriter, r *http.Request) error {
	files, err := uploads(w, r, 16)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	return editPreliminary(env, w, r, "cert.import", name, func(ctx context.Context, cfg *config.Config) (any, error) {
		return certsOf(env).Import(ctx, cfg, name, files)
	})
}

func pkiExport(env *Env, w http.ResponseWriter, r *http.Request) error {
	cfg, err := configFor(env, r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	der := r.URL.Query().Get("format") == "der"
	chain := r.URL.Query().Get("chain") == "true" || r.URL.Query().Get("chain") == "1"
	b, err := certsOf(env).Export(r.Context(), cfg, name, der, chain)
	if err != nil {
		return pkiErr(err)
	}
	return downloadCert(w, name, der, b)
}

func downloadCert(w http.ResponseWriter, name string, der bool, b []byte) error {
	file := strings.Map(func(r rune) rune {
		if r == ' ' || r == '/' || r == '"' {
			return '_'
		}
		return r
	}, name)
	if der {
		return download(w, "application/pkix-cert", file+".cer", b)
	}
	return download(w, "application/x-pem-file", file+".pem", b)
}

func pkiExpiry(env *Env, w http.ResponseWriter, r *http.Request) error {
	if s := runningPKI(env); s != nil {
		return JSON(w, http.StatusOK, s.Expiries())
	}
	cfg, _, err := loadConfig(env, r, "running")
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, certsOf(env).Expiries(r.Context(), cfg))
}

func caList(env *Env, w http.ResponseWriter, r *http.Request) error {
	cfg, err := configFor(env, r)
	if err != nil {
		return err
	}
	list, err := certsOf(env).ListCA(r.Context(), cfg)
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, list)
}

func caShow(env *Env, w http.ResponseWriter, r *http.Request) error {
	cfg, err := configFor(env, r)
	if err != nil {
		return err
	}
	info, err := certsOf(env).ShowCA(r.Context(), cfg, r.PathValue("name"))
	if err != nil {
		return pkiErr(err)
	}
	return JSON(w, http.StatusOK, info)
}

func caImport(env *Env, w http.ResponseWriter, r *http.Request) error {
	files, err := uploads(w, r, 1)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	return editPreliminary(env, w, r, "ca.import", name, func(ctx context.Context, cfg *config.Config) (any, error) {
		return certsOf(env).ImportCA(ctx, cfg, name, files[0])
	})
}

func caCRL(env *Env, w http.ResponseWriter, r *http.Request) error {
	files, err := uploads(w, r, 1)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	return editPreliminary(env, w, r, "ca.crl", name, func(ctx context.Context, cfg *config.Config) (any, error) {
		return certsOf(env).ImportCRL(ctx, cfg, name, files[0])
	})
}

func caDelete(env *Env, w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	return editPreliminary(env, w, r, "ca.delete", name, func(_ context.Context, cfg *config.Config) (any, error) {
		return map[string]string{"deleted": name}, certsOf(env).DeleteCA(cfg, name)
	})
}

func caExport(env *Env, w http.ResponseWriter, r *http.Request) error {
	cfg, err := configFor(env, r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	der := r.URL.Query().Get("format") == "der"
	b, err := certsOf(env).ExportCA(r.Context(), cfg, name, der)
	if err != nil {
		return pkiErr(err)
	}
	return downloadCert(w, name, der, b)
}

// UploadFile is one file of a JSON upload: {"files": [{"name": "...", "data": "<base64>"}]}.
type UploadFile struct {
	Name string `json:"name,omitempty"`
	Data string `json:"data"` // standard base64
}

// UploadRequest is the JSON form of an upload.
type UploadRequest struct {
	Files []UploadFile `json:"files"`
}

// uploads reads the files of an upload: multipart/form-data (every file
// part, any field name) or JSON UploadRequest. Each file may be up to
// pki.MaxUpload bytes; a larger one is refused here with a clear error
// before anything is parsed.
func uploads(w http.ResponseWriter, r *http.Request, max int) ([][]byte, error) {
	limit := int64(max)*(pki.MaxUpload*4/3+1024) + 4096
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var files [][]byte
	tooBig := func(name string) error {
		return Errorf(http.StatusRequestEntityTooLarge, "the file %s is larger than %d bytes; certificate and CRL files are refused above that size", name, pki.MaxUpload)
	}
	switch ct {
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, Errorf(http.StatusBadRequest, "bad multipart upload: %v", err)
		}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, uploadReadErr(err, max)
			}
			if part.FileName() == "" && part.FormName() != "file" {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(part, pki.MaxUpload+1))
			if err != nil {
				return nil, uploadReadErr(err, max)
			}
			if len(b) > pki.MaxUpload {
				return nil, tooBig(strconv.Quote(part.FileName()))
			}
			files = append(files, b)
		}
	default:
		var req UploadRequest
		if err := DecodeJSON(r, &req); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) || strings.Contains(err.Error(), "request body too large") {
				return nil, uploadReadErr(mbe, max)
			}
			return nil, err
		}
		for i, f := range req.Files {
			b, err := base64.StdEncoding.DecodeString(f.Data)
			if err != nil {
				return nil, Errorf(http.StatusBadRequest, "file %d (%s): data is not base64: %v", i+1, f.Name, err)
			}
			if len(b) > pki.MaxUpload {
				return nil, tooBig(fmt.Sprintf("%d (%s)", i+1, f.Name))
			}
			files = append(files, b)
		}
	}
	if len(files) == 0 {
		return nil, Errorf(http.StatusBadRequest, "the upload holds no file")
	}
	if len(files) > max {
		return nil, Errorf(http.StatusBadRequest, "the upload holds %d files; at most %d are accepted here", len(files), max)
	}
	return files, nil
}

func uploadReadErr(err error, max int) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || err == nil {
		return Errorf(http.StatusRequestEntityTooLarge, "the upload is too large: at most %d file(s) of %d bytes each are accepted", max, pki.MaxUpload)
	}
	return Errorf(http.StatusBadRequest, "bad upload: %v", err)
}

// DiagnoseRequest is the body of POST /api/v1/diagnose/tls.
type DiagnoseRequest struct {
	Address string `json:"address"` // HOST:PORT
	SNI     string `json:"sni,omitempty"`
}

func diagnoseTLS(env *Env, w http.ResponseWriter, r *http.Request) error {
	var req DiagnoseRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	s := runningPKI(env)
	if s == nil {
		// A stopped unit: connect as it would with its running (saved)
		// configuration and the material in the data directory.
		cfg, _, err := loadConfig(env, r, "running")
		if err != nil {
			return err
		}
		p := pki.New(env.Store, env.Log)
		defer p.Close()
		if err := p.BuildForDiagnosis(r.Context(), cfg); err != nil {
			return err
		}
		s = p
	}
	rep, err := s.DiagnoseTLS(r.Context(), req.Address, req.SNI)
	if err != nil {
		return pkiErr(err)
	}
	return JSON(w, http.StatusOK, rep)
}
