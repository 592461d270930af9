package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
)

const hq = "SBC at HQ"

func newRequest(t *testing.T, f *fixture, keyType string) *EntryInfo {
	t.Helper()
	info, err := f.certs.New(f.ctx, f.cfg, hq, NewOptions{Subject: Subject{CN: "sbc.example.com", C: "US", ST: "WA", L: "Bellevue",
		O: "Contoso", OU: "Voice", Email: "voice@example.com", SANs: []string{"sbc2.example.com", "192.0.2.10"}}, KeyType: keyType})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestNewRequestCSR(t *testing.T) {
	types := []string{KeyECDSAP256, KeyRSA2048}
	if !testing.Short() {
		types = append(types, KeyRSA3072)
	}
	for _, kt := range types {
		t.Run(kt, func(t *testing.T) {
			f := newFixture(t)
			info := newRequest(t, f, kt)
			if info.State != "request" {
				t.Fatalf("state %q, want request", info.State)
			}
			p, err := f.certs.CSR(f.ctx, f.cfg, hq)
			if err != nil {
				t.Fatal(err)
			}
			csr, err := CSRInfo(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Fatal(err)
			}
			if csr.Subject.CommonName != "sbc.example.com" || csr.Subject.Country[0] != "US" || csr.Subject.Organization[0] != "Contoso" ||
				csr.Subject.OrganizationalUnit[0] != "Voice" || csr.Subject.Locality[0] != "Bellevue" || csr.Subject.Province[0] != "WA" {
				t.Errorf("subject %v", csr.Subject)
			}
			if !slices.Equal(csr.DNSNames, []string{"sbc.example.com", "sbc2.example.com"}) || len(csr.IPAddresses) != 1 {
				t.Errorf("SANs %v %v: the CN must be the first SAN", csr.DNSNames, csr.IPAddresses)
			}
			if !strings.Contains(dn(csr.Subject), "emailAddress=voice@example.com") {
				t.Errorf("e-mail missing from %s", csr.Subject)
			}
			var eku []asn1.ObjectIdentifier
			for _, e := range csr.Extensions {
				if e.Id.Equal(oidExtKeyUsage) {
					if _, err := asn1.Unmarshal(e.Value, &eku); err != nil {
						t.Fatal(err)
					}
				}
			}
			if len(eku) != 2 || !eku[0].Equal(oidServerAuth) || !eku[1].Equal(oidClientAuth) {
				t.Errorf("EKU request %v, want serverAuth+clientAuth", eku)
			}
			if got := KeyDescription(csr.PublicKey); !strings.Contains(strings.ToLower(strings.ReplaceAll(got, " ", "-")), strings.Split(kt, "-")[0]) {
				t.Errorf("key %s for %s", got, kt)
			}
			// the key is stored as PKCS#8 PEM
			m, _ := f.certs.privateMaterial(f.ctx, f.cfg, hq)
			raw, _ := f.st.Get(f.ctx, prefixKeys+m.rec.KeyID)
			if !bytes.HasPrefix(raw, []byte("-----BEGIN PRIVATE KEY-----")) {
				t.Errorf("key not PKCS#8 PEM: %.40s", raw)
			}
			if f.cfg.Certificates.Private[len(f.cfg.Certificates.Private)-1].Material != m.id {
				t.Error("config entry does not name the material")
			}
		})
	}
}

func TestNewSelfSigned(t *testing.T) {
	f := newFixture(t)
	info, err := f.certs.New(f.ctx, f.cfg, "lab", NewOptions{Subject: Subject{CN: "lab.example.com"}, SelfSigned: true, KeyType: KeyRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	c := info.Certificate
	if info.State != "certificate" || c == nil || !c.SelfSigned || c.KeyType != "RSA 2048" {
		t.Fatalf("%+v", info)
	}
	if !slices.Contains(c.SANs, "lab.example.com") || !slices.Equal(c.ExtKeyUsage, []string{"serverAuth", "clientAuth"}) {
		t.Errorf("SANs %v EKU %v", c.SANs, c.ExtKeyUsage)
	}
	colon := regexp.MustCompile(`^([0-9A-F]{2}:)+[0-9A-F]{2}$`)
	for n, fp := range map[string]string{"md5": c.Fingerprints.MD5, "sha1": c.Fingerprints.SHA1, "sha256": c.Fingerprints.SHA256} {
		if !colon.MatchString(fp) {
			t.Errorf("%s fingerprint %q not colon hex", n, fp)
		}
	}
	if len(c.Fingerprints.SHA256) != 32*3-1 || c.DaysLeft < 390 || c.DaysLeft > 397 { // SelfSignedValidity: at most 397 days
		t.Errorf("sha256 %q days %d", c.Fingerprints.SHA256, c.DaysLeft)
	}
	if _, err := f.certs.CSR(f.ctx, f.cfg, "lab"); err == nil {
		t.Error("self-signed entry gave a CSR")
	}
}

func TestNewRefusesBadSubject(t *testing.T) {
	cases := map[string]NewOptions{
		"empty CN":   {Subject: Subject{CN: "  "}},
		"CN spaces":  {Subject: Subject{CN: "sbc example com"}},
		"country":    {Subject: Subject{CN: "a.example.com", C: "USA"}},
		"bad SAN":    {Subject: Subject{CN: "a.example.com", SANs: []string{"no way"}}},
		"key type":   {Subject: Subject{CN: "a.example.com"}, KeyType: "dsa-1024"},
		"empty name": {Subject: Subject{CN: "a.example.com"}},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			before := f.snapshot(t)
			cfgBefore, _ := json.Marshal(f.cfg)
			entry := "x"
			if name == "empty name" {
				entry = ""
			}
			_, err := f.certs.New(f.ctx, f.cfg, entry, o)
			if err == nil || !IsInputError(err) {
				t.Fatalf("err %v, want an input error", err)
			}
			cfgAfter, _ := json.Marshal(f.cfg)
			if !maps.Equal(before, f.snapshot(t)) || !bytes.Equal(cfgBefore, cfgAfter) {
				t.Error("something was stored or the configuration changed")
			}
		})
	}
}

func der(c *x509.Certificate) []byte { return c.Raw }

func TestImportVariants(t *testing.T) {
	h := newHierarchy(t)
	inter2 := h.inter.Intermediate(t, "Palisade Test Issuing CA 2")
	type step [][]byte
	cases := []struct {
		name  string
		deep  bool // root → inter → inter2 → device
		steps func(dev *x509.Certificate) []step
		notes int
	}{
		{"A: separate files, device first, intermediate later", false, func(d *x509.Certificate) []step {
			return []step{{EncodeCertificatesPEM(d)}, {EncodeCertificatesPEM(h.inter.Cert)}}
		}, 0},
		{"A: DER files in one upload", false, func(d *x509.Certificate) []step {
			return []step{{der(d), der(h.inter.Cert)}}
		}, 0},
		{"B: one bundle, intermediate first", false, func(d *x509.Certificate) []step {
			return []step{{EncodeCertificatesPEM(h.inter.Cert, d)}}
		}, 0},
		{"B: bundle with the root by mistake", false, func(d *x509.Certificate) []step {
			return []step{{EncodeCertificatesPEM(h.root.Cert, d, h.inter.Cert)}}
		}, 1},
		{"C: device alone, then both intermediates bundled in any order", true, func(d *x509.Certificate) []step {
			return []step{{EncodeCertificatesPEM(d)}, {EncodeCertificatesPEM(h.inter.Cert, inter2.Cert)}}
		}, 0},
		{"C: device with the lower intermediate, then the upper one as DER", true, func(d *x509.Certificate) []step {
			return []step{{append([]byte("Bag Attributes\n"), EncodeCertificatesPEM(d, inter2.Cert)...)}, {der(h.inter.Cert)}}
		}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			newRequest(t, f, KeyECDSAP256)
			if _, err := f.certs.ImportCA(f.ctx, f.cfg, "root", EncodeCertificatesPEM(h.root.Cert)); err != nil {
				t.Fatal(err)
			}
			issuer := h.inter
			want := []string{"Palisade Test Issuing CA 1"}
			if tc.deep {
				issuer = inter2
				want = []string{"Palisade Test Issuing CA 2", "Palisade Test Issuing CA 1"}
			}
			dev := issuer.Issue(t, f.keyOfEntry(t, hq), pkitest.Leaf{CN: "sbc.example.com"})
			var info *EntryInfo
			var notes []string
			for _, files := range tc.steps(dev) {
				var err error
				info, err = f.certs.Import(f.ctx, f.cfg, hq, files)
				if err != nil {
					t.Fatal(err)
				}
				notes = append(notes, info.Notes...)
			}
			if info.State != "certificate" || info.Certificate.Subject != "CN=sbc.example.com" {
				t.Fatalf("%+v", info)
			}
			var got []string
			for _, c := range info.Chain {
				got = append(got, strings.TrimPrefix(strings.Split(c.Subject, ",")[0], "CN="))
			}
			if !slices.Equal(got, want) {
				t.Errorf("chain %v, want %v", got, want)
			}
			if !info.ChainStatus.Complete {
				t.Errorf("chain status %+v", info.ChainStatus)
			}
			if len(notes) != tc.notes {
				t.Errorf("notes %q, want %d", notes, tc.notes)
			}
			if tc.notes > 0 && !strings.Contains(notes[0], "dropped the root") {
				t.Errorf("note %q", notes[0])
			}
			i := findPrivate(f.cfg, hq)
			if f.cfg.Certificates.Private[i].Fingerprint != Fingerprint(dev) {
				t.Error("config fingerprint is not the device certificate's")
			}
			// export: leaf only, chain, DER
			p, _ := f.certs.Export(f.ctx, f.cfg, hq, false, false)
			if cs, _ := ParseCertificates(p); len(cs) != 1 || !cs[0].Equal(dev) {
				t.Error("export leaf")
			}
			p, _ = f.certs.Export(f.ctx, f.cfg, hq, false, true)
			if cs, _ := ParseCertificates(p); len(cs) != 1+len(want) {
				t.Error("export chain")
			}
			d, _ := f.certs.Export(f.ctx, f.cfg, hq, true, false)
			if !bytes.Equal(d, dev.Raw) {
				t.Error("export DER")
			}
		})
	}
}

func TestImportGapReported(t *testing.T) {
	h := newHierarchy(t)
	f := newFixture(t)
	newRequest(t, f, KeyECDSAP256)
	dev := h.inter.Issue(t, f.keyOfEntry(t, hq), pkitest.Leaf{CN: "sbc.example.com"})
	info, err := f.certs.Import(f.ctx, f.cfg, hq, [][]byte{EncodeCertificatesPEM(dev)})
	if err != nil {
		t.Fatal(err)
	}
	if info.ChainStatus.Complete || !strings.Contains(info.ChainStatus.Message, "Palisade Test Issuing CA 1") {
		t.Errorf("status %+v, want a gap naming the intermediate", info.ChainStatus)
	}
}

func TestImportRefused(t *testing.T) {
	h := newHierarchy(t)
	keyPEM, _ := MarshalKeyPEM(pkitest.NewKey(t))
	other := h.inter.Issue(t, pkitest.NewKey(t).Public(), pkitest.Leaf{CN: "sbc.example.com"})
	csrPEM, _ := CreateCSR(pkitest.NewKey(t), Subject{CN: "x.example.com"})
	otherKey, _ := KeyID(other.PublicKey)
	cases := []struct {
		name   string
		signed bool // the entry already holds its CA-signed certificate
		files  [][]byte
		want   string
	}{
		{"garbage", false, [][]byte{[]byte("hello, this is not a certificate at all")}, "neither PEM nor"},
		{"private key", false, [][]byte{keyPEM}, "private key"},
		{"truncated DER", false, [][]byte{other.Raw[:len(other.Raw)/2]}, "cut off"},
		{"truncated PEM", false, [][]byte{EncodeCertificatesPEM(other)[:300]}, "cut off"},
		{"10 MB", false, [][]byte{bytes.Repeat([]byte("A"), 10<<20)}, "larger than"},
		{"CSR", false, [][]byte{csrPEM}, "certificate request"},
		{"empty", false, [][]byte{{}}, "empty"},
		{"no files", false, nil, "no file"},
		{"other key", false, [][]byte{EncodeCertificatesPEM(other)}, "this certificate was not issued for the key of \"SBC at HQ\""},
		{"other key into a signed entry", true, [][]byte{EncodeCertificatesPEM(other)}, "public key SHA-256 " + otherKey},
		{"other key with the intermediate into a signed entry", true, [][]byte{EncodeCertificatesPEM(h.inter.Cert, other)}, "nothing was changed"},
		{"only CA certificates", false, [][]byte{EncodeCertificatesPEM(h.inter.Cert)}, "only CA certificates"},
		{"second file bad", false, [][]byte{EncodeCertificatesPEM(h.inter.Cert), []byte("junk")}, "file 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			newRequest(t, f, KeyECDSAP256)
			if tc.signed {
				dev := h.inter.Issue(t, f.keyOfEntry(t, hq), pkitest.Leaf{CN: "sbc.example.com"})
				if _, err := f.certs.Import(f.ctx, f.cfg, hq, [][]byte{EncodeCertificatesPEM(dev)}); err != nil {
					t.Fatal(err)
				}
			}
			before := f.snapshot(t)
			cfgBefore, _ := json.Marshal(f.cfg)
			_, err := f.certs.Import(f.ctx, f.cfg, hq, tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if tc.signed {
				// both keys are named: the certificate's and the entry's
				m, _ := f.certs.privateMaterial(f.ctx, f.cfg, hq)
				if !strings.Contains(err.Error(), otherKey) || !strings.Contains(err.Error(), m.rec.KeyID) {
					t.Errorf("err %v does not name both keys (%s, %s)", err, otherKey, m.rec.KeyID)
				}
			}
			if !IsInputError(err) {
				t.Errorf("%v is not an input error", err)
			}
			cfgAfter, _ := json.Marshal(f.cfg)
			if !maps.Equal(before, f.snapshot(t)) || !bytes.Equal(cfgBefore, cfgAfter) {
				t.Error("something was stored or the configuration changed")
			}
		})
	}
}

func TestCAStore(t *testing.T) {
	h := newHierarchy(t)
	f := newFixture(t)
	// PEM and DER
	if _, err := f.certs.ImportCA(f.ctx, f.cfg, "root", EncodeCertificatesPEM(h.root.Cert)); err != nil {
		t.Fatal(err)
	}
	info, err := f.certs.ImportCA(f.ctx, f.cfg, "issuing", h.inter.Cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Certificate.IsCA || info.Certificate.Subject != h.inter.Cert.Subject.String() || !info.Trusted {
		t.Errorf("%+v", info)
	}
	// a device certificate is refused, and the unit's own one too
	dev := h.inter.Issue(t, pkitest.NewKey(t).Public(), pkitest.Leaf{CN: "peer.example.com"})
	if _, err := f.certs.ImportCA(f.ctx, f.cfg, "dev", dev.Raw); err == nil || !strings.Contains(err.Error(), "not a CA certificate") {
		t.Errorf("device as CA: %v", err)
	}
	newRequest(t, f, KeyECDSAP256)
	own := h.inter.Issue(t, f.keyOfEntry(t, hq), pkitest.Leaf{CN: "sbc.example.com"})
	if _, err := f.certs.ImportCA(f.ctx, f.cfg, "own", EncodeCertificatesPEM(own)); err == nil || !strings.Contains(err.Error(), "issued for the request 'SBC at HQ'") {
		t.Errorf("own as CA: %v", err)
	}
	// CRL: signed by the wrong CA refused; the right one accepted
	if _, err := f.certs.ImportCRL(f.ctx, f.cfg, "root", h.inter.CRL(t).Raw); err == nil || !strings.Contains(err.Error(), "not signed by") {
		t.Errorf("foreign CRL: %v", err)
	}
	crl := h.inter.CRL(t, dev)
	p := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.Raw})
	info, err = f.certs.ImportCRL(f.ctx, f.cfg, "issuing", p)
	if err != nil {
		t.Fatal(err)
	}
	if info.CRL == nil || info.CRL.Revoked != 1 || info.CRL.Stale {
		t.Errorf("CRL %+v", info.CRL)
	}
	if _, err := f.certs.ImportCRL(f.ctx, f.cfg, "issuing", []byte("garbage")); err == nil {
		t.Error("garbage CRL accepted")
	}
	list, _ := f.certs.ListCA(f.ctx, f.cfg)
	if len(list) != 2 {
		t.Errorf("list %d", len(list))
	}
	d, _ := f.certs.ExportCA(f.ctx, f.cfg, "root", true)
	if !bytes.Equal(d, h.root.Cert.Raw) {
		t.Error("export DER")
	}
	// delete: refused while tls.ca_certificates names it
	f.cfg.TLS.CACertificates = []string{"root"}
	if err := f.certs.DeleteCA(f.cfg, "root"); err == nil {
		t.Error("deleted a CA in use")
	}
	if err := f.certs.DeleteCA(f.cfg, "issuing"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.certs.ShowCA(f.ctx, f.cfg, "issuing"); err == nil {
		t.Error("deleted CA still shown")
	}
	if info, _ := f.certs.ShowCA(f.ctx, f.cfg, "root"); !info.Trusted {
		t.Error("root not trusted")
	}
}

func TestDeletePrivate(t *testing.T) {
	f := newFixture(t)
	newRequest(t, f, KeyECDSAP256)
	if err := f.certs.Delete(f.cfg, "default"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("deleting the listener's certificate: %v", err)
	}
	if err := f.certs.Delete(f.cfg, hq); err != nil {
		t.Fatal(err)
	}
	if findPrivate(f.cfg, hq) >= 0 {
		t.Error("still listed")
	}
	if err := f.certs.Delete(f.cfg, hq); err == nil {
		t.Error("deleted twice")
	}
}

func TestEnsureDefault(t *testing.T) {
	f := newFixture(t)
	f.cfg.Network.Interfaces[1].FQDN = "sbc.example.net"
	changed, err := EnsureDefault(f.ctx, f.st, f.cfg)
	if err != nil || !changed {
		t.Fatalf("changed %v err %v", changed, err)
	}
	info, err := f.certs.Show(f.ctx, f.cfg, DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	if info.KeyType != "ECDSA P-256" || !slices.Equal(info.Certificate.SANs, []string{"sbc.example.net", "127.0.0.2"}) {
		t.Errorf("%+v", info.Certificate)
	}
	changed, err = EnsureDefault(f.ctx, f.st, f.cfg)
	if err != nil || changed {
		t.Errorf("second call changed %v err %v", changed, err)
	}
	// a document naming no material finds it by name
	fresh := config.Default()
	if changed, _ := EnsureDefault(f.ctx, f.st, fresh); changed {
		t.Error("made a second default although the store has one")
	}
}

// TestDroppedRootCompletesChain: a root that came with the bundle is not
// sent to peers, but the chain is known to be complete.
func TestDroppedRootCompletesChain(t *testing.T) {
	h := newHierarchy(t)
	f := newFixture(t)
	newRequest(t, f, KeyECDSAP256)
	dev := h.inter.Issue(t, f.keyOfEntry(t, hq), pkitest.Leaf{CN: "sbc.example.com"})
	info, err := f.certs.Import(f.ctx, f.cfg, hq, [][]byte{EncodeCertificatesPEM(dev, h.inter.Cert, h.root.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	if !info.ChainStatus.Complete || len(info.Chain) != 1 {
		t.Errorf("status %+v chain %d", info.ChainStatus, len(info.Chain))
	}
	if p, _ := f.certs.Export(f.ctx, f.cfg, hq, false, true); bytes.Contains(p, EncodeCertificatesPEM(h.root.Cert)) {
		t.Error("the root is exported with the chain")
	}
}

// TestImportPKCS7: a .p7b bundle (made by openssl, PEM and DER) imports like
// separate files.
func TestImportPKCS7(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("install Debian package openssl")
	}
	h := newHierarchy(t)
	for _, form := range []string{"PEM", "DER"} {
		t.Run(form, func(t *testing.T) {
			f := newFixture(t)
			newRequest(t, f, KeyECDSAP256)
			dev := h.inter.Issue(t, f.keyOfEntry(t, hq), pkitest.Leaf{CN: "sbc.example.com"})
			dir := t.TempDir()
			in := filepath.Join(dir, "chain.pem")
			os.WriteFile(in, EncodeCertificatesPEM(h.inter.Cert, dev), 0o600)
			p7, err := exec.Command("openssl", "crl2pkcs7", "-nocrl", "-certfile", in, "-outform", form).Output()
			if err != nil {
				t.Fatal(err)
			}
			info, err := f.certs.Import(f.ctx, f.cfg, hq, [][]byte{p7})
			if err != nil {
				t.Fatal(err)
			}
			if info.Certificate.Subject != "CN=sbc.example.com" || len(info.Chain) != 1 {
				t.Errorf("%+v", info)
			}
		})
	}
}
