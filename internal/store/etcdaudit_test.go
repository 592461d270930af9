package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// TestEtcdAuditPruned: the shared audit log keeps at most AuditMaxEntries
// entries, the newest, and none older than AuditMaxAge.
func TestEtcdAuditPruned(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	e, err := OpenEtcd(ctx, EtcdOptions{Endpoints: c.Endpoints(), Namespace: "auditprune/", AuditMaxEntries: 5, AuditMaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// an entry written two hours ago (its key carries the writing time)
	old := fmt.Sprintf("%saudit/%020d-000000000000", e.ns, time.Now().Add(-2*time.Hour).UnixNano())
	if _, err := e.cli.Put(ctx, old, `{"action":"ancient"}`); err != nil {
		t.Fatal(err)
	}
	if err := e.Audit(ctx, AuditEntry{Author: "t", Action: "first"}); err != nil {
		t.Fatal(err)
	}
	if log, err := e.AuditLog(ctx, 0); err != nil || len(log) != 1 || log[0].Action != "first" {
		t.Fatalf("audit log with an entry older than the age bound: %+v %v", log, err)
	}
	for i := range 12 {
		if err := e.Audit(ctx, AuditEntry{Author: "t", Action: fmt.Sprintf("a%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	log, err := e.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 5 || log[0].Action != "a11" || log[4].Action != "a7" {
		t.Fatalf("audit log after 12 entries with a bound of 5: %+v", log)
	}
}
