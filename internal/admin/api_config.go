package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
)

func configRoutes(rt *Routes) {
	rt.API("GET /api/v1/config/state", configState)
	rt.API("GET /api/v1/config/{which}", getConfig)
	rt.API("PUT /api/v1/config/preliminary", putPreliminary)
	rt.API("GET /api/v1/config/preliminary/path/{path...}", getPath)
	rt.API("PUT /api/v1/config/preliminary/path/{path...}", putPath)
	rt.API("POST /api/v1/config/apply", applyConfig)
	rt.API("POST /api/v1/config/confirm", confirmConfig)
	rt.API("POST /api/v1/config/revert", revertConfig)
	rt.API("POST /api/v1/config/undo", undoConfig)
	rt.API("GET /api/v1/config/history", history)
	rt.API("GET /api/v1/config/versions/{n}", getVersion)
	rt.API("POST /api/v1/config/versions/{n}/load", loadVersion)
	rt.API("GET /api/v1/config/diff", diffConfig)
	rt.API("GET /api/v1/config/backup", backup)
	rt.API("POST /api/v1/config/backup", backup)
	rt.API("POST /api/v1/config/restore", restore)
}

func configState(env *Env, w http.ResponseWriter, r *http.Request) error {
	st, err := env.Config.State(r.Context())
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, st)
}

// loadConfig returns the configuration named by which: running, saved,
// preliminary, or a saved version number. etag is set for preliminary only.
func loadConfig(env *Env, r *http.Request, which string) (cfg *config.Config, etag string, err error) {
	ctx := r.Context()
	switch which {
	case "preliminary":
		return env.Config.Preliminary(ctx)
	case "running":
		cfg, err = env.Config.Running(ctx)
	case "saved":
		cfg, err = env.Config.Saved(ctx)
	default:
		n, perr := strconv.Atoi(which)
		if perr != nil || n < 1 {
			return nil, "", Errorf(http.StatusBadRequest, "%q is not running, saved, preliminary or a version number", which)
		}
		cfg, err = env.Config.Version(ctx, n)
		if errors.Is(err, store.ErrNotFound) {
			err = Errorf(http.StatusNotFound, "there is no saved version %d", n)
		}
	}
	return cfg, "", err
}

func getConfig(env *Env, w http.ResponseWriter, r *http.Request) error {
	which := r.PathValue("which")
	if _, err := strconv.Atoi(which); err == nil {
		return Errorf(http.StatusNotFound, "use /api/v1/config/versions/%s for saved versions", which)
	}
	cfg, etag, err := loadConfig(env, r, which)
	if err != nil {
		return err
	}
	if etag != "" {
		w.Header().Set("ETag", strconv.Quote(etag))
	}
	return JSON(w, http.StatusOK, cfg)
}

// ifMatch returns the If-Match value without quotes or weak prefix.
func ifMatch(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	v = strings.TrimPrefix(v, "W/")
	if uq, err := strconv.Unquote(v); err == nil {
		return uq
	}
	return v
}

func putPreliminary(env *Env, w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return Errorf(http.StatusBadRequest, "read request: %v", err)
	}
	cfg, err := decodeConfig(body)
	if err != nil {
		return err
	}
	etag, err := env.Config.SetPreliminary(r.Context(), cfg, ifMatch(r), Author(r))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", strconv.Quote(etag))
	return JSON(w, http.StatusOK, map[string]string{"etag": etag})
}

func getPath(env *Env, w http.ResponseWriter, r *http.Request) error {
	cfg, etag, err := env.Config.Preliminary(r.Context())
	if err != nil {
		return err
	}
	v, err := configGet(cfg, r.PathValue("path"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", strconv.Quote(etag))
	return JSON(w, http.StatusOK, v)
}

func putPath(env *Env, w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return Errorf(http.StatusBadRequest, "read request: %v", err)
	}
	cfg, etag, err := env.Config.Preliminary(r.Context())
	if err != nil {
		return err
	}
	if m := ifMatch(r); m != "" && m != etag {
		return ErrPrecondition
	}
	if err := configSet(cfg, r.PathValue("path"), body); err != nil {
		return err
	}
	etag, err = env.Config.SetPreliminary(r.Context(), cfg, etag, Author(r))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", strconv.Quote(etag))
	return JSON(w, http.StatusOK, map[string]string{"etag": etag})
}

func applyConfig(env *Env, w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ConfirmWithin config.Duration `json:"confirm_within"`
	}
	if r.ContentLength != 0 {
		if err := DecodeJSON(r, &req); err != nil {
			return err
		}
	}
	if !env.Running() {
		return ErrUnitStopped
	}
	if req.ConfirmWithin < 0 || req.ConfirmWithin.D() > 24*time.Hour {
		return Errorf(http.StatusBadRequest, "confirm_within must be between 1s and 24h")
	}
	st, err := env.Config.Apply(r.Context(), req.ConfirmWithin.D(), Author(r))
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, st)
}

func confirmConfig(env *Env, w http.ResponseWriter, r *http.Request) error {
	if !env.Running() {
		return ErrUnitStopped
	}
	v, err := env.Config.Confirm(r.Context(), Author(r))
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, v)
}

func revertConfig(env *Env, w http.ResponseWriter, r *http.Request) error {
	if !env.Running() {
		return ErrUnitStopped
	}
	if err := env.Config.Revert(r.Context(), Author(r)); err != nil {
		return err
	}
	return configState(env, w, r)
}

func undoConfig(env *Env, w http.ResponseWriter, r *http.Request) error {
	if err := env.Config.Undo(r.Context(), Author(r)); err != nil {
		return err
	}
	return configState(env, w, r)
}

func history(env *Env, w http.ResponseWriter, r *http.Request) error {
	vs, err := env.Config.History(r.Context())
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, vs)
}

func versionNumber(r *http.Request) (int, error) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		return 0, Errorf(http.StatusBadRequest, "%q is not a version number", r.PathValue("n"))
	}
	return n, nil
}

func getVersion(env *Env, w http.ResponseWriter, r *http.Request) error {
	n, err := versionNumber(r)
	if err != nil {
		return err
	}
	cfg, _, err := loadConfig(env, r, strconv.Itoa(n))
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, cfg)
}

func loadVersion(env *Env, w http.ResponseWriter, r *http.Request) error {
	n, err := versionNumber(r)
	if err != nil {
		return err
	}
	if err := env.Config.LoadVersion(r.Context(), n, Author(r)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Errorf(http.StatusNotFound, "there is no saved version %d", n)
		}
		return err
	}
	return configState(env, w, r)
}

func diffConfig(env *Env, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	a, b := q.Get("a"), q.Get("b")
	if a == "" {
		a = "running"
	}
	if b == "" {
		b = "preliminary"
	}
	ca, _, err := loadConfig(env, r, a)
	if err != nil {
		return err
	}
	cb, _, err := loadConfig(env, r, b)
	if err != nil {
		return err
	}
	d, err := configDiff(ca, cb)
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, map[string]any{"a": a, "b": b, "changes": d})
}

// backup answers the backup file. POST {"passphrase": "...", "without_keys":
// false} keeps the passphrase out of URLs and logs; GET ?passphrase= and
// ?without_keys=true are accepted for scripts. Private keys need one of the
// two (lifecycle.ErrBackupPassphrase, 400, otherwise).
func backup(env *Env, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := lifecycle.BackupOptions{Passphrase: q.Get("passphrase"), WithoutKeys: q.Get("without_keys") == "true" || q.Get("without_keys") == "1"}
	if r.Method == http.MethodPost && r.ContentLength != 0 {
		var req struct {
			Passphrase  string `json:"passphrase"`
			WithoutKeys bool   `json:"without_keys"`
		}
		if err := DecodeJSON(r, &req); err != nil {
			return err
		}
		opts = lifecycle.BackupOptions{Passphrase: req.Passphrase, WithoutKeys: req.WithoutKeys}
	}
	data, err := env.Config.Backup(r.Context(), opts)
	if errors.Is(err, lifecycle.ErrBackupPassphrase) {
		return fmt.Errorf(`%w (API: "passphrase" or "without_keys": true; CLI: palisade config backup FILE --passphrase P or --without-keys)`, err)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="palisade-backup-`+time.Now().UTC().Format("20060102-150405")+`.json"`)
	_, err = w.Write(data)
	return err
}

// restore loads a backup into preliminary. The body is either JSON
// {"backup": <the backup file as a JSON string or object>, "passphrase": "..."}
// or the raw backup file with the passphrase in X-Backup-Passphrase.
func restore(env *Env, w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return Errorf(http.StatusBadRequest, "read request: %v", err)
	}
	data, pass := body, r.Header.Get("X-Backup-Passphrase")
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var req struct {
			Backup     json.RawMessage `json:"backup"`
			Passphrase string          `json:"passphrase"`
		}
		if err := json.Unmarshal(body, &req); err == nil && len(req.Backup) > 0 {
			data, pass = req.Backup, req.Passphrase
			var s string
			if json.Unmarshal(req.Backup, &s) == nil {
				data = []byte(s)
			}
		}
	}
	if err := env.Config.Restore(r.Context(), data, pass, Author(r)); err != nil {
		return err
	}
	return configState(env, w, r)
}

// ErrPrecondition answers an If-Match that does not match (412).
var ErrPrecondition = &Error{Status: http.StatusPreconditionFailed,
	Message: "the preliminary configuration was changed by someone else; reload it and try again"}

func audit(env *Env, r *http.Request, action, detail string) {
	if err := env.Store.Audit(r.Context(), store.AuditEntry{Time: time.Now().UTC(), Author: Author(r), Action: action, Detail: detail}); err != nil && env.Log != nil {
		env.Log.Error("audit log write failed", "action", action, "err", err)
	}
}
