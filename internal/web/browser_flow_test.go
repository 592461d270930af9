package web

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"
)

// TestBrowserSeedWalkthrough walks the seed's §5.3 and §6 as a new
// administrator would, in headless Chromium: log in, create a certificate
// request, download it, import the signed certificate with its
// intermediate (separate files) made by a test CA, import the root, set
// signalling and media encryption and REFER handling, apply, watch the
// countdown, confirm; then change something, apply and revert. It saves a
// screenshot of every tab.
func TestBrowserSeedWalkthrough(t *testing.T) {
	ctx := browser(t)
	u := newTestUnit(t)
	sh := newShots(t)
	ca := newTestCA(t)
	dir := t.TempDir()
	base := u.srv.URL
	const certName = "SBC at HQ"
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sh.run(t, ctx, step, actions...)
	}

	run("log in",
		browsertest.Navigate(base+"/administration"),
		retry(chromedp.WaitVisible(chromedp.ID("password"))),
		sh.take("login"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.ID("login-btn")),
		waitText("h1", "Save/Load Configuration"),
	)

	// §6.3: a certificate request for the outside FQDN.
	var csr string
	run("create a certificate request",
		browsertest.Navigate(base+"/basic/certificates"),
		chromedp.SendKeys(chromedp.ID("cert-name"), certName),
		chromedp.SendKeys(chromedp.ID("cert-cn"), "sbc.example.com"),
		chromedp.SendKeys(chromedp.ID("cert-o"), "Example Corp"),
		chromedp.Click(chromedp.ID("create-csr-btn")),
		waitText("#flash", "Certificate request created"),
		waitText("#cert-details", "request pending"),
		sh.take("certificate-request"),
		attr(chromedp.ID("csr-download"), "href", &csr),
	)
	if !strings.Contains(csr, "what=csr") {
		t.Fatalf("download link = %q", csr)
	}
	run("download the request", fetchText(csr, &csr))
	leaf := ca.sign(t, csr)
	if leaf.Subject.CommonName != "sbc.example.com" {
		t.Fatalf("request CN = %q", leaf.Subject.CommonName)
	}
	// Figure 21 alternative C: the device certificate and the intermediate
	// in separate files, imported together.
	leafFile := writePEM(t, dir, "device.pem", leaf)
	interFile := writePEM(t, dir, "intermediate.pem", ca.inter)
	rootFile := writePEM(t, dir, "root.pem", ca.root)

	run("import the signed certificate",
		retry(chromedp.WaitVisible(chromedp.ID("cert-files"))),
		retry(chromedp.SetUploadFiles(chromedp.ID("cert-files"), []string{leafFile, interFile})),
		chromedp.Click(chromedp.ID("cert-import-btn")),
		waitText("#flash", "Certificate imported"),
		waitText("#cert-subject", "sbc.example.com"),
		waitText("#chain", "Palisade Test Intermediate"),
		sh.take("certificate-imported"),
	)
	run("import the root",
		browsertest.Navigate(base+"/basic/certificates"),
		chromedp.SendKeys(chromedp.ID("ca-name"), "Test Root"),
		retry(chromedp.SetUploadFiles(chromedp.ID("ca-file"), []string{rootFile})),
		chromedp.Click(chromedp.ID("ca-import-btn")),
		waitText("#flash", "CA certificate imported"),
		waitText("#ca-certs", "Palisade Test Root"),
		waitText("#banner", "Changes have been made to the preliminary configuration, but have not been applied"),
	)
	run("import the root's CRL",
		retry(chromedp.SetUploadFiles(chromedp.CSS(`#ca-certs .crl-form input[type="file"]`), []string{ca.crl(t, dir)})),
		chromedp.Click(chromedp.CSS(`#ca-certs .crl-form button`)),
		waitText("#flash", "CRL imported"),
		waitText("#ca-certs", "0 revoked"),
		sh.take("certificates"),
	)

	// §6.8: TLS with the new certificate, mutual, trusting the root. First
	// a wrong port, to see the error placed next to the field.
	outsideTLS := `table[data-table="listeners"] tbody tr:nth-child(3) `
	run("signalling encryption: a wrong value",
		browsertest.Navigate(base+"/sip/signalling"),
		retry(chromedp.SetValue(chromedp.CSS(outsideTLS+`input[name="listeners.port"]`), "70000")),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText(outsideTLS+`.ferr`, "port"),
		sh.take("validation-error"),
	)
	run("signalling encryption",
		retry(chromedp.SetValue(chromedp.CSS(outsideTLS+`input[name="listeners.port"]`), "5061")),
		retry(chromedp.SetValue(chromedp.CSS(outsideTLS+`select[name="listeners.certificate"]`), certName)),
		retry(chromedp.SetValue(chromedp.CSS(outsideTLS+`select[name="listeners.require_client_cert"]`), "yes")),
		chromedp.Click(chromedp.CSS(`input[name="ca_certificates"][value="Test Root"]`)),
		retry(chromedp.SetValue(chromedp.CSS(`select[name="client_certificate"]`), certName)),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText("#flash", "Saved"),
	)
	run("interoperability: wildcard certificates",
		browsertest.Navigate(base+"/sip/interop"),
		chromedp.Click(chromedp.ID("allow_wildcard")),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText("#flash", "Saved"),
	)
	// §6.9: SRTP outside (the default), RTP inside with transcoding: add
	// the inside policy row.
	run("media encryption",
		browsertest.Navigate(base+"/sip/media"),
		chromedp.Click(chromedp.CSS(`button[data-add="policies"]`)),
		retry(chromedp.SetValue(chromedp.CSS(`table[data-table="policies"] tbody tr:last-child select[name="policies.interface"]`), "inside")),
		retry(chromedp.SetValue(chromedp.CSS(`table[data-table="policies"] tbody tr:last-child select[name="policies.group"]`), "RTP")),
		retry(chromedp.SetValue(chromedp.CSS(`table[data-table="policies"] tbody tr:last-child select[name="policies.requirement"]`), "rtp")),
		retry(chromedp.SetValue(chromedp.ID("rtp_profile"), "prefer-savp")),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText("#flash", "Saved"),
	)
	// §6.10: REFER handled locally.
	run("local REFER handling",
		browsertest.Navigate(base+"/traffic/routing"),
		chromedp.Click(chromedp.ID("refer_always")),
		chromedp.Click(chromedp.CSS(`button[data-add="refer_ua"]`)),
		chromedp.SendKeys(chromedp.CSS(`table[data-table="refer_ua"] tbody tr:last-child input[name="refer_ua.ua"]`), "Microsoft-UM"),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText("#flash", "Saved"),
	)

	// §6.10 dial plan: one rule with two forward-to rows, added as "1
	// groups with 2 rows per group", each row with its own timeout.
	dp := `table[data-table="dp"] tbody `
	run("dial plan with two forward-to rows",
		browsertest.Navigate(base+"/traffic/dialplan"),
		retry(chromedp.SetValue(chromedp.ID("dp-rows"), "2")),
		chromedp.Click(chromedp.CSS(`button[data-add-groups="dp"]`)),
		chromedp.SendKeys(chromedp.CSS(dp+`tr:nth-child(1) input[name="dp.name"]`), "outbound"),
		chromedp.SendKeys(chromedp.CSS(dp+`tr:nth-child(1) input[name="dp.pattern"]`), "9"),
		chromedp.SendKeys(chromedp.CSS(dp+`tr:nth-child(1) input[name="dp.tail"]`), "0-9"),
		chromedp.SendKeys(chromedp.CSS(dp+`tr:nth-child(1) input[name="dp.to"]`), "sip:trunk.example.net;transport=tls"),
		chromedp.SendKeys(chromedp.CSS(dp+`tr:nth-child(1) input[name="dp.timeout"]`), "15s"),
		chromedp.SendKeys(chromedp.CSS(dp+`tr:nth-child(2) input[name="dp.to"]`), "sip:backup.example.net"),
		chromedp.SendKeys(chromedp.CSS(dp+`tr:nth-child(2) input[name="dp.rewrite"]`), "0${user}"),
		chromedp.SendKeys(chromedp.CSS(dp+`tr:nth-child(2) input[name="dp.timeout"]`), "30s"),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText("#flash", "Saved"),
		waitText(dp+`tr:nth-child(2) td.cont`, "outbound"),
		sh.take("dialplan-two-forwards"),
	)

	// The Teams profile needs the outside FQDN; then apply it from the
	// accounts page.
	run("outside FQDN",
		browsertest.Navigate(base+"/network"),
		chromedp.SendKeys(chromedp.CSS(`table[data-table="ifaces"] tbody tr:nth-child(2) input[name="ifaces.fqdn"]`), "sbc.example.com"),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText("#flash", "Saved"),
	)
	run("Teams profile",
		browsertest.Navigate(base+"/traffic/accounts"),
		retry(chromedp.SetValue(chromedp.CSS(`#profile-form select[name="profile"]`), "teams-direct-routing")),
		chromedp.Click(chromedp.CSS(`#profile-form button`)),
		// First the list of what the profile changes, then Apply.
		waitText("#profile-changes", "peers[0]"),
		sh.take("teams-profile-changes"),
		chromedp.Click(chromedp.ID("profile-confirm")),
		waitText("#flash", "Profile applied"),
		waitText(`table[data-table="peers"]`, ""),
		sh.take("teams-profile"),
	)

	// §6.11: apply, watch the countdown, save.
	var first, later int
	run("apply",
		browsertest.Navigate(base+"/administration"),
		retry(chromedp.SetValue(chromedp.CSS(`input[name="confirm_within"]`), "120")),
		chromedp.Click(chromedp.ID("apply-btn")),
		waitText("#flash", "is running"),
		watchCountdown(&first, &later),
		sh.take("apply-countdown"),
	)
	t.Logf("countdown went from %d s to %d s", first, later)
	if first > 120 || later >= first {
		t.Fatalf("countdown %d → %d", first, later)
	}
	run("confirm",
		chromedp.Click(chromedp.ID("confirm-btn")),
		waitText("#flash", "Configuration applied and saved"),
		waitText("#history", "admin@"),
		sh.take("saved"),
	)
	saved, err := u.mgr.Saved(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l := saved.SIP.Listeners[2]
	if l.Certificate != certName || !l.RequireClientCert || l.Port != 5061 || !saved.Routing.Refer.Always ||
		len(saved.TLS.CACertificates) != 1 || !saved.TLS.AllowWildcardServerCertificates || len(saved.Media.Policies) != 2 ||
		len(saved.Routing.Refer.UserAgents) != 1 || len(saved.Peers) != 1 || saved.Peers[0].Headers["X-MS-SBC"] == "" ||
		len(saved.Routing.DNSOverride) != 1 || len(saved.DialPlan.Rules) != 1 || len(saved.DialPlan.Rules[0].ForwardTo) != 2 ||
		saved.DialPlan.Rules[0].ForwardTo[1].Timeout.D() != 30*time.Second || saved.DialPlan.Rules[0].ForwardTo[1].Rewrite != "0${user}" {
		t.Fatalf("saved configuration lacks the walkthrough's settings: listener %+v refer %+v tls %+v policies %+v peers %+v dial plan %+v",
			l, saved.Routing.Refer, saved.TLS, saved.Media.Policies, saved.Peers, saved.DialPlan.Rules)
	}
	if got := u.applier.last(); got == nil || got.SIP.Listeners[2].Certificate != certName {
		t.Fatal("the unit was not switched to the new configuration")
	}

	// The same with revert: the unit goes back to the saved configuration.
	run("change for the revert",
		browsertest.Navigate(base+"/traffic/routing"),
		chromedp.Click(chromedp.ID("refer_always")),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText("#flash", "Saved"),
		browsertest.Navigate(base+"/administration"),
		chromedp.Click(chromedp.ID("apply-btn")),
		watchCountdown(&first, &later),
		chromedp.Click(chromedp.ID("revert-btn")),
		waitText("#flash", "Reverted"),
		waitText("#banner", "have not been applied"),
		sh.take("reverted"),
	)
	if got := u.applier.last(); !got.Routing.Refer.Always {
		t.Fatal("after revert the unit does not run the saved configuration")
	}

	// TLS diagnosis of the test server itself: its certificate is not
	// from a CA the unit trusts, and the page says so.
	run("TLS diagnosis",
		browsertest.Navigate(base+"/tools/diagnose"),
		chromedp.SendKeys(chromedp.ID("diag-address"), strings.TrimPrefix(base, "https://")),
		chromedp.Click(chromedp.CSS(`#diagnose-form button`)),
		waitText("#diagnose-result", "Cause"),
		sh.take("tls-diagnosis"),
	)

	run("API token",
		browsertest.Navigate(base+"/basic/access"),
		chromedp.SendKeys(chromedp.CSS(`#token-form input[name="name"]`), "ci"),
		chromedp.Click(chromedp.CSS(`#token-form button`)),
		waitText("#token-secret", "pal_"),
		waitText("#tokens", "ci"),
	)

	// A screenshot of every tab and page.
	for _, tab := range nav {
		for _, sub := range tab.Subs {
			name := strings.ToLower(strings.NewReplacer(" ", "-", "/", "-").Replace(tab.Name + "-" + sub.Name))
			run("screenshot "+sub.Path, browsertest.Navigate(base+sub.Path), chromedp.WaitVisible(chromedp.CSS("h1")), sh.take(name))
		}
	}
	run("certificate page", browsertest.Navigate(base+"/basic/certificates/view?name="+url.QueryEscape(certName)),
		waitText("#chain-status", ""), sh.take("certificate-view"))
	run("diff page", browsertest.Navigate(base+"/administration/diff?a=1&b=running"), chromedp.WaitVisible(chromedp.CSS("h1")), sh.take("diff"))
}
