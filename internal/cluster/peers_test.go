package cluster

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// TestPeersSignature: a request one unit signs verifies at another unit
// of the same cluster; changed in its path, made too long ago, or signed
// in another cluster (another secret), it does not.
func TestPeersSignature(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	open := func(ns string) *store.Etcd {
		e, err := store.OpenEtcd(ctx, store.EtcdOptions{Endpoints: c.Endpoints(), Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	ns := fmt.Sprintf("peers-%d/", os.Getpid())
	a, b := &Peers{Etcd: open(ns), Name: "a"}, &Peers{Etcd: open(ns), Name: "b"}
	other := &Peers{Etcd: open("other-" + ns), Name: "b"}
	key := func(p *Peers) []byte {
		k, err := p.secret(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	verify := func(p *Peers, path string, at time.Time) (string, error) {
		req := httptest.NewRequest("GET", path, nil)
		p.sign(req, key(p), at)
		if strings.HasSuffix(path, "&x") { // changed after signing
			req.URL.RawQuery = strings.TrimSuffix(req.URL.RawQuery, "&x")
		}
		return a.Verify(req)
	}
	if u, err := verify(b, "/api/v1/cdr?since=1h&local=1", time.Now()); err != nil || u != "b" {
		t.Fatalf("b's signed request at a: %q %v", u, err)
	}
	for name, tc := range map[string]struct {
		p    *Peers
		path string
		at   time.Time
		want string
	}{
		"changed query":    {b, "/api/v1/cdr?since=1h&local=1&x", time.Now(), "does not verify"},
		"five minutes old": {b, "/api/v1/cdr", time.Now().Add(-5 * time.Minute), "clock"},
		"other cluster":    {other, "/api/v1/cdr", time.Now(), "does not verify"},
	} {
		if u, err := verify(tc.p, tc.path, tc.at); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %q %v, want an error about %q", name, u, err, tc.want)
		}
	}
}
