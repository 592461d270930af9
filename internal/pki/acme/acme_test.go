package acme

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe/alarms"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/acme/acmetest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestIssueRenewRevoke: with http-01 against pebble the unit gets a
// certificate for its FQDN, serves it without a restart, renews it two
// thirds into its life, and after a revocation (which pebble records)
// obtains a new one.
func TestIssueRenewRevoke(t *testing.T) {
	ca := acmetest.Start(t, false)
	u := newUnit(t, ca.RootPEM, config.ACME{DirectoryURL: ca.Dir, Challenge: "http-01",
		ChallengeListen: "127.0.0.1:" + itoa(ca.Chal)})
	stand := u.served(t)
	if stand.fromCA() {
		t.Fatalf("served %+v before ACME ran", stand)
	}
	issuedBefore := testutil.ToFloat64(issued.WithLabelValues("public"))
	var first *tlsLeaf
	waitFor(t, "certificate from pebble served", func() bool {
		first = u.served(t)
		return first.fromCA()
	})
	if len(first.names) != 1 || first.names[0] != acmetest.Domain {
		t.Errorf("issued for %v, want %s", first.names, acmetest.Domain)
	}
	if got := testutil.ToFloat64(issued.WithLabelValues("public")) - issuedBefore; got != 1 {
		t.Errorf("issued counter +%v, want +1", got)
	}
	// Like an imported certificate: in the PKI's list with fingerprints and
	// expiry, the admin listener's entry included.
	info, err := (&pki.Certs{Store: u.st}).Show(context.Background(), u.cfg, "public")
	if err != nil {
		t.Fatal(err)
	}
	if info.Certificate == nil || strings.ToLower(strings.ReplaceAll(info.Certificate.Fingerprints.SHA256, ":", "")) != first.fp {
		t.Errorf("cert show: %+v, served %s", info.Certificate, first.fp)
	}
	found := false
	for _, e := range u.certs.Expiries() {
		found = found || (e.Name == "public" && e.NotAfter.Equal(first.notAfter))
	}
	if !found {
		t.Errorf("no expiry entry for the issued certificate: %+v", u.certs.Expiries())
	}
	st := u.mgr.Status()
	renew := first.notBefore.Add(first.notAfter.Sub(first.notBefore) * 2 / 3)
	if len(st) != 1 || !st[0].RenewAt.Equal(renew) || st[0].LastError != "" {
		t.Errorf("status %+v, want renewal at %s", st, renew)
	}

	// Two thirds into its life: renewed and swapped.
	setNow(u.mgr, renew.Add(time.Minute))
	var second *tlsLeaf
	waitFor(t, "renewed certificate served", func() bool {
		second = u.served(t)
		return second.fp != first.fp && second.fromCA()
	})

	// Revoked: pebble says so, and a new certificate replaces it.
	if err := u.mgr.Revoke(context.Background(), "public"); err != nil {
		t.Fatal(err)
	}
	if s := ca.CertStatus(t, second.serial); s != "Revoked" {
		t.Errorf("pebble: certificate %s is %q after revocation", second.serial, s)
	}
	waitFor(t, "certificate after revocation served", func() bool {
		third := u.served(t)
		return third.fp != second.fp && third.fromCA()
	})
}

func TestIssueTLSALPN(t *testing.T) {
	ca := acmetest.Start(t, false)
	u := newUnit(t, ca.RootPEM, config.ACME{DirectoryURL: ca.Dir, Challenge: "tls-alpn-01",
		ChallengeListen: "127.0.0.1:" + itoa(ca.Chal)})
	waitFor(t, "certificate from pebble served", func() bool { return u.served(t).fromCA() })
}

// TestExternalAccountBinding: a CA that requires EAB refuses an account
// with a wrong key (the CA's error is kept, the alarm raised, the
// stand-in certificate stays) and accepts the right one.
func TestExternalAccountBinding(t *testing.T) {
	ca := acmetest.Start(t, true)
	a := config.ACME{DirectoryURL: ca.Dir, Challenge: "http-01", ChallengeListen: "127.0.0.1:" + itoa(ca.Chal),
		EAB: config.ACMEEAB{KeyID: acmetest.EABKeyID, HMACKey: strings.ToUpper(acmetest.EABKey)}}
	u := newUnit(t, ca.RootPEM, a)
	stand := u.served(t)
	waitFor(t, "refusal recorded", func() bool {
		st := u.mgr.Status()
		return len(st) == 1 && st[0].LastError != ""
	})
	if st := u.mgr.Status()[0]; !strings.Contains(st.LastError, "urn:ietf:params:acme:error") {
		t.Errorf("last error %q is not the CA's problem report", st.LastError)
	}
	if testutil.ToFloat64(failing.WithLabelValues("public")) != 1 {
		t.Error("palisade_acme_failing is not 1 after a refusal")
	}
	// The dashboard's alarm, as the unit wires it: raised with the CA's error.
	w := alarms.NewWatcher(prometheus.DefaultGatherer)
	w.Explain(alarms.ACMEFailing, u.mgr.LastError)
	if c, ok := alarms.Find(w.Conditions(time.Now()), alarms.ACMEFailing, "public"); !ok || c.Severity != alarms.Major || !strings.Contains(c.Text, "urn:ietf:params:acme:error") {
		t.Errorf("acme_failing alarm after a refusal: %+v", c)
	}
	if got := u.served(t); got.fp != stand.fp {
		t.Errorf("after a refusal the served certificate changed: %+v", got)
	}

	u.cfg.ACME.EAB.HMACKey = acmetest.EABKey
	u.apply(t)
	waitFor(t, "certificate with the right EAB", func() bool { return u.served(t).fromCA() })
	if testutil.ToFloat64(failing.WithLabelValues("public")) != 0 {
		t.Error("palisade_acme_failing stays 1 after success")
	}
	if c, ok := alarms.Find(w.Conditions(time.Now()), alarms.ACMEFailing, "public"); ok {
		t.Errorf("acme_failing alarm after success: %+v", c)
	}
}

// TestCADown: the CA stops; the renewal fails with the reason, is
// retried, and the working certificate stays in use.
func TestCADown(t *testing.T) {
	ca := acmetest.Start(t, false)
	u := newUnit(t, ca.RootPEM, config.ACME{DirectoryURL: ca.Dir, Challenge: "http-01",
		ChallengeListen: "127.0.0.1:" + itoa(ca.Chal)})
	var first *tlsLeaf
	waitFor(t, "certificate from pebble served", func() bool {
		first = u.served(t)
		return first.fromCA()
	})
	ca.Proc.Stop(5 * time.Second)
	before := testutil.ToFloat64(failures.WithLabelValues("public"))
	setNow(u.mgr, first.notBefore.Add(first.notAfter.Sub(first.notBefore)*3/4))
	waitFor(t, "two failed attempts", func() bool { return testutil.ToFloat64(failures.WithLabelValues("public"))-before >= 2 })
	if st := u.mgr.Status()[0]; !strings.Contains(st.LastError, "connection refused") {
		t.Errorf("last error %q does not say the CA is down", st.LastError)
	}
	if got := u.served(t); got.fp != first.fp {
		t.Errorf("the certificate changed while the CA was down: %+v", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// setNow moves the manager's clock to at; it keeps running from there.
func setNow(m *Manager, at time.Time) {
	off := time.Until(at)
	m.SetClock(func() time.Time { return time.Now().Add(off) })
}
