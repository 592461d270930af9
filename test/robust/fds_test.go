package robust_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// TestFileDescriptorsShed: a unit with few file descriptors (ulimit 400; media ports plenty)
// gets calls from its PBX that the trunk never answers, so every call
// keeps its media sockets. Before the descriptors run out the unit answers
// new INVITEs 503 with Retry-After, stays up and keeps answering.
func TestFileDescriptorsShed(t *testing.T) {
	if testing.Short() {
		t.Skip("takes half a minute; skipped under -short")
	}
	prlimit := testkit.NeedBinary(t, "prlimit", "util-linux")
	const limit = 400
	// Media ports plenty (2,000 pairs): descriptors, not ports, run out.
	ports := func(c *config.Config) { c.Media.PortMin = 44000; c.Media.PortMax = 47999 }
	u := startUnitWrapped(t, ports, prlimit, fmt.Sprintf("--nofile=%d:%d", limit, limit), "--")
	pbx := siptest.ListenRawUDP(t, u.pbx)      // the PBX peer
	silent := siptest.ListenRawUDP(t, u.trunk) // the trunk: reads, never answers
	_ = silent
	final := map[string]int{} // Call-ID -> final status
	retryAfter := 0
	read := func(d time.Duration) {
		// Until a fixed time: the unit resends its finals (no ACK comes),
		// so waiting for a quiet gap could last half a minute.
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			m, _, err := pbx.Recv(time.Until(end))
			if err != nil {
				return
			}
			if r, ok := m.(*sip.Response); ok && r.StatusCode >= 200 && final[r.CallID().Value()] == 0 {
				final[r.CallID().Value()] = r.StatusCode
				if r.StatusCode == 503 && r.GetHeader("Retry-After") != nil {
					retryAfter++
				}
			}
		}
	}
	maxFDs := 0
	for i := range 400 {
		msg := request("INVITE", fmt.Sprintf("sip:fd%d@%s", i, u.insideUDP), pbx.Local, fmt.Sprintf("fd-%d", i), siptest.NewTag(), "", 1, "", sdp(pbxIP, 30000+2*i))
		if err := pbx.Send(u.insideUDP, msg); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			read(500 * time.Millisecond) // about 20 calls/s
			maxFDs = max(maxFDs, u.openFDs(t))
		}
	}
	read(3 * time.Second)
	codes := map[int]int{}
	for _, c := range final {
		codes[c]++
	}
	t.Logf("final answers: %v (%d of the 503s with Retry-After); most descriptors seen %d of %d", codes, retryAfter, maxFDs, limit)
	if retryAfter == 0 {
		t.Fatalf("no 503 with Retry-After while descriptors ran low: %v", codes)
	}
	if maxFDs >= limit {
		t.Errorf("the unit used all its %d descriptors", limit)
	}
	for c := range codes {
		if c != 503 && c != 408 {
			t.Errorf("%d calls answered %d", codes[c], c)
		}
	}
	if !u.alive() {
		t.Fatal("unit died")
	}
	if !u.optionsOK(t, "udp", u.insideUDP) {
		t.Fatal("unit does not answer OPTIONS")
	}
	if v := u.metric(t, "palisade_guard_refused_total", "cause", "fds"); v < 1 {
		t.Errorf("refusals for descriptors not counted (metric %v)", v)
	}
}
