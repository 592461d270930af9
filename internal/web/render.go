package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
)

// navTab is one tab of the top row with its second-row pages.
type navTab struct {
	Name string
	Subs []navSub
}

type navSub struct{ Name, Path string }

// nav follows the seed's tabs (those that apply to Palisade).
var nav = []navTab{
	{"Dashboard", []navSub{{"Dashboard", "/dashboard"}}},
	{"Administration", []navSub{{"Save/Load Configuration", "/administration"}}},
	{"Basic Configuration", []navSub{{"Access Control", "/basic/access"}, {"Certificates", "/basic/certificates"}}},
	{"Network", []navSub{{"Interfaces", "/network"}}},
	{"SIP Services", []navSub{{"Signalling Encryption", "/sip/signalling"}, {"Media Encryption", "/sip/media"}, {"Interoperability", "/sip/interop"}}},
	{"SIP Traffic", []navSub{{"SIP Methods", "/traffic/methods"}, {"Access and Limits", "/traffic/access"}, {"Local Registrar", "/traffic/registrar"},
		{"SIP Accounts", "/traffic/accounts"}, {"Dial Plan", "/traffic/dialplan"}, {"Routing", "/traffic/routing"}}},
	{"Logging and Tools", []navSub{{"Status", "/tools/status"}, {"Log", "/tools/log"}, {"Call Flows", "/tools/calls"},
		{"TLS Diagnosis", "/tools/diagnose"}, {"Dial Plan Tester", "/tools/route"}, {"OPTIONS Ping", "/tools/ping"}, {"Test Call", "/tools/call"}, {"Settings", "/tools/settings"}}},
}

// tab returns the top-row tab named name (by name, so that adding a tab
// does not shift the others).
func tab(name string) navTab {
	for _, t := range nav {
		if t.Name == name {
			return t
		}
	}
	return navTab{Name: name}
}

// view is what every page template gets.
type view struct {
	Title   string
	Path    string
	Tab     string
	Nav     []navTab
	Subs    []navSub
	Active  string // path of the highlighted second-row page
	CSRF    string
	User    string
	State   lifecycle.State
	Flash   string
	Problem string
	Errors  config.Errors
	errIdx  map[string]string
	Cfg     *config.Config
	ETag    string
	Data    any
	typed   url.Values // posted values to show instead of the configuration's (see typed.go)
}

// Err is the error message for the field at path, as a span placed next to
// the field; empty when the field has no problem.
func (v *view) Err(path string) template.HTML {
	msg, ok := v.errIdx[path]
	if !ok {
		return ""
	}
	return template.HTML(`<span class="ferr" data-path="` + template.HTMLEscapeString(path) + `">` + template.HTMLEscapeString(msg) + `</span>`)
}

// Bad reports whether the field at path has a problem (for the input's class).
func (v *view) Bad(path string) bool { _, ok := v.errIdx[path]; return ok }

var funcs = template.FuncMap{
	"join": strings.Join,
	"path": fmt.Sprintf,
	"yesno": func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	},
	"has": func(l []string, s string) bool { return slices.Contains(l, s) },
	"seq": func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	},
	"dnsRows":     dnsRows,
	"suiteRows":   suiteRows,
	"tcRows":      tcRows,
	"ruleMatch":   func(r config.DialRule) string { m, _ := ruleMatch(r); return m },
	"rulePattern": func(r config.DialRule) string { _, p := ruleMatch(r); return p },
	"dpRows":      dpRows,
	"sipMethods":  func() []string { return sipMethods },
	"pageOf":      pageOf,
	"headerList":  headerList,
	"keyInput":    keyInput,
	"delCell":     delCell,
	"options":     options,
	"names":       names,
	"list":        list,
	"prepend":     func(s string, l []string) []string { return append([]string{s}, l...) },
	"orderAt": func(c *config.Config, i int) string {
		if i < len(c.Routing.Order) {
			return c.Routing.Order[i]
		}
		return ""
	},
	"otherMethods": func(c *config.Config) string {
		var out []string
		for _, m := range c.SIP.AllowedMethods {
			if !slices.Contains(sipMethods, m) {
				out = append(out, m)
			}
		}
		return strings.Join(out, ", ")
	},
	"dur": formDuration,
}

// formDuration writes a duration for an input the way an administrator
// would type it ("1m", "1h30m", "2160h", "500ms"), not Go's "1m0s"; the
// configuration reads it back unchanged.
func formDuration(d config.Duration) string {
	if d == 0 {
		return "0s"
	}
	s := d.D().String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var (
	tmplOnce sync.Once
	tmpls    map[string]*template.Template
	tmplErr  error
)

// page templates: templates/<name>.html defines "content".
func parseTemplates() (map[string]*template.Template, error) {
	tmplOnce.Do(func() {
		base, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/partials.html")
		if err != nil {
			tmplErr = err
			return
		}
		names, err := fsGlob("templates/*.html")
		if err != nil {
			tmplErr = err
			return
		}
		tmpls = map[string]*template.Template{}
		for _, n := range names {
			if n == "layout" || n == "partials" {
				continue
			}
			t, err := template.Must(base.Clone()).ParseFS(files, "templates/"+n+".html")
			if err != nil {
				tmplErr = fmt.Errorf("template %s: %w", n, err)
				return
			}
			tmpls[n] = t
		}
	})
	return tmpls, tmplErr
}

func fsGlob(pattern string) ([]string, error) {
	ms, err := fs.Glob(files, pattern)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(m, "templates/"), ".html"))
	}
	return out, nil
}

// newView fills the parts of a view every page shows.
func (s *server) newView(ctx context.Context, r *http.Request, title string) *view {
	v := &view{Title: title, Path: r.URL.Path, Nav: nav, errIdx: map[string]string{}}
	if p := admin.PrincipalFrom(r); p != nil {
		v.CSRF, v.User = p.CSRF, p.Name
	}
	for _, t := range nav {
		for _, sub := range t.Subs {
			if sub.Path == r.URL.Path || strings.HasPrefix(r.URL.Path, sub.Path+"/") {
				v.Tab, v.Subs, v.Active = t.Name, t.Subs, sub.Path
			}
		}
	}
	if st, err := s.env.Config.State(ctx); err == nil {
		v.State = st
	} else {
		v.Problem = "cannot read the configuration state: " + err.Error()
	}
	v.Flash = flashText(r.URL.Query().Get("done"))
	return v
}

// setErrors records field errors for Err and the summary.
func (v *view) setErrors(es config.Errors) {
	v.Errors = es
	for _, e := range es {
		if _, dup := v.errIdx[e.Path]; !dup {
			v.errIdx[e.Path] = e.Message
		}
	}
}

func (s *server) render(w http.ResponseWriter, status int, name string, v *view) {
	ts, err := parseTemplates()
	if err != nil {
		http.Error(w, "web admin templates: "+err.Error(), http.StatusInternalServerError)
		return
	}
	t, ok := ts[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		if s.env.Log != nil {
			s.env.Log.Error("web admin render failed", "page", name, "err", err)
		}
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	out := pageWords(buf.Bytes())
	if v.typed != nil {
		out = keepTyped(out, v.typed)
	}
	_, _ = w.Write(out)
}

func (s *server) renderLogin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	v := &view{Title: "Log in", errIdx: map[string]string{}, Problem: problem, Data: r.URL.Query().Get("next")}
	if status != http.StatusOK {
		v.Data = r.PostFormValue("next")
	}
	s.render(w, status, "login", v)
}

// static renders a page whose content comes from the API in the browser.
func (s *server) static(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := s.newView(r.Context(), r, titleOf(r.URL.Path))
		s.render(w, http.StatusOK, name, v)
	}
}

func titleOf(path string) string {
	for _, t := range nav {
		for _, sub := range t.Subs {
			if sub.Path == path {
				return sub.Name
			}
		}
	}
	return "Palisade"
}

// flash messages are passed as ?done=<key> after a redirect.
var flashes = map[string]string{
	"saved":      "Saved to the preliminary configuration.",
	"applied":    "The preliminary configuration is running. Confirm it before the time runs out, or it is reverted.",
	"confirmed":  "Configuration applied and saved.",
	"reverted":   "Reverted: the previous configuration runs again.",
	"undone":     "The preliminary changes were discarded.",
	"loaded":     "The saved version was loaded into the preliminary configuration.",
	"restored":   "The backup was loaded into the preliminary configuration.",
	"csr":        "Certificate request created.",
	"selfsigned": "Self-signed certificate created.",
	"imported":   "Certificate imported.",
	"caimported": "CA certificate imported.",
	"crl":        "CRL imported.",
	"deleted":    "Deleted.",
	"profile":    "Profile applied to the preliminary configuration.",
	"password":   "The new admin password is in the preliminary configuration; it takes effect when applied.",
}

func flashText(key string) string { return flashes[key] }

func redirectDone(w http.ResponseWriter, r *http.Request, path, key string) {
	http.Redirect(w, r, path+"?done="+key, http.StatusSeeOther)
}

// rowKey is the key of table row i; -1 is the template row that JavaScript
// copies (it replaces __KEY__ with a fresh key).
func rowKey(i int) string {
	if i < 0 {
		return "__KEY__"
	}
	return "r" + strconv.Itoa(i)
}

func keyInput(table string, i int) template.HTML {
	return template.HTML(`<input type="hidden" name="` + template.HTMLEscapeString(table) + `.key" value="` + rowKey(i) + `">`)
}

func delCell(table string, i int) template.HTML {
	return template.HTML(`<td class="del"><input type="checkbox" name="` + template.HTMLEscapeString(table) + `.del" value="` + rowKey(i) + `" aria-label="Delete row"></td>`)
}

// options renders <option>s for list with cur selected; a current value
// not in the list is kept as an extra option so that saving never loses it.
func options(list []string, cur string) template.HTML {
	var b strings.Builder
	found := false
	for _, o := range list {
		sel := ""
		if o == cur {
			sel, found = " selected", true
		}
		b.WriteString(`<option value="` + template.HTMLEscapeString(o) + `"` + sel + `>` + template.HTMLEscapeString(o) + `</option>`)
	}
	if !found && cur != "" {
		b.WriteString(`<option value="` + template.HTMLEscapeString(cur) + `" selected>` + template.HTMLEscapeString(cur) + `</option>`)
	}
	return template.HTML(b.String())
}

// names lists the names of interfaces, certificates, peers, suite groups
// and time classes of cfg, for the selects that refer to them.
func names(cfg *config.Config, what string) []string {
	var out []string
	switch what {
	case "interfaces":
		for _, i := range cfg.Network.Interfaces {
			out = append(out, i.Name)
		}
	case "private":
		for _, c := range cfg.Certificates.Private {
			out = append(out, c.Name)
		}
	case "ca":
		for _, c := range cfg.Certificates.CA {
			out = append(out, c.Name)
		}
	case "groups":
		for _, g := range cfg.Media.CryptoSuiteGroups {
			out = append(out, g.Name)
		}
	case "peers":
		for _, p := range cfg.Peers {
			out = append(out, p.Name)
		}
	case "time_classes":
		for _, t := range cfg.DialPlan.TimeClasses {
			out = append(out, t.Name)
		}
	}
	return out
}

// list builds a []string in templates.
func list(s ...string) []string { return s }

// failedChange is the view for a change that could not be stored: the
// reason (field errors listed and placed, a stale page, or the error) and
// the current preliminary configuration.
func (s *server) failedChange(r *http.Request, tab navTab, title string, err error) *view {
	ctx := r.Context()
	v := s.newView(ctx, r, title)
	v.Tab, v.Subs = tab.Name, tab.Subs
	var fe config.Errors
	switch {
	case errors.As(err, &fe):
		saves.WithLabelValues("invalid").Inc()
		v.setErrors(fe)
		v.Problem = "the change would make the configuration invalid"
	case errors.Is(err, lifecycle.ErrPreconditionFailed):
		saves.WithLabelValues("stale").Inc()
		v.Problem = errStale.Error()
	default:
		saves.WithLabelValues("error").Inc()
		v.Problem = err.Error()
	}
	cur, etag, _ := s.env.Config.Preliminary(ctx)
	if cur == nil {
		cur = config.Default()
	}
	v.Cfg, v.ETag = cur, etag
	return v
}
