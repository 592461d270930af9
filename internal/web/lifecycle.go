package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
)

func (s *server) lifecycleRoutes(rt *admin.Routes) {
	rt.Page("GET /administration", s.auth(s.adminPage))
	rt.Page("GET /administration/diff", s.auth(s.diffPage))
	rt.Page("POST /administration/apply", s.auth(s.act("applied", func(r *http.Request) error {
		secs, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("confirm_within")))
		if err != nil || secs < 5 || secs > 86400 {
			return errors.New("the confirmation window must be 5 to 86400 seconds")
		}
		_, err = s.env.Config.Apply(r.Context(), time.Duration(secs)*time.Second, admin.Author(r))
		return err
	})))
	rt.Page("POST /administration/confirm", s.auth(s.act("confirmed", func(r *http.Request) error {
		_, err := s.env.Config.Confirm(r.Context(), admin.Author(r))
		return err
	})))
	rt.Page("POST /administration/revert", s.auth(s.act("reverted", func(r *http.Request) error {
		return s.env.Config.Revert(r.Context(), admin.Author(r))
	})))
	rt.Page("POST /administration/undo", s.auth(s.act("undone", func(r *http.Request) error {
		return s.env.Config.Undo(r.Context(), admin.Author(r))
	})))
	rt.Page("POST /administration/load", s.auth(s.act("loaded", func(r *http.Request) error {
		n, err := strconv.Atoi(r.PostFormValue("version"))
		if err != nil {
			return errors.New("no version number given")
		}
		return s.env.Config.LoadVersion(r.Context(), n, admin.Author(r))
	})))
	rt.Page("POST /administration/backup", s.auth(s.backup))
	rt.Page("POST /administration/restore", s.auth(s.act("restored", func(r *http.Request) error {
		file, _, err := r.FormFile("backup")
		if err != nil {
			return errors.New("choose the backup file to restore")
		}
		defer file.Close()
		data, err := io.ReadAll(io.LimitReader(file, 16<<20))
		if err != nil {
			return err
		}
		if !json.Valid(data) {
			return errNotBackup
		}
		return s.env.Config.Restore(r.Context(), data, r.FormValue("passphrase"), admin.Author(r))
	})))
}

// adminData is the Administration page's own data.
type adminData struct {
	History  []lifecycle.Version
	Changes  []config.Change
	Deadline int64 // confirm deadline, Unix milliseconds
	Window   int
}

func (s *server) adminView(r *http.Request) *view {
	ctx := r.Context()
	v := s.newView(ctx, r, "Save/Load Configuration")
	d := &adminData{Window: 60}
	if h, err := s.env.Config.History(ctx); err == nil {
		// newest first
		for i := len(h) - 1; i >= 0; i-- {
			d.History = append(d.History, h[i])
		}
	}
	if v.State.PreliminaryChanged {
		pre, _, err1 := s.env.Config.Preliminary(ctx)
		run, err2 := s.env.Config.Running(ctx)
		if err1 == nil && err2 == nil {
			d.Changes, _ = config.Diff(run, pre)
			d.Changes = redactChanges(d.Changes)
		}
	}
	if v.State.PendingConfirm {
		d.Deadline = v.State.ConfirmDeadline.UnixMilli()
	}
	v.Data = d
	return v
}

func (s *server) adminPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "administration", s.adminView(r))
}

// act runs a lifecycle action and goes back to the page it came from (or
// the Administration page); errors are shown on the Administration page,
// configuration errors with links to the pages of their fields.
func (s *server) act(done string, fn func(r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := fn(r)
		if err == nil {
			back := r.FormValue("back")
			if back == "" || !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") {
				back = "/administration"
			}
			redirectDone(w, r, back, done)
			return
		}
		v := s.adminView(r)
		var fe config.Errors
		status := http.StatusConflict
		if errors.As(err, &fe) {
			v.setErrors(fe)
			v.Problem = "The configuration was not applied: it has " + strconv.Itoa(len(fe)) + " error(s)."
			status = http.StatusUnprocessableEntity
		} else {
			v.Problem = err.Error()
			if errors.Is(err, lifecycle.ErrBadPassphrase) || errors.As(err, new(badRequest)) {
				status = http.StatusBadRequest
			}
		}
		s.render(w, status, "administration", v)
	}
}

func (s *server) backup(w http.ResponseWriter, r *http.Request) {
	keys, pass, again := r.PostFormValue("keys"), r.PostFormValue("passphrase"), r.PostFormValue("passphrase2")
	problem := ""
	switch {
	case keys != "encrypt" && keys != "leave-out":
		problem = "Backup: choose whether the private keys are encrypted with a passphrase or left out of the file."
	case keys == "encrypt" && len(pass) < minPassphrase:
		problem = "Backup: the private keys are in the backup, so give a passphrase of at least " + strconv.Itoa(minPassphrase) +
			" characters to encrypt them (or choose \"Leave the private keys out\")."
	case keys == "encrypt" && pass != again:
		problem = "Backup: the two passphrases differ; type the same passphrase in both fields."
	}
	if problem != "" {
		v := s.adminView(r)
		v.Problem = problem
		s.render(w, http.StatusBadRequest, "administration", v)
		return
	}
	if keys == "leave-out" {
		pass = ""
	}
	data, err := s.env.Config.Backup(r.Context(), pass)
	if err == nil && keys == "leave-out" {
		data, err = withoutPrivateKeys(data)
	}
	if err != nil {
		v := s.adminView(r)
		v.Problem = "backup failed: " + err.Error()
		s.render(w, http.StatusInternalServerError, "administration", v)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="palisade-backup-`+time.Now().UTC().Format("20060102-150405")+`.json"`)
	_, _ = w.Write(data)
}

// errNotBackup is what restoring a file that is not a backup says.
var errNotBackup = badRequest("Restore: the chosen file is not a Palisade backup (it is not even a JSON document). " +
	"Choose a file made with Download backup on this page.")

// minPassphrase is the shortest passphrase the web admin takes for a backup.
const minPassphrase = 8

// privateKeyPrefix is where the PKI keeps private keys in the store (and
// so in a backup's pki entries).
const privateKeyPrefix = "pki/keys/"

// withoutPrivateKeys drops the private keys from an unencrypted backup:
// certificates, requests, CAs and CRLs stay; a unit restored from it needs
// new keys for its own certificates.
func withoutPrivateKeys(data []byte) ([]byte, error) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	var pki struct {
		Encrypted bool                       `json:"encrypted"`
		Entries   map[string]json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(f["pki"], &pki); err != nil {
		return nil, err
	}
	if pki.Encrypted {
		return nil, errors.New("the backup is encrypted")
	}
	for k := range pki.Entries {
		if strings.HasPrefix(k, privateKeyPrefix) {
			delete(pki.Entries, k)
		}
	}
	b, err := json.Marshal(map[string]any{"entries": pki.Entries})
	if err != nil {
		return nil, err
	}
	f["pki"] = b
	out, err := json.MarshalIndent(f, "", "  ")
	return append(out, '\n'), err
}

// diffData is one comparison of two configurations.
type diffData struct {
	A, B    string
	Changes []config.Change
	Unified string
}

func (s *server) diffPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := s.newView(ctx, r, "Differences")
	v.Tab, v.Subs = tab("Administration").Name, tab("Administration").Subs
	q := r.URL.Query()
	d := &diffData{A: q.Get("a"), B: q.Get("b")}
	if d.A == "" {
		d.A = "running"
	}
	if d.B == "" {
		d.B = "preliminary"
	}
	a, errA := s.loadWhich(r, d.A)
	b, errB := s.loadWhich(r, d.B)
	if err := errors.Join(errA, errB); err != nil {
		v.Problem = err.Error()
	} else {
		d.Changes, _ = config.Diff(a, b)
		d.Changes = redactChanges(d.Changes)
		d.Unified, _ = config.UnifiedDiff(d.A, d.B, a, b)
		d.Unified = redactUnified(d.Unified)
	}
	v.Data = d
	s.render(w, http.StatusOK, "diff", v)
}

func (s *server) loadWhich(r *http.Request, which string) (*config.Config, error) {
	ctx := r.Context()
	switch which {
	case "preliminary":
		c, _, err := s.env.Config.Preliminary(ctx)
		return c, err
	case "running":
		return s.env.Config.Running(ctx)
	case "saved":
		return s.env.Config.Saved(ctx)
	}
	n, err := strconv.Atoi(which)
	if err != nil {
		return nil, errors.New(strconv.Quote(which) + " is not running, saved, preliminary or a version number")
	}
	return s.env.Config.Version(ctx, n)
}

// pageOf is the web admin page that edits the field at a configuration path.
func pageOf(p string) string {
	prefixes := []struct{ prefix, page string }{
		{"unit", "/basic/access"}, {"admin", "/basic/access"}, {"network", "/network"},
		{"sip.listeners", "/sip/signalling"}, {"sip.allowed_methods", "/traffic/methods"},
		{"sip.unknown_source", "/traffic/access"}, {"sip.restricted_interfaces", "/traffic/access"}, {"sip.max_call", "/traffic/access"},
		{"sip.source_", "/traffic/access"}, {"sip", "/sip/interop"},
		{"tls.allow_wildcard", "/sip/interop"}, {"tls", "/sip/signalling"}, {"certificates", "/basic/certificates"},
		{"media", "/sip/media"}, {"routing", "/traffic/routing"}, {"peers", "/traffic/accounts"},
		{"dial_plan", "/traffic/dialplan"}, {"registrar", "/traffic/registrar"}, {"observe", "/tools/settings"},
	}
	for _, x := range prefixes {
		if strings.HasPrefix(p, x.prefix) {
			return x.page
		}
	}
	return "/administration"
}

// Secrets (passwords, the admin password hash) are never shown on a page:
// a change to one says only that it changed.
var secretLine = regexp.MustCompile(`("(?:password|password_hash)":\s*)"(?:[^"\\]|\\.)*"`)

func isSecretPath(p string) bool { return strings.Contains(p, ".password") }

func redactChanges(cs []config.Change) []config.Change {
	hidden := json.RawMessage(`"(hidden)"`)
	for i, c := range cs {
		if isSecretPath(c.Path) {
			if c.Old != nil {
				cs[i].Old = hidden
			}
			if c.New != nil {
				cs[i].New = hidden
			}
		} else {
			// A whole peer or user added or removed carries its password.
			cs[i].Old = json.RawMessage(secretLine.ReplaceAll(c.Old, []byte(`$1"(hidden)"`)))
			cs[i].New = json.RawMessage(secretLine.ReplaceAll(c.New, []byte(`$1"(hidden)"`)))
			if c.Old == nil {
				cs[i].Old = nil
			}
			if c.New == nil {
				cs[i].New = nil
			}
		}
	}
	return cs
}

func redactUnified(s string) string { return secretLine.ReplaceAllString(s, `$1"(hidden)"`) }

// badRequest is a problem with what the administrator sent (answered 400).
type badRequest string

func (e badRequest) Error() string { return string(e) }
