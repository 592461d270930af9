package web

import (
	"bytes"
	"context"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/profiles"
)

func ioCopy(w io.Writer, resp *http.Response) (int64, error) { return io.Copy(w, resp.Body) }

func TestLoginRequired(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	resp, err := c.Get(u.srv.URL + "/traffic/routing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("unauthenticated page: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	body, _ := u.post(t, c, "/login", url.Values{"password": {"wrong password"}}, http.StatusUnauthorized)
	if !strings.Contains(body, "wrong password") {
		t.Errorf("login error not shown: %.300s", body)
	}
	u.login(t, c)
	body = u.get(t, c, "/traffic/routing", http.StatusOK)
	if !strings.Contains(body, "Always handle REFER locally") {
		t.Error("routing page lacks the REFER settings")
	}
}

func TestSaveNeedsCSRF(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	u.login(t, c)
	_, etag, _ := u.mgr.Preliminary(context.Background())
	u.post(t, c, "/traffic/routing", url.Values{"etag": {etag}, "refer_always": {"on"}}, http.StatusForbidden)
	cfg, _, _ := u.mgr.Preliminary(context.Background())
	if cfg.Routing.Refer.Always {
		t.Fatal("a form without CSRF token changed the configuration")
	}
}

// formOf collects the inputs of the page's form with id page-form, as a
// browser would submit them untouched (text inputs, checked boxes, selected
// options; template rows left out).
func formOf(t *testing.T, page string) url.Values {
	t.Helper()
	i := strings.Index(page, `id="page-form"`)
	if i < 0 {
		t.Fatal("no page form")
	}
	page = page[i:]
	page = page[:strings.Index(page, "</form>")]
	page = regexp.MustCompile(`(?s)<template[^>]*>.*?</template>`).ReplaceAllString(page, "")
	v := url.Values{}
	attr := func(tag, name string) (string, bool) {
		m := regexp.MustCompile(`\b` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if m == nil {
			return "", false
		}
		return htmlUnescape(m[1]), true
	}
	// Fields in document order, as a browser posts them: tables mix
	// hidden inputs and selects of the same name.
	for _, m := range regexp.MustCompile(`(?s)<input[^>]*>|<select name="([^"]+)"[^>]*>(.*?)</select>`).FindAllStringSubmatch(page, -1) {
		if m[1] != "" {
			sel := regexp.MustCompile(`<option value="([^"]*)" selected>`).FindStringSubmatch(m[2])
			if sel == nil {
				sel = regexp.MustCompile(`<option value="([^"]*)"`).FindStringSubmatch(m[2])
			}
			if sel != nil {
				v.Add(m[1], htmlUnescape(sel[1]))
			}
			continue
		}
		tag := m[0]
		name, ok := attr(tag, "name")
		if !ok {
			continue
		}
		typ, _ := attr(tag, "type")
		val, _ := attr(tag, "value")
		switch typ {
		case "checkbox", "radio":
			if strings.Contains(tag, " checked") {
				if val == "" {
					val = "on"
				}
				v.Add(name, val)
			}
		case "file", "submit":
		default:
			v.Add(name, val)
		}
	}
	return v
}

func htmlUnescape(s string) string { return html.UnescapeString(s) }

// Every configuration page, submitted unchanged, saves without changing
// the configuration: the forms round-trip every field they show.
func TestPagesRoundTrip(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	csrf := u.login(t, c)
	ctx := context.Background()
	before := richConfig(t, u)
	for _, p := range configPages {
		t.Run(p.Path, func(t *testing.T) {
			page := u.get(t, c, p.Path, http.StatusOK)
			form := formOf(t, page)
			form.Set("csrf_token", csrf)
			_, resp := u.post(t, c, p.Path, form, http.StatusSeeOther)
			if loc := resp.Header.Get("Location"); loc != p.Path+"?done=saved" {
				t.Errorf("redirect to %q", loc)
			}
		})
	}
	after, _, _ := u.mgr.Preliminary(ctx)
	if d, _ := configDiff(before, after); d != "" {
		t.Errorf("unchanged forms changed the configuration:\n%s", d)
	}
}

// richConfig stores a preliminary configuration that fills every table.
func richConfig(t *testing.T, u *testUnit) *config.Config {
	t.Helper()
	ctx := context.Background()
	cfg, etag, _ := u.mgr.Preliminary(ctx)
	cfg.Network.Interfaces[1].FQDN = "sbc.example.com"
	cfg.Network.DNSServers = []string{"9.9.9.9", "1.1.1.1:53"}
	if err := profiles.Apply(cfg, profiles.TeamsDirectRouting, profiles.Answers{Version: "1.0"}); err != nil {
		t.Fatal(err)
	}
	cfg.Peers = append(cfg.Peers, config.Peer{Name: "pbx", Kind: "pbx", Profile: "generic", Type: "asterisk", Interface: "inside",
		Address: "127.0.0.5:5060", Transport: "udp", Auth: config.PeerAuth{Username: "u", Password: "p", Register: true,
			Realm: "pbx.example.com", Expires: config.Duration(600 * time.Second)}})
	cfg.Registrar = config.Registrar{Enabled: true, Domains: []string{"example.com"}, MinExpires: 60, MaxExpires: 3600,
		Users: []config.RegistrarUser{{Username: "100", Password: "pw100"}}}
	cfg.DialPlan.TimeClasses = []config.TimeClass{{Name: "office", TimeZone: "Europe/Stockholm", Windows: []config.TimeWindow{
		{Days: []string{"mon", "tue"}, Start: "08:00", End: "17:00"}, {Days: []string{"sat"}, Start: "09:00", End: "12:00"}}}}
	cfg.DialPlan.Rules = []config.DialRule{
		{Name: "out", Source: "pbx", Prefix: "9", TimeClass: "office", ForwardTo: []config.Forward{{Peer: "itsp", Timeout: config.Duration(20 * time.Second)}, {URI: "sip:backup@example.net", Rewrite: "0${user}"}}},
		{Name: "in", Source: "itsp", Regex: "^(.+)$", ForwardTo: []config.Forward{{Peer: "pbx", Rewrite: "$1"}}},
	}
	cfg.Routing.StaticRegistrations = []config.StaticRegistration{{User: "200", ForwardTo: "sip:200@10.0.0.20", Transport: "udp"}}
	cfg.Routing.Refer.FromURIs = []string{"sip:um@example.com"}
	cfg.Routing.Refer.UserAgents = []string{"UM"}
	if _, err := u.mgr.SetPreliminary(ctx, cfg, etag, "test"); err != nil {
		t.Fatal(err)
	}
	cfg, _, _ = u.mgr.Preliminary(ctx)
	return cfg
}

// A value the validation refuses is shown next to its field, and nothing
// is stored.
func TestFieldErrorShownNextToField(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	csrf := u.login(t, c)
	page := u.get(t, c, "/sip/signalling", http.StatusOK)
	form := formOf(t, page)
	form.Set("csrf_token", csrf)
	ports := form["listeners.port"]
	ports[0] = "70000"
	body, _ := u.post(t, c, "/sip/signalling", form, http.StatusUnprocessableEntity)
	m := regexp.MustCompile(`name="listeners.port" value="70000" class="num"><span class="ferr" data-path="sip.listeners\[0\].port">([^<]+)</span>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no error next to the port field:\n%s", excerpt(body, "70000"))
	}
	if !strings.Contains(body, `<code>sip.listeners[0].port</code>`) {
		t.Error("error summary lacks the field path")
	}
	var metric dto.Metric
	if err := saves.WithLabelValues("invalid").Write(&metric); err != nil || metric.GetCounter().GetValue() < 1 {
		t.Errorf("palisade_web_saves_total{result=invalid} = %v (%v)", metric.GetCounter().GetValue(), err)
	}
	cfg, _, _ := u.mgr.Preliminary(context.Background())
	if cfg.SIP.Listeners[0].Port == 70000 {
		t.Error("an invalid value was stored")
	}
	// A value that does not even parse gets its error the same way.
	ports[0] = "abc"
	body, _ = u.post(t, c, "/sip/signalling", form, http.StatusUnprocessableEntity)
	if !strings.Contains(body, `data-path="sip.listeners[0].port">&#34;abc&#34; is not a whole number`) {
		t.Errorf("parse error not next to the field:\n%s", excerpt(body, "abc"))
	}
	// Several mistakes: every error at once, parse errors and validation
	// errors together, and the fields keep what was typed.
	ports[1] = "70000"
	form.Set("handshake_timeout", "soon")
	body, _ = u.post(t, c, "/sip/signalling", form, http.StatusUnprocessableEntity)
	for _, want := range []string{
		`data-path="sip.listeners[0].port"`, `data-path="sip.listeners[1].port"`, `data-path="tls.handshake_timeout"`,
		`name="listeners.port" value="abc"`, `name="listeners.port" value="70000"`, `name="handshake_timeout" value="soon"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page with three mistakes lacks %s:\n%s", want, excerpt(body, "errors"))
		}
	}
}

func excerpt(s, near string) string {
	i := strings.Index(s, near)
	if i < 0 {
		return "(" + near + " not found)"
	}
	return s[max(0, i-300):min(len(s), i+300)]
}

// Tables: a deleted row goes, an added row comes, and the banner appears.
func TestTableEditAndBanner(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	csrf := u.login(t, c)
	page := u.get(t, c, "/traffic/routing", http.StatusOK)
	if strings.Contains(page, "Changes have been made to the preliminary configuration, but have not been applied") {
		t.Fatal("banner shown before any change")
	}
	form := formOf(t, page)
	form.Set("csrf_token", csrf)
	for _, kv := range [][2]string{{"domain", "example.net"}, {"host", "10.1.1.1"}, {"port", "5061"}, {"transport", "tls"}, {"priority", "1"}, {"weight", "1"}} {
		form.Add("dns."+kv[0], kv[1])
	}
	form.Add("dns.key", "n1")
	form.Add("refer_from.key", "n2")
	form.Add("refer_from.uri", "sip:um@example.net")
	form.Set("refer_always", "on")
	u.post(t, c, "/traffic/routing", form, http.StatusSeeOther)
	cfg, _, _ := u.mgr.Preliminary(context.Background())
	if len(cfg.Routing.DNSOverride) != 1 || cfg.Routing.DNSOverride[0].Targets[0].Port != 5061 || !cfg.Routing.Refer.Always ||
		len(cfg.Routing.Refer.FromURIs) != 1 {
		t.Fatalf("routing = %+v", cfg.Routing)
	}
	page = u.get(t, c, "/network", http.StatusOK)
	if !strings.Contains(page, "Changes have been made to the preliminary configuration, but have not been applied") {
		t.Error("banner missing after a change")
	}
	// Delete the override row again.
	page = u.get(t, c, "/traffic/routing", http.StatusOK)
	form = formOf(t, page)
	form.Set("csrf_token", csrf)
	form.Add("dns.del", "r0")
	u.post(t, c, "/traffic/routing", form, http.StatusSeeOther)
	cfg, _, _ = u.mgr.Preliminary(context.Background())
	if len(cfg.Routing.DNSOverride) != 0 {
		t.Fatalf("row not deleted: %+v", cfg.Routing.DNSOverride)
	}
}

func TestApplyConfirmAndRevertForms(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	csrf := u.login(t, c)
	ctx := context.Background()
	page := u.get(t, c, "/sip/interop", http.StatusOK)
	form := formOf(t, page)
	form.Set("csrf_token", csrf)
	form.Set("user_agent", "Palisade-Test")
	u.post(t, c, "/sip/interop", form, http.StatusSeeOther)

	u.post(t, c, "/administration/apply", url.Values{"csrf_token": {csrf}, "confirm_within": {"60"}}, http.StatusSeeOther)
	if got := u.applier.last(); got == nil || got.SIP.UserAgent != "Palisade-Test" {
		t.Fatal("apply did not run the preliminary configuration")
	}
	page = u.get(t, c, "/administration", http.StatusOK)
	if !strings.Contains(page, `id="countdown"`) || !strings.Contains(page, "Save configuration") {
		t.Fatal("no confirmation countdown after apply")
	}
	u.post(t, c, "/administration/confirm", url.Values{"csrf_token": {csrf}}, http.StatusSeeOther)
	saved, _ := u.mgr.Saved(ctx)
	if saved.SIP.UserAgent != "Palisade-Test" {
		t.Fatal("confirm did not save")
	}
	page = u.get(t, c, "/administration", http.StatusOK)
	if !strings.Contains(page, "<td>2</td>") {
		t.Error("history lacks version 2")
	}

	// Change again, apply, revert: the saved configuration runs again.
	form.Set("user_agent", "Other")
	page = u.get(t, c, "/sip/interop", http.StatusOK)
	etag := regexp.MustCompile(`name="etag" value="([^"]+)"`).FindStringSubmatch(page)[1]
	form.Set("etag", etag)
	u.post(t, c, "/sip/interop", form, http.StatusSeeOther)
	u.post(t, c, "/administration/apply", url.Values{"csrf_token": {csrf}, "confirm_within": {"60"}}, http.StatusSeeOther)
	u.post(t, c, "/administration/revert", url.Values{"csrf_token": {csrf}}, http.StatusSeeOther)
	if got := u.applier.last(); got.SIP.UserAgent != "Palisade-Test" {
		t.Errorf("after revert the unit runs %q", got.SIP.UserAgent)
	}
	st, _ := u.mgr.State(ctx)
	if st.PendingConfirm || !st.PreliminaryChanged {
		t.Errorf("state after revert: %+v", st)
	}
	// Undo discards the preliminary change.
	u.post(t, c, "/administration/undo", url.Values{"csrf_token": {csrf}, "back": {"/sip/interop"}}, http.StatusSeeOther)
	pre, _, _ := u.mgr.Preliminary(ctx)
	if pre.SIP.UserAgent != "Palisade-Test" {
		t.Errorf("undo left %q", pre.SIP.UserAgent)
	}
}

// A backup downloaded from the Administration page restores through the
// page's upload (multipart with the CSRF header, as the page's script sends it).
func TestBackupAndRestore(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	csrf := u.login(t, c)
	ctx := context.Background()
	want := richConfig(t, u)
	// The private keys go into a backup only encrypted, or are left out.
	for _, bad := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"passphrase": {"long enough"}, "passphrase2": {"long enough"}}, "choose whether the private keys"},
		{url.Values{"keys": {"encrypt"}}, "give a passphrase of at least 8"},
		{url.Values{"keys": {"encrypt"}, "passphrase": {"short"}, "passphrase2": {"short"}}, "give a passphrase of at least 8"},
		{url.Values{"keys": {"encrypt"}, "passphrase": {"long enough"}, "passphrase2": {"long enuogh"}}, "the two passphrases differ"},
	} {
		bad.form.Set("csrf_token", csrf)
		page, _ := u.post(t, c, "/administration/backup", bad.form, http.StatusBadRequest)
		if !strings.Contains(html.UnescapeString(page), bad.want) {
			t.Errorf("backup %v: want %q, got %s", bad.form, bad.want, excerpt(page, "problem"))
		}
	}
	noKeys, _ := u.post(t, c, "/administration/backup", url.Values{"csrf_token": {csrf}, "keys": {"leave-out"}}, http.StatusOK)
	if strings.Contains(noKeys, lifecycle.PrivateKeyPrefix) || !strings.Contains(noKeys, "pki/private/") || strings.Contains(noKeys, "PRIVATE KEY") {
		t.Errorf("a backup without keys holds keys, or lost the certificates:\n%.600s", noKeys)
	}
	data, resp := u.post(t, c, "/administration/backup", url.Values{"csrf_token": {csrf}, "keys": {"encrypt"}, "passphrase": {"pp-backup"}, "passphrase2": {"pp-backup"}}, http.StatusOK)
	if !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("backup is not a download: %v", resp.Header)
	}
	u.post(t, c, "/administration/undo", url.Values{"csrf_token": {csrf}}, http.StatusSeeOther)
	if pre, _, _ := u.mgr.Preliminary(ctx); len(pre.Peers) != 0 {
		t.Fatal("undo did not discard")
	}
	restoreFile := func(file, pass string, want int) string {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("backup", "backup.json")
		fw.Write([]byte(file))
		mw.WriteField("passphrase", pass)
		mw.Close()
		req, _ := http.NewRequest("POST", u.srv.URL+"/administration/restore", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("X-CSRF-Token", csrf)
		b, _ := u.check(t, "restore", want)(c.Do(req))
		return b
	}
	restore := func(pass string, want int) string { return restoreFile(data, pass, want) }
	if page := restore("wrong", http.StatusBadRequest); !strings.Contains(page, "passphrase") {
		t.Errorf("wrong passphrase not explained: %s", excerpt(page, "problem"))
	}
	// A file that is not a backup at all is said so in plain words.
	page := html.UnescapeString(restoreFile(`\x00garbage{"`, "", http.StatusBadRequest))
	if !strings.Contains(page, "is not a Palisade backup") || strings.Contains(page, "invalid character") {
		t.Errorf("garbage file: %s", excerpt(page, "problem"))
	}
	restore("pp-backup", http.StatusSeeOther)
	pre, _, _ := u.mgr.Preliminary(ctx)
	if d, _ := configDiff(want, pre); d != "" {
		t.Errorf("restored configuration differs:\n%s", d)
	}
}

// Wrong passwords on the login page lock the address out; the page says so.
func TestLoginLockout(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	for range 5 {
		u.post(t, c, "/login", url.Values{"password": {"nope"}}, http.StatusUnauthorized)
	}
	body, _ := u.post(t, c, "/login", url.Values{"password": {testPassword}}, http.StatusTooManyRequests)
	if !strings.Contains(body, "too many failed logins") || !strings.Contains(body, "locked out for ") {
		t.Errorf("lockout not explained: %s", excerpt(body, "problem"))
	}
}

func TestDiffPage(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	u.login(t, c)
	richConfig(t, u)
	body := html.UnescapeString(u.get(t, c, "/administration/diff?a=1&b=preliminary", http.StatusOK))
	for _, want := range []string{"<code>routing.refer.user_agents[0]</code>", "+++ preliminary", "pstnhub", `"password": "(hidden)"`} {
		if !strings.Contains(body, want) {
			t.Errorf("diff page lacks %q", want)
		}
	}
	for _, secret := range []string{"pw100", `"p"`} {
		if strings.Contains(body, secret) {
			t.Errorf("diff page shows the secret %s", secret)
		}
	}
	body = u.get(t, c, "/administration", http.StatusOK)
	if !strings.Contains(body, "Changes not yet applied") || !strings.Contains(body, `id="diff-form"`) {
		t.Error("administration page lacks the pending changes or the compare form")
	}
	if strings.Contains(body, "pw100") {
		t.Error("administration page shows a registrar password")
	}
	u.get(t, c, "/administration/diff?a=nonsense", http.StatusOK)
}

// The interop page sets sip.invite_timeout; a bad value is refused next to the field.
func TestInteropInviteTimeout(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	csrf := u.login(t, c)
	form := formOf(t, u.get(t, c, "/sip/interop", http.StatusOK))
	if _, ok := form["invite_timeout"]; !ok {
		t.Fatal("interop page has no invite_timeout field")
	}
	form.Set("csrf_token", csrf)
	form.Set("invite_timeout", "3s")
	u.post(t, c, "/sip/interop", form, http.StatusSeeOther)
	cfg, _, _ := u.mgr.Preliminary(context.Background())
	if cfg.SIP.InviteTimeout != config.Duration(3*time.Second) {
		t.Fatalf("sip.invite_timeout = %v, want 3s", cfg.SIP.InviteTimeout)
	}
	form = formOf(t, u.get(t, c, "/sip/interop", http.StatusOK)) // new etag
	form.Set("csrf_token", csrf)
	form.Set("invite_timeout", "-1s")
	body, _ := u.post(t, c, "/sip/interop", form, http.StatusUnprocessableEntity)
	if !strings.Contains(body, `data-path="sip.invite_timeout"`) {
		t.Errorf("no error next to the field:\n%s", excerpt(body, "-1s"))
	}
}

// Applying a profile first lists its changes; a change that reaches another
// peer is warned about; nothing is stored until "Apply these changes".
// Issue 18: a lab trunk (generic profile) after the Teams trunk on the same
// interface gets its own media policy and leaves the interface's, and so
// Teams' SRTP, as it was.
func TestProfilePreviewWarns(t *testing.T) {
	form := url.Values{"profile": {"generic"}, "peer": {"lab"}, "address": {"198.51.100.7"}, "transport": {"udp"}}
	u, c, page := profilePreview(t, nil, form)
	ctx := context.Background()
	hasLab := func(c *config.Config) bool {
		return slices.ContainsFunc(c.Peers, func(p config.Peer) bool { return p.Name == "lab" })
	}
	if !strings.Contains(page, `id="profile-changes"`) || !strings.Contains(page, "peers[") {
		t.Fatalf("no list of changes:\n%s", excerpt(page, "profile-preview"))
	}
	if !strings.Contains(page, `"media":{"group":"RTP","requirement":"either"}`) {
		t.Errorf("the lab's own media policy is not in the list of changes:\n%s", excerpt(page, "profile-changes"))
	}
	if strings.Contains(page, "media.policies[") {
		t.Errorf("the lab trunk changes the interface's media policy:\n%s", excerpt(page, "profile-changes"))
	}
	if after, _, _ := u.mgr.Preliminary(ctx); hasLab(after) {
		t.Fatal("the preview stored the profile")
	}
	if !strings.Contains(page, `class="active">SIP Traffic</a>`) {
		t.Error("the preview is not under the SIP Traffic tab")
	}
	form.Set("confirm", "1")
	u.post(t, c, "/traffic/profile", form, http.StatusSeeOther)
	after, _, _ := u.mgr.Preliminary(ctx)
	if !hasLab(after) {
		t.Fatalf("Apply these changes did not store the profile: %d peers", len(after.Peers))
	}
	if g, r := after.PeerMediaPolicy(after.Peers[0]); after.Peers[0].Name != "itsp" || g != "SRTP" || r != "srtp" {
		t.Errorf("the Teams trunk's media policy became %s/%s", g, r)
	}
}

// A profile that changes a media policy other peers rely on says so: the
// Teams profile sets the default policy, which the PBX inside relies on.
func TestProfilePreviewWarnsMedia(t *testing.T) {
	_, _, page := profilePreview(t, func(cfg *config.Config) {
		cfg.Media.DefaultPolicy.Group, cfg.Media.DefaultPolicy.Requirement = "SRTP", "either"
	}, url.Values{"profile": {"teams-direct-routing"}, "peer": {"teams2"}, "fqdn": {"sbc.example.com"}})
	if !strings.Contains(page, `media.default_policy.requirement: "either" → "rtp" changes the default media policy, which pbx also uses`) {
		t.Errorf("no warning for the PBX's media policy:\n%s", excerpt(page, "profile-warnings"))
	}
	if strings.Contains(page, "itsp also use") {
		t.Errorf("the Teams trunk, with its own media policy, is named:\n%s", excerpt(page, "profile-warnings"))
	}
}

// A second trunk left at the proposed peer name would replace the first:
// the preview says so.
func TestProfilePreviewWarnsReplace(t *testing.T) {
	_, _, page := profilePreview(t, nil, url.Values{"profile": {"generic"}, "peer": {"itsp"}, "address": {"198.51.100.7"}, "transport": {"udp"}})
	if !strings.Contains(page, "Peer itsp already exists (a teams-direct-routing itsp on interface outside): this profile replaces its settings") {
		t.Errorf("no warning that the Teams trunk is replaced:\n%s", excerpt(page, "profile-warnings"))
	}
	_, _, page = profilePreview(t, nil, url.Values{"profile": {"teams-direct-routing"}, "peer": {"itsp"}, "fqdn": {"sbc.example.com"}})
	if strings.Contains(page, "already exists") {
		t.Errorf("re-applying the peer's own profile warned:\n%s", excerpt(page, "profile-warnings"))
	}
}

// profilePreview posts the profile form (without confirm) on a unit with
// richConfig, changed by edit, and returns the page read as text.
func profilePreview(t *testing.T, edit func(*config.Config), form url.Values) (*testUnit, *http.Client, string) {
	t.Helper()
	u := newTestUnit(t)
	c := u.client(t)
	form.Set("csrf_token", u.login(t, c))
	cfg := richConfig(t, u)
	if edit != nil {
		ctx := context.Background()
		_, etag, _ := u.mgr.Preliminary(ctx)
		edit(cfg)
		if _, err := u.mgr.SetPreliminary(ctx, cfg, etag, "test"); err != nil {
			t.Fatal(err)
		}
	}
	page, _ := u.post(t, c, "/traffic/profile", form, http.StatusOK)
	return u, c, html.UnescapeString(page)
}

// A catch-all rule switched to "prefix" without a pattern comes back with
// the error and the page still showing the choice made (selects too).
func TestEmptyPatternKeepsChoice(t *testing.T) {
	u := newTestUnit(t)
	withTables(t, u)
	c := u.client(t)
	csrf := u.login(t, c)
	ctx := context.Background()
	cfg, etag, _ := u.mgr.Preliminary(ctx)
	cfg.DialPlan.Rules[0].Prefix = "" // "out" becomes a catch-all
	if _, err := u.mgr.SetPreliminary(ctx, cfg, etag, "test"); err != nil {
		t.Fatal(err)
	}
	page := u.get(t, c, "/traffic/dialplan", http.StatusOK)
	if !strings.Contains(page, `<option value="all" selected>`) {
		t.Fatalf("a rule without pattern does not show Match all:\n%s", excerpt(page, "dp.match"))
	}
	form := formOf(t, page)
	form.Set("csrf_token", csrf)
	form["dp.match"][0] = "prefix"
	body, _ := u.post(t, c, "/traffic/dialplan", form, http.StatusUnprocessableEntity)
	body = html.UnescapeString(body)
	if !strings.Contains(body, `choose Match "all" for a rule that takes every number`) {
		t.Errorf("no explanation:\n%s", excerpt(body, "errors"))
	}
	if !strings.Contains(body, `<option value="prefix" selected>`) || strings.Contains(body, `<option value="all" selected>`) {
		t.Errorf("the page lost the choice of prefix:\n%s", excerpt(body, "dp.match"))
	}
}
