package setup

import (
	"testing"

	"github.com/palisade-sbc/palisade/internal/admin"
)

// FuzzCheck feeds arbitrary answers to the validators: no panic, and
// answers that pass build a configuration that validates.
func FuzzCheck(f *testing.F) {
	f.Add("10.0.0.5/24", "203.0.113.1", "sbc.example.com", "9.9.9.9,1.1.1.1:53", "pbx:5060", "trunk.example.net", "", "9")
	f.Add("::1", "", "", "[::1]:53", "[::1]:5060", "", "[2001:db8::1]:5061", "*#")
	// One real hash, reused: hashing costs tens of milliseconds and 19 MiB
	// per input and depends only on the password, which is fixed here.
	hash, err := admin.HashPassword("s3cret-pass")
	if err != nil {
		f.Fatal(err)
	}
	orig := hashPassword
	hashPassword = func(string) (string, error) { return hash, nil }
	f.Cleanup(func() { hashPassword = orig })
	f.Fuzz(func(t *testing.T, inside, gw, fqdn, dns, pbx, domain, addr, prefix string) {
		a := Answers{AdminPassword: "s3cret-pass", InsideAddress: inside, OutsideAddr: "203.0.113.10", OutsideFQDN: fqdn,
			Gateway: gw, DNS: dns, PBXAddress: pbx, ITSPDomain: domain, ITSPAddress: addr, ITSPPrefix: prefix}
		a.fillDefaults()
		a.fillTransportDefault()
		if a.Check() != nil {
			return
		}
		cfg, err := Build(a)
		if err != nil {
			t.Fatalf("checked answers do not build: %v", err)
		}
		// What setup accepts, the configuration accepts.
		if errs := cfg.Validate(); len(errs) > 0 {
			t.Fatalf("checked answers give an invalid configuration: %v", errs)
		}
	})
}
