package admin

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
)

// The JSON API enforces what the web admin does: a backup of a unit with
// private keys needs a passphrase (at least 8 characters) or the explicit
// choice to leave the keys out; the refusal names both.
func TestBackupAPINeedsPassphraseForKeys(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	hash, err := HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Admin.PasswordHash = hash
	st := store.NewMemory()
	if err := lifecycle.Bootstrap(ctx, st, cfg, "test"); err != nil {
		t.Fatal(err)
	}
	ap := &recordingApplier{}
	mgr, err := lifecycle.New(st, ap, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	st.Put(ctx, lifecycle.PrivateKeyPrefix+"k1", []byte("-----BEGIN PRIVATE KEY-----\nsecret"))
	st.Put(ctx, "pki/ca/ab12", []byte("-----BEGIN CERTIFICATE-----\nca"))
	env := &Env{Store: st, Config: mgr, Live: &Live{}, Log: slog.New(slog.DiscardHandler)}
	f := &apiFixture{t: t, h: NewHandler(env), applier: ap}
	env.Auth.SetAdmin(cfg.Admin)
	f.login()

	for _, tc := range []struct {
		method, path string
		body         any
		want         []string
	}{
		{"POST", "/api/v1/config/backup", map[string]any{}, []string{"1 private key", `"without_keys": true`, "--without-keys", "--passphrase"}},
		{"POST", "/api/v1/config/backup", nil, []string{"1 private key"}},
		{"GET", "/api/v1/config/backup", nil, []string{"1 private key"}},
		{"POST", "/api/v1/config/backup", map[string]any{"passphrase": "short"}, []string{"at least 8"}},
	} {
		r := f.do(tc.method, tc.path, tc.body, map[string]string{CSRFHeader: f.csrf})
		if r.status != http.StatusBadRequest || strings.Contains(string(r.body), "secret") {
			t.Fatalf("%s %v: %d %s", tc.method, tc.body, r.status, r.body)
		}
		var e errorBody
		r.decode(t, &e)
		for _, w := range tc.want {
			if !strings.Contains(e.Error, w) {
				t.Errorf("%s %v: the refusal lacks %q: %s", tc.method, tc.body, w, r.body)
			}
		}
	}
	for _, tc := range []struct {
		method, path string
		body         any
		want         string
	}{
		{"POST", "/api/v1/config/backup", map[string]any{"without_keys": true}, `"pki/ca/ab12"`},
		{"GET", "/api/v1/config/backup?without_keys=true", nil, `"pki/ca/ab12"`},
		{"POST", "/api/v1/config/backup", map[string]any{"passphrase": "long enough"}, `"encrypted": true`},
	} {
		r := f.do(tc.method, tc.path, tc.body, map[string]string{CSRFHeader: f.csrf})
		body := string(r.body)
		if r.status != http.StatusOK || !strings.Contains(body, tc.want) || strings.Contains(body, lifecycle.PrivateKeyPrefix) || strings.Contains(body, "secret") {
			t.Fatalf("%s %s %v: %d %.400s", tc.method, tc.path, tc.body, r.status, body)
		}
	}
}
