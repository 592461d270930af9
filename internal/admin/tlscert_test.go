package admin

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/store"
)

// The generated admin certificate is valid at most 397 days (testssl and
// browsers flag longer server certificates); it is kept across restarts
// while more than 30 days are left and replaced at start-up after that,
// and one made by an older version with a longer validity is replaced.
func TestGeneratedCertificateValidity(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		stored  func(t *testing.T) []byte // PEMs stored before; nil = none
		at      time.Time                 // start-up time
		renewed bool
	}{
		{"first start", nil, t0, true},
		{"restart a month later keeps it", storedAt(t0, certValidity), t0.Add(30 * day), false},
		{"restart 31 days before expiry keeps it", storedAt(t0, certValidity), t0.Add(certValidity - 31*day), false},
		{"restart 29 days before expiry renews it", storedAt(t0, certValidity), t0.Add(certValidity - 29*day), true},
		{"restart after expiry renews it", storedAt(t0, certValidity), t0.Add(certValidity + day), true},
		{"five-year certificate of an older version is replaced", storedAt(t0, 5*365*day), t0.Add(day), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := store.NewMemory()
			var old []byte
			if tc.stored != nil {
				old = tc.stored(t)
				if err := st.Put(t.Context(), tlsKey, old); err != nil {
					t.Fatal(err)
				}
			}
			c, certPEM, err := loadOrCreateCertificate(t.Context(), st, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			leaf := c.Leaf
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got > certValidity {
				t.Errorf("served certificate valid %v, want at most 397 days", got)
			}
			if !tc.at.After(leaf.NotBefore) || !tc.at.Add(renewBefore).Before(leaf.NotAfter) {
				t.Errorf("served certificate %v..%v not valid 30 days on from %v", leaf.NotBefore, leaf.NotAfter, tc.at)
			}
			var sc storedCert
			if old != nil {
				_ = json.Unmarshal(old, &sc)
			}
			if renewed := sc.CertPEM != string(certPEM); renewed != tc.renewed {
				t.Errorf("renewed = %v, want %v", renewed, tc.renewed)
			}
			// what is served is what the next start finds in the store
			_, again, err := loadOrCreateCertificate(t.Context(), st, tc.at)
			if err != nil || string(again) != string(certPEM) {
				t.Errorf("second load at the same time changed the certificate (%v)", err)
			}
		})
	}
}

// storedAt is the stored form of a generated certificate made at t valid
// for validity.
func storedAt(at time.Time, validity time.Duration) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		t.Helper()
		certPEM, keyPEM, err := selfSignedAt("palisade admin", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, at, validity)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(storedCert{CertPEM: string(certPEM), KeyPEM: string(keyPEM)})
		return b
	}
}
