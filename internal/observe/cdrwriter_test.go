package observe

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/store"
)

// Records of calls ending at once from many goroutines all reach the store:
// Flush waits for them, Close writes what is still queued, and a call that
// ends after Close is written by its caller.
func TestCDRWriterLosesNothing(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := NewRecorder(st, nil, nil)
	ctx := context.Background()
	start := time.Now().Add(-time.Minute)
	end := func(id string) {
		r.CallStarted(CallStart{ID: id, Time: start, Direction: DirOutbound})
		r.CallEnded(CallEnd{ID: id, Time: start.Add(time.Second), Code: 200, EndedBy: EndedByCaller})
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 250 {
				end(fmt.Sprintf("g%d-%d", g, i))
			}
		})
	}
	wg.Wait()
	r.Flush()
	if cdrs, _, err := ListCDRs(ctx, st, time.Time{}); err != nil || len(cdrs) != 2000 {
		t.Fatalf("after Flush: %d records (%v), want 2000", len(cdrs), err)
	}
	for i := range 100 {
		end(fmt.Sprintf("late-%d", i))
	}
	r.Close() // SIGTERM: the unit closes observe after the SIP layer
	if cdrs, _, err := ListCDRs(ctx, st, time.Time{}); err != nil || len(cdrs) != 2100 {
		t.Fatalf("after Close: %d records (%v), want 2100", len(cdrs), err)
	}
	end("after-close")
	cdrs, _, err := ListCDRs(ctx, st, time.Time{})
	if err != nil || len(cdrs) != 2101 {
		t.Fatalf("a call ended after Close: %d records (%v), want 2101", len(cdrs), err)
	}
	r.Close() // twice is harmless
}
