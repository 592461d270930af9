package observe

import (
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/store"
)

// Every function given to Notify hears of each stored record once.
func TestRecorderNotify(t *testing.T) {
	r := NewRecorder(store.NewMemory(), nil, nil)
	var a, b []CDR
	r.Notify(func(c CDR) { a = append(a, c) })
	r.Notify(func(c CDR) { b = append(b, c) })
	runCall(r, "n1", time.Now(), true, 200, EndedByCaller)
	runCall(r, "n2", time.Now(), false, 486, EndedByCallee)
	r.Flush() // records are written, and told of, off the call path
	if len(a) != 2 || len(b) != 2 || a[0].ID != "n1" || a[1].Code != 486 || b[1].ID != "n2" {
		t.Fatalf("notified %+v and %+v", a, b)
	}
	if a[0].End.IsZero() || a[0].Duration == 0 {
		t.Fatalf("the record was not complete when notified: %+v", a[0])
	}
}
