package web

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"

	"github.com/palisade-sbc/palisade/docs"
	"github.com/palisade-sbc/palisade/internal/config"
)

// helpPages are the pages whose every input has help from the reference,
// with the sections of docs/configuration.md they edit.
var helpPages = []struct {
	path     string
	sections []string
}{
	{"/network", []string{"network."}},
	{"/sip/signalling", []string{"sip.listeners[].", "tls."}},
	{"/sip/media", []string{"media."}},
	{"/traffic/accounts", []string{"peers[]."}},
	{"/traffic/dialplan", []string{"dial_plan."}},
}

// The help next to the fields and docs/configuration.md agree field for
// field: every help the pages show is a documented field (rendered from the
// embedded document, so the words are the same), and every documented field
// of the sections these pages edit has its help on the page.
func TestHelpAgreesWithReference(t *testing.T) {
	u := newTestUnit(t)
	withTables(t, u)
	c := u.client(t)
	u.login(t, c)
	all := fieldDocs()
	if len(all) < 100 {
		t.Fatalf("only %d fields read from docs/configuration.md", len(all))
	}
	for _, p := range helpPages {
		helpUsedMu.Lock()
		clear(helpUsed)
		helpUsedMu.Unlock()
		body := u.get(t, c, p.path, http.StatusOK)
		if strings.Contains(body, `class="help missing"`) || strings.Contains(body, `class="qhelp missing"`) {
			t.Errorf("%s: help for a field that docs/configuration.md does not document", p.path)
		}
		helpUsedMu.Lock()
		used := make(map[string]bool, len(helpUsed))
		for k := range helpUsed {
			used[k] = true
		}
		helpUsedMu.Unlock()
		for k, d := range all {
			if !slices.ContainsFunc(p.sections, func(s string) bool { return strings.HasPrefix(k, s) }) {
				continue
			}
			// Lists and objects of fields are edited through their fields.
			if d.Type == "list" || d.Type == "object" {
				continue
			}
			if elsewhere[k] {
				continue
			}
			if !used[k] {
				t.Errorf("%s: documented field %s has no help on the page", p.path, k)
			}
			if !strings.Contains(body, templateEscape(d.Meaning)) {
				t.Errorf("%s: the help of %s differs from the reference", p.path, k)
			}
		}
	}
	// The reference itself is served with an anchor per section.
	page := u.get(t, c, "/help/configuration", http.StatusOK)
	if !strings.Contains(page, `id="cfg-network-interfaces"`) || !strings.Contains(docs.Configuration, "network.interfaces[]") {
		t.Error("the reference page lacks the section anchors")
	}
}

// elsewhere are fields of these sections edited on another page.
var elsewhere = map[string]bool{
	"tls.allow_wildcard_server_certificates": true, // SIP Services → Interoperability
}

// withTables gives the preliminary configuration a peer, a dial plan rule
// with a time class, so that every table of the pages has a row.
func withTables(t *testing.T, u *testUnit) {
	t.Helper()
	ctx := context.Background()
	cfg, etag, err := u.mgr.Preliminary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Peers = append(cfg.Peers, config.Peer{Name: "itsp", Kind: "itsp", Interface: "outside", Address: "192.0.2.10", Transport: "udp"})
	cfg.DialPlan.TimeClasses = []config.TimeClass{{Name: "office", TimeZone: "UTC", Windows: []config.TimeWindow{{Days: []string{"mon"}, Start: "08:00", End: "17:00"}}}}
	cfg.DialPlan.Rules = []config.DialRule{{Name: "out", Prefix: "0", TimeClass: "office", ForwardTo: []config.Forward{{Peer: "itsp"}}}}
	if _, err := u.mgr.SetPreliminary(ctx, cfg, etag, "test"); err != nil {
		t.Fatal(err)
	}
}

func templateEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(s)
}

// In the browser, every input, select and text field of the configuration
// pages has help: under its label, or a "?" in its column's header.
func TestBrowserEveryInputHasHelp(t *testing.T) {
	ctx := browser(t)
	u := newTestUnit(t)
	withTables(t, u)
	sh := newShots(t)
	const check = `(() => {
	  const bad = [];
	  document.querySelectorAll("#page-form input, #page-form select, #page-form textarea").forEach(el => {
	    if (el.type === "hidden" || el.closest("template") || el.closest("td.del") || el.closest("p.addrow")) return;
	    const lab = el.closest("label");
	    if (lab && lab.querySelector("small.help:not(.missing)")) return;
	    const td = el.closest("td");
	    if (td) {
	      const row = td.parentElement, table = td.closest("table");
	      let col = 0;
	      for (const c of row.children) { if (c === td) break; col += c.colSpan || 1; }
	      let at = 0;
	      for (const th of table.tHead.rows[0].children) {
	        if (at === col && th.querySelector("details.qhelp")) return;
	        at += th.colSpan || 1;
	      }
	    }
	    const box = el.closest(".checks");
	    if (box && box.parentElement.querySelector("small.help")) return;
	    bad.push(el.name);
	  });
	  return bad.join(" ");
	})()`
	sh.run(t, ctx, "login", logIn(u.srv.URL))
	for _, p := range helpPages {
		var missing string
		var n int
		sh.run(t, ctx, p.path,
			browsertest.Navigate(u.srv.URL+p.path),
			retry(chromedp.WaitVisible(chromedp.ID("page-form"))),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				var err error
				missing, err = chromedp.Evaluate[string](check)(ctx, tg)
				if err != nil {
					return err
				}
				n, err = chromedp.Evaluate[int](`document.querySelectorAll("#page-form input:not([type=hidden]), #page-form select").length`)(ctx, tg)
				return err
			}),
		)
		if missing != "" {
			t.Errorf("%s: inputs without help: %s", p.path, missing)
		}
		if n < 3 {
			t.Errorf("%s: only %d inputs found", p.path, n)
		}
	}
	// A "?" opens its help; the reference link leads to the section.
	sh.run(t, ctx, "open-help",
		browsertest.Navigate(u.srv.URL+"/network"),
		retry(chromedp.Click(chromedp.CSS(`th details.qhelp summary`))),
		waitText("th details.qhelp[open] .pop", "Name by which listeners"),
		sh.take("network-help-open"),
		browsertest.Navigate(u.srv.URL+"/sip/signalling"),
		waitText("#page-form", "Lowest TLS version accepted"),
		sh.take("signalling-help"),
		browsertest.Navigate(u.srv.URL+"/help/configuration#cfg-tls"),
		waitText("#cfg-tls", "tls"),
		sh.take("reference"),
	)
}
