package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
)

// palisade setup through the command line: the global --data reaches it,
// missing values exit 1 with every one of them named.
func TestSetupCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"setup", "--non-interactive", "--data", dir}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "--admin-password") || !strings.Contains(errOut.String(), "--pbx-address") {
		t.Fatalf("missing values: exit %d, %q", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code = run(context.Background(), []string{"--data", dir, "setup", "--non-interactive", "--admin-password", "long-enough",
		"--inside-address", "127.0.0.1", "--outside-address", "127.0.0.2", "--pbx-address", "127.0.0.5",
		"--itsp", "office365-um", "--itsp-domain", "abc.um.outlook.com"}, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, v, err := lifecycle.StartupConfig(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if v.Number != 1 || !cfg.Routing.Refer.Always || len(cfg.Peers) != 2 {
		t.Errorf("version %d refer %v peers %d", v.Number, cfg.Routing.Refer.Always, len(cfg.Peers))
	}
}
